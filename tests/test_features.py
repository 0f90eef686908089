"""Features: log-mel parity with librosa, a pinned golden vector, streaming == batch (also across
gaps and evictions), and frame preprocessing shapes, colour order and normalisation."""

from __future__ import annotations

from itertools import product
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.join.align import Window
from edge.timebase.buffers import SampleRing
from edge.runtime.card import load_card
from edge.timebase.clock import NS_PER_S, FakeClock
from edge.config import parse_config
from edge.errors import EngineError
from edge.features.frames import VideoSpec, block_factor, preprocess_frames
from edge.features.logmel import (
    LogMelSpec,
    StreamingLogMel,
    frame_mask,
    log_mel,
    mel_filterbank,
)
from edge.join.spine import replay
from edge.service.run import Runner

SR = 16000
SPEC = LogMelSpec()
# Parity budget against librosa in the log domain; measured ~1e-6 (float32 rounding only).
LIBROSA_ATOL = 1e-3


def sine_and_chirp(seconds: float = 1.0) -> np.ndarray:
    """0.5 * 1 kHz sine + 0.25 * linear chirp 100 Hz -> 4 kHz over 1 s (float64)."""
    t = np.arange(int(seconds * SR)) / SR
    return 0.5 * np.sin(2 * np.pi * 1000 * t) + 0.25 * np.sin(2 * np.pi * (100 * t + 1950 * t**2))


def librosa_log_mel(y: np.ndarray, spec: LogMelSpec) -> np.ndarray:
    librosa = pytest.importorskip("librosa")
    mel = librosa.feature.melspectrogram(
        y=y, sr=spec.sample_rate, n_fft=spec.n_fft, hop_length=spec.hop_length,
        win_length=spec.win_length, window="hann", center=False, power=2.0,
        n_mels=spec.n_mels, fmin=spec.fmin, fmax=spec.f_max, htk=False, norm="slaney",
    )
    return np.asarray(np.log(mel + spec.log_offset))


# -- log-mel definition ----------------------------------------------------------------
@pytest.mark.parametrize(
    "spec",
    [SPEC, LogMelSpec(n_fft=1024, win_length=1024, hop_length=320, n_mels=40, fmin=0, fmax=None)],
    ids=["default", "n_fft1024-fmax_none"],
)
def test_log_mel_matches_librosa_within_1e_3(spec: LogMelSpec) -> None:
    rng = np.random.default_rng(1)
    signals: dict[str, np.ndarray] = {
        "sine_chirp_f32": sine_and_chirp(2.0).astype(np.float32),
        "noise_f64": 0.1 * rng.standard_normal(2 * SR),
        "quiet_f32": (1e-3 * sine_and_chirp(2.0)).astype(np.float32),
    }
    for name, y in signals.items():
        ours, ref = log_mel(y, spec), librosa_log_mel(y, spec)
        assert ours.shape == ref.shape == (spec.n_mels, spec.n_frames(len(y))), name
        assert ours.dtype == np.float32
        assert np.abs(ours - ref).max() <= LIBROSA_ATOL, name


def test_mel_filterbank_matches_librosa_slaney() -> None:
    librosa = pytest.importorskip("librosa")
    ref = librosa.filters.mel(sr=SR, n_fft=512, n_mels=64, fmin=50, fmax=7600, norm="slaney")
    fb = mel_filterbank(SPEC)
    assert fb.shape == (64, 257)
    np.testing.assert_allclose(fb, ref, rtol=1e-5, atol=1e-8)


