"""What-if replays (edge.evaluate.perturb, edge eval --recordings --perturb): front-end features
changed before the model reads them, only where the stage measured something."""

from __future__ import annotations

import numpy as np
import pytest

from edge.errors import ConfigError
from edge.evaluate.perturb import Change, feature_hook, parse_changes
from edge.features.serve import Features
from edge.front.features import FrontSpec
from tests.conftest import ROOT

SPEC = FrontSpec(("face.present", "face.eye_open_left", "face.yaw", "speech.p"))


def _window() -> Features:
    front = np.array([[1, 0.25, 2.0, 0.9],    # a face
                      [0, 0.0, 0.0, 0.8],     # no face: stays zeros, speech still changes
                      [1, 0.30, -1.0, 0.1],   # a face, but no frame here (masked)
                      [1, 0.20, 40.0, 0.0]], np.float32)
    return Features(np.zeros((0,), np.float32), np.ones(4, np.float32), np.zeros((1, 2, 2), np.float32),
                    np.ones(2, np.float32), front, np.array([1, 1, 0, 1], np.float32))


def test_changes_parse_and_name_the_syntax_when_wrong() -> None:
    assert parse_changes(["face.eye_open_left*0.75", "face.yaw+-15", "speech.p+1e-1"]) == [
        Change("face.eye_open_left", "*", 0.75), Change("face.yaw", "+", -15.0),
        Change("speech.p", "+", 0.1)]
    assert str(Change("face.yaw", "+", -15.0)) == "face.yaw+-15"
    for bad in ("face.yaw", "yaw+15", "face.yaw=15", "face.yaw*x"):
        with pytest.raises(ConfigError, match="FEATURE\\*VALUE or FEATURE\\+VALUE"):
            parse_changes([bad])


def test_a_change_applies_where_the_stage_found_something_and_a_frame_was() -> None:
    f = _window()
    hook = feature_hook(SPEC, parse_changes(["face.eye_open_left*0.5", "face.yaw+10",
                                             "speech.p*0.5"]))
    g = hook(f)
    assert g.front is not None and f.front is not None
    assert g.front[:, 1] == pytest.approx([0.125, 0.0, 0.30, 0.10])  # row 2 masked: untouched
    assert g.front[:, 2] == pytest.approx([12.0, 0.0, -1.0, 50.0])  # no face: no yaw made up
    assert g.front[:, 3] == pytest.approx([0.45, 0.4, 0.1, 0.0])  # speech has no present
    assert f.front[0, 1] == pytest.approx(0.25)  # the window itself is not changed
    assert g.front_mask is f.front_mask and g.audio is f.audio
    with pytest.raises(ConfigError, match="does not read face.pitch"):
        feature_hook(SPEC, parse_changes(["face.pitch+5"]))


def test_a_turned_head_on_real_footage_reads_as_distraction() -> None:
    """End to end on driver-dev-alert-blink through the served config: the head turned 60
    degrees on every frame is a long distraction; a change by nothing changes nothing."""
    from edge.config import load_config
    from edge.evaluate.eval import load_model
    from edge.evaluate.evalrec import run_recording

    folder = ROOT.parent / "shared" / "realworld" / "driver-dev-alert-blink"
    if not folder.exists() or not (ROOT / "engines" / "front" / ".imported").exists():
        pytest.skip("needs ../shared/realworld and the imported front ends (edge front-ends import)")
    cfg = load_config(ROOT / "configs" / "driver.yaml")
    engine = load_model(cfg)
    spec = FrontSpec.from_dict(engine.card.front)
    plain = run_recording(cfg, folder, engine)
    same = run_recording(cfg, folder, engine, feature_hook=feature_hook(spec, parse_changes(
        ["face.yaw+0"])))
    assert np.array_equal(plain.probs, same.probs) and plain.events == same.events == []
    turned = run_recording(cfg, folder, engine, feature_hook=feature_hook(spec, parse_changes(
        ["face.yaw+-60"])))
    k = engine.card.class_names.index("distracted")
    assert (turned.probs[:, k] >= engine.card.classes[k].threshold).mean() > 0.8
    assert "long_distraction" in {e["rule"] for e in turned.events if e["event"] == "start"}


def test_a_what_if_report_says_its_labels_are_the_recording_s() -> None:
    """``--recordings --perturb face.yaw+25`` moves head-turn's glances toward the road and its
    road aside: the labels still describe the head as recorded, and the report says so under
    the change it names."""
    from edge.evaluate.evalrec import format_recordings

    cls = {"f1": 0.0, "precision": 0.0, "recall": 0.0, "event_precision": 0.0,
           "event_recall": 0.0, "latency_s_p50": None}
    mode = {"classes": {"distracted": cls}, "macro_f1": 0.0}
    report = {"both": mode, "video_masked": mode, "audio_masked": mode, "per_recording": {},
              "perturb": ["face.yaw+25"]}
    text = format_recordings(report)
    assert "front-end features changed before the model: face.yaw+25" in text
    assert "the labels are as recorded" in text
    del report["perturb"]
    assert "labels are as recorded" not in format_recordings(report)
