"""The window join: nearest frames within tolerance, exact sample counts, bounded waits."""

from __future__ import annotations

import numpy as np
import pytest

from edge.join.align import Aligner, WindowSpec, choose_t_end
from edge.timebase.buffers import FrameRing, SampleRing
from edge.timebase.clock import NS_PER_S, ClockModel, FakeClock
from edge.config import parse_config
from edge.join.spine import Spine, replay

MS = 1_000_000
SR = 16000


def spec(frames: int = 8, seconds: float = 2.0) -> WindowSpec:
    return WindowSpec(
        seconds=seconds,
        frames=frames,
        sample_rate=SR,
        max_wait_video_ns=200 * MS,
        max_wait_audio_ns=200 * MS,
        tolerance_ns=int(NS_PER_S / 30 / 2),
    )


def test_t_end_waits_for_the_slower_modality_but_only_up_to_max_wait() -> None:
    now = 10 * NS_PER_S
    # both fresh: the older newest-sample wins
    assert choose_t_end(now, now - 30 * MS, now - 10 * MS, 200 * MS, 200 * MS) == now - 30 * MS
    # video 500 ms late: cut at now - max_wait anyway
    assert choose_t_end(now, now - 500 * MS, now - 10 * MS, 200 * MS, 200 * MS) == now - 200 * MS
    # no audio at all: bounded too
    assert choose_t_end(now, now - 5 * MS, None, 200 * MS, 300 * MS) == now - 300 * MS


def filled(fps: float = 30.0, seconds: float = 5.0, skip: tuple[int, ...] = ()) -> tuple[FrameRing, SampleRing, ClockModel]:
    frames = FrameRing(256, (8, 8, 3))
    for i in range(int(seconds * fps)):
        if i in skip:
            continue
        frames.write(np.full((8, 8, 3), i % 256, np.uint8), t_ns=int(i * NS_PER_S / fps))
    samples = SampleRing(SR * 10)
    model = ClockModel()  # identity: device time is pipeline time
    block = 320
    for n0 in range(0, int(seconds * SR), block):
        samples.write(np.full(block, n0, np.float32), n0=n0)
        end = n0 + block
        model.observe(int(end * NS_PER_S / SR), int(end * NS_PER_S / SR))
    return frames, samples, model


def count_reads(frames: FrameRing) -> list[int]:
    """Every seq read from ``frames`` from now on, in order (the ring still answers)."""
    reads: list[int] = []
    read = frames.read

    def counting(seq: int) -> np.ndarray | None:
        reads.append(seq)
        return read(seq)

    frames.read = counting  # type: ignore[method-assign]
    return reads


def test_window_has_exactly_n_samples_and_nearest_frames() -> None:
    frames, samples, model = filled()
    al = Aligner("s", spec(), frames, samples, model, video_clock=model)
    w = al.cut(now_ns=4 * NS_PER_S, t_end_ns=4 * NS_PER_S)
    assert w.audio is not None and w.audio.shape == (2 * SR, 1)
    assert w.audio_mask.all()
    assert w.audio_n0 == 2 * SR
    assert w.video_mask.all()
    # each chosen frame is the nearest one to its target
    assert np.abs(w.video_t_ns - w.target_t_ns).max() <= NS_PER_S / 30 / 2
    assert w.av_offset_ns is not None and abs(w.av_offset_ns) <= NS_PER_S / 30 / 2


def test_targets_without_a_frame_in_tolerance_are_masked_not_invented() -> None:
    # Drop frames 60..75 (2.0 s .. 2.5 s); the target at 2.25 s has no frame within 16 ms.
    frames, samples, model = filled(skip=tuple(range(60, 76)))
    al = Aligner("s", spec(), frames, samples, model, video_clock=model)
    w = al.cut(now_ns=4 * NS_PER_S, t_end_ns=4 * NS_PER_S)
    missing = ~w.video_mask
    assert missing.sum() == 2
    assert w.video is not None and (w.video[missing] == 0).all()
    assert (w.video_t_ns[missing] == -1).all()


def test_consecutive_windows_share_their_frames_and_copy_each_frame_once() -> None:
    frames, samples, model = filled(fps=16.0)  # a frame every 62.5 ms: targets land on frames
    al = Aligner("s", spec(), frames, samples, model, video_clock=model)
    reads = count_reads(frames)
    a = al.cut(now_ns=3 * NS_PER_S, t_end_ns=3 * NS_PER_S)
    assert len(reads) == 8
    b = al.cut(now_ns=int(3.5 * NS_PER_S), t_end_ns=int(3.5 * NS_PER_S))
    assert len(reads) == 10  # two new frames; six are the previous window's
    assert a.frames is not None and b.frames is not None and a.video_seq is not None
    assert all(x is y for x, y in zip(a.frames[2:], b.frames[:6]))
    assert a.video is not None and b.video is not None
    np.testing.assert_array_equal(a.video[2:], b.video[:6])
    # a frame is a copy, read-only: neither the ring's writer nor a consumer can change it
    kept = int(a.video_seq[-1])
    for i in range(300):
        frames.write(np.full((8, 8, 3), 255, np.uint8), t_ns=int((5 + i / 16) * NS_PER_S))
    assert frames.read(kept) is None and (a.frames[-1] == kept % 256).all()
    with pytest.raises(ValueError, match="read-only"):
        a.frames[-1][0, 0, 0] = 1  # type: ignore[index]


