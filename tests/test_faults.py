"""Faults the pipeline must ride out: a camera that never answers, an engine slower than the
hop, and hours of running without growing. Each keeps predictions coming and reports itself."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edge.timebase.clock import NS_PER_S, FakeClock, MonotonicClock
from edge.config import parse_config
from edge.join.spine import replay
from edge.service.run import Runner
from edge.service.daemon import Service
from tests.conftest import run_live

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "engines" / "driver-av.int8.onnx"
RULES = (ROOT / "configs" / "demo.yaml").read_text().split("decisions:")[1]


def test_a_camera_never_reachable_at_start_leaves_predictions_flowing_and_reports_lost() -> None:
    cfg = parse_config(f"""
sources:
  cam: {{type: camera, device: "http://127.0.0.1:1/cam.mjpg", width: 320, height: 240, fps: 15,
         open_timeout: 0.5, backoff_initial: 0.2, backoff_max: 1.0}}
  mic: {{type: scenario, scenario: driver, seconds: 30, width: 32, height: 24, fps: 5}}
streams:
  cabin: {{video: cam, audio: mic}}
window: {{seconds: 2.0, frames: 8, hop: 0.5}}
model: {{path: "{MODEL}"}}
health: {{horizon: 2.0}}
decisions:{RULES}""")
    runner = Runner(cfg, MonotonicClock())
    service = run_live(runner, 8.0)
    h = service.healthz()
    assert runner.spine.ticks >= 14  # 8 s at a 0.5 s hop: the dead camera blocks nothing
    assert h["sources"]["cam"]["health"] == "lost" and h["sources"]["mic"]["health"] == "ok"
    assert h["sources"]["cam"]["reconnects"] >= 2 and h["sources"]["cam"]["last_error"]
    assert h["status"] == "lost"


class SlowEngine:
    """An engine three hops slow: wraps the real one and sleeps."""

    def __init__(self, inner: Any, delay_s: float) -> None:
        self.inner, self.delay_s = inner, delay_s
        self.card, self.max_batch, self.type_key = inner.card, inner.max_batch, "slow"
        self.calls = 0

    def infer(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        self.calls += 1
        time.sleep(self.delay_s)
        return self.inner.infer(batch)  # type: ignore[no-any-return]

    def describe(self) -> dict[str, Any]:
        return {"type": "slow"}


def test_an_engine_three_times_slower_than_the_hop_skips_ticks_never_queues() -> None:
    from edge.runtime.card import load_card
    from edge.runtime.base import load_engine

    card = load_card(ROOT / "engines" / "driver-av.yaml")
    slow = SlowEngine(load_engine("onnx", MODEL, card), 0.75)  # hop 0.25 s
    cfg = parse_config("""
sources:
  sim: {type: scenario, scenario: driver, seconds: 30, width: 160, height: 120, fps: 15}
streams:
  cabin: {video: sim, audio: sim}
window: {seconds: 2.0, frames: 8, hop: 0.25, budget: 0.5}
""")
    runner = Runner(cfg, MonotonicClock(), engine=slow)  # type: ignore[arg-type]
    service = run_live(runner, 9.0)
    spine = runner.spine
    # about one engine call per 0.75 s; the other ticks were skipped, and counted
    assert 9 <= slow.calls <= 13
    assert spine.skipped_ticks >= 2 * slow.calls - 4
    ages = [s for s in service.metrics.data_age.collect()[0].samples if s.name.endswith("_sum")]
    counts = [s for s in service.metrics.data_age.collect()[0].samples if s.name.endswith("_count")]
    mean_age = sum(s.value for s in ages) / sum(s.value for s in counts)
    # data age stays the engine time plus the join's wait, not a growing backlog
    assert mean_age < 0.75 + 0.5
    # every prediction missed the 0.5 s budget (the engine alone takes 0.75 s), and is counted;
    # no window was already too old at its tick: late ticks were skipped before the cut
    assert service.over_budget == slow.calls
    assert service.late_windows == 0
    assert service.healthz()["budget"] == {"late_windows": 0, "over_budget": slow.calls}


def rss_kb() -> int:
    """Resident memory after a collection and a malloc_trim: memory in use, not what glibc
    keeps cached in its arenas (which comes and goes with allocation sizes)."""
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


@pytest.mark.slow
def test_thirty_simulated_minutes_at_30_fps_and_16_khz_do_not_grow() -> None:
    cfg = parse_config(f"""
sources:
  test: {{type: synthetic, width: 640, height: 480, fps: 30, sample_rate: 16000, skew_ppm: 150,
          jitter_ms: 3}}
