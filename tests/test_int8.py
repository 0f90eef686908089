"""INT8: calibration sets, QDQ builds behind an accuracy gate, compare, and the TensorRT checks."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from edge.export.calib import calibrate, load_calibration, stratified
from edge.runtime.card import TensorInfo, card_path_for, load_card
from edge.config import parse_config
from edge.errors import ConfigError, EngineError
from edge.train.data import WindowSet
from edge.runtime.trt import check_trt, manifest_problems

ROOT = Path(__file__).resolve().parent.parent
onnx = pytest.importorskip("onnx")
needs_trt = pytest.mark.skipif(
    importlib.util.find_spec("tensorrt") is None or importlib.util.find_spec("pycuda") is None,
    reason="needs TensorRT and pycuda (gpu extra) and an NVIDIA GPU",
)


COUNT = 480  # calibration windows of the driver set


def reference_model(tmp: Path, name: str = "driver-av") -> Path:
    """A copy of a committed reference model and its card (the build writes into the card)."""
    for suffix in (".onnx", ".yaml"):
        shutil.copy(ROOT / "engines" / f"{name}{suffix}", tmp / f"{name}{suffix}")
    return tmp / f"{name}.onnx"


def config_for(model: Path) -> str:
    return f"""
sources:
  sim: {{type: scenario, scenario: driver, width: 320, height: 240, fps: 15}}
streams:
  s: {{video: sim, audio: sim}}
