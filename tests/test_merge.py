"""``edge merge``: one model whose classes come from several trained models, each class with its
own part's logit and threshold, and the refusals that keep a merge honest."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from edge.cli import main
from edge.errors import ConfigError, EngineError
from edge.export.merge import merge_models, part_seeds
from edge.runtime.base import load_engine
from edge.runtime.card import load_card, save_card
from edge.train.cards import make_card
from tests.tiny_model import tiny_model


def logits(path: Path, feed: dict[str, np.ndarray]) -> np.ndarray:
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return np.asarray(sess.run(None, feed)[0])


def some_inputs(path: Path, n: int = 3) -> dict[str, np.ndarray]:
    card = load_card(path.with_suffix(".yaml"))
    rng = np.random.default_rng(5)
    return {k: rng.standard_normal([n if isinstance(d, str) else d for d in v.shape]).astype(np.float32)
            for k, v in card.inputs.items()}


@pytest.fixture()
def two_parts(tmp_path: Path) -> tuple[Path, Path]:
    """Two driver models over the same inputs: A, and B with other weights and thresholds."""
    card = make_card("driver", "a")
    a = tiny_model(tmp_path, card, "a")
    b_card = card.model_copy(deep=True, update={"name": "b"})
    for c in b_card.classes:
        c.threshold = 0.3 if c.name == "phone" else 0.6
    b_card.provenance = {"seed": 4, "members": 2, "command": "edge train --seed 4 --members 2"}
    b = tiny_model(tmp_path, b_card, "b", scale=-2.0)
    return a, b


def test_each_class_answers_with_its_parts_logit_and_threshold(tmp_path: Path,
                                                               two_parts: tuple[Path, Path]) -> None:
    a, b = two_parts
    out = tmp_path / "m" / "merged.onnx"
    card = merge_models(a, {"phone": b, "talking": b}, out, command="edge merge ...")
    feed = some_inputs(a)
    la, lb, lm = logits(a, feed), logits(b, feed), logits(out, feed)
    names = card.class_names
    assert names == load_card(a.with_suffix(".yaml")).class_names
    taken = [names.index("phone"), names.index("talking")]
    kept = [i for i in range(len(names)) if i not in taken]
    assert not np.allclose(la[:, taken], lb[:, taken])  # the parts differ, so this proves a pick
    np.testing.assert_array_equal(lm[:, taken], lb[:, taken])
    np.testing.assert_array_equal(lm[:, kept], la[:, kept])
    saved = load_card(tmp_path / "m" / "merged.yaml")
    assert saved.name == "merged" and saved.metrics == {}
    assert {c.name: c.threshold for c in saved.classes}["phone"] == 0.3
    assert {c.name: c.threshold for c in saved.classes}["eyes_closed"] == 0.5
    parts = saved.provenance["parts"]
    assert [p["model"] for p in parts] == ["a.onnx", "b.onnx"]
    assert parts[1]["classes"] == ["phone", "talking"] and parts[1]["provenance"]["seed"] == 4
    assert len(parts[0]["sha256"]) == 64 and saved.provenance["command"] == "edge merge ..."
    # the runtime serves it as any model: its card checked against the graph
    engine = load_engine("onnx", out, saved, {"threads": 1})
    np.testing.assert_allclose(next(iter(engine.infer(feed).values())), lm, rtol=1e-6)
    # every part's training seeds stay refused as evaluation seeds
    assert part_seeds(saved) == [4, 5]


def test_a_part_that_reads_its_inputs_otherwise_is_refused_naming_the_field(
    tmp_path: Path, two_parts: tuple[Path, Path]
) -> None:
    a, b = two_parts
    card = load_card(b.with_suffix(".yaml"))
    card.window = {**card.window, "frames": 16.0}
    save_card(card, b.with_suffix(".yaml"))
    with pytest.raises(EngineError, match="window differs"):
        merge_models(a, {"phone": b}, tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


def test_refusals_unknown_class_int8_part_nothing_to_merge_and_writing_over_a_part(
    tmp_path: Path, two_parts: tuple[Path, Path]
) -> None:
    import onnx
    from onnx import helper

    a, b = two_parts
    with pytest.raises(EngineError, match="seatbelt: not a class"):
        merge_models(a, {"seatbelt": b}, tmp_path / "m.onnx")
    with pytest.raises(EngineError, match="nothing to merge"):
        merge_models(a, {}, tmp_path / "m.onnx")
    with pytest.raises(EngineError, match="is one of the parts"):
        merge_models(a, {"phone": b}, b)
    with pytest.raises(EngineError, match="FP32 NAME.onnx"):
        merge_models(a, {"phone": b}, tmp_path / "m.int8.onnx")
    q = onnx.load(str(b))
    q.graph.node.append(helper.make_node("QuantizeLinear", ["feat", "s"], ["q"]))
    onnx.save(q, str(tmp_path / "q.onnx"))
    save_card(load_card(b.with_suffix(".yaml")), tmp_path / "q.yaml")
    with pytest.raises(EngineError, match="an INT8 model; merge the FP32 models"):
        merge_models(a, {"phone": tmp_path / "q.onnx"}, tmp_path / "m.onnx")


def test_a_merged_model_is_not_fine_tuned_as_one_network(tmp_path: Path,
                                                         two_parts: tuple[Path, Path]) -> None:
    from edge.train.finetune import model_from_onnx

    a, b = two_parts
    out = tmp_path / "merged.onnx"
    card = merge_models(a, {"phone": b}, out)
    with pytest.raises(ConfigError, match="a merged model .* is not one network"):
        model_from_onnx(out, card)


def test_the_command_line_merges_and_refuses_a_bad_take(tmp_path: Path, two_parts: tuple[Path, Path],
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    a, b = two_parts
    out = tmp_path / "cli" / "m.onnx"
    assert main(["merge", "--base", str(a), "--take", f"eyes_closed={b}", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "b.onnx: eyes_closed" in text and "a.onnx: yawning, distracted, phone, talking" in text
    prov = load_card(out.with_suffix(".yaml")).provenance
    assert [p["classes"] for p in prov["parts"]] == [["yawning", "distracted", "phone", "talking"],
                                                     ["eyes_closed"]]
    assert main(["merge", "--base", str(a), "--take", "eyes_closed", "--out", str(out)]) == 2
    assert "--take eyes_closed: CLASS=MODEL.onnx" in capsys.readouterr().err


def test_a_merge_may_set_a_class_s_threshold_and_the_card_keeps_the_one_validation_picked(
    tmp_path: Path, two_parts: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """``--threshold CLASS=P``: an operating point measured after training (a rule over the class
    served better at another) goes into the merged card, which says what validation picked."""
    a, b = two_parts
    out = tmp_path / "t" / "m.onnx"
    assert main(["merge", "--base", str(a), "--take", f"phone={b}", "--threshold", "phone=0.7",
                 "eyes_closed=0.8", "--out", str(out)]) == 0
    card = load_card(out.with_suffix(".yaml"))
    assert {c.name: c.threshold for c in card.classes} == {
        "eyes_closed": 0.8, "yawning": 0.5, "distracted": 0.5, "phone": 0.7, "talking": 0.5}
    assert card.provenance["thresholds"] == {"eyes_closed": {"picked": 0.5, "set": 0.8},
                                             "phone": {"picked": 0.3, "set": 0.7}}
    assert ("eyes_closed 0.8 (validation picked 0.5), phone 0.7 (validation picked 0.3)"
            in card.notes)
    plain = merge_models(a, {"phone": b}, tmp_path / "p.onnx")
    assert "thresholds" not in plain.provenance and "picked" not in plain.notes
    # merged again (a merged model as the base): what validation picked is still told apart
    again = merge_models(out, {"talking": b}, tmp_path / "again.onnx",
                         thresholds={"eyes_closed": 0.75})
    assert again.provenance["thresholds"] == {"eyes_closed": {"picked": 0.5, "set": 0.75},
                                              "phone": {"picked": 0.3, "set": 0.7}}
    for bad, why in (("seatbelt=0.5", "no such class"), ("phone=1.2", "0.05-0.99"),
                     ("phone", "CLASS=P"), ("phone=high", "CLASS=P")):
        assert main(["merge", "--base", str(a), "--take", f"phone={b}", "--threshold", bad,
                     "--out", str(out)]) == 2, bad
        assert why in capsys.readouterr().err, bad
    assert main(["merge", "--base", str(a), "--take", f"phone={b}", "--threshold", "phone=0.7",
                 "phone=0.6", "--out", str(out)]) == 2
    assert "phone given twice" in capsys.readouterr().err


def test_merging_the_shipped_driver_parts_again_keeps_what_the_shipped_card_reads(
    tmp_path: Path,
) -> None:
    """`make train` and fine-tuning merge `engines/parts` again: the card they write must read
    the features as the shipped one does (front.road_yaw, added after training, included), and
    carry its notes, or a rebuild would quietly lose what the shipped card does."""
    root = Path(__file__).resolve().parents[1]
    parts = root / "engines" / "parts"
    shipped = load_card(root / "engines" / "driver-front.yaml")
    card = merge_models(parts / "driver-front-2x1200.onnx",  # as `make train` merges them
                        {"eyes_closed": parts / "driver-front-3x400.onnx"},
                        tmp_path / "driver-front.onnx",
                        thresholds={"eyes_closed": 0.8, "distracted": 0.6})
    assert card.front == shipped.front and "road_yaw" in card.front
    assert card.notes == shipped.notes
    assert [(c.name, c.threshold) for c in card.classes] == [
        (c.name, c.threshold) for c in shipped.classes]
    assert card.provenance["thresholds"] == shipped.provenance["thresholds"]
    for part in ("driver-front-2x1200", "driver-front-3x400"):
        assert load_card(parts / f"{part}.yaml").front == shipped.front


def test_a_part_may_read_some_of_the_base_s_front_features_picked_in_the_graph(
    tmp_path: Path,
) -> None:
    """A network trained before the base read gaze serves its classes from the base's window:
    the merged graph feeds it its own columns of ``front`` (gaze sits among the face features,
    so a wrong pick shows); a part reading a feature the base lacks is refused."""
    from edge.train.cards import make_front_card

    gaze_card = make_front_card("driver", "g", frames=16, gaze=True)
    eyes_card = make_front_card("driver", "e", frames=16)
    base = tiny_model(tmp_path, gaze_card, "g")
    eyes = tiny_model(tmp_path, eyes_card, "e", scale=-3.0)
    have, want = gaze_card.front["features"], eyes_card.front["features"]
    assert set(want) < set(have) and have[:len(want)] != want
    out = tmp_path / "m" / "merged.onnx"
    card = merge_models(base, {"eyes_closed": eyes}, out)
    assert card.front == gaze_card.front and card.inputs["front"].shape == ["B", 16, len(have)]
    feed = some_inputs(base)
    own = {**feed, "front": feed["front"][:, :, [have.index(f) for f in want]]}
    k = card.class_names.index("eyes_closed")
    lm, le, lb = logits(out, feed), logits(eyes, own), logits(base, feed)
    np.testing.assert_allclose(lm[:, k], le[:, k], rtol=1e-6)
    rest = [i for i in range(len(card.class_names)) if i != k]
    np.testing.assert_array_equal(lm[:, rest], lb[:, rest])
    with pytest.raises(EngineError, match="face.gaze_x, face.gaze_y, which the base does not"):
        merge_models(eyes, {"phone": base}, tmp_path / "n.onnx")


def test_a_model_trained_on_glances_the_eyes_led_is_calibrated_on_them_too(tmp_path: Path) -> None:
    """``edge train --eye-glances`` goes into the card (a merged card keeps it in its part), and
    the simulated calibration set is drawn with it, so that INT8 scales cover such glances."""
    from edge.export.calib import sim_windows
    from edge.export.merge import trained_eye_glances
    from edge.train.cards import make_front_card

    root = Path(__file__).resolve().parents[1]
    if not (root / "engines" / "front" / "silero_vad.onnx").is_file():
        pytest.skip("needs the front ends (edge front-ends import)")
    led = make_front_card("driver", "g", frames=16, gaze=True)
    led.provenance = {"seed": 0, "eye_glances": 0.3}
    base = tiny_model(tmp_path, led, "g")
    eyes = tiny_model(tmp_path, make_front_card("driver", "e", frames=16), "e")
    merged = merge_models(base, {"eyes_closed": eyes}, tmp_path / "m.onnx")
    assert trained_eye_glances(led) == 0.3 and trained_eye_glances(merged) == 0.3
    assert trained_eye_glances(load_card(eyes.with_suffix(".yaml"))) == 0.0
    plain = led.model_copy(deep=True, update={"provenance": {}})
    led.provenance["eye_glances"] = 1.0
    a, b = (sim_windows(c, 4, 24.0, 0, None) for c in (plain, led))
    gx = led.front["features"].index("face.gaze_x")
    assert a.front is not None and b.front is not None
    assert not np.array_equal(a.front[..., gx], b.front[..., gx])
    other = [k for k in range(a.front.shape[-1]) if k not in (gx, gx + 1)]
    assert np.array_equal(a.labels, b.labels)
    assert not np.array_equal(a.front[..., other], b.front[..., other])  # the head turned less
