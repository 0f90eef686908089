"""Ring-buffer ingest and window-read cost, as ratios to a raw copy run in the same process.

    python benchmarks/bench_buffers.py [--rounds N] [--out-dir DIR]

Writes ``buffers.json`` and ``buffers.png`` (ratios to the raw copy, log scale) through
``benchmarks/common.py``. Every case alternates with its baseline in rounds
(``common.alternate``) and the figures are medians, so machine noise hits all sides alike.

* **Video ingest** — writing one frame into a :class:`edge.timebase.buffers.FrameRing` (claim slot,
  copy, publish) vs appending a copy of it to a ``collections.deque(maxlen=capacity)`` vs the
  baseline, ``np.copyto`` into a preallocated array of the same shape (goal: FrameRing <= 1.2x).
* **Audio ingest** — one 20 ms microphone block (320 float32 samples at 16 kHz) into a
  :class:`edge.timebase.buffers.SampleRing` (``write(block, n0)``, as the microphone callback calls it)
  vs ``numpy_ringbuffer.RingBuffer.extend`` (an external package) vs appending a copy of the
  block to a ``deque`` of arrays (maxlen = capacity in blocks) vs the baseline, ``np.copyto`` of
  the block into a preallocated array at a cursor. All hold 10 s (the microphone's default
  ``buffer_seconds``) and are full, so every write overwrites the oldest audio.
* **Audio window read** — the last 2 s (32000 samples) out of the same rings:
  ``SampleRing.read(n0, n)`` (a fresh array and validity mask, as ``Aligner.cut`` calls it);
  numpy_ringbuffer's ``rb[-n:]`` (its ``__getitem__`` unwraps the whole buffer for a slice) and
  ``rb[idx]`` with an index array (its fancy-index path: only the window, but through a
  modulo of every index);
  ``np.concatenate`` of the deque's last 100 blocks; baseline: ``np.copyto`` of 32000
  contiguous samples into a preallocated array. The reads are checked (untimed) to give the same
  samples.
* **Window join** — cutting one window (T frames + N samples + masks) with
  :class:`edge.join.align.Aligner` vs copying the same T frames and N samples with ``np.copyto``:
  a stream's first window (every frame copied) and the steady state (consecutive windows a
  0.5 s hop apart share 6 of 8 frames; only the 2 new ones are copied).
"""

from __future__ import annotations

import argparse
import sys
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from numpy_ringbuffer import RingBuffer  # type: ignore[import-untyped]

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, alternate, bar_chart, write_result  # noqa: E402

from edge.join.align import Aligner, WindowSpec  # noqa: E402
from edge.timebase.buffers import FrameRing, SampleRing  # noqa: E402
from edge.timebase.clock import NS_PER_S, ClockModel  # noqa: E402

SR = 16000
BLOCK = 320  # 20 ms at 16 kHz
AUDIO_CAPACITY_S = 10  # the microphone's default buffer_seconds
WINDOW_S = 2.0
GOAL_VIDEO_RATIO = 1.2


def _ms(times: dict[str, float]) -> dict[str, float]:
    return {k: v * 1e3 for k, v in times.items()}


def bench_ingest(h: int, w: int, rounds: int) -> dict[str, float]:
    capacity = 32
    ring = FrameRing(capacity, (h, w, 3))
    frames: deque[np.ndarray] = deque(maxlen=capacity)
    raw = np.zeros((capacity, h, w, 3), np.uint8)
    src = [np.random.default_rng(i).integers(0, 255, (h, w, 3), np.uint8) for i in range(4)]
    n = {"ring": 0, "deque": 0, "raw": 0}
    for i in range(capacity):  # all full: every write evicts the oldest frame
        ring.write(src[i & 3], i * 33_333_333)
        frames.append(src[i & 3].copy())

    def into_ring() -> None:
        i = n["ring"]
        ring.write(src[i & 3], (capacity + i) * 33_333_333)
        n["ring"] = i + 1

    def into_deque() -> None:
        i = n["deque"]
        frames.append(src[i & 3].copy())
        n["deque"] = i + 1

    def raw_copy() -> None:
        i = n["raw"]
        np.copyto(raw[i % capacity], src[i & 3])
        n["raw"] = i + 1

    calls = max(20, int(2e8 / (h * w * 3)))
    t = _ms(alternate({"ring": into_ring, "deque": into_deque, "raw": raw_copy}, calls, rounds))
    return {
        "ring_ms": t["ring"], "deque_ms": t["deque"], "raw_copy_ms": t["raw"],
        "ratio": t["ring"] / t["raw"], "deque_ratio": t["deque"] / t["raw"],
    }


