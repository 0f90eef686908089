"""``edge front-ends import``: our TFLite -> ONNX converter against the LiteRT interpreter on
real frames, the cards' pre/post-processing facts on a real face, and bad input (corrupt or
wrong wheels, changed files, unsupported ops) as one-line errors that leave the output alone.

The pinned wheels come from the user cache or ``pip download``; without either the tests that
need them skip (and fail under ``EDGE_REQUIRE_SYSTEM=1``).
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edge.cli import main
from edge.front.card import check_onnx_io, load_front_card
from edge.front.catalog import MEDIAPIPE, MODELS, SILERO_VAD, FrontModel, Wheel
from edge.front.importer import ImportFailed, import_front_ends, read_member, resolve_wheels
from edge.front.ssd import decode, letterbox, ssd_anchors
from edge.front.tfl_ops import same_pads
from edge.front.tfl_read import TfliteError
from edge.front.tflite2onnx import convert

REALWORLD = Path(__file__).resolve().parents[2] / "shared" / "realworld"
TFLITE_MODELS = [m for m in MODELS if m.is_tflite]
BY_NAME = {m.name: m for m in MODELS}


# -- fixtures ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def wheels() -> dict[str, Path]:
    """The pinned wheels (user cache, else pip download); skip when there is no way to get them."""
    try:
        return resolve_wheels([MEDIAPIPE, SILERO_VAD])
    except ImportFailed as exc:
        if os.environ.get("EDGE_REQUIRE_SYSTEM") == "1":
            pytest.fail(str(exc))
        pytest.skip(f"pinned wheels unavailable: {exc}")


@pytest.fixture(scope="module")
def front(wheels: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("front")
    import_front_ends(out, list(wheels.values()), download=False)
    return out


def _frame(folder: str, index: int) -> np.ndarray:
    """One decoded RGB frame of a real recording."""
    import cv2

    path = REALWORLD / folder / "video.mkv"
    if not path.is_file():
        pytest.skip(f"{path}: real-world recordings not here (shared/ beside the checkout)")
    cap = cv2.VideoCapture(str(path))
    cap.set(cv2.CAP_PROP_POS_FRAMES, index)
    ok, bgr = cap.read()
    cap.release()
    assert ok, f"{path}: no frame {index}"
    return np.ascontiguousarray(bgr[:, :, ::-1])


def _letterbox(rgb: np.ndarray, size: int, lo: float) -> np.ndarray:
    return letterbox(rgb, size, size, (lo, 1.0))[0]


def _scale(img: np.ndarray, lo: float) -> np.ndarray:
    """Pixels 0..255 to the card's value range [lo, 1]."""
    return (img.astype(np.float32) / 255.0 * (1.0 - lo) + lo).astype(np.float32)


def _crop(rgb: np.ndarray, cx: float, cy: float, side: float, size: int, lo: float) -> np.ndarray:
    """A square crop (replicated border) resized to ``size``."""
    import cv2

    half = side / 2
    m = np.array([[size / side, 0, -(cx - half) * size / side], [0, size / side, -(cy - half) * size / side]])
    img = cv2.warpAffine(rgb, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return _scale(img, lo)[None]


def _ort(path: Path) -> Any:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.log_severity_level = 3
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def _inputs_for(name: str, front: Path) -> list[np.ndarray]:
    """Real-frame inputs for a model, prepared as its card says."""
    card = load_front_card(front / f"{name}.yaml")
    size, lo = card.preprocess["width"], card.preprocess["value_range"][0]
    frames = [_frame("driver-dev-alert-blink", 30), _frame("driver-dev-head-turn", 40),
              _frame("home-dev-1", 600)]
    if name in ("face_detector", "person_detector", "palm_detector"):
        return [_letterbox(f, size, lo) for f in frames]
    if name in ("face_landmarks", "hand_landmarks"):
        return [_crop(f, 295, 150, 260, size, lo) for f in frames[:1]] + [
            _crop(frames[1], 205, 100, 130, size, lo), _crop(frames[2], 384, 216, 300, size, lo)]
    assert name == "iris_landmarks"
    face = _crop(frames[0], 295, 150, 260, 192, 0.0)
    marks = _ort(front / "face_landmarks.onnx").run(["landmarks"], {"image": face})[0].reshape(-1, 3)
    crops = []
    for a, b, flip in ((33, 133, False), (362, 263, True)):
        cx, cy = (marks[a, :2] + marks[b, :2]) / 2 * 260 / 192 + (295 - 130, 150 - 130)
        side = 2.3 * float(np.linalg.norm(marks[a, :2] - marks[b, :2])) * 260 / 192
        eye = _crop(frames[0], float(cx), float(cy), side, size, lo)
        crops.append(eye[:, :, ::-1].copy() if flip else eye)
    return crops


# -- conversion against the reference interpreter -----------------------------------------------
def _tolerance(ref: np.ndarray) -> float:
    """1e-3 for outputs within +-256; beyond, the same relative error (fp32 rounding grows with
    the magnitude). Only the person detector's raw regressors go beyond (peaks of 700-800 on
    these frames, diffs 1.3-1.7e-3, about 2e-6 relative), and LiteRT's own XNNPACK and builtin
    kernels differ from each other by 1.4-1.8e-3 there."""
    return 1e-3 * max(1.0, float(np.abs(ref).max()) / 256.0)


@pytest.mark.parametrize("model", TFLITE_MODELS, ids=lambda m: m.name)
def test_onnx_matches_litert_on_real_frames(model: FrontModel, front: Path, wheels: dict[str, Path]) -> None:
    litert = pytest.importorskip("ai_edge_litert.interpreter")
    data = read_member(wheels[model.wheel.package], model.member, model.sha256)
    interp = litert.Interpreter(model_content=data, num_threads=1)
    interp.allocate_tensors()
    sess = _ort(front / f"{model.name}.onnx")
    card = load_front_card(front / f"{model.name}.yaml")
    (inp,) = interp.get_input_details()
    for x in _inputs_for(model.name, front):
        interp.set_tensor(inp["index"], x)
        interp.invoke()
        got = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, {"image": x})))
        for o in interp.get_output_details():
            onnx_name = model.rename[o["name"]]
            ref = interp.get_tensor(o["index"])
            assert got[onnx_name].shape == ref.shape == tuple(card.outputs[onnx_name].shape)
            diff = float(np.abs(got[onnx_name] - ref).max())
            assert diff <= _tolerance(ref), f"{model.name}.{onnx_name}: max abs diff {diff:.2e}"


