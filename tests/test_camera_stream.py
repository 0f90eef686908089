"""A live camera as a real network stream: ffmpeg serving MJPEG over HTTP on loopback."""

from __future__ import annotations

import time

import numpy as np
import pytest

from edge.capture.base import SourceState
from edge.timebase.clock import NS_PER_S, MonotonicClock
from edge.config import parse_config
from edge.join.spine import Spine
from tests.conftest import MjpegServer, wait_for

pytestmark = pytest.mark.system


def camera_spine(url: str) -> Spine:
    cfg = parse_config(
        f"""
sources:
  cam: {{type: camera, device: "{url}", width: 320, height: 240, fps: 30,
         stall_timeout: 1.0, backoff_initial: 0.2, backoff_max: 5.0,
         open_timeout: 2.0, read_timeout: 1.0}}
streams:
  s: {{video: cam}}
window: {{seconds: 1.0, frames: 8, hop: 0.25, max_wait_video: 0.3}}
"""
    )
    return Spine(cfg, MonotonicClock())



def test_served_stream_arrives_at_its_fps_and_recovers_after_the_server_dies(
    mjpeg_server: MjpegServer,
) -> None:
    mjpeg_server.start()
    spine = camera_spine(mjpeg_server.url)
    cam = spine.sources["cam"]
    clock = spine.clock
    spine.start(require_open_s=5)
    try:
        # fps over 3 s, after a second of warm-up
        time.sleep(1.0)
        f0, t0 = cam.stats.frames, time.monotonic()
        time.sleep(3.0)
        fps = (cam.stats.frames - f0) / (time.monotonic() - t0)
        assert fps == pytest.approx(30, rel=0.10)
        w = spine.tick(clock.now_ns())[0]
        # MJPEG over HTTP has no capture timestamps: frames are stamped on arrival, and arrival
        # jitter can push a frame just outside a target's half-interval tolerance.
        assert w.video_mask.mean() >= 0.75

        # Kill the server: windows keep coming, with video masked, and the source reconnects.
        mjpeg_server.kill()
        assert wait_for(lambda: cam.state == SourceState.RECONNECTING, 5.0)
        time.sleep(1.5)
        w = spine.tick(clock.now_ns())[0]
        assert not w.video_mask.any()
        assert w.video_age_ns is not None and w.video_age_ns > NS_PER_S

        # Restart it: frames flow again within 5 s.
        mjpeg_server.start()
        restarted = time.monotonic()
        before = cam.stats.frames
        assert wait_for(lambda: cam.stats.frames > before + 5, 5.0)
        assert time.monotonic() - restarted < 5.0
        assert cam.stats.reconnects >= 1
        time.sleep(1.2)
        w = spine.tick(clock.now_ns())[0]
        assert w.video_mask.mean() >= 0.75
        assert isinstance(w.video, np.ndarray) and w.video[w.video_mask].std() > 10  # real pictures
    finally:
        spine.stop()
