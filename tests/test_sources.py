"""Source shells: backoff, stall detection, overflow gaps, file pacing, live A/V network streams."""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from edge.capture.base import Backoff, CaptureSource, SourceState
from edge.timebase.clock import NS_PER_S, MonotonicClock
from edge.config import MicrophoneSourceConfig, parse_config
from edge.join.spine import Spine
from tests.conftest import free_port, need
from tests.media_files import flash_beep_file


def test_backoff_doubles_and_is_capped_at_five_seconds() -> None:
    b = Backoff(0.25, 5.0)
    assert [b.delay_s(i) for i in range(7)] == [0.25, 0.5, 1.0, 2.0, 4.0, 5.0, 5.0]


class Silent(CaptureSource):
    """Opens fine, then never delivers: the shell must call that a stall and reconnect."""

    def __init__(self) -> None:
        super().__init__("silent", MonotonicClock(), backoff=Backoff(0.05, 0.1), stall_timeout_s=0.2)
        self.first_data_grace_ns = 0
        self.opens = 0

    def open(self) -> None:
        self.opens += 1

    def pump(self) -> bool:
        time.sleep(0.01)
        return False

    def close(self) -> None:
        pass


def test_a_source_that_stops_delivering_is_reconnected() -> None:
    src = Silent()
    src.start()
    try:
        deadline = time.monotonic() + 5
        while src.stats.reconnects < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        src.stop()
    assert src.stats.reconnects >= 2 and src.opens >= 2
    assert "no data" in (src.stats.last_error or "")
    assert src.state == SourceState.STOPPED


def test_microphone_overflow_marks_the_next_block_as_a_gap() -> None:
    pytest.importorskip("sounddevice", exc_type=OSError)
    from edge.capture.microphone import MicrophoneSource

    mic = MicrophoneSource("m", MicrophoneSourceConfig(type="microphone"), MonotonicClock())
    ok = SimpleNamespace(input_overflow=False)
    bad = SimpleNamespace(input_overflow=True)
    block = np.ones((320, 1), np.float32)
    mic._callback(block, 320, None, ok)
    mic._callback(block, 320, None, bad)
    mic._callback(block, 320, None, ok)
    assert mic.audio is not None
    _, mask = mic.audio.read(0, 960)
    assert mask[:320].all() and not mask[320:640].any() and mask[640:].all()
    assert mic._overflows == 1


def test_camera_file_is_paced_at_its_own_rate(tmp_path: Path) -> None:
    path = flash_beep_file(tmp_path / "clip.mkv", seconds=3.0, fps=30)
    cfg = parse_config(
        f"""
sources:
  cam: {{type: camera, device: "{path}", width: 160, height: 120, fps: 30}}
streams:
  s: {{video: cam}}
"""
    )
    spine = Spine(cfg, MonotonicClock())
    cam = spine.sources["cam"]
    spine.start(require_open_s=5)
    t0 = time.monotonic()
    try:
        while cam.state != SourceState.FINISHED and time.monotonic() - t0 < 10:
            time.sleep(0.02)
        elapsed = time.monotonic() - t0
    finally:
        spine.stop()
    assert cam.stats.frames == 90
    assert elapsed == pytest.approx(3.0, abs=0.5)  # real time, not as fast as decoding allows


def test_a_media_file_at_another_rate_than_configured_is_named_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The frame ring is sized from the configured fps: a 30 fps file declared 15 holds half the
    seconds asked for, which the user is told, with the rate to set, once (not on each loop)."""
    from edge.capture.media import MediaSource
    from edge.config import MediaSourceConfig

    path = flash_beep_file(tmp_path / "clip.mkv", seconds=1.0, fps=30)
    cfg = MediaSourceConfig(type="media", url=str(path), width=160, height=120, fps=15,
                            buffer_seconds=8, loop=True)
    src = MediaSource("cam", cfg, MonotonicClock())
    with caplog.at_level("WARNING", logger="edge.capture.media"):
        src.check()  # a file says its rate before it opens: edge run prints src.notes at start
        assert len(src.notes) == 1
        src.open()
        src.close()
        src.open()
        src.close()
    [rec] = [r for r in caplog.records if "fps" in r.getMessage()]
    assert "runs at 30 fps, the config says fps: 15" in rec.getMessage()
    assert "ring of 120 frames holds 4.0 s, not buffer_seconds: 8" in rec.getMessage()
    assert "(set fps: 30)" in rec.getMessage()
    assert src.notes == [rec.getMessage()]

    caplog.clear()
    right = MediaSource("cam", cfg.model_copy(update={"fps": 30}), MonotonicClock())
    with caplog.at_level("WARNING", logger="edge.capture.media"):
        right.check()
        right.open()
        right.close()
    assert not [r for r in caplog.records if "fps" in r.getMessage()] and not right.notes


@pytest.mark.system
def test_live_network_stream_with_audio_and_video() -> None:
    ffmpeg = need("ffmpeg")
    url = f"http://127.0.0.1:{free_port()}/live.mkv"
    server = subprocess.Popen(
        [
            ffmpeg, "-loglevel", "error", "-re",
            "-f", "lavfi", "-i", "testsrc=size=160x120:rate=25",
            "-f", "lavfi", "-i", "sine=frequency=1000:sample_rate=48000",
            "-c:v", "mjpeg", "-q:v", "5", "-c:a", "pcm_s16le",
            "-f", "matroska", "-listen", "1", url,
        ],
        stdin=subprocess.DEVNULL,
    )
    cfg = parse_config(
        f"""
sources:
  room: {{type: media, url: "{url}", width: 160, height: 120, fps: 25, sample_rate: 16000,
          open_timeout: 5}}
streams:
  s: {{video: room, audio: room}}
window: {{seconds: 1.0, frames: 5, hop: 0.25, max_wait_video: 0.5, max_wait_audio: 0.5}}
"""
    )
    spine = Spine(cfg, MonotonicClock())
    windows: list = []
    try:
        time.sleep(0.5)  # let ffmpeg listen
        spine.start(require_open_s=8)
        spine.run(4.0, on_windows=windows.extend, stop=threading.Event())
        room = spine.sources["room"]
        frames, samples = room.stats.frames, room.stats.samples
    finally:
        spine.stop()
        server.kill()
        server.wait(5)
    assert frames >= 25 * 3 * 0.9
    assert samples >= 16000 * 3 * 0.9
    late = windows[-6:]
    assert all(w.video_mask.all() and w.audio_mask.mean() > 0.99 for w in late)
    assert all(abs(w.av_offset_ns) <= NS_PER_S / 25 for w in late)
    # the tone made it through: 1 kHz dominates the spectrum
    spec = np.abs(np.fft.rfft(late[-1].audio[:, 0]))
    assert abs(int(np.argmax(spec)) * 16000 / len(late[-1].audio) - 1000) < 5