def bench_audio(rounds: int) -> dict[str, Any]:
    capacity = AUDIO_CAPACITY_S * SR
    n_win = int(WINDOW_S * SR)
    rng = np.random.default_rng(0)
    blocks = [(0.1 * rng.standard_normal((BLOCK, 1))).astype(np.float32) for _ in range(8)]
    ring = SampleRing(capacity)
    rb = RingBuffer(capacity, dtype=np.float32)
    dq: deque[np.ndarray] = deque(maxlen=capacity // BLOCK)
    raw = np.zeros(capacity, np.float32)
    out = np.zeros(n_win, np.float32)
    n = {"ring": 0, "rb": 0, "deque": 0, "raw": 0}  # blocks written by each

    def into_ring() -> None:
        i = n["ring"]
        ring.write(blocks[i & 7], i * BLOCK)  # indata is [320, 1], as the microphone gives it
        n["ring"] = i + 1

    def into_rb() -> None:
        i = n["rb"]
        rb.extend(blocks[i & 7][:, 0])
        n["rb"] = i + 1

    def into_deque() -> None:
        i = n["deque"]
        dq.append(blocks[i & 7][:, 0].copy())  # the callback's buffer is reused: keep a copy
        n["deque"] = i + 1

    def raw_write() -> None:
        i = n["raw"]
        j = i * BLOCK % capacity
        np.copyto(raw[j : j + BLOCK], blocks[i & 7][:, 0])
        n["raw"] = i + 1

    writers = {"edge": into_ring, "numpy_ringbuffer": into_rb, "deque": into_deque, "raw": raw_write}
    for _ in range(capacity // BLOCK):  # fill: from here on every write overwrites
        for f in writers.values():
            f()
    ingest = _ms(alternate(writers, 2000, rounds))

    # The reads run on full rings that all hold the same samples, the newest ending at the end
    # of the raw array (so its window is contiguous there).
    while n["raw"] % (capacity // BLOCK):
        for f in writers.values():
            f()
    if not n["ring"] == n["rb"] == n["deque"] == n["raw"]:
        raise RuntimeError(f"writers out of step: {n}")
    idx = np.arange(capacity - n_win, capacity)
    k = n_win // BLOCK
    end = n["raw"] * BLOCK % capacity
    j = (end - n_win) % capacity

    def raw_read() -> np.ndarray:
        np.copyto(out, raw[j : j + n_win])  # the window lies contiguous here (not wrapped)
        return out

    readers: dict[str, Callable[[], np.ndarray]] = {
        "edge": lambda: ring.read(ring.end - n_win, n_win)[0],
        "numpy_ringbuffer rb[-n:]": lambda: rb[-n_win:],
        "numpy_ringbuffer rb[idx]": lambda: rb[idx],
        "deque": lambda: np.concatenate(list(dq)[-k:]),
        "raw": raw_read,
    }
    if j + n_win > capacity:
        raise RuntimeError("the raw baseline's window wraps; change the fill")
    want = raw_read().copy()
    same = {name: bool(np.array_equal(np.ravel(f()), want)) for name, f in readers.items()}
    if not all(same.values()):
        raise RuntimeError(f"window reads disagree: {same}")
    read = _ms(alternate(readers, 200, rounds))
    hop_blocks = int(0.5 * SR) // BLOCK
    return {
        "capacity_s": AUDIO_CAPACITY_S, "block": BLOCK, "window_samples": n_win,
        "ingest_ms_per_block": ingest,
        "ingest_ratio_to_raw": {m: v / ingest["raw"] for m, v in ingest.items() if m != "raw"},
        "read_ms_per_window": read,
        "read_ratio_to_raw": {m: v / read["raw"] for m, v in read.items() if m != "raw"},
        # Derived from the medians above: one 0.5 s hop = 25 blocks in + one window out.
        "per_0.5s_hop_ms": {
            m: hop_blocks * ingest[m.split()[0]] + read[m] for m in read
        },
    }


def bench_join(h: int, w: int, frames: int, rounds: int) -> dict[str, float]:
    fps, sr, seconds = 30.0, SR, WINDOW_S
    ring = FrameRing(int(4 * fps), (h, w, 3))
    samples = SampleRing(10 * sr)
    clock = ClockModel()
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (h, w, 3), np.uint8)
    for i in range(int(4 * fps)):
        ring.write(img, int(i * NS_PER_S / fps))
    for n0 in range(0, 4 * sr, BLOCK):
        samples.write(rng.standard_normal(BLOCK).astype(np.float32), n0=n0)
        end_ns = int((n0 + BLOCK) * NS_PER_S / sr)
        clock.observe(end_ns, end_ns)
    spec = WindowSpec(seconds, frames, sr, 250_000_000, 250_000_000, int(NS_PER_S / fps / 2))
    aligner = Aligner("s", spec, ring, samples, clock, video_clock=clock)
    now = int(3.9 * NS_PER_S)
    hops = [now - NS_PER_S // 2, now]
    turn = [0]
    out_v = np.zeros((frames, h, w, 3), np.uint8)
    out_a = np.zeros((spec.samples, 1), np.float32)
    seqs = [int(i * fps * seconds / frames) for i in range(frames)]

    def first() -> None:  # a fresh aligner holds no frames yet
        Aligner("s", spec, ring, samples, clock, video_clock=clock).cut(now)

    def hop() -> None:  # two windows 0.5 s apart in turn: each cut has 2 frames the last lacked
        turn[0] ^= 1
        aligner.cut(hops[turn[0]])

    def raw_copy() -> None:
        for k, s in enumerate(seqs):
            np.copyto(out_v[k], ring._frames[s % ring.capacity])
        np.copyto(out_a, samples._buf[: spec.samples])

    t = _ms(alternate({"first": first, "hop": hop, "raw": raw_copy}, 50, rounds))
    return {"first_window_ms": t["first"], "next_hop_ms": t["hop"], "raw_copy_ms": t["raw"],
            "first_ratio": t["first"] / t["raw"], "hop_ratio": t["hop"] / t["raw"]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=15)
    p.add_argument("--out-dir", type=Path, default=RESULTS)
    args = p.parse_args()
    out_dir: Path = args.out_dir
    ingest = {
        "640x480": bench_ingest(480, 640, args.rounds),
        "1920x1080": bench_ingest(1080, 1920, args.rounds),
    }
    audio = bench_audio(args.rounds)
    join = {
        "ring 640x480": bench_join(480, 640, 8, args.rounds),
        "ring 224x224": bench_join(224, 224, 8, args.rounds),
        "ring 112x112": bench_join(112, 112, 8, args.rounds),
    }
    write_result("buffers", {
        "rounds": args.rounds,
        "goal": {
            "video_ingest_ratio_at_most": GOAL_VIDEO_RATIO,
            "met_640x480": ingest["640x480"]["ratio"] <= GOAL_VIDEO_RATIO,
            "met_1920x1080": ingest["1920x1080"]["ratio"] <= GOAL_VIDEO_RATIO,
        },
        "ingest": ingest,
        "audio_16khz_20ms_blocks_2s_window": audio,
        "join_30fps_16khz_2s_8frames": join,
    }, out_dir)
    groups: dict[str, dict[str, float]] = {}
    for size, r in ingest.items():
        groups[f"frame in {size}"] = {"edge": r["ratio"], "deque": r["deque_ratio"]}
    groups["20 ms audio in"] = {
        "edge": audio["ingest_ratio_to_raw"]["edge"],
        "numpy_ringbuffer": audio["ingest_ratio_to_raw"]["numpy_ringbuffer"],
        "deque": audio["ingest_ratio_to_raw"]["deque"],
    }
    groups["2 s audio out"] = dict(audio["read_ratio_to_raw"])
    for name, r in join.items():
        groups[f"join {name.split()[-1]}"] = {"edge, first window": r["first_ratio"],
                                              "edge, next hop": r["hop_ratio"]}
    bar_chart("buffers", "Ring buffers: time / raw np.copyto in the same process (median)",
              groups, "ratio to raw copy (log)", out_dir, log=True, line=1.0)

    print("video ingest, ms per frame")
    for size, r in ingest.items():
        print(f"  {size:<10} FrameRing {r['ring_ms']:.4f} ({r['ratio']:.2f}x)  deque "
              f"{r['deque_ms']:.4f} ({r['deque_ratio']:.2f}x)  raw copy {r['raw_copy_ms']:.4f}")
    print("audio, ms per 20 ms block in / per 2 s window out (ratio to raw copy)")
    for kind, key, ratio in (("in ", "ingest_ms_per_block", "ingest_ratio_to_raw"),
                             ("out", "read_ms_per_window", "read_ratio_to_raw")):
        cells = "  ".join(f"{m} {v:.4f}" + (f" ({audio[ratio][m]:.2f}x)" if m != "raw" else "")
                          for m, v in audio[key].items())
        print(f"  {kind} {cells}")
    print("window join 30 fps, 16 kHz, 2 s, 8 frames, ms")
    for name, r in join.items():
        print(f"  {name:<13} first window {r['first_window_ms']:.4f} ({r['first_ratio']:.2f}x)"
              f"  next hop {r['next_hop_ms']:.4f} ({r['hop_ratio']:.2f}x)"
              f"  raw copy {r['raw_copy_ms']:.4f}")


if __name__ == "__main__":
    main()
