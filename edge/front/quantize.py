"""INT8 front ends: QDQ builds calibrated on real footage, behind a per-model accuracy gate.

``edge front-ends build --int8`` quantizes the image front ends (``face_detector``,
``face_landmarks``, ``person_detector``) with :mod:`edge.export.quant`'s recipe - ONNX Runtime
``quantize_static`` in QDQ format, symmetric int8, per-channel weights, float biases, weights as
float with a Q/DQ pair, the output layers in float - so the same ``NAME.int8.onnx`` runs on ONNX
Runtime's CPU kernels and is what TensorRT builds an INT8 plan from. ``silero_vad`` stays FP32:
it is recurrent (an LSTM whose state is carried from chunk to chunk, so a quantization error
compounds over a stream) and costs 2 ms per 0.5 s of audio already.

Calibration and gate inputs are decoded from real videos (or folders of images), one clip per
file, and prepared exactly as each stage feeds its model: the detectors' letterboxed frames
(:func:`edge.front.ssd.letterbox`, BGR swapped after the resize for the face detector, before
it for the person detector), and for the face mesh the crops the FP32
:class:`~edge.front.face.FaceStage` itself makes while it tracks (its ``on_mesh_input`` hook).
Clips are split whole: some calibrate, the others are held out for the gate, so the gate sees
people, rooms and cameras the ranges were not fitted on.

The gate compares FP32 and INT8 engines through the stages' own decoding on the held-out
frames: for the face detector the per-frame found / not found decision and the IoU of the face
the stage picks; for the mesh the presence flag and the features the fusion model reads (eye
aspect ratios, mouth opening, yaw / pitch / roll); for the person detector the per-frame
presence and the best score. A model over its :class:`Budget` gets, with ``auto_exclude``, its
most sensitive layers kept in float (1, 2, 4, ... as ``edge build`` does); one still over is
left FP32 (no ``NAME.int8.onnx``) and the build reports failure. Figures, budget, clips,
latencies on one ORT thread and TensorRT parser findings go into each card's ``metrics.int8``.
"""

from __future__ import annotations

import contextlib
import math
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, TextIO

import numpy as np

from edge.errors import EdgeError
from edge.front.card import FrontCard, card_text, load_front_card
from edge.front.engines import FRONT_DIR, front_model_path
from edge.front.footage import DEFAULT_FOOTAGE, Clip, find_clips, read_clip, split_clips
from edge.front.geometry import Roi
from edge.front.int8gate import (
    CHECKS,
    Budget,
    gate_face_detector,
    gate_face_landmarks,
    gate_person,
    over_budget,
)
from edge.front.ssd import SsdDetector, letterbox

MODELS = ("face_detector", "face_landmarks", "person_detector")
FLOAT_ONLY = {
    "silero_vad": "recurrent (LSTM state carried between chunks: errors compound) and 2 ms per "
    "0.5 s already: stays FP32",
}



# -- model inputs as the stages make them -------------------------------------------------------


class Inputs:
    """Prepared inputs of a batch-1 model: a calibration data reader for ONNX Runtime and
    :class:`edge.export.quant.Batches` for its sensitivity ranking."""

    def __init__(self, name: str, xs: Sequence[np.ndarray]) -> None:
        self.name, self.xs, self.i = name, list(xs), 0

    def __len__(self) -> int:
        return len(self.xs)

    def inputs(self, idx: slice) -> dict[str, np.ndarray]:
        return {self.name: np.concatenate(self.xs[idx])}

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self.i >= len(self.xs):
            return None
        self.i += 1
        return {self.name: self.xs[self.i - 1]}

    def rewind(self) -> None:
        self.i = 0

    def spaced(self, n: int) -> Inputs:
        """At most ``n`` of the inputs, evenly spaced."""
        if len(self.xs) <= n:
            return self
        idx = np.linspace(0, len(self.xs) - 1, n).round().astype(int)
        return Inputs(self.name, [self.xs[i] for i in idx])


def detector_input(card: FrontCard, frame_bgr: np.ndarray, rgb_first: bool) -> np.ndarray:
    """The letterboxed input a detector stage makes of a BGR frame: the face stage swaps the
    channels after the resize (``SsdDetector.detect(bgr=True)``), the person stage before."""
    w, h = int(card.preprocess["width"]), int(card.preprocess["height"])
    vr = list(card.preprocess.get("value_range", [0.0, 1.0]))
    if rgb_first:
        return letterbox(np.ascontiguousarray(frame_bgr[:, :, ::-1]), w, h, vr)[0]
    return letterbox(frame_bgr, w, h, vr, swap_rb=True)[0]


