"""Where a tick's time goes, how it scales with streams, and how old the data is at decision.

    python benchmarks/bench_pipeline.py [--ticks 120] [--live-seconds 20] [--out-dir DIR]

* **Overhead per tick** — everything but the engine: the window join (``spine.tick``), features
  (frame resize + streaming log-mel), health, probabilities, decisions and emitting the records
  (JSON + a JSONL sink's queue). Streams are 640x480 at 30 fps + 16 kHz synthetic sources on a
  FakeClock, the driver model's window (2 s, 8 frames, hop 0.5 s). The engine is a null engine
  (precomputed logits) so only the overhead is timed; the real INT8 engine is timed on the same
  windows in the same process as the baseline ratio. Capture cost (writing frames and blocks
  into the rings, on the capture threads) is reported beside it.
* **Scaling** — per-stream cost of a tick with the real INT8 engine at 1, 2, 4 and 8 streams,
  one batched engine call vs one call per stream, alternated in rounds.
* **Data age at decision** — a live run (real clock, capture threads) of one synthetic stream:
  emitted time minus capture time of the newest frame / audio sample in the window, against
  the floor of one delivery period (a frame: 33 ms; an audio block: 20 ms) plus the engine.
"""

from __future__ import annotations

import argparse
import gc
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, alternate, bar_chart, percentiles, write_result  # noqa: E402

from edge.runtime.card import load_card
from edge.timebase.clock import NS_PER_S, FakeClock, MonotonicClock
from edge.config import parse_config
from edge.service.run import Runner
from edge.runtime.base import load_engine
from edge.service.daemon import Service
from edge.sinks.sinkset import SinkSet

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "engines" / "driver-av.int8.onnx"
RULES = (ROOT / "configs" / "demo.yaml").read_text().split("decisions:")[1]


def config_text(streams: int, jsonl: Path | None = None, size: tuple[int, int] = (640, 480)) -> str:
    srcs = "\n".join(
        f"  cam{i}: {{type: synthetic, width: {size[0]}, height: {size[1]}, fps: 30, sample_rate: 16000,"
        f" block_seconds: 0.02, skew_ppm: 50, jitter_ms: 1, seed: {i}}}" for i in range(streams))
    strs = "\n".join(f"  s{i}: {{video: cam{i}, audio: cam{i}}}" for i in range(streams))
    sinks = "" if jsonl is None else f"sinks:\n  log: {{type: jsonl, path: \"{jsonl}\"}}\n"
    return (f"sources:\n{srcs}\nstreams:\n{strs}\nwindow: {{seconds: 2.0, frames: 8, hop: 0.5}}\n"
            f"{sinks}decisions:{RULES}")


