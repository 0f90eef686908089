"""A live microphone: a PulseAudio null sink played into with paplay, recorded via its monitor."""

from __future__ import annotations

import subprocess
import time
import wave
from pathlib import Path

import numpy as np
import pytest

from edge.join.align import Window
from edge.timebase.clock import MonotonicClock
from edge.config import parse_config
from edge.join.spine import Spine

pytestmark = pytest.mark.system
SR = 16000


def chirp(seconds: float = 2.0) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    f0, f1 = 300.0, 3000.0
    phase = 2 * np.pi * (f0 * t + (f1 - f0) / (2 * seconds) * t * t)
    return (0.5 * np.sin(phase)).astype(np.float32)


def write_wav(path: Path, x: np.ndarray, rate: int = SR) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((x * 32767).astype(np.int16).tobytes())


def normalized_xcorr_peak(recorded: np.ndarray, played: np.ndarray) -> float:
    n = len(recorded) + len(played)
    size = 1 << (n - 1).bit_length()
    r = np.fft.irfft(np.fft.rfft(recorded, size) * np.conj(np.fft.rfft(played, size)), size)
    # energy of the recorded signal under the template at each lag
    c = np.concatenate([[0.0], np.cumsum(recorded.astype(np.float64) ** 2)])
    lag = int(np.argmax(np.abs(r[: len(recorded)])))
    seg = c[min(len(recorded), lag + len(played))] - c[lag]
    return float(abs(r[lag]) / np.sqrt(seg * float(played @ played) + 1e-12))


def test_played_chirp_is_recorded_in_exact_length_windows(
    pulse_null_sink: str, tmp_path: Path
) -> None:
    cfg = parse_config(
        f"""
sources:
  mic: {{type: microphone, device: pulse, sample_rate: {SR}, block_seconds: 0.02}}
streams:
  s: {{audio: mic}}
window: {{seconds: 1.0, frames: 1, hop: 0.25}}
"""
    )
    spine = Spine(cfg, MonotonicClock())
    played = chirp(2.0)
    wav = tmp_path / "chirp.wav"
    write_wav(wav, played)
    windows: list[Window] = []
    spine.start(require_open_s=5)
    try:
        mic = spine.sources["mic"]
        deadline = time.monotonic() + 5  # PulseAudio's ALSA plugin takes ~1 s to deliver
        while mic.stats.samples < SR // 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert mic.stats.samples >= SR // 2
        player = subprocess.Popen(["paplay", f"--device={pulse_null_sink}", str(wav)])
        spine.run(3.5, on_windows=windows.extend)
        player.wait(10)
        ring = mic.audio
        assert ring is not None and ring.start is not None
        recorded, mask = ring.read(ring.start, ring.end - ring.start)
    finally:
        spine.stop()
    assert len(windows) >= 10
    assert {len(w.audio) for w in windows if w.audio is not None} == {SR}
    assert all(w.audio_mask.size == SR for w in windows)
    late = windows[3:]  # once a whole window of audio exists
    assert all(w.audio_mask.mean() > 0.95 for w in late)
    peak = normalized_xcorr_peak(recorded[mask, 0], played)
    assert peak > 0.9, f"normalized cross-correlation peak {peak:.3f}"
    # and one window in the middle of the playback carries the chirp too
    best = max(
        normalized_xcorr_peak(w.audio[:, 0], played[i : i + SR // 2])
        for w in late
        if w.audio is not None
        for i in range(0, len(played) - SR // 2, SR // 2)
    )
    assert best > 0.8
