"""Ring-buffer ingest and window-join cost, as ratios to a raw copy run in the same process.

    python benchmarks/bench_buffers.py --out benchmarks/results/buffers.json

Ingest: writing frames into a FrameRing (claim slot, copy, publish) vs ``np.copyto`` into a
preallocated array of the same shape. Join: cutting one window (T frames + N samples + masks)
vs copying the same T frames and N samples with ``np.copyto``. Runs alternate A/B in rounds and
report medians, so machine noise hits both sides alike.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from edge.align import Aligner, WindowSpec
from edge.buffers import FrameRing, SampleRing
from edge.clock import NS_PER_S, ClockModel


def per_call_s(fn: Callable[[], None], calls: int) -> float:
    t0 = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - t0) / calls


def ab(a: Callable[[], None], b: Callable[[], None], calls: int, rounds: int) -> tuple[float, float]:
    """Median seconds per call of ``a`` and ``b``, measured alternately."""
    ta, tb = [], []
    a(), b()  # warm caches and page tables
    for _ in range(rounds):
        ta.append(per_call_s(a, calls))
        tb.append(per_call_s(b, calls))
    return float(np.median(ta)), float(np.median(tb))


def bench_ingest(h: int, w: int, rounds: int) -> dict[str, float]:
    capacity = 32
    ring = FrameRing(capacity, (h, w, 3))
    raw = np.zeros((capacity, h, w, 3), np.uint8)
    src = [np.random.default_rng(i).integers(0, 255, (h, w, 3), np.uint8) for i in range(4)]
    state = {"i": 0, "t": 0}

    def into_ring() -> None:
        i = state["i"]
        ring.write(src[i & 3], state["t"])
        state["i"] = i + 1
        state["t"] += 33_333_333

    def raw_copy() -> None:
        i = state["i"]
        np.copyto(raw[i % capacity], src[i & 3])
        state["i"] = i + 1

    calls = max(20, int(2e8 / (h * w * 3)))
    t_ring, t_raw = ab(into_ring, raw_copy, calls, rounds)
    return {"ring_ms": t_ring * 1e3, "raw_copy_ms": t_raw * 1e3, "ratio": t_ring / t_raw}


def bench_join(h: int, w: int, frames: int, rounds: int) -> dict[str, float]:
    fps, sr, seconds = 30.0, 16000, 2.0
    ring = FrameRing(int(4 * fps), (h, w, 3))
    samples = SampleRing(10 * sr)
    clock = ClockModel()
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (h, w, 3), np.uint8)
    for i in range(int(4 * fps)):
        ring.write(img, int(i * NS_PER_S / fps))
    for n0 in range(0, 4 * sr, 320):
        samples.write(rng.standard_normal(320).astype(np.float32), n0=n0)
        end_ns = int((n0 + 320) * NS_PER_S / sr)
        clock.observe(end_ns, end_ns)
    spec = WindowSpec(seconds, frames, sr, 250_000_000, 250_000_000, int(NS_PER_S / fps / 2))
    aligner = Aligner("s", spec, ring, samples, clock, video_clock=clock, reuse_buffers=True)
    now = int(3.9 * NS_PER_S)
    out_v = np.zeros((frames, h, w, 3), np.uint8)
    out_a = np.zeros((spec.samples, 1), np.float32)
    seqs = [int(i * fps * seconds / frames) for i in range(frames)]

    def join() -> None:
        aligner.cut(now)

    def raw_copy() -> None:
        for k, s in enumerate(seqs):
            np.copyto(out_v[k], ring._frames[s % ring.capacity])
        np.copyto(out_a, samples._buf[: spec.samples])

    t_join, t_raw = ab(join, raw_copy, 50, rounds)
    return {"join_ms": t_join * 1e3, "raw_copy_ms": t_raw * 1e3, "ratio": t_join / t_raw}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--out", default="benchmarks/results/buffers.json")
    p.add_argument("--rounds", type=int, default=15)
    args = p.parse_args()
    results: dict[str, object] = {
        "machine": {"python": platform.python_version(), "numpy": np.__version__, "cpu": platform.processor() or platform.machine()},
        "ingest": {
            "640x480": bench_ingest(480, 640, args.rounds),
            "1920x1080": bench_ingest(1080, 1920, args.rounds),
        },
        "join_30fps_16khz_2s_8frames": {
            "ring 640x480": bench_join(480, 640, 8, args.rounds),
            "ring 224x224": bench_join(224, 224, 8, args.rounds),
            "ring 112x112": bench_join(112, 112, 8, args.rounds),
        },
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    for group, rows in results.items():
        if group == "machine":
            continue
        print(group)
        assert isinstance(rows, dict)
        for name, r in rows.items():
            cells = "  ".join(f"{k} {v:.4f}" for k, v in r.items())
            print(f"  {name:<12} {cells}")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