streams:
  cabin: {{video: test, audio: test}}
window: {{seconds: 2.0, frames: 8, hop: 0.5}}
model: {{path: "{MODEL}"}}
decisions:{RULES}""")
    clock = FakeClock(1_000 * NS_PER_S)
    runner = Runner(cfg, clock)
    service = Service(runner)
    src = runner.spine.sources["test"]
    marks: dict[int, int] = {}

    def on_windows(ws: list[Any]) -> None:
        service.on_windows(ws)
        t = runner.spine.ticks
        if t in (600, 3600):  # after 5 minutes (warm) and at 30 minutes
            marks[t] = rss_kb()

    replay(src, runner.spine, clock, on_windows, max_seconds=1800)  # type: ignore[arg-type]
    assert runner.spine.ticks >= 3599
    growth_mb = (marks[3600] - marks[600]) / 1024
    print(f"RSS growth from minute 5 to minute 30: {growth_mb:.2f} MB")
    assert growth_mb < 5.0, f"RSS grew {growth_mb:.1f} MB from minute 5 to minute 30"
    # the bounded per-stream statistics and per-rule state did not grow either
    st = runner.spine.stream_stats["cabin"]
    assert len(st.av_offset_ns) <= 4096 and len(runner.infer_ns) <= 4096


class CountingEngine:
    """Counts calls and batch sizes; a fixed batch limit can be imposed."""

    def __init__(self, inner: Any, limit: int | None) -> None:
        self.inner, self.card, self.max_batch, self.type_key = inner, inner.card, limit, "count"
        self.batches: list[int] = []

    def infer(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        self.batches.append(len(next(iter(batch.values()))))
        return self.inner.infer(batch)  # type: ignore[no-any-return]


@pytest.mark.parametrize(("limit", "calls_per_tick"), [(None, 1), (1, 3)])
def test_three_streams_share_one_engine_call_per_tick_unless_the_engine_takes_one(
    limit: int | None, calls_per_tick: int
) -> None:
    from edge.runtime.card import load_card
    from edge.runtime.base import load_engine

    card = load_card(ROOT / "engines" / "driver-av.yaml")
    eng = CountingEngine(load_engine("onnx", MODEL, card), limit)
    cams = "\n".join(
        f"  cam{i}: {{type: scenario, scenario: driver, seed: {i}, seconds: 8, width: 160,"
        f" height: 120, fps: 10, loop: false}}" for i in range(3))
    streams = "\n".join(f"  s{i}: {{video: cam{i}, audio: cam{i}}}" for i in range(3))
    cfg = parse_config(f"sources:\n{cams}\nstreams:\n{streams}\n"
                       "window: {seconds: 2.0, frames: 8, hop: 0.5}\n")
    clock = FakeClock(100 * NS_PER_S)
    runner = Runner(cfg, clock, engine=eng)  # type: ignore[arg-type]
    preds: list[Any] = []
    ticks = 0

    def on_windows(ws: list[Any]) -> None:
        nonlocal ticks
        ticks += 1
        preds.extend(runner.process(ws))

    # three sources on one fake clock: each item goes in when its device time comes, every
    # tick is cut once all items due by then are in (as edge.join.spine.replay does for one)
    srcs = list(runner.spine.sources.values())
    heads: list[Any] = []
    origins: list[int] = []
    for src in srcs:
        src.open()  # type: ignore[attr-defined]
        heads.append(src.next_item())  # type: ignore[attr-defined]
        origins.append(src.device_due_ns(heads[-1]))  # type: ignore[attr-defined]
    start = clock.now_ns()
    for k in range(1, 13):
        t = start + k * runner.spine.hop_ns
        for i, src in enumerate(srcs):
            while heads[i] is not None:
                due = start + src.device_due_ns(heads[i]) - origins[i]  # type: ignore[attr-defined]
                if due > t:
                    break
                clock.sleep_until(due)
                src.write_item(heads[i], due)  # type: ignore[attr-defined]
                heads[i] = src.next_item()  # type: ignore[attr-defined]
        clock.sleep_until(t)
        on_windows(runner.spine.tick(t))
    assert ticks == 12 and len(preds) == 36
    assert {p.stream for p in preds} == {"s0", "s1", "s2"}
    assert len(eng.batches) == 12 * calls_per_tick
    assert set(eng.batches) == ({3} if limit is None else {1})
    # each stream has its own rings and clock models
    al = runner.spine.aligners
    assert len({id(a.samples) for a in al.values()}) == 3
    assert len({id(a.audio_clock) for a in al.values()}) == 3
