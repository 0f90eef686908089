"""Microphones that hear nothing above 4 kHz: the band check on made sounds, its place in the
health judgement, live through PulseAudio resampling an 8 kHz stream; and a device that cannot
record at 16 kHz itself says what to open instead."""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edge.status.band import N_FFT, BandCheck
from edge.status.config import HealthConfig
from edge.status.health import DEGRADED, OK, judge
from edge.timebase.clock import NS_PER_S
from tests.test_health import tick

SR = 16000
rng = np.random.default_rng(7)


def noise(seconds: float, rate: int = SR, level: float = 0.1) -> np.ndarray:
    return (level * rng.standard_normal(int(seconds * rate))).astype(np.float32)


def below(x: np.ndarray, hz: float) -> np.ndarray:
    """``x`` with nothing from ``hz`` up, as a microphone sampling at ``2 * hz`` would give it."""
    spec = np.fft.rfft(x)
    spec[np.fft.rfftfreq(len(x), 1.0 / SR) >= hz] = 0
    return np.fft.irfft(spec, len(x)).astype(np.float32)


def figure(x: np.ndarray, hop: int = SR // 2, window: int = 6 * SR) -> float | None:
    """The check's figure after serving ``x`` as a stream's windows (6 s, a tick each hop)."""
    check = BandCheck(SR)
    out = None
    for end in range(hop, len(x) + 1, hop):
        n0 = max(0, end - window)
        out = check.push(x[n0:end, None], np.ones(end - n0, bool), n0)
    return out


def test_full_band_noise_passes_and_the_same_noise_through_8_khz_does_not() -> None:
    x = noise(15.0)
    full = figure(x)
    narrow = figure(below(x, 4000.0))
    assert full is not None and narrow is not None
    assert abs(full) < 3.0  # white noise: the two bands level
    assert narrow < HealthConfig().band_limited_db - 30  # nothing but rounding up there
    # a 6 kHz low-pass (measured on home-dev-1: it still finds the glass) is not band-limited
    assert figure(below(x, 6000.0)) > HealthConfig().band_limited_db  # type: ignore[operator]


def test_each_sample_is_read_once_however_the_windows_overlap() -> None:
    check = BandCheck(SR, least=1)
    x = noise(10.0)
    for end in range(SR // 4, len(x) + 1, SR // 4):  # 6 s windows, a tick every 0.25 s
        n0 = max(0, end - 6 * SR)
        check.push(x[n0:end, None], np.ones(end - n0, bool), n0)
    assert check._count == len(x) // N_FFT


def test_silence_masked_samples_and_a_lone_alarm_tone_give_no_figure() -> None:
    """A muted stream holds no sound to judge, masked samples are not read as sound, and a
    beeping alarm's pure 3.1 kHz tone has nothing above it on any microphone."""
    assert figure(np.zeros(15 * SR, np.float32)) is None
    t = np.arange(15 * SR) / SR
    beeps = (0.5 * np.sin(2 * np.pi * 3100 * t) * ((t % 1.0) < 0.5)).astype(np.float32)
    assert figure(beeps) is None
    check = BandCheck(SR)
    x = below(noise(15.0), 4000.0)
    assert check.push(x[:, None], np.zeros(len(x), bool), 0) is None
    assert check._count == 0


def test_sound_between_the_beeps_keeps_a_full_band_microphone_passing() -> None:
    t = np.arange(20 * SR) / SR
    beeps = 0.5 * np.sin(2 * np.pi * 3100 * t) * ((t % 1.0) < 0.5)
    room = noise(20.0, level=0.003)  # a quiet room's noise, about -50 dBFS
    out = figure((beeps + room).astype(np.float32))
    assert out is not None and out > HealthConfig().band_limited_db


def test_a_stream_under_16_khz_is_not_checked() -> None:
    check = BandCheck(8000, least=1)
    x = noise(5.0, rate=8000)
    assert check.push(x[:, None], np.ones(len(x), bool), 0) is None


def test_the_judgement_names_the_missing_band_at_its_threshold() -> None:
    cfg = HealthConfig()
    assert judge([tick(1.0, high_band_db=-29.9)], cfg) == (OK, [])
    state, reasons = judge([tick(1.0, high_band_db=-41.0)], cfg)
    assert state == DEGRADED
    assert reasons == ["audio band-limited: nothing above 4 kHz (-41 dB; an 8 kHz microphone?)"]
    assert judge([tick(1.0, high_band_db=-41.0)], HealthConfig(band_limited_db=None))[0] == OK
    assert judge([tick(1.0, high_band_db=None)], cfg)[0] == OK


def test_a_device_refusing_the_rate_is_a_device_error_that_says_what_resamples(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from types import SimpleNamespace

    from edge.capture import microphone
    from edge.config import MicrophoneSourceConfig
    from edge.errors import DeviceError
    from edge.timebase.clock import FakeClock

    class PortAudioError(Exception):
        pass

    def refuse(**kw: Any) -> None:
        raise PortAudioError("Error opening InputStream: Invalid sample rate [PaErrorCode -9997]")

    fake = SimpleNamespace(
        PortAudioError=PortAudioError, InputStream=refuse,
        query_devices=lambda dev, kind: {"name": "USB headset (hw:2,0)", "index": 3},
    )
    monkeypatch.setattr(microphone, "import_sounddevice", lambda: fake)
    cfg = MicrophoneSourceConfig(type="microphone", device="hw:2,0")
    mic = microphone.MicrophoneSource("mic", cfg, FakeClock(0))
    with pytest.raises(DeviceError) as err:
        mic.open()
    assert "Invalid sample rate" in str(err.value)
    assert "does not record at 16000 Hz itself" in str(err.value) and "'pulse'" in str(err.value)


@pytest.mark.system
def test_an_8_khz_stream_resampled_by_pulseaudio_degrades_the_microphone_until_full_band_sound(
    pulse_null_sink: str, tmp_path: Path
) -> None:
    """PulseAudio plays an 8 kHz file into the null sink and the microphone records its monitor
    at 16 kHz, the path of an 8 kHz headset: `degraded`, band-limited, before the 16 s file ends
    (the check needs 9.6 s of sound); then 16 kHz noise makes it `ok` again."""
    from edge.config import parse_config
    from edge.service.daemon import Service
    from edge.service.run import Runner
    from edge.timebase.clock import MonotonicClock

    from tests.test_microphone import write_wav
    from tests.test_microphone_loss import mic_config

    narrow, full = tmp_path / "narrow.wav", tmp_path / "full.wav"
    write_wav(narrow, noise(16.0, rate=8000), 8000)
    write_wav(full, noise(8.0), SR)
    cfg = parse_config(mic_config())
    runner = Runner(cfg, MonotonicClock())
    health: list[dict[str, Any]] = []
    service = Service(runner, publish=lambda r: health.append(r) if r["type"] == "health" else None)

    started: list[int] = []

    def play() -> None:
        for wav in (narrow, full):
            started.append(time.monotonic_ns())
            subprocess.run(["paplay", f"--device={pulse_null_sink}", str(wav)], timeout=30)

    runner.spine.start(require_open_s=5)
    player = threading.Thread(target=play)
    player.start()
    try:
        runner.spine.run(26.0, service.on_windows)
    finally:
        player.join(40)
        runner.spine.stop()
    mic = [(h["state"], " ".join(h["reasons"]), (h["t_ns"] - started[0]) / NS_PER_S)
           for h in health if h["source"] == "mic"]
    narrowed = [i for i, (state, why, _) in enumerate(mic)
                if state == DEGRADED and "band-limited" in why]
    assert narrowed, mic
    assert mic[narrowed[0]][2] < 16.0, mic  # while the 8 kHz file plays (13.0 s measured)
    assert mic[-1][0] == OK and len(mic) > narrowed[0] + 1, mic
    assert mic[-1][2] > 16.0, mic  # during the full-band noise