def mesh_crops(front_dir: Path, clips: Sequence[Clip]) -> list[tuple[Roi, np.ndarray]]:
    """Every face-mesh input (ROI and tensor) the FP32 face stage makes over ``clips``, each
    clip tracked from its first frame."""
    from edge.front.face import FaceStage

    stage = FaceStage(front_dir)
    got: list[tuple[Roi, np.ndarray]] = []
    stage.on_mesh_input = lambda roi, x: got.append((roi, x.copy()))
    for clip in clips:
        stage.reset()
        for f in clip.frames:
            stage.process(f)
    return got



# -- timing -------------------------------------------------------------------------------------


def ms_per_inference(paths: dict[str, Path], feed: dict[str, np.ndarray], calls: int = 30,
                     rounds: int = 3) -> dict[str, float]:
    """Median ms per call of each model on one ORT intra-op thread, the models taking turns."""
    from edge.export.quant import session

    sess = {k: session(p, threads=1) for k, p in paths.items()}
    for s in sess.values():
        s.run(None, feed)
    times: dict[str, list[float]] = {k: [] for k in sess}
    for _ in range(rounds):
        for k, s in sess.items():
            t0 = time.perf_counter()
            for _ in range(calls):
                s.run(None, feed)
            times[k].append((time.perf_counter() - t0) / calls * 1e3)
    return {k: round(float(np.median(v)), 3) for k, v in times.items()}


# -- the build ----------------------------------------------------------------------------------


@dataclass
class ModelReport:
    """One model's INT8 build: gate figures, what failed, latency, TensorRT findings."""

    name: str
    passed: bool
    figures: dict[str, float]
    failures: list[str]
    ms: dict[str, float] = field(default_factory=dict)
    float_layers: list[str] = field(default_factory=list)
    excluded: list[str] = field(default_factory=list)
    trt: list[str] = field(default_factory=list)
    file: Path | None = None


@dataclass
class BuildReport:
    """All models' builds and the footage split."""

    models: list[ModelReport]
    calibration: list[str]
    check: list[str]
    skipped: dict[str, str]

    @property
    def passed(self) -> bool:
        return all(m.passed for m in self.models)

    def table(self) -> str:
        lines = [f"{'model':<16} {'gate':<5} {'FP32 ms':>8} {'INT8 ms':>8}  figures (held-out: "
                 f"{', '.join(self.check)}; calibrated on {', '.join(self.calibration)})"]
        for m in self.models:
            keys = [c[0] for c in CHECKS[m.name]]
            figs = ", ".join(f"{k} {m.figures[k]:.4g}" for k in keys)
            lines.append(f"{m.name:<16} {'pass' if m.passed else 'FAIL':<5} {m.ms.get('fp32', math.nan):>8.2f} "
                         f"{m.ms.get('int8', math.nan):>8.2f}  {figs}")
            for f in m.failures:
                lines.append(f"{'':<16} over budget: {f}")
            if m.excluded:
                what = "kept in float to pass" if m.passed else "tried keeping in float"
                lines.append(f"{'':<16} {what}: {len(m.excluded)} layers ({', '.join(m.excluded[:8])}"
                             f"{', ...' if len(m.excluded) > 8 else ''})")
            if not m.passed:
                lines.append(f"{'':<16} left FP32 (no {m.name}.int8.onnx written)")
            for t in m.trt:
                lines.append(f"{'':<16} TensorRT check: {t}")
        for name, why in self.skipped.items():
            lines.append(f"{name:<16} FP32  {why}")
        return "\n".join(lines)


def _round(d: dict[str, float]) -> dict[str, float | None]:
    return {k: (None if isinstance(v, float) and math.isnan(v) else round(float(v), 5)) for k, v in d.items()}


