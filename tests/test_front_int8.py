"""INT8 front ends (``edge front-ends build --int8``): calibrated on real frames, held-out clips
gate them, the files load through ``open_front(..., int8=True)`` and the stages.

The build tests need ``engines/front`` (``edge front-ends import``) and ``../shared/realworld``;
without them they skip, naming what is missing. They quantize copies of the models in
``tmp_path`` from a few dozen frames of two real driver clips (one calibrates, the other is
held out), with min-max ranges to stay fast; the mesh needs its most sensitive layers in float, as in
the full build.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from edge.errors import EdgeError
from edge.front.card import load_front_card
from edge.front.quantize import Budget, Clip, split_clips

ROOT = Path(__file__).resolve().parents[1]
FRONT = ROOT / "engines" / "front"
REALWORLD = Path(__file__).resolve().parents[2] / "shared" / "realworld"
CLIPS = [REALWORLD / "driver-dev-alert-blink" / "video.mkv", REALWORLD / "driver-dev-head-turn" / "video.mkv"]
HELD_OUT = "driver-dev-head-turn"


def _need_models_and_footage(names: tuple[str, ...]) -> None:
    missing = [str(FRONT / f"{n}.onnx") for n in names if not (FRONT / f"{n}.onnx").is_file()]
    missing += [str(c) for c in CLIPS if not c.is_file()]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (edge front-ends import; ../shared/realworld)")


def _copy(names: tuple[str, ...], to: Path) -> None:
    for n in names:
        shutil.copyfile(FRONT / f"{n}.onnx", to / f"{n}.onnx")
        shutil.copyfile(FRONT / f"{n}.yaml", to / f"{n}.yaml")


def test_default_split_holds_out_every_second_clip_by_name_and_check_names_must_exist() -> None:
    clips = [Clip(n, Path(n), []) for n in ("d", "a", "c", "b")]
    calib, held = split_clips(clips)
    assert [c.name for c in calib] == ["a", "c"] and [c.name for c in held] == ["b", "d"]
    calib, held = split_clips(clips, ["a"])
    assert [c.name for c in held] == ["a"] and len(calib) == 3
    with pytest.raises(EdgeError, match="no such clip"):
        split_clips(clips, ["z"])
    with pytest.raises(EdgeError, match="at least one calibration clip"):
        split_clips(clips[:1])


def test_budget_overrides_take_known_keys_only() -> None:
    assert Budget().with_overrides(["ear_p95=0.03"]).ear_p95 == 0.03
    with pytest.raises(EdgeError, match="KEY=VALUE"):
        Budget().with_overrides(["ear=0.03"])


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    names = ("face_detector", "face_landmarks")
    _need_models_and_footage(names)
    from edge.front.quantize import build_front_int8

    d = tmp_path_factory.mktemp("front")
    _copy(names, d)
    report = build_front_int8(d, CLIPS, check=[HELD_OUT], models=names, method="minmax", auto_exclude=True,
                              max_frames=36, max_calib=24, log=None)
    return d, report


def test_face_detector_and_mesh_int8_pass_the_gate_on_a_held_out_real_clip(built: tuple[Path, object]) -> None:
    d, report = built
    from edge.front.quantize import BuildReport

    assert isinstance(report, BuildReport)
    assert report.check == [HELD_OUT] and report.calibration == ["driver-dev-alert-blink"]
    assert report.passed, report.table()
    det, mesh = report.models
    assert det.figures["found_fp32"] > 0 and det.figures["found_agreement"] >= 0.99
    assert det.figures["iou_p5"] >= 0.85
    assert mesh.figures["present_fp32"] > 0 and mesh.figures["ear_diff_p95"] <= 0.02
    for m in report.models:
        assert (d / f"{m.name}.int8.onnx").is_file()
        assert m.ms["fp32"] > 0 and m.ms["int8"] > 0
        assert not [t for t in m.trt if t.startswith("error")], m.trt
        metrics = load_front_card(d / f"{m.name}.yaml").metrics["int8"]
        assert metrics["gate"] == "pass" and metrics["check"]["clips"] == [HELD_OUT]
        assert metrics["calibration"]["clips"] == ["driver-dev-alert-blink"]
        assert set(metrics["ms_per_inference_ort_1_thread"]) == {"fp32", "int8"}


def test_open_front_int8_and_the_face_stage_run_the_int8_files(built: tuple[Path, object]) -> None:
    import cv2

    from edge.front.engines import open_front
    from edge.front.face import FaceStage

    d, _ = built
    engine = open_front("face_detector", d, int8=True)
    assert engine.describe()["model"].endswith("face_detector.int8.onnx")
    out = engine.infer({"image": np.zeros((1, 128, 128, 3), np.float32)})
    assert out["scores"].shape == (1, 896, 1)
    cap = cv2.VideoCapture(str(CLIPS[1]))
    ok, frame = cap.read()
    cap.release()
    assert ok
    stage = FaceStage(d, int8=True)
    assert stage.mesh.describe()["model"].endswith("face_landmarks.int8.onnx")
    assert stage.process(frame).present


def test_a_model_over_budget_is_left_fp32_and_its_card_says_so(tmp_path: Path) -> None:
    names = ("face_detector",)
    _need_models_and_footage(names)
    from edge.front.engines import has_int8
    from edge.front.quantize import build_front_int8

    _copy(names, tmp_path)
    (tmp_path / "face_detector.int8.onnx").write_bytes(b"stale")
    impossible = Budget(detector_iou_p5=1.01)
    report = build_front_int8(tmp_path, CLIPS, check=[HELD_OUT], models=names, budget=impossible,
                              method="minmax", max_frames=12, max_calib=8, log=None)
    assert not report.passed and "iou_p5" in report.models[0].failures[0]
    assert not has_int8("face_detector", tmp_path)
    assert load_front_card(tmp_path / "face_detector.yaml").metrics["int8"]["gate"].startswith("over budget")
    assert "left FP32" in report.table()