def test_face_detector_card_decodes_the_real_face_and_not_an_empty_room(front: Path) -> None:
    card = load_front_card(front / "face_detector.yaml")
    post = card.postprocess
    anchors = ssd_anchors(post["anchors"])
    sess = _ort(front / "face_detector.onnx")
    best = {}
    no_threshold = {**post["decode"], "min_score_thresh": 0.0}
    for folder in ("driver-dev-alert-blink", "driver-dev-no-face"):
        x = _letterbox(_frame(folder, 30), card.preprocess["width"], card.preprocess["value_range"][0])
        raw_boxes, raw_scores = sess.run(["boxes", "scores"], {"image": x})
        boxes, _, scores = decode(raw_boxes, raw_scores, anchors, no_threshold)
        cx, cy = (boxes[0, :2] + boxes[0, 2:]) / 2
        best[folder] = (float(scores[0]), float(cx), float(cy))
    score, cx, cy = best["driver-dev-alert-blink"]
    assert score > post["decode"]["min_score_thresh"]
    # the face is near (295, 150) of 640x360: letterboxed into 128x128 with a 32 px top band
    assert abs(cx - 295 / 640) < 0.08 and abs(cy - (150 * 0.2 + 32) / 128) < 0.08
    assert best["driver-dev-no-face"][0] < post["decode"]["min_score_thresh"]


def test_face_landmarks_see_the_face_with_the_cards_value_range(front: Path) -> None:
    card = load_front_card(front / "face_landmarks.yaml")
    x = _crop(_frame("driver-dev-alert-blink", 30), 295, 150, 260, 192, card.preprocess["value_range"][0])
    (flag,) = _ort(front / "face_landmarks.onnx").run(["face_flag"], {"image": x})
    assert 1 / (1 + np.exp(-float(flag.ravel()[0]))) > card.postprocess["presence"]["threshold"]


def test_silero_vad_is_copied_byte_for_byte_and_runs_with_its_state(front: Path, wheels: dict[str, Path]) -> None:
    m = BY_NAME["silero_vad"]
    assert (front / "silero_vad.onnx").read_bytes() == read_member(wheels["silero-vad"], m.member, m.sha256)
    card = load_front_card(front / "silero_vad.yaml")
    pre = card.preprocess
    sess = _ort(front / "silero_vad.onnx")
    state = np.zeros(pre["state_shape"], np.float32)
    chunk = np.zeros((1, pre["context_samples"] + pre["chunk_samples"]), np.float32)
    prob, state = sess.run(["output", "stateN"], {"input": chunk, "state": state, "sr": np.array(16000, np.int64)})
    assert prob.shape == (1, 1) and state.shape == tuple(pre["state_shape"]) and prob[0, 0] < 0.5


def test_cards_pin_the_sources_and_match_the_onnx_files(front: Path) -> None:
    for m in MODELS:
        card = load_front_card(front / f"{m.name}.yaml")
        p = card.provenance
        assert (p.package, p.version, p.wheel, p.wheel_sha256) == (
            m.wheel.package, m.wheel.version, m.wheel.filename, m.wheel.sha256)
        assert (p.file, p.file_sha256) == (m.member, m.sha256)
        assert p.onnx_sha256 == hashlib.sha256((front / f"{m.name}.onnx").read_bytes()).hexdigest()
        assert card.licence.spdx in ("Apache-2.0", "MIT")
        assert (front / card.licence.text_file).is_file()
        check_onnx_io(card, front / f"{m.name}.onnx")