def test_golden_vector_pins_the_definition() -> None:
    # Values from this implementation, checked against librosa when they were pinned. If this
    # fails, the features changed: every model card trained on the old ones is now wrong.
    m = log_mel(sine_and_chirp(1.0), SPEC)
    assert m.shape == (64, 97)
    pinned = {
        (20, 0): 4.110851,  # the band peaking at 1 kHz: the sine
        (35, 48): 1.841150,  # the band peaking at 2 kHz: the chirp at 0.5 s (~2.03 kHz)
        (34, 48): -2.589716,  # its lower neighbour
        (23, 48): -5.433086,  # 1.1 kHz, the sine's skirt
        (0, 0): 0.651112,  # the lowest band (peak 94 Hz): the chirp starts at 100 Hz
        (12, 70): -11.190775,  # 625 Hz, nothing there but window leakage
    }
    for (band, frame), value in pinned.items():
        assert m[band, frame] == pytest.approx(value, abs=1e-4), (band, frame)
    assert float(m.mean()) == pytest.approx(-10.707921, abs=1e-4)
    assert float(m.std()) == pytest.approx(5.130275, abs=1e-4)
    assert float(log_mel(np.zeros(SPEC.n_fft), SPEC)[0, 0]) == pytest.approx(np.log(1e-6))


def test_frame_count_has_no_centre_padding() -> None:
    assert SPEC.n_frames(2 * SR) == 197  # 2 s window: 1 + (32000 - 512) // 160
    assert SPEC.n_frames(511) == 0 and SPEC.n_frames(512) == 1 and SPEC.n_frames(671) == 1
    assert log_mel(np.zeros(100, np.float32), SPEC).shape == (64, 0)
    # Column k depends only on samples [k*hop, k*hop + n_fft): trailing samples do not matter.
    y = sine_and_chirp(0.5)
    np.testing.assert_array_equal(log_mel(y[:671], SPEC), log_mel(y[:512], SPEC))


def test_audio_must_be_mono_float() -> None:
    with pytest.raises(TypeError, match="float"):
        log_mel(np.zeros(1000, np.int16), SPEC)
    with pytest.raises(ValueError, match="mono"):
        log_mel(np.zeros((1000, 2), np.float32), SPEC)
    assert log_mel(np.zeros((1000, 1), np.float32), SPEC).shape == (64, 4)


def test_spec_from_card_rejects_unknown_keys_and_bad_values() -> None:
    assert LogMelSpec.from_dict(SPEC.to_dict()) == SPEC
    assert LogMelSpec.from_dict({"n_mels": 40, "fmax": None}).f_max == 8000.0
    with pytest.raises(EngineError, match="audio: unknown key.*n_fftt"):
        LogMelSpec.from_dict({"n_fftt": 512})
    with pytest.raises(EngineError, match="fmax"):
        LogMelSpec.from_dict({"fmax": 9000})
    with pytest.raises(EngineError, match="hop_length"):
        LogMelSpec.from_dict({"hop_length": 600})
    assert SPEC.snap(1234) == 1280 and SPEC.snap(1199) == 1120 and SPEC.snap(1200) == 1280


