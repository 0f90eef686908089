"""``edge run`` live with the front ends in their worker threads: a real clip as the camera.

Needs ``../shared/realworld`` and the imported front ends; skips naming what is missing.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.test_cli import ROOT, edge

CLIP = ROOT.parent / "shared" / "realworld" / "driver-dev-alert-blink" / "video.mkv"


def clip_camera_config(tmp_path: Path, model: Path, workers: bool) -> Path:
    """A config serving the alert-blink clip as a live camera with its microphone, the driver
    front ends on it (in their worker threads or on the tick)."""
    cfg = tmp_path / "live.yaml"
    cfg.write_text(f"""
sources:
  cam: {{type: media, url: "{CLIP}", width: 640, height: 480, fps: 30, loop: true,
         sample_rate: 16000}}
streams:
  cabin: {{video: cam, audio: cam}}
window: {{seconds: 2.0, frames: 16, hop: 0.25}}
model: {{path: "{model}", engine: {{type: onnx, threads: 1}}}}
front_ends:
  dir: "{ROOT / 'engines/front'}"
  workers: {str(workers).lower()}
  face: {{detect_every: 10}}
  hand: {{}}
  vad: {{}}
paths: {{roots: ["{ROOT}", "{ROOT.parent / 'shared'}", "{tmp_path}"]}}
""")
    return cfg


@pytest.mark.skipif(not CLIP.is_file(), reason=f"needs {CLIP}")
@pytest.mark.skipif(not (ROOT / "engines/front/face_detector.onnx").is_file(),
                    reason="needs the front ends (edge front-ends import)")
@pytest.mark.parametrize("workers", [True, False])
def test_a_live_run_reads_the_face_stage_in_or_off_the_tick(tmp_path: Path, workers: bool) -> None:
    cfg = clip_camera_config(tmp_path, ROOT / "engines/driver-front.int8.onnx", workers)
    proc = edge("run", "--config", str(cfg), "--duration", "5", "--jsonl", "-", "--no-view")
    assert proc.returncode == 0, proc.stderr
    rows = [r for r in map(json.loads, proc.stdout.splitlines()) if r["type"] == "prediction"]
    assert len(rows) >= 10
    late = rows[len(rows) // 2:]  # the window is full of frames the stage has seen
    assert all(r["front"]["face"] == 1.0 for r in late), [r.get("front") for r in late]
    assert not any(r["front"]["hand"] for r in late)  # no hand in view
    assert not any("eyes_closed" in r["active"] for r in late)  # an alert man


def _driver_config(tmp_path: Path) -> tuple[Path, Path]:
    """A copy of the shipped FP32 driver model (and card, which a build writes into) and
    configs/driver.yaml serving it, its paths in ``tmp_path``."""
    model = tmp_path / "driver-front.onnx"
    shutil.copy(ROOT / "engines/driver-front.onnx", model)
    shutil.copy(ROOT / "engines/driver-front.yaml", tmp_path / "driver-front.yaml")
    cfg = tmp_path / "driver.yaml"
    cfg.write_text((ROOT / "configs/driver.yaml").read_text()
                   .replace("engines/driver-front.int8.onnx", str(model))
                   .replace("roots: [.., /var/lib/edge]",
                            f"roots: [{ROOT}, {ROOT.parent / 'shared'}, {tmp_path}]")
                   .replace("/var/lib/edge", str(tmp_path)))
    return model, cfg


@pytest.mark.skipif(not CLIP.is_file(), reason=f"needs {CLIP}")
@pytest.mark.skipif(not (ROOT / "engines/front/face_detector.onnx").is_file(),
                    reason="needs the front ends (edge front-ends import)")
@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg")
def test_a_front_model_calibrates_from_real_recordings_and_builds_int8(tmp_path: Path) -> None:
    """``edge calibrate --from recordings`` for a model over front-end features: the dev set's
    driver clips replayed through the serving code (the home recording beside them is another
    task, left out), split by recording, then an INT8 build gated on the held-out clip.

    The empty seat is among the calibrated clips on purpose. Calibrated on faces only and
    checked on the empty seat, the build failed its gate (eyes_closed on every window, logits
    off by up to 10): windows without a face must be in the ranges too. So must head turns:
    calibrated on the alert driver and the empty seat alone (yaw 0-2 degrees) and checked on
    head-turn (yaw -48 to 30), INT8 with exact arithmetic moved a borderline glance across the
    threshold (distracted F1 0.84 -> 0.76, macro 1.6 points, logits off by up to 2.5). Calibrated
    on those ranges, on the same checks, it was off by at most 0.53 and 0 points. The head-turn
    clip mirrored left to right is a recording of its own among the calibrated ones: the head
    turns the other way, and no calibrated frame is a held-out one.
    """
    recs = tmp_path / "recs"  # named so that the split holds out head-turn (the third, sorted)
    recs.mkdir()
    for name, clip in (("a-alert", "driver-dev-alert-blink"), ("b-noface", "driver-dev-no-face"),
                       ("c-headturn", "driver-dev-head-turn"), ("e-home", "home-dev-1")):
        (recs / name).symlink_to(CLIP.parents[1] / clip)
    turn = CLIP.parents[1] / "driver-dev-head-turn"
    mirror = recs / "d-headturn-mirrored"
    mirror.mkdir()
    shutil.copy(turn / "labels.json", mirror / "labels.json")
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(turn / "video.mkv"), "-vf", "hflip",
                    "-c:v", "ffv1", "-c:a", "copy", str(mirror / "video.mkv")], check=True, timeout=60)
    model, cfg = _driver_config(tmp_path)
    out = tmp_path / "calib"
    proc = edge("calibrate", "--config", str(cfg), "--out", str(out), "--from", "recordings",
                "--recordings", str(recs), "--holdout", "0.34", timeout=300)
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["inputs"]["front"] == ["B", 16, 13]
    assert manifest["calib"] > 60 and manifest["check"] > 20  # split by recording
    with np.load(out / manifest["shards"][0]["file"]) as z:
        turned = z["labels"][:, manifest["classes"].index("distracted")] > 0
        check = z["check"].astype(bool)
    assert turned[check].any() and turned[~check].any()  # head turns held out and calibrated
    proc = edge("build", "--model", str(model), "--int8", "--calibration", str(out), timeout=300)
    assert proc.returncode == 0, proc.stderr  # within the 1-point gate on the held-out clip
    assert "face.yaw" not in proc.stderr  # named only beyond the calibrated range: turns were in it
    assert (tmp_path / "driver-front.int8.onnx").is_file()


@pytest.mark.skipif(not CLIP.is_file(), reason=f"needs {CLIP}")
@pytest.mark.skipif(not (ROOT / "engines/front/face_detector.onnx").is_file(),
                    reason="needs the front ends (edge front-ends import)")
def test_simulated_windows_calibrate_the_head_turns_the_recordings_lack(tmp_path: Path) -> None:
    """Calibrated on the alert driver and the empty seat alone and checked on head-turn, the
    INT8 build failed its gate by 1.6 points on an AVX2 CPU (a borderline glance crossed; yaw
    calibrated 0-2 degrees, checked -48 to 30). ``--with-sim 8`` adds 128 windows of simulated
    drives, glances among them, to the calibrated part: the same checks pass (0 points there,
    logits off by at most 0.89 against 2.47) and no feature is named beyond the range."""
    recs = tmp_path / "recs"  # sorted: head-turn, the third, is held out at --holdout 0.34
    recs.mkdir()
    for name, clip in (("a-alert", "driver-dev-alert-blink"), ("b-noface", "driver-dev-no-face"),
                       ("c-headturn", "driver-dev-head-turn")):
        (recs / name).symlink_to(CLIP.parents[1] / clip)
    model, cfg = _driver_config(tmp_path)
    out = tmp_path / "calib"
    proc = edge("calibrate", "--config", str(cfg), "--out", str(out), "--from", "recordings",
                "--recordings", str(recs), "--holdout", "0.34", "--with-sim", "8", timeout=300)
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["sim_windows"] == 128 and manifest["labelled"] is True
    with np.load(out / manifest["shards"][0]["file"]) as z:
        check, groups = z["check"].astype(bool), z["scenario"]
        turned = z["labels"][:, manifest["classes"].index("distracted")] > 0
    assert set(groups[check]) == {2} and check.sum() == manifest["check"]  # head-turn alone
    assert turned[check].any() and turned[~check].any()  # glances held out, and simulated ones
    proc = edge("build", "--model", str(model), "--int8", "--calibration", str(out), timeout=300)
    assert proc.returncode == 0, proc.stderr  # within the 1-point gate on the held-out clip
    assert "beyond the calibrated range" not in proc.stderr


@pytest.mark.skipif(not CLIP.is_file(), reason=f"needs {CLIP}")
@pytest.mark.skipif(not (ROOT / "engines/front/face_detector.onnx").is_file(),
                    reason="needs the front ends (edge front-ends import)")
def test_a_front_model_calibrates_from_a_live_camera_and_int8_makes_fp32s_decisions(
    tmp_path: Path,
) -> None:
    """``edge calibrate --from live`` for a model over front-end features: a real clip served
    as a camera, the front ends in their worker threads as ``edge run`` has them, windows
    grouped by 5 s stretch so the held-out ones never share one with the calibrated. The live
    windows have no labels, so ``edge build`` gates INT8 on FP32's own decisions: 20 s give
    enough of them (window × class) that one changed decision is within the 1-point budget."""
    model = tmp_path / "driver-front.onnx"
    shutil.copy(ROOT / "engines/driver-front.onnx", model)
    shutil.copy(ROOT / "engines/driver-front.yaml", tmp_path / "driver-front.yaml")
    cfg = clip_camera_config(tmp_path, model, workers=True)
    out = tmp_path / "calib"
    proc = edge("calibrate", "--config", str(cfg), "--out", str(out), "--from", "live",
                "--live-seconds", "20", "--holdout", "0.5", timeout=300)
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["inputs"]["front"] == ["B", 16, 13]
    assert manifest["labelled"] is False
    assert manifest["calib"] >= 20 and manifest["check"] >= 20, manifest  # 5 s stretches
    with np.load(out / manifest["shards"][0]["file"]) as z:
        front, fmask, check, groups = z["front"], z["front_mask"], z["check"], z["scenario"]
        assert (z["labels"] == -1).all()
    assert fmask.mean() > 0.5  # frames reached the windows
    assert front[..., 0][fmask > 0].mean() > 0.8  # face.present: the man's face, as served
    # Check windows are whole stretches: none shares its group with a calibrated window.
    assert not set(groups[check]) & set(groups[~check])
    proc = edge("build", "--model", str(model), "--int8", "--calibration", str(out), timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "scored against FP32's decisions" in proc.stderr
    assert "only " not in proc.stderr  # enough clear decisions for one change to fit the budget
    int8 = yaml.safe_load((tmp_path / "driver-front.yaml").read_text())["metrics"]["int8"]
    assert int8["reference"] == "fp32 decisions" and "int8_f1" not in int8  # no labels, no F1
    assert int8["clear_decisions"] >= 100, int8
    assert int8["clear_decisions_changed"] <= 0.01 * int8["clear_decisions"], int8
    assert int8["decision_agreement"] >= 0.98, int8  # borderline decisions included
    # 0.31-0.66 over eight builds of the single network this bound was set on; the merged model
    # shipped since (its larger networks trained again on the widened simulator) measured
    # 0.79-1.10 over seven builds (30 and 15 fps, every one with no clear decision changed,
    # agreement 1.0), 1.70 on its simulated check windows: the bound, not the decisions, failed
    assert int8["max_abs_logit_diff"] < 1.5, int8
    assert (tmp_path / "driver-front.int8.onnx").is_file()


@pytest.mark.skipif(not CLIP.is_file(), reason=f"needs {CLIP}")
@pytest.mark.skipif(not (ROOT / "engines/front/face_detector.onnx").is_file(),
                    reason="needs the front ends (edge front-ends import)")
def test_a_recording_of_a_live_run_with_front_end_workers_replays_identical(tmp_path: Path) -> None:
    """``edge run`` with the face, hand and VAD stages in their threads records an event; the
    recording starts with what the stages had made and the eye baseline's samples, and
    ``edge replay`` reproduces every prediction from it bit for bit.

    The rule holds 5 s: a recording starts one window before its pre-roll, and 4 s would put
    that on the run's first tick, before any stage has made a row (a race, lost under load).
    The ring holds 6 s of the clip's 30 fps, more than the 4.5 s a recording reaches back."""
    cfg = clip_camera_config(tmp_path, ROOT / "engines/driver-front.int8.onnx", workers=True)
    out = tmp_path / "rec"
    text = cfg.read_text().replace("sample_rate: 16000}", "sample_rate: 16000, buffer_seconds: 6}")
    cfg.write_text(text + f"""
decisions:
  defaults: {{tau: 0.0, on_threshold: 0.000001, off_threshold: 0.0}}
  rules:
    - {{name: held, any_of: [{{class: eyes_closed, at_least: 5.0}}, {{class: talking, at_least: 5.0}}]}}
recorder: {{out_dir: "{out}", pre_roll: 2.0, post_roll: 1.0}}
""")
    proc = edge("run", "--config", str(cfg), "--duration", "10", "--jsonl", str(tmp_path / "p.jsonl"),
                "--no-view")
    assert "the config says fps" not in proc.stderr  # the clip's own rate: no warning that the ring is shorter
    assert proc.returncode == 0, proc.stderr
    [d] = [p for p in out.iterdir() if not p.name.startswith(".")]
    ticks = [json.loads(x) for x in (d / "ticks.jsonl").read_text().splitlines()]
    first = next(t for t in ticks if t["compare"])
    assert first["restore"]["eyes"]["cabin"]  # the baseline had samples when it started
    assert ticks[0]["restore"]["front"]["rows"]["face:cam"]
    replayed = edge("replay", str(d), "--json")
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    result = json.loads(replayed.stdout)
    assert result["identical"] and result["compared"] >= 8