def test_a_second_import_is_a_no_op_and_force_rewrites_the_same_bytes(front: Path, wheels: dict[str, Path]) -> None:
    assert import_front_ends(front, list(wheels.values()), download=False) == []
    before = (front / "person_detector.onnx").read_bytes()
    import_front_ends(front, list(wheels.values()), force=True, download=False,
                      models=[BY_NAME["person_detector"]])
    assert (front / "person_detector.onnx").read_bytes() == before


# -- bad input ----------------------------------------------------------------------------------
def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def _old_output(tmp_path: Path) -> Path:
    out = tmp_path / "front"
    out.mkdir()
    (out / "face_detector.onnx").write_bytes(b"old model")
    (out / "face_detector.yaml").write_text("old card\n")
    return out


def _cli_error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    lines = [ln for ln in err.splitlines() if ln.startswith("edge: error:")]
    assert len(lines) == 1, err
    return lines[0]


def test_a_corrupt_wheel_is_one_line_naming_it_and_the_output_is_untouched(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = _old_output(tmp_path)
    before = _snapshot(out)
    bad = tmp_path / MEDIAPIPE.filename
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    line = _cli_error(capsys, ["front-ends", "import", "--wheel", str(bad), "--out", str(out)])
    assert str(bad) in line and "matches no pinned wheel" in line
    assert _snapshot(out) == before


def _fake_wheel(tmp_path: Path, members: dict[str, bytes], name: str = "fake-1.0-py3-none-any.whl") -> tuple[Path, Wheel]:
    path = tmp_path / name
    with zipfile.ZipFile(path, "w") as zf:
        for k, v in members.items():
            zf.writestr(k, v)
        zf.writestr("LICENSE", b"licence")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return path, Wheel("fake", "1.0", name, digest, "MIT", "(c) nobody", "LICENSE")


def test_a_truncated_wheel_with_the_pinned_hash_is_a_corrupt_wheel(tmp_path: Path) -> None:
    path = tmp_path / "trunc.whl"
    path.write_bytes(b"PK\x05\x06" + b"\0" * 10)
    with pytest.raises(ImportFailed, match=r"trunc\.whl: corrupt wheel"):
        read_member(path, "x.tflite", "0" * 64)


def test_a_changed_model_file_is_refused_by_its_pinned_hash(tmp_path: Path) -> None:
    wheel_file, wheel = _fake_wheel(tmp_path, {"m/model.onnx": b"changed bytes"})
    model = replace(BY_NAME["silero_vad"], wheel=wheel, member="m/model.onnx")
    out = _old_output(tmp_path)
    before = _snapshot(out)
    with pytest.raises(ImportFailed, match=r"fake-1\.0-py3-none-any\.whl!m/model\.onnx: SHA-256 .* differs"):
        import_front_ends(out, [wheel_file], models=[model], download=False)
    assert _snapshot(out) == before


def test_a_wheel_of_another_version_lacks_the_file(tmp_path: Path) -> None:
    wheel_file, wheel = _fake_wheel(tmp_path, {"mediapipe/other.txt": b"x"})
    model = replace(BY_NAME["face_detector"], wheel=wheel)
    with pytest.raises(ImportFailed, match="has no mediapipe/modules/face_detection/face_detection_short_range.tflite"):
        import_front_ends(tmp_path / "out", [wheel_file], models=[model], download=False)


def test_a_missing_wheel_without_a_registry_says_how_to_give_it(tmp_path: Path) -> None:
    with pytest.raises(ImportFailed, match="give it with --wheel FILE"):
        resolve_wheels([MEDIAPIPE], cache=tmp_path, download=False)


def test_an_unsupported_op_names_the_file_and_op_and_leaves_the_output(
    wheels: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from edge.front import tfl_ops

    monkeypatch.delitem(tfl_ops.OPS, "PRELU")
    out = _old_output(tmp_path)
    before = _snapshot(out)
    argv = ["front-ends", "import", "--out", str(out), "--force"]
    for w in wheels.values():
        argv += ["--wheel", str(w)]
    line = _cli_error(capsys, argv)
    assert "face_landmark.tflite" in line and "PRELU is not supported" in line
    assert _snapshot(out) == before  # no half-written files, no temporary folder left


def test_a_file_that_is_not_tflite_is_refused() -> None:
    with pytest.raises(TfliteError, match="x.tflite: not a TFLite flatbuffer"):
        convert(b"\0" * 64, "x.tflite")
    with pytest.raises(TfliteError, match="x.tflite: corrupt"):
        convert(b"\x10\0\0\0TFL3" + b"\xff" * 32, "x.tflite")


@pytest.mark.parametrize(("size", "kernel", "stride", "dilation", "pads"), [
    (128, 3, 2, 1, (0, 1)),  # asymmetric: the extra row goes after
    (127, 3, 2, 1, (1, 1)),
    (64, 5, 1, 1, (2, 2)),
    (14, 3, 1, 2, (2, 2)),
    (7, 2, 2, 1, (0, 1)),
])
def test_same_padding_is_tflites(size: int, kernel: int, stride: int, dilation: int, pads: tuple[int, int]) -> None:
    assert same_pads(size, kernel, stride, dilation) == pads