def build_front_int8(
    front_dir: str | Path = FRONT_DIR,
    sources: Sequence[str | Path] | None = None,
    check: Sequence[str] | None = None,
    models: Sequence[str] = MODELS,
    budget: Budget | None = None,
    method: str = "entropy",
    auto_exclude: bool = False,
    max_frames: int = 240,
    max_calib: int = 200,
    log: TextIO | None | Literal["stderr"] = "stderr",
) -> BuildReport:
    """Quantize, gate and write ``front_dir/NAME.int8.onnx`` for each of ``models`` that passes;
    every model's card gets ``metrics.int8``. A model over budget is left FP32 (a stale INT8
    file is removed) and :attr:`BuildReport.passed` is False.

    Parameters
    ----------
    front_dir
        Folder of the FP32 front ends and their cards; the INT8 files are written beside them.
    sources
        Video files, image folders or folders of them (default: :data:`DEFAULT_FOOTAGE`).
    check
        Names of the held-out clips (default: every second clip by name).
    models
        Which front ends (of :data:`MODELS`).
    budget
        The accuracy budget (default :class:`Budget`).
    method
        Calibration method: ``entropy``, ``percentile`` or ``minmax``.
    auto_exclude
        Keep a failing model's most sensitive layers in float until it passes.
    max_frames
        Frames read per clip (evenly spaced).
    max_calib
        Calibration inputs per model (evenly spaced over the calibration clips).
    log
        Progress lines (``"stderr"``, a stream, or None).

    Returns
    -------
    BuildReport
        Per-model figures and the split.
    """
    out_log = sys.stderr if log == "stderr" else log
    budget = budget or Budget()
    d = Path(front_dir)
    unknown = [m for m in models if m not in MODELS]
    if unknown:
        why = "; ".join(f"{m}: {FLOAT_ONLY.get(m, 'not an image front end')}" for m in unknown)
        raise EdgeError(f"cannot build INT8 for {', '.join(unknown)} ({why})")
    if sources is None:
        if not DEFAULT_FOOTAGE.is_dir():
            raise EdgeError(f"no footage: {DEFAULT_FOOTAGE} is absent; pass --frames with your videos "
                            "or image folders")
        sources = [DEFAULT_FOOTAGE]

    def say(text: str) -> None:
        if out_log is not None:
            print(f"edge front-ends: {text}", file=out_log, flush=True)

    paths = find_clips(sources)
    if not paths:
        raise EdgeError(f"no videos or image folders under {', '.join(map(str, sources))}")
    clips = [read_clip(p, max_frames) for p in paths]
    calib, held = split_clips(clips, check)
    say(f"calibration clips: {', '.join(f'{c.name} ({len(c.frames)})' for c in calib)}; "
        f"held out: {', '.join(f'{c.name} ({len(c.frames)})' for c in held)}")
    calib_frames = [f for c in calib for f in c.frames]
    check_frames = [f for c in held for f in c.frames]
    reports = []
    for name in models:
        t0 = time.monotonic()
        rep = _build_one(d, name, calib, held, calib_frames, check_frames, budget, method, auto_exclude,
                         max_calib, say)
        say(f"{name}: {'pass' if rep.passed else 'OVER BUDGET'} ({time.monotonic() - t0:.0f} s)")
        reports.append(rep)
    return BuildReport(reports, [c.name for c in calib], [c.name for c in held],
                       {k: v for k, v in FLOAT_ONLY.items() if (d / f"{k}.onnx").is_file()})


def _gate_fn(
    d: Path, name: str, card: FrontCard, held: list[Clip], check_frames: list[np.ndarray]
) -> Callable[[Path], dict[str, float]]:
    """A function scoring an INT8 candidate file against FP32 on the held-out footage."""
    from edge.runtime.base import open_engine

    opts = {"threads": 1}
    fp32 = open_engine("onnx", front_model_path(d, name), card, opts)
    if name == "face_detector":
        ref = SsdDetector(fp32)
        return lambda p: gate_face_detector(ref, SsdDetector(open_engine("onnx", p, card, opts)), check_frames)
    if name == "face_landmarks":
        crops = mesh_crops(d, held)
        return lambda p: gate_face_landmarks(fp32, open_engine("onnx", p, card, opts), crops, card)
    from edge.front.person import PersonStage

    ref_stage = PersonStage(d, zoom=False)  # the gate measures the detector on whole frames

    def person(p: Path) -> dict[str, float]:
        stage = PersonStage(d, zoom=False)
        stage.detector = SsdDetector(open_engine("onnx", p, card, opts))
        return gate_person(ref_stage, stage, check_frames)

    return person


def _calib_inputs(d: Path, name: str, card: FrontCard, calib: list[Clip], frames: list[np.ndarray]) -> Inputs:
    input_name = next(iter(card.inputs))
    if name == "face_landmarks":
        xs = [x for _, x in mesh_crops(d, calib)]
        if not xs:
            raise EdgeError(f"{name}: the FP32 face stage found no face in the calibration clips "
                            f"({', '.join(c.name for c in calib)}); calibrate on footage with faces")
    else:
        xs = [detector_input(card, f, rgb_first=name == "person_detector") for f in frames]
    return Inputs(input_name, xs)


