"""A camera or microphone that is not there when the daemon starts: a lost source that is
waited for and picked up when it appears, while the other modality's predictions go on.
``edge run --strict`` and ``edge validate-config --devices`` fail fast instead."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from edge.cli import main
from edge.timebase.clock import NS_PER_S, FakeClock
from edge.config import parse_config
from edge.errors import DeviceMissing
from edge.status.config import HealthConfig
from edge.status.health import TickStats, judge
from edge.join.spine import Spine
from tests.conftest import need, wait_for
from tests.test_microphone_loss import PrivatePulse

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "engines" / "driver-av.int8.onnx"


def cabin_config(tmp_path: Path, video: str, audio: str) -> Path:
    """A driver stream whose video and audio come from the two given source entries."""
    cfg = tmp_path / "cabin.yaml"
    cfg.write_text(f"""
sources:
  cam: {video}
  sim: {{type: scenario, scenario: driver, seconds: 60, width: 160, height: 120, fps: 10}}
  mic: {audio}
streams:
  cabin: {{video: cam, audio: mic}}
window: {{seconds: 2.0, frames: 8, hop: 0.5}}
model: {{path: "{MODEL}"}}
paths: {{roots: ["{ROOT}", "{tmp_path}"]}}
health: {{horizon: 2.0}}
""")
    return cfg


SIM_VIDEO = "{type: scenario, scenario: driver, seconds: 60, width: 160, height: 120, fps: 10}"
SIM_AUDIO = SIM_VIDEO


def missing_camera_config(tmp_path: Path) -> Path:
    return cabin_config(tmp_path, f"{{type: camera, device: {tmp_path / 'video0'}}}", SIM_AUDIO)


def test_spine_start_not_strict_returns_the_missing_camera_and_starts_the_rest(
    tmp_path: Path,
) -> None:
    cfg = parse_config(missing_camera_config(tmp_path).read_text())
    spine = Spine(cfg, FakeClock())
    with pytest.raises(DeviceMissing, match="no such file"):
        spine.check(strict=True)
    missing = spine.check(strict=False)
    assert len(missing) == 1 and "camera 'cam'" in missing[0] and "no such file" in missing[0]


def test_health_names_why_a_source_is_not_capturing() -> None:
    tick = TickStats(t_ns=NS_PER_S, running=False, video_masked=1.0, audio_masked=None,
                     video_age_ns=None, audio_age_ns=None, frame_mean=None, frame_std=None,
                     clipped=None, faults=0, error="camera 'cam' (/dev/video0): no such device")
    state, reasons = judge([tick], HealthConfig())
    assert state == "lost"
    assert reasons[0] == "not capturing: camera 'cam' (/dev/video0): no such device"


def test_validate_config_devices_lists_each_source_and_fails_on_a_missing_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = missing_camera_config(tmp_path)
    assert main(["validate-config", str(cfg)]) == 0  # the file itself is fine
    capsys.readouterr()
    assert main(["validate-config", "--devices", str(cfg)]) == 2
    out, err = capsys.readouterr()
    assert "  sim: there" in out and "  mic: there" in out
    assert f"  cam: camera 'cam' ({tmp_path / 'video0'}): no such file" in out
    assert err.strip() == f"edge: error: {cfg}: 1 configured device(s) not there now"


def test_run_strict_exits_2_at_once_on_a_missing_camera(tmp_path: Path) -> None:
    cfg = missing_camera_config(tmp_path)
    t0 = time.monotonic()
    r = subprocess.run(
        [sys.executable, "-m", "edge.cli", "run", "--config", str(cfg), "--strict", "--no-view",
         "--jsonl", str(tmp_path / "out.jsonl"), "--duration", "30"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    assert r.returncode == 2, r.stderr
    assert "no such file" in r.stderr
    assert time.monotonic() - t0 < 20


def _records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def _health(path: Path, source: str) -> list[dict[str, Any]]:
    return [r for r in _records(path) if r["type"] == "health" and r["source"] == source]


def _stop(run: subprocess.Popen[str]) -> str:
    run.send_signal(signal.SIGTERM)
    _, err = run.communicate(timeout=10)
    assert run.returncode == 0, err
    return err


def _never_stopped(path: Path) -> list[dict[str, Any]]:
    preds = [r for r in _records(path) if r["type"] == "prediction"]
    ticks = [int(r["t_end_ns"]) for r in preds]
    assert len(ticks) > 10
    assert max(b - a for a, b in zip(ticks, ticks[1:])) < 1.5 * NS_PER_S
    return preds


@pytest.mark.system
def test_camera_that_appears_after_start_is_picked_up_without_a_restart(tmp_path: Path) -> None:
    ffmpeg = need("ffmpeg")
    clip = tmp_path / "clip.mkv"
    subprocess.run([ffmpeg, "-loglevel", "error", "-f", "lavfi", "-i",
                    "testsrc=size=160x120:rate=10", "-t", "4", "-c:v", "mjpeg", str(clip)],
                   check=True, timeout=60)
    device = tmp_path / "video0"  # not there yet
    cfg = cabin_config(tmp_path, (f"{{type: camera, device: {device}, width: 160, height: 120, "
                                  "fps: 10, loop: true, backoff_initial: 0.25, backoff_max: 1.0}"),
                       SIM_AUDIO)
    out = tmp_path / "out.jsonl"
    run = subprocess.Popen(
        [sys.executable, "-m", "edge.cli", "run", "--config", str(cfg), "--no-view", "--jsonl",
         str(out)], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert wait_for(lambda: [h["state"] for h in _health(out, "cam")] == ["lost"], 20.0), \
            _health(out, "cam")
        assert run.poll() is None  # the daemon waits instead of exiting
        assert "no such file" in " ".join(_health(out, "cam")[0]["reasons"])
        os.symlink(clip, device)  # the camera appears
        assert wait_for(lambda: _health(out, "cam")[-1:][0]["state"] == "ok", 20.0), \
            _health(out, "cam")
        time.sleep(2.0)
        err = _stop(run)
    finally:
        if run.poll() is None:
            run.kill()
            run.communicate()
    assert "waiting for it" in err
    preds = _never_stopped(out)
    # While the camera was missing the predictions said so; after it came, video was used.
    assert any(p.get("video_valid", 1.0) == 0.0 for p in preds)
    assert preds[-1]["video_valid"] > 0.9


@pytest.mark.system
def test_microphone_whose_name_appears_after_start_is_found_again(tmp_path: Path) -> None:
    """The microphone is an ALSA device name that PortAudio does not list at start (as a USB
    microphone plugged in later): it is found once PortAudio is re-initialised on a reconnect."""
    pulse = PrivatePulse(tmp_path)
    pulse.start()
    home = tmp_path / "home"
    home.mkdir()
    cfg = cabin_config(tmp_path, SIM_VIDEO,
                       "{type: microphone, device: edgelate, sample_rate: 16000, "
                       "block_seconds: 0.02, backoff_initial: 0.25, backoff_max: 1.0}")
    out = tmp_path / "out.jsonl"
    env = dict(os.environ, PULSE_SERVER=f"unix:{pulse.socket}", HOME=str(home))
    run = subprocess.Popen(
        [sys.executable, "-m", "edge.cli", "run", "--config", str(cfg), "--no-view", "--jsonl",
         str(out)], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert wait_for(lambda: [h["state"] for h in _health(out, "mic")] == ["lost"], 20.0), \
            _health(out, "mic")
        assert run.poll() is None
        assert "no such input device" in " ".join(_health(out, "mic")[0]["reasons"])
        # The device is plugged in: ALSA now has a PCM of that name, the null sink's monitor.
        (home / ".asoundrc").write_text('pcm.edgelate {\n type pulse\n device "mic2.monitor"\n}\n')
        assert wait_for(lambda: _health(out, "mic")[-1:][0]["state"] == "ok", 25.0), \
            _health(out, "mic")
        time.sleep(2.0)
        _stop(run)
    finally:
        if run.poll() is None:
            run.kill()
            run.communicate()
        pulse.kill()
    preds = _never_stopped(out)
    assert any(p.get("audio_valid", 1.0) == 0.0 for p in preds)
    assert preds[-1]["audio_valid"] > 0.9
