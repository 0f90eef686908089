"""How well ClockModel puts device time on pipeline time, vs stamping by arrival (a simulation).

    python benchmarks/bench_clock.py [--out-dir DIR] [--quick]

A deterministic, seeded simulation, not a timing benchmark: the real :class:`edge.timebase.clock.ClockModel`
is fed exactly as the sources feed it, and what it says is compared with the true host time.

* **Microphone** — 16 kHz in 20 ms blocks (320 samples). As in ``MicrophoneSource``, each block
  is one ``observe(device_ns, host_ns)``: ``device_ns`` is the sample counter at the block's end
  (``n_end * 62_500`` ns), ``host_ns`` the host time the callback ran.
* **Camera** — 30 fps, one ``observe(pts_ns, arrival_ns)`` per frame with the frame's device
  timestamp, as ``CameraSource`` does.

Device clock: it runs ``1 + ppm * 1e-6`` times as fast as the host (``ppm`` = 50, 200, 500), so
device time ``d`` was captured at true host time ``H0 + d / (1 + ppm * 1e-6)``. The host origin
``H0`` is arbitrary (the model has to find it).

Delivery (the idea of ``SyntheticSource.pace_delay_ns``): arrival = true host capture time of the
item's newest sample + a non-negative delay ``Exp(mean = jitter)`` (``jitter`` = 1, 5, 20 ms).
On top, with probability 0.2 % per item (about once every 10 s of audio, every 17 s of video)
the consumer stalls for ``U(30, 150)`` ms; items are delivered in order, so those queued behind
a stall arrive in a burst with it (``arrival_k = max(raw_k, arrival_{k-1})``). There is no
constant latency floor: a fixed latency cannot be seen by any method from arrivals alone and
would add the same to both columns. Seeds are fixed per case, so every run prints the same table.

Measured, for each item as it arrives, with the model as it stands right after ``observe``
(what the pipeline stamps at that moment):

* **edge** — ``model.to_pipeline(device_ns)`` of the item's newest sample minus its true host
  capture time;
* **arrival** — the naive stamp of a simpler pipeline: the block's start at ``arrival - 20 ms``
  (its newest sample at ``arrival``; a frame at ``arrival``) minus the true time; that error is
  the delivery delay (up to skew x 20 ms <= 10 us).

Reported in ms as p50 / p99 / max of ``|error|`` over the last 5 s before each checkpoint
(10 s, 60 s, 1 h of capture, all from one run per case: the state after 10 s of a 1 h run is the
10 s run), the edge mean signed error (bias) in that window, the max of ``|edge error|`` over the
whole run from 10 s on, the ratio of the p99s (arrival / edge: > 1 means the model is better)
and the skew estimate's error in ppm (``fit().skew_ppm - ppm``). ``--quick`` stops at 60 s.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, bar_chart, percentiles, write_result  # noqa: E402

from edge.timebase.clock import NS_PER_S, ClockModel  # noqa: E402

PPMS = (50.0, 200.0, 500.0)
JITTERS_MS = (1.0, 5.0, 20.0)
CHECKPOINTS_S = (10.0, 60.0, 3600.0)
WINDOW_S = 5.0  # the "last few seconds" the percentiles are taken over
RUN_MAX_FROM_S = 10.0  # the whole-run max ignores the first seconds (no skew fitted yet)
STALL_P = 0.002
STALL_MS = (30.0, 150.0)
HOST_ORIGIN_NS = 12_345_678_901_234  # arbitrary host time of device time 0
SAMPLE_RATE = 16_000
BLOCK = 320  # 20 ms at 16 kHz
FPS = 30
CAMERA_PPM = 200.0


@dataclass(frozen=True)
class Source:
    """How one kind of source presents items to the clock model."""

    name: str
    period_ns: float  # device time between items
    duration_ns: float  # device time an item spans (block length; 0 for a frame)

    def device_ns(self, k: np.ndarray) -> np.ndarray:
        """Device time of item ``k``'s newest sample: what the source passes to ``observe``."""
        if self.name == "mic":
            # MicrophoneSource: round(n_end * ns_per_sample), n_end = (k + 1) * BLOCK.
            return ((k + 1) * BLOCK * (NS_PER_S // SAMPLE_RATE)).astype(np.int64)
        return np.round(k * self.period_ns).astype(np.int64)  # frame k's PTS


MIC = Source("mic", BLOCK * NS_PER_S / SAMPLE_RATE, BLOCK * NS_PER_S / SAMPLE_RATE)
CAMERA = Source("camera", NS_PER_S / FPS, 0.0)


def arrivals(true_host: np.ndarray, jitter_ms: float, rng: np.random.Generator) -> np.ndarray:
    """Host arrival times (int ns): true capture + Exp(jitter) delay + rare stalls, in order."""
    n = true_host.size
    delay = rng.exponential(jitter_ms * 1e6, n)
    stall = rng.random(n) < STALL_P
    delay[stall] += rng.uniform(STALL_MS[0] * 1e6, STALL_MS[1] * 1e6, int(stall.sum()))
    raw = np.round(true_host + delay).astype(np.int64)
    return np.maximum.accumulate(raw)  # FIFO: nothing overtakes a stalled item


def simulate(src: Source, ppm: float, jitter_ms: float, seconds: float, seed: int) -> dict[str, Any]:
    """Run one case; return per-item errors (ns) of both methods, skew estimates, and timing."""
    n = int(round(seconds * NS_PER_S / src.period_ns))
    k = np.arange(n, dtype=np.int64)
    dev = src.device_ns(k)
    rate = 1.0 + ppm * 1e-6
    true_host = HOST_ORIGIN_NS + dev.astype(np.float64) / rate  # newest sample's true capture
    arr = arrivals(true_host, jitter_ms, np.random.default_rng(seed))
    # Arrival stamping: block start = arrival - duration; its true time is H(end) - duration/rate.
    naive_err = (arr - src.duration_ns) - (true_host - src.duration_ns / rate)

    model = ClockModel()
    mapped = np.empty(n, dtype=np.int64)
    checkpoints = {int(round(c * NS_PER_S / src.period_ns)) - 1: c for c in CHECKPOINTS_S if c <= seconds}
    skew_at: dict[float, float] = {}
    observe, to_pipeline = model.observe, model.to_pipeline
    dev_list, arr_list = dev.tolist(), arr.tolist()
    t0 = time.perf_counter()
    for i in range(n):
        d = dev_list[i]
        observe(d, arr_list[i])
        mapped[i] = to_pipeline(d)
        if i in checkpoints:
            skew_at[checkpoints[i]] = model.fit().skew_ppm
    wall = time.perf_counter() - t0
    return {
        "edge_err": mapped - true_host,
        "naive_err": naive_err,
        "skew_ppm": skew_at,
        "resets": model.resets,
        "wall_s": wall,
        "observations": n,
    }


def stall_probe(stall_s: float, seed: int = 99) -> dict[str, Any]:
    """One long delivery stall (mic, 200 ppm, 5 ms jitter) at 30 s of a 90 s run: the blocks of
    the stall arrive in one burst when it ends. Max |error| over the 30 s after the stall."""
    src, ppm = MIC, 200.0
    n = int(round(90 * NS_PER_S / src.period_ns))
    dev = src.device_ns(np.arange(n, dtype=np.int64))
    true_host = HOST_ORIGIN_NS + dev.astype(np.float64) / (1.0 + ppm * 1e-6)
    rng = np.random.default_rng(seed)
    raw = true_host + rng.exponential(5e6, n)
    t_stall = HOST_ORIGIN_NS + 30 * NS_PER_S
    held = (true_host >= t_stall) & (true_host < t_stall + stall_s * NS_PER_S)
    raw[held] = t_stall + stall_s * NS_PER_S
    arr = np.maximum.accumulate(np.round(raw).astype(np.int64))
    model = ClockModel()
    err = np.empty(n)
    for i in range(n):
        model.observe(int(dev[i]), int(arr[i]))
        err[i] = model.to_pipeline(int(dev[i])) - true_host[i]
    after = (true_host >= t_stall) & (true_host < t_stall + (stall_s + 30) * NS_PER_S)
    naive = arr - true_host
    return {"stall_s": stall_s, "edge_max_ms_30s_after": float(np.abs(err[after]).max() / 1e6),
            "arrival_max_ms_30s_after": float(np.abs(naive[after]).max() / 1e6),
            "edge_p99_ms_last_5s": float(np.percentile(np.abs(err[-250:]), 99) / 1e6),
            "resets": model.resets, "late_items_left_out": model.late_skipped}


def summarize(sim: dict[str, Any], src: Source, ppm: float, jitter_ms: float, at_s: float) -> dict[str, Any]:
    """The figures of one case at one checkpoint, in ms (skew error in ppm)."""
    end = int(round(at_s * NS_PER_S / src.period_ns))
    start = end - int(round(WINDOW_S * NS_PER_S / src.period_ns))
    from_i = int(round(RUN_MAX_FROM_S * NS_PER_S / src.period_ns))
    edge = sim["edge_err"][start:end] / 1e6
    naive = sim["naive_err"][start:end] / 1e6
    e, a = percentiles(np.abs(edge)), percentiles(np.abs(naive))
    run_max = float(np.abs(sim["edge_err"][from_i:end]).max() / 1e6) if end > from_i else e["max"]
    return {
        "source": src.name,
        "ppm": ppm,
        "jitter_ms": jitter_ms,
        "seconds": at_s,
        "edge_ms": e,
        "edge_bias_ms": float(edge.mean()),
        "edge_run_max_ms": run_max,
        "arrival_ms": a,
        "p99_ratio": a["p99"] / e["p99"] if e["p99"] > 0 else float("inf"),
        "skew_error_ppm": sim["skew_ppm"][at_s] - ppm,
    }


def fmt_dur(s: float) -> str:
    return f"{s / 3600:g} h" if s >= 3600 else f"{s:g} s"


def markdown(rows: Sequence[dict[str, Any]]) -> str:
    head = ("| source | skew ppm | jitter ms | after | edge p50 | edge p99 | edge max | edge bias "
            "| edge run max | arrival p50 | arrival p99 | arrival max | p99 arrival/edge | skew err ppm |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        e, a = r["edge_ms"], r["arrival_ms"]
        lines.append(
            f"| {r['source']} | {r['ppm']:g} | {r['jitter_ms']:g} | {fmt_dur(r['seconds'])} "
            f"| {e['p50']:.3f} | {e['p99']:.3f} | {e['max']:.3f} | {r['edge_bias_ms']:+.3f} "
            f"| {r['edge_run_max_ms']:.3f} | {a['p50']:.2f} | {a['p99']:.2f} | {a['max']:.1f} "
            f"| {r['p99_ratio']:.1f} | {r['skew_error_ppm']:+.2f} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--out-dir", type=Path, default=RESULTS)
    ap.add_argument("--quick", action="store_true", help="stop at 60 s of capture (no 1 h runs)")
    args = ap.parse_args(argv)
    seconds = 60.0 if args.quick else max(CHECKPOINTS_S)

    cases = [(MIC, ppm, j) for ppm in PPMS for j in JITTERS_MS]
    cases += [(CAMERA, CAMERA_PPM, j) for j in JITTERS_MS]
    rows: list[dict[str, Any]] = []
    runs: list[dict[str, Any]] = []
    t_all = time.perf_counter()
    for seed, (src, ppm, j) in enumerate(cases, start=1):
        sim = simulate(src, ppm, j, seconds, seed)
        print(f"{src.name} {ppm:g} ppm {j:g} ms: {sim['observations']} observations of "
              f"{fmt_dur(seconds)} in {sim['wall_s']:.1f} s", file=sys.stderr)
        runs.append({"source": src.name, "ppm": ppm, "jitter_ms": j, "seed": seed,
                     "seconds": seconds, "observations": sim["observations"],
                     "wall_s": sim["wall_s"], "resets": sim["resets"]})
        rows += [summarize(sim, src, ppm, j, c) for c in CHECKPOINTS_S if c <= seconds]
    total = time.perf_counter() - t_all

    stalls = [stall_probe(s) for s in (1.5, 2.5, 5.0)]
    for st in stalls:
        print(f"stall {st['stall_s']:g} s: edge max {st['edge_max_ms_30s_after']:.2f} ms, arrival max "
              f"{st['arrival_max_ms_30s_after']:.1f} ms over the 30 s after; resets {st['resets']}",
              file=sys.stderr)
    table = markdown(rows)
    print(table)
    print(f"\nsimulated {sum(r['observations'] for r in runs)} observations in {total:.1f} s")
    write_result("clock", {
        "model": {
            "delay": "Exp(mean=jitter) per item, plus with p=0.002 a stall U(30,150) ms; FIFO delivery",
            "stall_p": STALL_P, "stall_ms": list(STALL_MS), "window_s": WINDOW_S,
            "run_max_from_s": RUN_MAX_FROM_S, "sample_rate": SAMPLE_RATE, "block": BLOCK, "fps": FPS,
            "clock_model": {"bin_s": 1.0, "history_s": 300.0},
        },
        "runs": runs,
        "rows": rows,
        "long_stalls": stalls,
        "total_s": total,
        "table_md": table,
    }, args.out_dir)
    at = 60.0
    groups = {
        f"{r['ppm']:g} ppm / {r['jitter_ms']:g} ms": {
            "edge ClockModel p99": r["edge_ms"]["p99"],
            "arrival stamping p99": r["arrival_ms"]["p99"],
        }
        for r in rows if r["source"] == "mic" and r["seconds"] == at
    }
    bar_chart("clock", "Mic timestamp error p99 after 60 s (16 kHz, 20 ms blocks)", groups,
              "|error| p99 (ms)", args.out_dir, log=True)


if __name__ == "__main__":
    main()