window: {{seconds: 2.0, frames: 8, hop: 0.5}}
model: {{path: "{model}"}}
"""


@pytest.fixture(scope="module")
def driver_set(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("int8")
    model = reference_model(tmp)
    cfg = parse_config(config_for(model))
    # 24 scenarios, a quarter held out: about 140 check windows, so that one window decided the
    # other way moves macro F1 by less than the gate's 1-point budget (with 40, one flip of a
    # rare class's window cost 1.2 points and the gate measured noise).
    calibrate(cfg, tmp / "calib", scenarios=24, seconds=10.0, count=COUNT, holdout=0.25, log=None)
    return model, tmp / "calib"


def test_calibration_set_is_hashed_split_by_scenario_and_tamper_evident(driver_set: tuple[Path, Path]) -> None:
    model, calib = driver_set
    card = load_card(card_path_for(model))
    cs = load_calibration(calib, card)
    m = cs.manifest
    assert m["count"] == len(cs.windows) == COUNT
    assert m["calib"] + m["check"] == COUNT and m["check"] > 0
    assert m["classes"] == card.class_names and m["labelled"]
    # check windows come from scenarios that no calib window comes from
    assert not set(cs.part("check").scenario) & set(cs.part("calib").scenario)
    assert cs.windows.video.shape[1:] == tuple(card.inputs["video"].shape[1:])
    # a changed shard is caught by its hash
    bad = calib.parent / "tampered"
    shutil.copytree(calib, bad)
    shard = bad / m["shards"][0]["file"]
    data = bytearray(shard.read_bytes())
    data[-100] ^= 0xFF
    shard.write_bytes(bytes(data))
    with pytest.raises(ConfigError, match="hash differs"):
        load_calibration(bad, card)
    # and a set cut for another model's inputs is refused
    other = card.model_copy(deep=True)
    other.inputs["audio"] = TensorInfo(shape=["B", 1, 64, 99])
    with pytest.raises(ConfigError, match="takes"):
        load_calibration(calib, other)


def test_live_windows_are_unlabelled_and_held_out_by_five_second_stretch(tmp_path: Path) -> None:
    """``--from live``: windows of the running sources, no labels, grouped by stream and 5 s
    stretch, whole groups held out (one stream must still give check windows)."""
    cfg = parse_config(config_for(reference_model(tmp_path)))
    mf = calibrate(cfg, tmp_path / "live", source="live", live_seconds=8.0, holdout=0.5, log=None)
    assert mf["labelled"] is False and mf["calib"] >= 5 and mf["check"] >= 2, mf
    cs = load_calibration(tmp_path / "live")
    assert (cs.windows.labels == -1).all()
    groups = cs.windows.scenario
    assert set(groups[~cs.check]) == {0} and set(groups[cs.check]) == {1}  # 10 ticks of 0.5 s each
    want = load_card(card_path_for(tmp_path / "driver-av.onnx")).inputs["video"].shape[1:]
    assert list(cs.windows.video.shape[1:]) == want  # the pixels the model takes, as served


def test_simulated_windows_are_added_to_the_calibrated_part_only(tmp_path: Path) -> None:
    """``--with-sim N`` (recordings or live): N simulated scenarios' windows, 16 of each, join
    the calibrated windows as groups of their own; the checked windows are the live ones alone,
    as without them; the manifest says so. A set --from sim is refused the option."""
    from edge.export.calib import SIM_WINDOWS_EACH

    cfg = parse_config(config_for(reference_model(tmp_path)))
    mf = calibrate(cfg, tmp_path / "live", source="live", live_seconds=8.0, holdout=0.5,
                   log=None, with_sim=1, seconds=6.0)
    assert mf["with_sim"] == 1 and mf["sim_windows"] == SIM_WINDOWS_EACH
    assert "with 16 windows of 1 simulated driver scenarios" in mf["source"]
    assert mf["labelled"] is False  # the live windows have no labels
    cs = load_calibration(tmp_path / "live")
    live = (cs.windows.labels == -1).all(1)
    assert int((~live).sum()) == SIM_WINDOWS_EACH and (cs.windows.labels[~live] >= 0).all()
    assert not cs.check[~live].any() and cs.check[live].any()  # simulated: calibrated only
    assert mf["check"] == int(cs.check.sum()) and mf["calib"] == int((~cs.check).sum())
    assert not set(cs.windows.scenario[~live]) & set(cs.windows.scenario[live])  # own groups
    with pytest.raises(ConfigError, match="--with-sim adds simulated windows"):
        calibrate(cfg, tmp_path / "sim", source="sim", scenarios=1, with_sim=1, log=None)


def test_an_int8_build_from_live_windows_is_gated_on_fp32s_clear_decisions(tmp_path: Path) -> None:
    """``edge build`` on an unlabelled (live) set: scored against FP32's clear decisions, says
    when there are too few for one change to fit the budget, records them in the card (no F1:
    there are no labels), and fails over the budget with the measure named."""
    import io

    from edge.export.quant import GateFailed, build_int8

    model = reference_model(tmp_path)
    cfg = parse_config(config_for(model))
    calibrate(cfg, tmp_path / "live", source="live", live_seconds=8.0, holdout=0.5, log=None)
    log = io.StringIO()
    _, res = build_int8(model, tmp_path / "live", method="minmax", log=log)
    said = log.getvalue()
    assert "scored against FP32's decisions" in said and "only " in said and "clear decisions:" in said
    assert res.clear_decisions is not None and 0 < res.clear_decisions < 100
    int8 = load_card(card_path_for(model)).metrics["int8"]
    assert int8["reference"] == "fp32 decisions" and "int8_f1" not in int8
    assert int8["clear_decisions"] == res.clear_decisions
    assert int8["clear_decisions_changed"] == len(res.flipped) <= res.clear_decisions // 100
    # what each costs here, as serving runs it, in the log and the card (measured, not judged)
    cost = int8["cpu_ms_per_window"]
    assert cost["fp32"] > 0 and cost["int8"] > 0 and (cost["batch"], cost["threads"]) == (1, 1)
    assert re.search(r"on this CPU \(.+int8 dot-product instruction\), a window at a time on one "
                     rf"thread: FP32 {cost['fp32']:.2f} ms, INT8 {cost['int8']:.2f} ms", said)
    assert ("INT8 is no faster than FP32 here" in said) == (cost["int8"] >= cost["fp32"])
    if cost["int8"] >= cost["fp32"]:  # the reason as the CPU has it
        from edge.runtime.onnx import cpu_int8_dot

        assert ("are made to gain with VNNI" if cpu_int8_dot() is False
                else "small, even with an int8 dot product") in said
    from edge.export.compare import compare, format_compare

    r = compare(model, model.with_name("driver-av.int8.onnx"), tmp_path / "live")
    assert "f1" not in r and r["against_a"]["clear_decisions"] == res.clear_decisions
    assert f"of A's {res.clear_decisions} clear decisions" in format_compare(r)
    served = r["serving_ms_per_window"]  # one window at a time, as serving calls the engine
    assert served["a"] > 0 and served["b"] > 0
    assert f"{served['b']:.2f} one at a time as served" in format_compare(r)
    with pytest.raises(GateFailed, match=r"INT8's changed decisions cost 0.00 points \(budget -1\)"):
        build_int8(model, tmp_path / "live", method="minmax", budget_points=-1, log=None,
                   out=tmp_path / "x.int8.onnx")


def test_stratified_choice_takes_round_robin_over_strata() -> None:
    n = 100
    labels = np.zeros((n, 2), np.float32)
    labels[:5, 1] = 1.0  # a rare class: 5 of 100 windows
    ws = WindowSet(
        np.zeros((n, 1, 1, 1, 1), np.float16), np.ones((n, 1), np.float32),
        np.zeros((n, 1, 1, 1), np.float16), np.ones((n, 1), np.float32), labels,
        np.zeros(n, np.int32), np.arange(n, dtype=np.float64),
    )
    idx = stratified(ws, 10, lambda i: int(labels[i, 1]), seed=0)
    assert len(idx) == 10 and len(set(idx.tolist())) == 10
    assert (labels[idx, 1] == 1).sum() == 5  # the rare stratum gets its share, not 0.5


def test_int8_build_passes_the_gate_and_records_it_in_the_card(driver_set: tuple[Path, Path]) -> None:
    from edge.export.quant import build_int8

    model, calib = driver_set
    out, res = build_int8(model, calib, method="minmax", log=None)
    assert out == model.with_name("driver-av.int8.onnx") and out.is_file()
    q = onnx.load(str(out))
    ops = {n.op_type for n in q.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    assert res.drop_points <= 1.0 and res.windows > 0
    card = load_card(card_path_for(model))
    assert card.metrics["int8"]["calibration_hash"] == json.loads((calib / "manifest.json").read_text())["hash"]
    assert card.metrics["int8"]["float_layers"]  # the logits layers stay float
    # what ONNX Runtime wrote is what TensorRT accepts: symmetric, per-channel weights only
    assert [f for f in check_trt(out) if f.severity == "error"] == []


def test_gate_failure_exits_1_with_a_table_and_auto_exclude_walks_the_layers(
    driver_set: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    from edge.cli import main
    from edge.export.quant import GateFailed, build_int8

    model, calib = driver_set
    # A budget no model can meet (a negative drop) fails the gate deterministically.
    rc = main(["build", "--model", str(model), "--int8", "--calibration", str(calib),
               "--method", "minmax", "--budget", "-50", "--out", str(model.with_name("x.int8.onnx"))])
    err = capsys.readouterr().err
    assert rc == 1
    assert "accuracy gate failed" in err and "macro" in err and "--auto-exclude" in err
    assert not model.with_name("x.int8.onnx").exists()
    with pytest.raises(GateFailed, match="every layer in float"):
        build_int8(model, calib, method="minmax", budget_points=-50, auto_exclude=True,
                   out=model.with_name("y.int8.onnx"), log=None)


def test_compare_reports_logit_differences_and_f1(driver_set: tuple[Path, Path]) -> None:
    from edge.export.compare import compare, format_compare
    from edge.export.quant import build_int8

    model, calib = driver_set
    int8 = model.with_name("driver-av.int8.onnx")
    if not int8.exists():
        build_int8(model, calib, method="minmax", log=None)
    same = compare(model, model, calib)
    assert same["max_abs_logit_diff"] == 0.0 and same["top_class_agreement"] == 1.0
    r = compare(model, int8, calib)
    assert 0.0 < r["max_abs_logit_diff"] < 2.0
    assert set(r["f1"]["a"]) == set(load_card(card_path_for(model)).class_names)
    assert "top class agrees" in format_compare(r)
    assert r["batch"] == {"a": 16, "b": 16} and "ms/window in batches of 16," in format_compare(r)


def test_compare_times_an_engine_in_the_batches_it_takes() -> None:
    """A TensorRT plan built for one window a batch is timed one at a time, and said so."""
    from types import SimpleNamespace

    from edge.export.compare import batch_for, format_compare

    assert [batch_for(SimpleNamespace(max_batch=m)) for m in (None, 1, 8, 64)] == [16, 1, 8, 16]
    r = {"a": "m.onnx", "b": "m.plan", "ms_per_window": {"a": 1.0, "b": 0.5},
         "batch": {"a": 16, "b": 1}, "serving_ms_per_window": {"a": 2.0, "b": 0.6},
         "windows": 10, "part": "check", "data": "d", "max_abs_logit_diff": 0.1,
         "mean_abs_logit_diff": 0.01, "top_class_agreement": 1.0, "decision_agreement": {}}
    lines = format_compare(r).splitlines()
    assert lines[0] == "A: m.onnx  (1.00 ms/window in batches of 16, 2.00 one at a time as served)"
    assert lines[1] == "B: m.plan  (0.50 ms/window in batches of 1, 0.60 one at a time as served)"


def _model(nodes: list, inputs: list, inits: list, opset: int = 17) -> object:
    from onnx import TensorProto, helper

    out = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    g = helper.make_graph(nodes, "g", inputs, [out], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


def test_against_fp32_decisions_a_borderline_window_counts_neither_way() -> None:
    """Unlabelled check windows: FP32's decision at 0.72 or 0.78 against a 0.70 threshold is
    chance, so INT8 moving it to 0.69 costs nothing; a clear one (0.97) changed costs its share
    of the clear decisions, and the logit differences and the decision agreement count every
    window."""
    from edge.export.gate import against_fp32, borderline, compare_logits

    card = load_card(ROOT / "engines" / "driver-front.yaml")
    th = np.array([c.threshold for c in card.classes])
    logit = np.log(th / (1 - th))
    n, c = 20, len(th)
    fp32 = np.tile(logit - 3.0, (n, 1))
    fp32[0, 4] = logit[4] + 0.1  # borderline positive
    fp32[1, 4] = logit[4] + 0.44  # still borderline (INT8 moved one such live window across)
    fp32[1, 2] = logit[2] + 2.2  # a clear positive
    int8 = fp32.copy()
    int8[0, 4] = logit[4] - 0.05
    int8[1, 4] = logit[4] - 0.02
    border = borderline(card, fp32)
    assert border.sum() == 2 and border[0, 4] and border[1, 4]
    res = against_fp32(card, fp32, int8)
    assert res.drop_points == pytest.approx(0.0) and res.decision_agreement < 1.0
    assert res.clear_decisions == n * c - 2 and res.flipped == [] and not res.over(1.0)
    truth = (fp32 >= logit).astype(np.float32)
    assert compare_logits(card, truth, fp32, int8).drop_points > 10  # macro F1: counted
    int8[1, 2] = logit[2] - 0.5  # the clear positive changed: 1 of 98 clear decisions
    res = against_fp32(card, fp32, int8)
    assert res.drop_points == pytest.approx(100 / 98) and res.collapsed == {}
    assert [(i, k) for i, k, _, _ in res.flipped] == [(1, "distracted")]
    def p(x: float) -> str:  # as the table prints a probability
        return f"{1.0 / (1.0 + np.exp(-x)):.3f}"

    # the shipped card's threshold sets them (0.70: FP32 0.955, INT8 0.586)
    assert f"window 1: distracted FP32 {p(logit[2] + 2.2)}, INT8 {p(logit[2] - 0.5)}" in res.table()
    assert compare_logits(card, truth, fp32, int8).int8_f1["distracted"] == 0.0  # macro F1 -20
    int8[5:7, 0] = logit[0] + 1.0  # two clear noes made yes where FP32 has no yes
    res = against_fp32(card, fp32, int8)
    assert res.drop_points == pytest.approx(300 / 98) and res.collapsed == {}
    int8[7, 0] = logit[0] + 1.0  # three: collapsed
    res = against_fp32(card, fp32, int8)
    assert list(res.collapsed) == ["eyes_closed"] and res.over(5.0)
    assert "eyes_closed: INT8 says yes on 3 clear no (FP32: 0 clear yes)" in res.table()
    assert res.windows == n and c == 5


def test_against_fp32_an_int8_that_moves_a_class_is_over_the_budget() -> None:
    """Against FP32's decisions on 60 windows: INT8 logits moved 0.3 on a class change none
    of the 300 clear decisions; moved -4 they change every yes of that class, listed."""
    from edge.export import gate

    card = load_card(ROOT / "engines" / "driver-front.yaml")
    th = np.array([c.threshold for c in card.classes])
    logit = np.log(th / (1 - th))
    rng = np.random.default_rng(3)
    fp32 = logit + rng.choice([-3.0, 3.0], size=(60, 5))
    for shift, changed, fails in ((0.3, 0, False), (-4.0, int((fp32[:, 4] > logit[4]).sum()), True)):
        int8 = fp32.copy()
        int8[:, 4] += shift
        res = gate.against_fp32(card, fp32, int8)
        assert len(res.flipped) == changed and (res.drop_points > 1.0) == fails == res.over(1.0)
        if fails:
            assert all(c == "talking" for _, c, _, _ in res.flipped)
            assert f"INT8 changed {changed} of FP32's 300 clear decisions" in res.table()


def test_against_fp32_a_rare_class_int8_loses_fails_however_many_easy_noes() -> None:
    """400 windows, FP32 says talking on 20 of them: INT8 saying no on all 20 changes 1 % of
    the 2000 clear decisions, within a 1-point budget, and still fails: the class collapsed.
    Two of its yeses lost, or one of 1, are changes, not a collapse (live windows overlap)."""
    from edge.export.gate import against_fp32

    card = load_card(ROOT / "engines" / "driver-front.yaml")
    th = np.array([c.threshold for c in card.classes])
    logit = np.log(th / (1 - th))
    fp32 = np.tile(logit - 3.0, (400, 1))
    fp32[:20, 4] = logit[4] + 2.0
    int8 = fp32.copy()
    int8[:20, 4] = logit[4] - 1.0
    res = against_fp32(card, fp32, int8)
    assert res.drop_points == pytest.approx(1.0) and res.over(1.0)
    assert res.collapsed == {"talking": "INT8 says no on 20 of FP32's 20 clear yes"}
    assert not against_fp32(card, fp32, np.where(np.arange(400)[:, None] < 2, int8, fp32)).over(1.0)
    one = fp32.copy()
    one[1:20, 4] = logit[4] - 3.0  # FP32 says talking once
    lost = one.copy()
    lost[0, 4] = logit[4] - 1.0
    res = against_fp32(card, one, lost)
    assert len(res.flipped) == 1 and res.collapsed == {} and not res.over(1.0)


def test_check_trt_names_what_the_parser_would_reject(tmp_path: Path) -> None:
    from onnx import TensorProto, helper, numpy_helper

    x4 = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["B", 3, 8, 8])
    x3 = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["B", 3, 8])
    w2 = numpy_helper.from_array(np.ones((4, 3, 3, 3), np.float32), "w")
    w1 = numpy_helper.from_array(np.ones((4, 3, 3), np.float32), "w")
    s1 = numpy_helper.from_array(np.array(0.1, np.float32), "s")
    sc = numpy_helper.from_array(np.full(3, 0.1, np.float32), "sc")
    z0 = numpy_helper.from_array(np.array(0, np.int8), "z0")
    z5 = numpy_helper.from_array(np.array(5, np.int8), "z5")
    zc = numpy_helper.from_array(np.zeros(3, np.int8), "zc")
    cases = {
        "ok": (_model([helper.make_node("Conv", ["x", "w"], ["y"], name="c")], [x4], [w2]), None),
        "conv1d": (_model([helper.make_node("Conv", ["x", "w"], ["y"], name="c")], [x3], [w1]), "2D and 3D only"),
        "custom": (_model([helper.make_node("Gelu", ["x"], ["y"], name="g", domain="com.microsoft")], [x4], []), "custom-domain"),
        "nonzero": (_model([helper.make_node("NonZero", ["x"], ["y"], name="nz")], [x4], []), "NonZero: not supported"),
        "asymmetric": (_model([helper.make_node("QuantizeLinear", ["x", "s", "z5"], ["q"], name="q"),
                               helper.make_node("DequantizeLinear", ["q", "s", "z5"], ["y"], name="dq")],
                              [x4], [s1, z5]), "is not 0"),
        "per-channel activation": (_model([helper.make_node("QuantizeLinear", ["x", "sc", "zc"], ["q"], name="q", axis=1),
                                           helper.make_node("DequantizeLinear", ["q", "sc", "zc"], ["y"], name="dq", axis=1)],
                                          [x4], [sc, zc]), "per-channel scale on an activation"),
        "computed weights": (_model([helper.make_node("Relu", ["x"], ["r"], name="r"),
                                     helper.make_node("Conv", ["x", "r"], ["y"], name="c")], [x4], []), "weights are computed"),
        "dynamic height": (_model([helper.make_node("Relu", ["x"], ["y"], name="r")],
                                  [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["B", 3, "H", 8])], []), "dimension 2 is dynamic"),
    }
    _ = z0
    for name, (model, expect) in cases.items():
        path = tmp_path / f"{name.replace(' ', '-')}.onnx"
        onnx.save(model, str(path))
        errors = [f.message for f in check_trt(path) if f.severity == "error"]
        if expect is None:
            assert errors == [], name
        else:
            assert any(expect in e for e in errors), (name, errors)


def test_check_trt_cli_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from edge.cli import main

    assert main(["build", "--check-trt", str(ROOT / "engines" / "driver-av.onnx")]) == 0
    assert "nothing TensorRT" in capsys.readouterr().out
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    assert main(["build", "--check-trt", str(bad)]) == 2
    assert "not an ONNX model" in capsys.readouterr().err


def test_a_plan_whose_onnx_changed_is_not_deserialized_and_onnx_runtime_serves(tmp_path: Path) -> None:
    from edge.runtime.base import open_engine
    from edge.runtime.trt import manifest_path, sha256_file

    model = reference_model(tmp_path)
    plan = tmp_path / "driver-av.plan"
    plan.write_bytes(b"\x00plan bytes")
    manifest = {"tensorrt": "10.3.0", "gpu": "Orin", "compute_capability": "8.7",
                "onnx": "driver-av.onnx", "onnx_sha256": "0" * 64, "plan_sha256": sha256_file(plan)}
    manifest_path(plan).write_text(json.dumps(manifest))
    assert any("changed since the plan was built" in p for p in manifest_problems(plan))
    here = {"tensorrt": "10.7.0", "gpu": "Orin", "compute_capability": "8.7"}
    assert any("built for tensorrt '10.3.0'" in p for p in manifest_problems(plan, here))
    card = load_card(card_path_for(model))
    engine = open_engine("tensorrt", plan, card, {"threads": 1})
    assert engine.type_key == "onnx" and engine.model_path == model


@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is not None, reason="TensorRT is installed")
def test_missing_tensorrt_is_a_clear_error_naming_the_gpu_extra(tmp_path: Path) -> None:
    from edge.runtime.base import load_engine
    from edge.runtime.trt import manifest_path, sha256_file

    model = reference_model(tmp_path)
    plan = tmp_path / "driver-av.plan"
    plan.write_bytes(b"\x00plan bytes")
    manifest_path(plan).write_text(json.dumps({
        "onnx": "driver-av.onnx", "onnx_sha256": sha256_file(model), "plan_sha256": sha256_file(plan)}))
    with pytest.raises(EngineError, match=r"TensorRT is not installed: pip install -e '\.\[gpu\]'"):
        load_engine("tensorrt", plan, load_card(card_path_for(model)))


@needs_trt
@pytest.mark.gpu
def test_tensorrt_plan_matches_onnx_runtime(driver_set: tuple[Path, Path]) -> None:
    from edge.export.compare import compare
    from edge.export.quant import build_int8
    from edge.runtime.trt import build_plan

    model, calib = driver_set
    int8 = model.with_name("driver-av.int8.onnx")
    if not int8.exists():
        build_int8(model, calib, method="minmax", log=None)
    plan = build_plan(int8, log=None)
    r = compare(int8, plan, calib)
    assert r["top_class_agreement"] >= 0.98
    assert r["max_abs_logit_diff"] < 0.5


def test_int8_products_do_not_saturate_on_x86_cpus_without_vnni(tmp_path: Path) -> None:
    """ONNX Runtime's x86-64 uint8 x int8 kernel sums pairs of products into 16 bits, with
    saturation, on CPUs without VNNI: activations at the top of their range (255 once shifted
    to uint8) times weights at 127 overflow it. Such a layer, quantized with our recipe, was off
    by 83 on outputs up to 84 on an AVX2 CPU. Our sessions run such layers exactly: the
    same INT8 graph with every fusion off (Q/DQ arithmetic in float) is the reference. On a
    CPU with VNNI, or another architecture, this passes with or without the setting, which our
    sessions leave off where the CPU's flags show an int8 dot product (there it only costs)."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    from edge.export.quant import quantize, session
    from edge.runtime.onnx import X64_QUANT_PRECISION, session_options

    rng = np.random.default_rng(0)
    w1 = np.full((64, 32), 0.5, np.float32)
    w2 = rng.uniform(-0.5, 0.5, (32, 8)).astype(np.float32)
    nodes = [helper.make_node("Gemm", ["x", "w1"], ["h"]), helper.make_node("Relu", ["h"], ["r"]),
             helper.make_node("Gemm", ["r", "w2"], ["y"])]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 64])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                          [numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(w2, "w2")])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8),
              str(tmp_path / "f.onnx"))
    x = rng.uniform(0.8, 1.0, (32, 64)).astype(np.float32)

    class Reader:
        i = 0

        def get_next(self) -> dict[str, np.ndarray] | None:
            self.i += 1
            return {"x": x[(self.i - 1) * 8:self.i * 8]} if self.i <= 4 else None

        def rewind(self) -> None:
            self.i = 0

    q = tmp_path / "q.onnx"
    quantize(tmp_path / "f.onnx", q, Reader(), "minmax", [], tmp_path / "ranges.json")
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    ref = ort.InferenceSession(str(q), so, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    assert np.abs(ref).max() > 50  # the products are large: the case that overflows
    got = session(q).run(None, {"x": x})[0]
    assert np.abs(got - ref).max() < 1e-3 * np.abs(ref).max()
    avx2, vnni, unknown = tmp_path / "avx2", tmp_path / "vnni", tmp_path / "unknown"
    avx2.write_text("processor\t: 0\nflags\t\t: fpu sse4_1 avx avx2 fma\n")
    vnni.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512_vnni\n")
    unknown.write_text("processor\t: 0\n")
    for cpu in (avx2, unknown):
        assert session_options(cpuinfo=cpu).get_session_config_entry(X64_QUANT_PRECISION) == "1"
    with pytest.raises(RuntimeError, match="does not have configuration"):
        session_options(cpuinfo=vnni).get_session_config_entry(X64_QUANT_PRECISION)


def test_the_cpus_int8_dot_product_is_read_from_its_flags(tmp_path: Path) -> None:
    """INT8 beats FP32 on ONNX Runtime's CPU kernels where the CPU has an int8 dot product: an
    AVX2 CPU has none, AVX-512 VNNI, AVX-VNNI and ARM's asimddp (a Jetson's) are; unreadable
    flags say nothing."""
    from edge.runtime.onnx import cpu_int8_dot

    def cpu(text: str) -> bool | None:
        (tmp_path / "cpuinfo").write_text(text)
        return cpu_int8_dot(tmp_path / "cpuinfo")

    avx2 = "processor\t: 0\nflags\t\t: fpu sse4_1 avx avx2 fma\n\nprocessor\t: 1\n"
    assert cpu(avx2) is False
    assert cpu(avx2.replace("avx2", "avx2 avx512f avx512_vnni")) is True
    assert cpu(avx2.replace("avx2", "avx2 avx_vnni")) is True
    assert cpu("processor\t: 0\nFeatures\t: fp asimd aes crc32 atomics asimddp\n") is True
    assert cpu("processor\t: 0\nFeatures\t: fp asimd aes crc32\n") is False
    assert cpu("processor\t: 0\n") is None
    assert cpu_int8_dot(tmp_path / "absent") is None


def test_serving_int8_on_onnx_runtimes_cpu_provider_says_what_it_may_cost(
    tmp_path: Path
) -> None:
    """An INT8 file on ONNX Runtime's CPU provider: the note names the file, why (an AVX2 CPU
    has no int8 dot product; with VNNI, or flags unread, a network this small need not gain
    either: measured on an AVX-512 VNNI + AMX CPU), its build's figures where the card has them,
    the FP32 file beside it and the command timing both where there are such; for an FP32 file:
    nothing."""
    from edge.runtime.base import load_engine
    from edge.runtime.card import save_card
    from edge.runtime.onnx import int8_note

    for name in ("home-front.onnx", "home-front.int8.onnx", "home-front.yaml"):
        shutil.copy(ROOT / "engines" / name, tmp_path / name)
    avx2, vnni, unknown = tmp_path / "avx2", tmp_path / "vnni", tmp_path / "unknown"
    avx2.write_text("processor\t: 0\nflags\t\t: fpu sse4_1 avx avx2 fma\n")
    vnni.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512_vnni\n")
    unknown.write_text("processor\t: 0\n")
    int8, fp32 = tmp_path / "home-front.int8.onnx", tmp_path / "home-front.onnx"
    card = load_card(tmp_path / "home-front.yaml")
    card.metrics.setdefault("int8", {}).pop("cpu_ms_per_window", None)
    engine = load_engine("onnx", int8, card)
    after = (f"; model.path: {fp32} serves the FP32 model, which may cost less here; "
             f"edge compare {fp32} {int8} --data calibration/home-front-sim times both on "
             "this CPU")  # the card's set is not beside tmp_path: named as the card has it
    assert int8_note(engine, avx2) == (
        "home-front.int8.onnx is INT8 on a CPU without an int8 dot-product instruction, where "
        "ONNX Runtime's INT8 kernels are no faster than FP32" + after)
    with_dot = (
        "home-front.int8.onnx is INT8 on ONNX Runtime's CPU provider, whose INT8 kernels need "
        "not beat FP32 on a network this small, even with an int8 dot-product instruction"
        + after)
    assert int8_note(engine, vnni) == with_dot and int8_note(engine, unknown) == with_dot
    assert int8_note(load_engine("onnx", fp32, card), avx2) is None
    card.metrics["int8"]["cpu_ms_per_window"] = {
        "fp32": 2.0, "int8": 3.5, "cpu": "x86_64, no int8 dot-product instruction"}
    save_card(card, tmp_path / "home-front.yaml")
    fp32.unlink()
    no_fp32 = load_engine("onnx", int8, load_card(tmp_path / "home-front.yaml"))
    assert int8_note(no_fp32, avx2) == (
        "home-front.int8.onnx is INT8 on a CPU without an int8 dot-product instruction, where "
        "ONNX Runtime's INT8 kernels are no faster than FP32 (its build timed FP32 2.00 ms and "
        "INT8 3.50 ms a window on x86_64, no int8 dot-product instruction)")
    assert int8_note(no_fp32, vnni) == (
        "home-front.int8.onnx is INT8 on ONNX Runtime's CPU provider, whose INT8 kernels need "
        "not beat FP32 on a network this small, even with an int8 dot-product instruction (its "
        "build timed FP32 2.00 ms and INT8 3.50 ms a window on x86_64, no int8 dot-product "
        "instruction)")
    # in a project laid out as ours, the card's set is named beside engines/, from anywhere
    proj = tmp_path / "project"
    (proj / "engines").mkdir(parents=True)
    (proj / "calibration" / "home-front-sim").mkdir(parents=True)
    for name in ("home-front.onnx", "home-front.int8.onnx", "home-front.yaml"):
        shutil.copy(ROOT / "engines" / name, proj / "engines" / name)
    laid_out = load_engine("onnx", proj / "engines" / "home-front.int8.onnx",
                           load_card(proj / "engines" / "home-front.yaml"))
    assert int8_note(laid_out, vnni).endswith(
        f"--data {proj / 'calibration' / 'home-front-sim'} times both on this CPU")


def test_check_frames_beyond_the_calibrated_range_are_named() -> None:
    """A head turned 48 degrees in the check windows when the calibration saw 0-2 degrees is
    named with both ranges; a value a quarter of the range outside it is not, nor is a feature
    the calibration saw at one value and the check at the same; frames without a target (mask
    0) do not count."""
    from edge.export.calib import uncovered

    card = load_card(ROOT / "engines" / "driver-front.yaml")
    names = card.front["features"]
    yaw, pitch, hand = names.index("face.yaw"), names.index("face.pitch"), names.index("hand.present")

    def windows(values: dict[int, tuple[float, float]], absent: float = 0.0) -> WindowSet:
        n, t = 4, 16
        front = np.zeros((n, t, len(names)), np.float32)
        for j, (a, b) in values.items():
            front[..., j] = np.linspace(a, b, n * t).reshape(n, t)
        mask = np.ones((n, t), np.float32)
        front[:, -1, :] = absent  # the last frame of each window has no face
        mask[:, -1] = 0.0
        return WindowSet(np.zeros((n, 0), np.float16), np.zeros((n, 0), np.float32),
                         np.zeros((n, 1, 64, 197), np.float16), np.ones((n, 197), np.float32),
                         np.zeros((n, len(card.classes)), np.float32), np.arange(n), np.zeros(n),
                         front, mask)

    calib = windows({yaw: (0.0, 2.2), pitch: (-10.0, 10.0)})
    same = windows({yaw: (0.0, 2.2), pitch: (-14.0, 14.0)}, absent=-99.0)
    assert uncovered(card, calib, same) == []  # pitch 4 past a range of 20; absent frames
    turned = windows({yaw: (-47.8, 30.5), pitch: (-10.0, 10.0)})
    got = uncovered(card, calib, turned)
    assert len(got) == 1 and got[0].startswith("face.yaw -47.8..") and "(calibrated 0..2.1" in got[0]
    hands = windows({yaw: (0.0, 2.2), hand: (0.0, 1.0)})
    assert [g.split()[0] for g in uncovered(card, calib, hands)] == ["hand.present"]