# -- streaming front end ----------------------------------------------------------------
def push_in_random_blocks(s: StreamingLogMel, y: np.ndarray, n0: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    i = 0
    while i < len(y):
        k = int(rng.integers(1, 1500))
        s.push(y[i : i + k], n0 + i)
        i += k


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_streaming_equals_batch_for_random_block_sizes(seed: int) -> None:
    y = np.random.default_rng(seed).uniform(-0.5, 0.5, 3 * SR).astype(np.float32)
    base = 480_000  # absolute sample numbers do not start at zero
    s = StreamingLogMel(SPEC, capacity_frames=400)
    push_in_random_blocks(s, y, base, seed)
    assert s.end == base + len(y)
    for start in (0, 160, 8000, 16000 - 320):
        cols, ok = s.columns(base + start, 2 * SR)
        ref = log_mel(y[start : start + 2 * SR], SPEC)
        np.testing.assert_allclose(cols, ref, atol=1e-5, rtol=0)
        assert ok.all() and cols.shape == (64, 197)
    assert s.recomputed_columns == 0
    assert s.computed_columns == SPEC.n_frames(len(y))


def test_gaps_and_invalid_samples_match_the_sample_ring() -> None:
    # The same blocks go into a SampleRing (what the aligner reads) and the streaming front end:
    # the cached columns must equal log_mel of what the ring returns, masks included.
    rng = np.random.default_rng(3)
    ring, s = SampleRing(5 * SR), StreamingLogMel(SPEC, capacity_frames=500)
    plan = [(0, 4000, True), (4000, 3000, True), (7200, 800, True),  # 200-sample gap
            (8000, 1000, False), (9000, 5000, True), (24000, 10000, True),  # 10000-sample gap
            (34000, 2000, True), (35000, 4000, True)]  # overlap: re-sent samples are trimmed
    for n0, n, valid in plan:
        block = rng.uniform(-0.5, 0.5, n).astype(np.float32)
        ring.write(block, n0=n0, valid=valid)
        s.push(block, n0, valid=valid)
    assert s.gap_samples == 200 + 10000 and s.overlap_samples == 1000
    for n0 in (0, 4800, 16000, 19040):
        audio, mask = ring.read(n0, 2 * SR)
        # The last windows reach past the newest sample (39000): those columns come from the
        # samples handed in, which the ring zeroed and masked.
        cols, ok = s.columns(n0, 2 * SR, audio=audio, audio_mask=mask)
        np.testing.assert_allclose(cols, log_mel(audio[:, 0], SPEC), atol=1e-5, rtol=0)
        np.testing.assert_array_equal(ok, frame_mask(mask, SPEC))
        assert 0 < ok.sum() < len(ok)
    # only columns not complete at 39000 were recomputed; those inside the gap were cached
    pending = sum(k * 160 + 512 > s.end for k0 in (100, 119) for k in range(k0, k0 + 197))
    assert s.recomputed_columns == pending
    # a column touching the 200-sample gap at [7000, 7200) is invalid, one just after it valid
    _, ok = s.columns(0, 2 * SR)
    assert not ok[(7000 - 512) // 160 + 1] and not ok[7199 // 160] and ok[7200 // 160 + 1]


@pytest.mark.parametrize("seed", range(12))
def test_random_gaps_overlaps_and_invalid_blocks_match_the_sample_ring(seed: int) -> None:
    rng = np.random.default_rng(seed)
    ring, s = SampleRing(8 * SR), StreamingLogMel(SPEC, capacity_frames=int(rng.integers(50, 600)))
    n = int(rng.integers(0, 100_000))
    for _ in range(40):
        r = rng.random()
        if r < 0.25:  # a gap or an overlap
            n += int(rng.integers(1, 3000)) if r < 0.15 else -int(rng.integers(1, 800))
        block = rng.uniform(-0.5, 0.5, int(rng.integers(1, 2500))).astype(np.float32)
        valid = bool(rng.random() > 0.1)
        ring.write(block, n0=n, valid=valid)
        s.push(block, n, valid=valid)
        n = max(n + len(block), ring.end)
    assert s.end == ring.end
    for _ in range(5):
        n0 = int(rng.integers(max(0, s.end - 6 * SR), s.end)) // 160 * 160
        audio, mask = ring.read(n0, 2 * SR)
        cols, ok = s.columns(n0, 2 * SR, audio=audio, audio_mask=mask)
        np.testing.assert_allclose(cols, log_mel(audio[:, 0], SPEC), atol=1e-5, rtol=0)
        np.testing.assert_array_equal(ok, frame_mask(mask, SPEC))


def test_per_sample_validity_masks_only_the_columns_that_touch_it() -> None:
    s = StreamingLogMel(SPEC, capacity_frames=300)
    valid = np.ones(2 * SR, bool)
    valid[10_000] = False
    s.push(np.zeros(2 * SR, np.float32), 0, valid=valid)
    _, ok = s.columns(0, 2 * SR)
    bad = np.flatnonzero(~ok)
    assert list(bad) == [k for k in range(197) if k * 160 <= 10_000 < k * 160 + 512]


def test_misaligned_or_evicted_columns_fall_back_to_the_window_samples() -> None:
    y = sine_and_chirp(3.0).astype(np.float32)
    s = StreamingLogMel(SPEC, capacity_frames=100)  # less than a 2 s window
    s.push(y, 0)
    window = y[8000 : 8000 + 2 * SR]
    gone = SPEC.n_frames(len(y)) - 100 - 8000 // 160  # columns evicted from this window
    cols, ok = s.columns(8000, 2 * SR)  # no samples given: evicted columns read as silence
    assert not ok[:gone].any() and ok[gone:].all()
    assert np.all(cols[:, :gone] == np.float32(np.log(SPEC.log_offset)))
    cols, ok = s.columns(8000, 2 * SR, audio=window)
    np.testing.assert_allclose(cols, log_mel(window, SPEC), atol=1e-5, rtol=0)
    assert ok.all() and s.recomputed_columns == gone
    shifted = y[8001 : 8001 + 2 * SR]
    with pytest.raises(ValueError, match="multiple of hop"):
        s.columns(8001, 2 * SR)
    mask = np.ones(2 * SR, bool)
    mask[:10] = False
    cols, ok = s.columns(8001, 2 * SR, audio=shifted, audio_mask=mask)
    np.testing.assert_array_equal(cols, log_mel(shifted, SPEC))
    assert not ok[0] and ok[1:].all()


def test_first_push_off_the_hop_grid_and_a_block_larger_than_the_ring() -> None:
    y = np.random.default_rng(4).uniform(-0.5, 0.5, 5 * SR).astype(np.float32)
    s = StreamingLogMel(SPEC, capacity_frames=250)
    s.push(y[50:], 50)  # samples 0..49 were never pushed: column 0 is invalid
    cols, ok = s.columns(3 * SR - 160 * 50, 2 * SR)
    np.testing.assert_allclose(cols, log_mel(y[3 * SR - 8000 : 5 * SR - 8000], SPEC), atol=1e-5)
    assert ok.all()
    assert s.computed_columns == 250  # only what the ring can hold was computed
    s2 = StreamingLogMel(SPEC, capacity_frames=250)
    s2.push(y[50:1000], 50)
    assert not s2.columns(0, 1000)[1][0]


# -- frames -----------------------------------------------------------------------------
def bgr_frames(t: int = 8, h: int = 480, w: int = 640) -> np.ndarray:
    return np.random.default_rng(5).integers(0, 256, (t, h, w, 3), dtype=np.uint8)


@pytest.mark.parametrize(
    ("spec", "shape"),
    [
        (VideoSpec(height=112, width=112), (8, 3, 112, 112)),
        (VideoSpec(height=96, width=128, channels=1, colour="gray"), (8, 1, 96, 128)),
        (VideoSpec(height=64, width=80, layout="THWC"), (8, 64, 80, 3)),
    ],
)
def test_preprocess_shapes_and_dtype(spec: VideoSpec, shape: tuple[int, ...]) -> None:
    out = preprocess_frames(bgr_frames(), spec)
    assert out.shape == shape == spec.shape(8) and out.dtype == np.float32
    assert 0.0 <= out.min() and out.max() <= 1.0
    again = np.empty(shape, np.float32)
    assert preprocess_frames(bgr_frames(), spec, out=again) is again
    np.testing.assert_array_equal(again, out)


def test_preprocess_converts_bgr_to_rgb_and_normalises_per_channel() -> None:
    frames = np.zeros((2, 48, 64, 3), np.uint8)
    frames[..., 0], frames[..., 1], frames[..., 2] = 10, 128, 250  # B, G, R
    spec = VideoSpec(height=24, width=32, mean=(0.5, 0.4, 0.3), std=(0.2, 0.25, 0.5))
    out = preprocess_frames(frames, spec)
    expect = [(250 / 255 - 0.5) / 0.2, (128 / 255 - 0.4) / 0.25, (10 / 255 - 0.3) / 0.5]
    for c in range(3):
        np.testing.assert_allclose(out[:, c], expect[c], rtol=1e-6, atol=1e-6)
    thwc = preprocess_frames(frames, VideoSpec.from_dict({**spec.to_dict(), "layout": "THWC"}))
    np.testing.assert_array_equal(thwc, out.transpose(0, 2, 3, 1))


def test_preprocess_resizes_with_inter_area_and_gray_is_bt601() -> None:
    frames = bgr_frames(t=2)
    rgb = preprocess_frames(frames, VideoSpec(height=112, width=112))
    ref = cv2.resize(frames[1], (112, 112), interpolation=cv2.INTER_AREA)[..., ::-1] / 255.0
    np.testing.assert_allclose(rgb[1].transpose(1, 2, 0), ref, atol=1e-6)
    gray = preprocess_frames(frames, VideoSpec(height=112, width=112, channels=1, colour="gray"))
    small = cv2.resize(frames[1], (112, 112), interpolation=cv2.INTER_AREA)
    ref_gray = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY) / 255.0  # cv2 rounds to uint8; we do not
    assert np.abs(gray[1, 0] - ref_gray).max() <= 0.5 / 255 + 1e-6
    # a gray camera feeds both kinds of model
    mono = frames[..., 1]
    assert preprocess_frames(mono, VideoSpec(height=112, width=112)).shape == (2, 3, 112, 112)
    gray_spec = VideoSpec(height=112, width=112, channels=1, colour="gray")
    g = preprocess_frames(mono[..., None], gray_spec)
    ref_mono = cv2.resize(mono[1], (112, 112), interpolation=cv2.INTER_AREA) / 255.0
    np.testing.assert_allclose(g[1, 0], ref_mono, atol=1e-6)


@pytest.mark.parametrize(
    ("size_in", "size_out"),
    [((480, 640), (112, 112)), ((481, 643), (97, 131)), ((48, 64), (96, 128))],
)
def test_a_batch_of_frames_equals_one_frame_at_a_time(
    size_in: tuple[int, int], size_out: tuple[int, int]
) -> None:
    # Downscaling resizes the frames stacked into one tall image: no row may leak across.
    frames = bgr_frames(4, *size_in)
    for (colour, c), resize in product((("rgb", 3), ("gray", 1)), ("area", "block-area")):
        spec = VideoSpec(
            height=size_out[0], width=size_out[1], channels=c, colour=colour, resize=resize
        )
        batch = preprocess_frames(frames, spec)
        for i in range(4):
            np.testing.assert_array_equal(batch[i], preprocess_frames(frames[i : i + 1], spec)[0])
        np.testing.assert_array_equal(preprocess_frames(list(frames), spec), batch)  # a list too
        gray_in = preprocess_frames(frames[..., 1], spec)
        np.testing.assert_array_equal(gray_in[3], preprocess_frames(frames[3:, ..., 1], spec)[0])


@pytest.mark.parametrize(
    ("size", "target", "k"), [(640, 96, 5), (480, 96, 5), (480, 64, 6), (640, 64, 10), (97, 10, 1),
                              (50, 96, 1), (96, 96, 1), (1920, 112, 16)],
)
def test_block_factor_is_the_largest_whole_divisor_that_keeps_the_size(
    size: int, target: int, k: int
) -> None:
    assert block_factor(size, target) == k
    assert size % k == 0 and (size // k >= target or k == 1)


def test_block_area_is_grey_first_then_whole_blocks_then_area() -> None:
    frames = bgr_frames(t=3)
    spec = VideoSpec(height=96, width=96, channels=1, colour="gray", resize="block-area")
    out = preprocess_frames(frames, spec)
    for i in range(3):
        g = cv2.cvtColor(frames[i], cv2.COLOR_BGR2GRAY)
        blocks = cv2.resize(g, (128, 96), interpolation=cv2.INTER_AREA)  # 5 x 5 blocks
        ref = cv2.resize(blocks, (96, 96), interpolation=cv2.INTER_AREA) / 255.0
        np.testing.assert_allclose(out[i, 0], ref, atol=1e-6)
    # colour models keep their channels: blocks, then area, then BGR -> RGB
    rgb = preprocess_frames(frames, VideoSpec(height=64, width=64, resize="block-area"))
    blocks = cv2.resize(frames[0], (64, 80), interpolation=cv2.INTER_AREA)  # 10 x 6 blocks
    ref = cv2.resize(blocks, (64, 64), interpolation=cv2.INTER_AREA)[..., ::-1] / 255.0
    np.testing.assert_allclose(rgb[0].transpose(1, 2, 0), ref, atol=1e-6)


def test_block_area_stays_within_a_few_grey_levels_of_area() -> None:
    # A camera-like picture (smooth shapes, edges, noise): the two definitions see the same scene.
    rng = np.random.default_rng(3)
    frames = np.zeros((2, 480, 640, 3), np.uint8)
    for f in frames:
        for _ in range(12):
            c = tuple(int(v) for v in rng.integers(0, 256, 3))
            centre = (int(rng.integers(0, 640)), int(rng.integers(0, 480)))
            cv2.circle(f, centre, int(rng.integers(10, 120)), c, -1)
        f[:] = np.clip(f + rng.normal(0, 4, f.shape), 0, 255).astype(np.uint8)
    exact = VideoSpec(height=96, width=96, channels=1, colour="gray")
    fast = VideoSpec(height=96, width=96, channels=1, colour="gray", resize="block-area")
    diff = np.abs(preprocess_frames(frames, exact) - preprocess_frames(frames, fast)) * 255
    # measured: mean 0.65, p99 9.8, max 29.7 grey levels (the worst on sharp edges, where a
    # block-area pixel sits a fraction of an input pixel off)
    assert diff.mean() < 1.0 and np.percentile(diff, 99) < 12 and diff.max() <= 40


def test_video_spec_from_card() -> None:
    spec = VideoSpec.from_dict({"height": 96, "width": 96, "mean": [0.5, 0.5, 0.5], "std": 0.25})
    assert spec.mean == (0.5, 0.5, 0.5) and spec.std == (0.25,)
    assert VideoSpec.from_dict(spec.to_dict()) == spec
    with pytest.raises(EngineError, match="video: unknown key.*crop"):
        VideoSpec.from_dict({"crop": True})
    with pytest.raises(EngineError, match="resize 'crop': use 'area' or 'block-area'"):
        VideoSpec.from_dict({"resize": "crop"})
    with pytest.raises(EngineError, match="colour"):
        VideoSpec.from_dict({"channels": 1, "colour": "rgb"})
    with pytest.raises(EngineError, match="mean needs 1 or 3"):
        VideoSpec.from_dict({"mean": [0.1, 0.2]})
    with pytest.raises(ValueError, match="uint8"):
        preprocess_frames(np.zeros((1, 8, 8, 3), np.float32), spec)
    with pytest.raises(ValueError, match="of one shape"):
        preprocess_frames([np.zeros((8, 8, 3), np.uint8), np.zeros((8, 9, 3), np.uint8)], spec)


def synthetic_runner(cam: str, video: dict[str, object] | None = None) -> tuple[Runner, FakeClock]:
    """driver-av's card (``video`` overrides its video section) without an engine, on one
    synthetic 320x240 camera with its own audio: 2 s windows of 8 frames every 0.5 s.
    ``cam``: the camera's further keys (its seed, skew, jitter)."""
    card = load_card(Path(__file__).resolve().parents[1] / "engines" / "driver-av.yaml")
    if video is not None:
        card = card.model_copy(update={"video": {**card.video, **video}})
    cfg = parse_config(f"""
sources:
  cam: {{type: synthetic, width: 320, height: 240, fps: 30, {cam}}}
streams:
  s: {{video: cam, audio: cam}}
window: {{seconds: 2.0, frames: 8, hop: 0.5}}
""")
    clock = FakeClock(50 * NS_PER_S)
    return Runner(cfg, clock, engine=object(), card=card), clock  # type: ignore[arg-type]


def replayed_windows(runner: Runner, clock: FakeClock, seconds: float) -> list[Window]:
    windows: list[Window] = []
    replay(runner.spine.sources["cam"], runner.spine, clock, windows.extend, max_seconds=seconds)  # type: ignore[arg-type]
    return windows


def test_the_featurizer_resizes_each_frame_once_and_gives_the_same_numbers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Consecutive windows share frames; a shared frame is not resized again, and every window's
    video input equals preprocessing all its frames from scratch."""
    import edge.features.serve

    runner, clock = synthetic_runner("skew_ppm: 80, jitter_ms: 2, seed: 1")
    resized: list[int] = []
    blanks: list[int] = []
    real = edge.features.serve.preprocess_frames

    def counting(frames: np.ndarray, spec: VideoSpec) -> np.ndarray:
        if isinstance(frames, np.ndarray) and not frames.any():
            blanks.append(len(frames))  # a masked target's input, made once
        else:
            resized.append(len(frames))
        return real(frames, spec)

    monkeypatch.setattr(edge.features.serve, "preprocess_frames", counting)
    feat = runner.featurizers["s"]
    checked = 0
    before: set[int] = set()
    expected = 0

    def on_windows(ws: list[object]) -> None:
        nonlocal checked, before, expected
        (w,) = ws
        f = feat(w)  # type: ignore[arg-type]
        seqs = [int(q) for q, ok in zip(w.video_seq, w.video_mask) if ok]  # type: ignore[attr-defined]
        expected += sum(q not in before for q in seqs)
        before = set(seqs)
        assert sum(resized) == expected  # only frames the previous window did not hold
        assert blanks in ([], [1])
        if w.video_mask.any():  # type: ignore[attr-defined]
            # masked targets are blank frames in both
            np.testing.assert_array_equal(f.video, real(w.video, feat.vspec))  # type: ignore[attr-defined]
            checked += 1

    replay(runner.spine.sources["cam"], runner.spine, clock, on_windows, max_seconds=12.0)  # type: ignore[arg-type]
    assert checked >= 18
    assert sum(resized) < 0.6 * 8 * 24  # most frames come from the previous window
    assert blanks == [1]  # the first windows reach back before the first frame: masked


def test_the_featurizer_preprocesses_frames_without_a_seq_and_blanks_masked_ones() -> None:
    """A window cut without ring seqs (none to cache by) still gets its own frames' numbers."""
    import dataclasses

    runner, clock = synthetic_runner("seed: 2")
    feat = runner.featurizers["s"]
    w = replayed_windows(runner, clock, 4.0)[-1]
    assert w.video_mask.all() and w.frames is not None
    mask = w.video_mask.copy()
    mask[[0, 5]] = False
    frames = tuple(None if not ok else f for f, ok in zip(w.frames, mask))
    for seq in (None, w.video_seq):  # without seqs, and with them after a cut of its own
        bare = dataclasses.replace(w, frames=frames, video_mask=mask, video_seq=seq)
        got = feat(bare).video
        np.testing.assert_array_equal(got, preprocess_frames(bare.video, feat.vspec))  # type: ignore[arg-type]
        assert (got[0] == got[0].flat[0]).all() and got[1].std() > 0.1  # blank vs a picture


def test_a_window_without_video_has_the_cards_layout() -> None:
    runner, clock = synthetic_runner("seed: 3", video={"layout": "THWC"})
    feat = runner.featurizers["s"]
    windows = replayed_windows(runner, clock, 3.0)
    seen = feat(windows[-1]).video
    windows[-1].mask_video()
    blind = feat(windows[-1]).video
    assert seen.shape == blind.shape == feat.vspec.shape(8) == (8, 96, 96, 1)
    assert not blind.any()