def test_a_frame_two_targets_pick_is_copied_once() -> None:
    frames, samples, model = filled(fps=3.0)  # a slow camera: 8 targets over 2 s, 6 frames
    spec_slow = WindowSpec(2.0, 8, SR, 200 * MS, 200 * MS, tolerance_ns=NS_PER_S // 4)
    al = Aligner("s", spec_slow, frames, samples, model, video_clock=model)
    reads = count_reads(frames)
    w = al.cut(now_ns=4 * NS_PER_S, t_end_ns=4 * NS_PER_S)
    assert w.video_seq is not None and w.frames is not None
    seqs = w.video_seq[w.video_mask].tolist()
    assert len(set(seqs)) < len(seqs)  # some frame stands for two targets
    assert sorted(reads) == sorted(set(seqs))
    for a in range(8):
        for b in range(8):
            if w.video_mask[a] and w.video_mask[b] and w.video_seq[a] == w.video_seq[b]:
                assert w.frames[a] is w.frames[b]


def test_a_masked_window_holds_blank_video() -> None:
    frames, samples, model = filled()
    w = Aligner("s", spec(), frames, samples, model, video_clock=model).cut(
        now_ns=4 * NS_PER_S, t_end_ns=4 * NS_PER_S)
    assert w.video is not None and w.video.any()
    w.mask_video()
    assert not w.video_mask.any() and w.newest_frame() is None
    assert w.video is not None and w.video.shape == (8, 8, 8, 3) and not w.video.any()


def test_late_video_is_masked_after_max_wait_and_audio_is_kept() -> None:
    frames, samples, model = filled(seconds=3.0)
    # Audio keeps coming until 6 s; video stopped at 3 s.
    block = 320
    for n0 in range(3 * SR, 6 * SR, block):
        samples.write(np.zeros(block, np.float32), n0=n0)
        model.observe(int((n0 + block) * NS_PER_S / SR), int((n0 + block) * NS_PER_S / SR))
    al = Aligner("s", spec(), frames, samples, model, video_clock=model)
    now = 6 * NS_PER_S
    w = al.cut(now_ns=now)
    assert w.t_end_ns == now - 200 * MS  # did not wait for video beyond max_wait
    assert not w.video_mask.any()
    assert w.audio_mask.all()
    assert w.video_age_ns is not None and w.video_age_ns >= 2 * NS_PER_S


def test_audio_gap_shows_in_the_mask() -> None:
    frames, samples, model = filled()
    al = Aligner("s", spec(), frames, samples, model, video_clock=model)
    samples.write(np.zeros(320, np.float32), n0=samples.end + 1600)  # 100 ms lost
    assert model  # clock model still maps
    w = al.cut(now_ns=5 * NS_PER_S + 200 * MS, t_end_ns=5 * NS_PER_S + 100 * MS)
    assert w.audio_mask.size == 2 * SR
    assert 0 < (~w.audio_mask).sum() <= 1600 + 320


DEMO = """
sources:
  test: {type: synthetic, width: 64, height: 48, fps: 30, sample_rate: 16000,
         skew_ppm: 120, jitter_ms: 2, seed: 4}
streams:
  s: {video: test, audio: test}
window: {seconds: 1.0, frames: 5, hop: 0.25}
"""


def test_synthetic_stream_on_a_fake_clock_gives_full_windows_in_sync() -> None:
    clock = FakeClock(1_000 * NS_PER_S)
    spine = Spine(parse_config(DEMO), clock)
    src = spine.sources["test"]
    windows = []
    replay(src, spine, clock, lambda ws: windows.extend(ws), max_seconds=30)  # type: ignore[arg-type]
    assert len(windows) == 30 * 4
    late = windows[20:]  # after the first 5 s the clock model has converged
    assert all(w.audio_mask.all() and w.video_mask.all() for w in late)
    assert all(w.audio is not None and len(w.audio) == 16000 for w in windows)
    offsets = np.array([w.av_offset_ns for w in late], dtype=float)
    assert np.abs(offsets).max() <= NS_PER_S / 30 / 2
    fit = src.audio_clock.fit()  # type: ignore[union-attr]
    assert fit.skew_ppm == pytest.approx(120, abs=15)


def test_longer_audio_span_ends_with_the_frames() -> None:
    frames, samples, model = filled(seconds=8.0)
    s = WindowSpec(
        seconds=2.0,
        frames=8,
        sample_rate=SR,
        max_wait_video_ns=200 * MS,
        max_wait_audio_ns=200 * MS,
        tolerance_ns=int(NS_PER_S / 30 / 2),
        audio_seconds=6.0,
    )
    al = Aligner("s", s, frames, samples, model, video_clock=model)
    w = al.cut(now_ns=7 * NS_PER_S, t_end_ns=7 * NS_PER_S)
    assert w.audio is not None and w.audio.shape == (6 * SR, 1)
    assert w.audio_n0 == 1 * SR  # 6 s of audio before the window end
    assert w.audio_mask.all()
    assert w.t_start_ns == 5 * NS_PER_S  # the frames still span 2 s
    assert w.video_mask.all() and w.target_t_ns[-1] == 7 * NS_PER_S
    # the A/V offset compares each modality with its own start, so it stays zero
    assert w.av_offset_ns is not None and abs(w.av_offset_ns) <= NS_PER_S / 30 / 2