def _build_one(
    d: Path, name: str, calib: list[Clip], held: list[Clip], calib_frames: list[np.ndarray],
    check_frames: list[np.ndarray], budget: Budget, method: str, auto_exclude: bool, max_calib: int,
    say: Callable[[str], None],
) -> ModelReport:
    import onnx

    from edge.export.quant import WEIGHT_OPS, logits_layers, preprocess, quantize, sensitivity
    from edge.runtime.trt import check_trt

    src = front_model_path(d, name)
    if not src.is_file():
        raise EdgeError(f"{src}: no such front end (run: edge front-ends import)")
    card_file = d / f"{name}.yaml"
    card = load_front_card(card_file)
    dst = front_model_path(d, name, int8=True)
    inputs = _calib_inputs(d, name, card, calib, calib_frames).spaced(max_calib)
    gate = _gate_fn(d, name, card, held, check_frames)
    with tempfile.TemporaryDirectory(prefix="edge-front-int8-") as tmpdir:
        tmp = Path(tmpdir)
        pre = tmp / "pre.onnx"
        preprocess(src, pre)
        keep_float = logits_layers(onnx.load(str(pre)))
        say(f"{name}: {len(inputs)} calibration inputs, method {method}; output layers kept float: "
            f"{', '.join(keep_float)}")
        cache = tmp / "ranges.json"
        reader: Inputs | None = inputs
        excluded: list[str] = []
        candidates: list[str] | None = None
        step = 0
        qdq = tmp / "int8.onnx"
        while True:
            # chunks of 16 inputs: ORT keeps every tapped tensor of a chunk in memory (a 200-crop
            # face mesh in one piece took 12 GB)
            with contextlib.redirect_stdout(sys.stderr):  # ORT prints its calibration chatter
                quantize(pre, qdq, reader, method, keep_float + excluded, cache,
                         {"CalibMaxIntermediateOutputs": 16})
            reader = None  # ranges come from the cache from now on
            figures = gate(qdq)
            failures = over_budget(name, figures, budget)
            say(f"{name}: {len(excluded)} more layers float: " + (
                "within budget" if not failures else "over budget: " + "; ".join(failures)))
            if not failures or not auto_exclude:
                break
            if candidates is None:
                weights = [n.name for n in onnx.load(str(pre)).graph.node
                           if n.op_type in WEIGHT_OPS and n.name not in keep_float]
                ranked = sensitivity(pre, qdq, inputs.spaced(32), weights, tmp, batch=1)
                candidates = [n for n, _ in ranked]
                say(f"{name}: most sensitive layers: " + ", ".join(f"{n} (+{e:.3f})" for n, e in ranked[:5]))
            if 2 * min(len(candidates), max(1, 2 * step)) > len(candidates):
                say(f"{name}: passing would need over half its layers in float: left FP32")
                break
            step = max(1, 2 * step)
            excluded = candidates[: min(len(candidates), step)]
        passed = not failures
        feed = inputs.inputs(slice(0, 1))
        ms = ms_per_inference({"fp32": src, "int8": qdq}, feed)
        trt = [f"{f.severity}: {f.node}: {f.message}" for f in check_trt(qdq)]
        if passed:
            shutil.copyfile(qdq, dst)
        elif dst.is_file():
            dst.unlink()  # a stale build must not be loaded for a model now over budget
    from edge.runtime.card import sha256_file

    checks = {fig: getattr(budget, key) for fig, _, key in CHECKS[name]}
    card.metrics["int8"] = {
        "file": dst.name if passed else None,
        "gate": "pass" if passed else "over budget: left FP32",
        "onnx_sha256": sha256_file(dst) if passed else None,
        "method": method,
        "settings": "ORT quantize_static QDQ, symmetric int8 activations and per-channel weights, "
                    "QuantizeBias=False, AddQDQPairToWeight=True, Conv/Gemm/MatMul only",
        "float_layers": keep_float + excluded,
        "budget": {fig: f"{op} {checks[fig]:g}" for fig, op, _ in CHECKS[name]},
        "measured": _round(figures),
        "failures": failures,
        "calibration": {"clips": [c.name for c in calib], "inputs": len(inputs)},
        "check": {"clips": [c.name for c in held],
                  "frames": int(figures.get("frames", figures.get("crops", 0)))},
        "ms_per_inference_ort_1_thread": ms,
        "check_trt": trt or ["no findings"],
    }
    card_file.write_text(card_text(card), encoding="utf-8")
    return ModelReport(name, passed, figures, failures, ms, keep_float + excluded, excluded, trt,
                       dst if passed else None)


def report_dict(report: BuildReport) -> dict[str, Any]:
    """The report as plain data (for ``--json``)."""
    out = asdict(report)
    for m in out["models"]:
        m["file"] = None if m["file"] is None else str(m["file"])
        m["figures"] = _round(m["figures"])
    out["passed"] = report.passed
    return out
