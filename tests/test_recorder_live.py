"""A flight recording made from a live camera stream (ffmpeg on loopback) replays exactly."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.timebase.clock import MonotonicClock
from edge.config import parse_config
from edge.recorder.checks import check_recorder
from edge.recorder.core import FlightRecorder
from edge.recorder.replay import replay_recording
from edge.service.run import Runner
from tests.conftest import MjpegServer, run_live

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.system
def test_a_recording_of_a_live_camera_replays_to_identical_predictions(
    mjpeg_server: MjpegServer, tmp_path: Path
) -> None:
    mjpeg_server.start()
    text = f"""
sources:
  cam: {{type: camera, device: "{mjpeg_server.url}", width: 320, height: 240, fps: 30,
         buffer_seconds: 8, open_timeout: 3.0}}
  mic: {{type: scenario, scenario: driver, seconds: 60, width: 32, height: 24, fps: 5,
         buffer_seconds: 8}}
streams:
  cabin: {{video: cam, audio: mic}}
window: {{seconds: 2.0, frames: 8, hop: 0.5}}
model: {{path: "{ROOT / 'engines' / 'driver-av.int8.onnx'}"}}
decisions:
  defaults: {{tau: 0.0, on_threshold: 0.001, off_threshold: 0.0}}
  rules:
    - {{name: anything, any_of: [{{class: phone, at_least: 0.0}}, {{class: talking, at_least: 0.0}},
        {{class: yawning, at_least: 0.0}}, {{class: distracted, at_least: 0.0}},
        {{class: eyes_closed, at_least: 0.0}}]}}
recorder: {{out_dir: "{tmp_path / 'rec'}", pre_roll: 2.0, post_roll: 2.0, max_seconds: 6.0}}
"""
    cfg = parse_config(text)
    assert cfg.recorder is not None
    runner = Runner(cfg, MonotonicClock())
    check_recorder(cfg.recorder, runner.spine)
    recorder = FlightRecorder.for_runner(cfg.recorder, runner, config_text=text)
    recorder.start()
    run_live(runner, 14.0, require_open_s=5, recorder=recorder)
    recorder.close(timeout_s=5.0)
    saved = [p for p in (tmp_path / "rec").iterdir() if not p.name.startswith(".")]
    assert len(saved) >= 1, recorder.stats()
    result = replay_recording(saved[0])
    assert result.identical, result.to_json()
    assert result.max_abs_diff == 0.0 and len(result.comparisons) >= 4