class NullEngine:
    """Precomputed logits at once: what is left of a tick is the pipeline's own work."""

    type_key = "null"
    max_batch = None

    def __init__(self, card: Any) -> None:
        self.card = card
        self.logits = np.linspace(-3, 3, len(card.class_names), dtype=np.float32)

    def infer(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        n = len(next(iter(batch.values())))
        return {"logits": np.tile(self.logits, (n, 1))}

    def describe(self) -> dict[str, Any]:
        return {"type": "null"}


class OnePerCall:
    """The real engine, told it takes a batch of 1: the runner makes one call per stream."""

    max_batch = 1

    def __init__(self, inner: Any) -> None:
        self.inner, self.card, self.type_key = inner, inner.card, inner.type_key

    def infer(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return self.inner.infer(batch)  # type: ignore[no-any-return]

    def describe(self) -> dict[str, Any]:
        return {"type": "one-per-call"}


class Feed:
    """Writes every source's items into its rings as the fake clock reaches their time."""

    def __init__(self, runner: Runner, clock: FakeClock) -> None:
        self.clock, self.runner = clock, runner
        self.srcs = list(runner.spine.sources.values())
        self.start = clock.now_ns()
        self.heads: list[Any] = []
        self.origins: list[int] = []
        self.ingest_s = 0.0
        for src in self.srcs:
            src.open()  # type: ignore[attr-defined]
            self.heads.append(src.next_item())  # type: ignore[attr-defined]
            self.origins.append(src.device_due_ns(self.heads[-1]))  # type: ignore[attr-defined]

    def until(self, t: int) -> None:
        for i, src in enumerate(self.srcs):
            while self.heads[i] is not None:
                due = self.start + src.device_due_ns(self.heads[i]) - self.origins[i]  # type: ignore[attr-defined]
                if due > t:
                    break
                self.clock.sleep_until(due)
                s = time.process_time()
                src.write_item(self.heads[i], due)  # type: ignore[attr-defined]
                self.ingest_s += time.process_time() - s
                self.heads[i] = src.next_item()  # type: ignore[attr-defined]
        self.clock.sleep_until(t)


def timed(obj: Any, name: str, into: dict[str, float]) -> None:
    """Wrap ``obj.name`` so that its wall time adds up in ``into[name]``."""
    fn: Callable[..., Any] = getattr(obj, name)

    def wrapper(*a: Any, **kw: Any) -> Any:
        s = time.perf_counter()
        try:
            return fn(*a, **kw)
        finally:
            into[name] = into.get(name, 0.0) + time.perf_counter() - s

    setattr(obj, name, wrapper)


def overhead(streams: int, ticks: int, tmp: Path, size: tuple[int, int] = (640, 480)) -> dict[str, Any]:
    card = load_card(ROOT / "engines" / "driver-av.yaml")
    clock = FakeClock(1_000 * NS_PER_S)
    cfg = parse_config(config_text(streams, tmp / f"bench-{streams}-{size[0]}.jsonl", size))
    runner = Runner(cfg, clock, engine=NullEngine(card))  # type: ignore[arg-type]
    sinks = SinkSet(cfg.sinks)
    sinks.start()
    service = Service(runner, publish=sinks.publish, sink_stats=sinks.stats)
    stage: dict[str, float] = {}
    featurize: dict[str, float] = {}
    made: list[Any] = []  # the features of the last tick, for the engine baseline
    for name, f in list(runner.featurizers.items()):

        def call(w: Any, front: Any = None, *, _f: Any = f) -> Any:
            s = time.perf_counter()
            out = _f(w, front)
            featurize["t"] = featurize.get("t", 0.0) + time.perf_counter() - s
            made.append(out)
            return out

        runner.featurizers[name] = call  # type: ignore[assignment]
    for name in ("_judge_health", "decide"):
        timed(runner, name, stage)
    timed(service, "emit", stage)
    feed = Feed(runner, clock)
    hop = runner.spine.hop_ns
    warm = 8  # the rings fill (2 s window) and caches warm before timing
    per_tick: list[float] = []
    rows: list[dict[str, float]] = []
    feats: list[list[Any]] = []
    ingest0 = 0.0
    cpu_s = 0.0
    gc.collect()
    for k in range(1, warm + ticks + 1):
        t = feed.start + k * hop
        feed.until(t)
        if k == warm:
            ingest0 = feed.ingest_s
        before = dict(stage), featurize.get("t", 0.0)
        made.clear()
        c = time.process_time()  # all threads: OpenCV's and the sink's too
        s = time.perf_counter()
        windows = runner.spine.tick(t)
        cut = time.perf_counter() - s
        service.on_windows(windows)
        total = time.perf_counter() - s
        if k > warm:
            cpu_s += time.process_time() - c
            per_tick.append(total)
            rows.append({
                "join": cut,
                "features": featurize.get("t", 0.0) - before[1],
                "health": stage.get("_judge_health", 0.0) - before[0].get("_judge_health", 0.0),
                "decisions": stage.get("decide", 0.0) - before[0].get("decide", 0.0),
                "emit": stage.get("emit", 0.0) - before[0].get("emit", 0.0),
            })
            if len(feats) < 4:
                feats.append(list(made))
    sinks.stop(2.0)
    rows_arr = {k: np.array([r[k] for r in rows]) * 1e3 for k in rows[0]}
    other = np.array(per_tick) * 1e3 - sum(rows_arr.values())
    ms = np.array(per_tick) * 1e3
    hop_s = hop / NS_PER_S
    ingest_s = (feed.ingest_s - ingest0) / (ticks * hop_s)  # CPU seconds per second of data
    # the baseline: the real INT8 engine on the same features, in the same process
    engine = load_engine("onnx", MODEL, card, {"threads": 1})
    from edge.features.serve import batch

    batches = [batch(f) for f in feats]
    eng_s = alternate({"engine": lambda: [engine.infer(b) for b in batches]}, 3, 5)["engine"] / len(batches)
    return {
        "streams": streams,
        "frame_size": f"{size[0]}x{size[1]}",
        "ticks": ticks,
        "tick_ms": percentiles(ms.tolist()),
        "stages_ms_p50": {k: round(float(np.median(v)), 4) for k, v in rows_arr.items()}
        | {"rest (probabilities, predictions, metrics)": round(float(np.median(other)), 4)},
        "stages_ms_p99": {k: round(float(np.percentile(v, 99)), 4) for k, v in rows_arr.items()},
        "cpu_share_of_one_core_ticks": float(cpu_s / (ticks * hop_s)),
        "cpu_share_of_one_core_capture_ingest": float(ingest_s),
        "engine_int8_1thread_ms_per_tick": eng_s * 1e3,
        "overhead_p50_over_engine": float(np.median(ms) / (eng_s * 1e3)),
    }


def scaling(counts: list[int], rounds: int) -> dict[str, Any]:
    card = load_card(ROOT / "engines" / "driver-av.yaml")
    engine = load_engine("onnx", MODEL, card, {"threads": 1})
    out: dict[str, Any] = {}
    for n in counts:
        clock = FakeClock(1_000 * NS_PER_S)
        cfg = parse_config(config_text(n))
        runner = Runner(cfg, clock, engine=engine)
        runner_one = Runner(cfg, FakeClock(1_000 * NS_PER_S), engine=OnePerCall(engine),  # type: ignore[arg-type]
                            sources=runner.spine.sources)
        feed = Feed(runner, clock)
        feed.until(feed.start + 6 * runner.spine.hop_ns)
        t = feed.start + 6 * runner.spine.hop_ns
        windows = runner.spine.tick(t)
        res = alternate({
            "batched": lambda: runner.process(windows),
            "per-stream calls": lambda: runner_one.process(windows),
        }, 3, rounds)
        out[str(n)] = {k: v * 1e3 / n for k, v in res.items()} | {
            "batched_speedup": res["per-stream calls"] / res["batched"]}
    return out


def data_age(seconds: float) -> dict[str, Any]:
    card = load_card(ROOT / "engines" / "driver-av.yaml")
    engine = load_engine("onnx", MODEL, card, {"threads": 1})
    cfg = parse_config(config_text(1))
    clock = MonotonicClock()
    runner = Runner(cfg, clock, engine=engine)
    ages: dict[str, list[float]] = {"video": [], "audio": []}

    service = Service(runner)
    inner = service.on_windows

    def on_windows(ws: list[Any]) -> None:
        inner(ws)
        now = clock.now_ns()
        for w in ws:
            if w.video_age_ns is not None:
                ages["video"].append((w.video_age_ns + now - w.cut_ns) / 1e6)
            if w.audio_age_ns is not None:
                ages["audio"].append((w.audio_age_ns + now - w.cut_ns) / 1e6)

    runner.spine.start(require_open_s=5.0)
    try:
        time.sleep(2.5)  # the rings hold a whole window
        runner.spine.run(seconds, on_windows, stop=threading.Event())
    finally:
        runner.spine.stop()
    eng = np.array(runner.infer_ns[-len(ages["video"]):]) / 1e6
    engine_p50 = float(np.median(eng))
    out: dict[str, Any] = {"seconds": seconds, "engine_ms": percentiles(eng.tolist()),
                           "skipped_ticks": runner.spine.skipped_ticks}
    for modality, period in (("video", 1000 / 30), ("audio", 20.0)):
        a = percentiles(ages[modality])
        floor = period + engine_p50
        out[modality] = a | {"floor_ms": floor, "p99_minus_floor_ms": a["p99"] - floor,
                             "issue_floor_hop_plus_engine_ms": 500 + engine_p50}
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ticks", type=int, default=120, help="timed ticks per overhead case")
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--live-seconds", type=float, default=20.0)
    p.add_argument("--out-dir", type=Path, default=RESULTS)
    args = p.parse_args()
    tmp = Path(__import__("tempfile").mkdtemp(prefix="edge-bench-"))
    result: dict[str, Any] = {
        "overhead": {
            "1 stream": overhead(1, args.ticks, tmp),
            "8 streams": overhead(8, args.ticks, tmp),
            "1 stream, 320x240": overhead(1, args.ticks, tmp, (320, 240)),
        },
        "scaling_ms_per_stream": scaling([1, 2, 4, 8], args.rounds),
        "data_age": data_age(args.live_seconds),
    }
    write_result("pipeline", result, args.out_dir)
    o = result["overhead"]
    bar_chart("pipeline", "Tick cost by stage (p50, ms), no engine; INT8 engine for scale",
              {n: o[n]["stages_ms_p50"]
               | {"INT8 engine (baseline)": o[n]["engine_int8_1thread_ms_per_tick"]} for n in o},
              "ms per tick", args.out_dir, log=True)
    bar_chart("scaling", "Per-stream cost of a tick with the INT8 engine",
              {f"{n} streams": {k: v for k, v in r.items() if k != "batched_speedup"}
               for n, r in result["scaling_ms_per_stream"].items()}, "ms per stream", args.out_dir)
    for n, r in o.items():
        print(f"{n}: tick p50 {r['tick_ms']['p50']:.3f} ms p99 {r['tick_ms']['p99']:.3f} ms,"
              f" {100 * r['cpu_share_of_one_core_ticks']:.2f} % of a core (+ capture"
              f" {100 * r['cpu_share_of_one_core_capture_ingest']:.2f} %), stages {r['stages_ms_p50']}")
    print("scaling", result["scaling_ms_per_stream"])
    print("data age", result["data_age"])


if __name__ == "__main__":
    main()
