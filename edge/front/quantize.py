"""INT8 front ends: QDQ builds calibrated on real footage, behind a per-model accuracy gate.

``edge front-ends build --int8`` quantizes the image front ends (``face_detector``,
``face_landmarks``, ``person_detector``) with :mod:`edge.quant`'s recipe - ONNX Runtime
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
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal, TextIO

import numpy as np

from edge.errors import EdgeError
from edge.front.card import FrontCard, card_text, load_front_card
from edge.front.engines import FRONT_DIR, front_model_path
from edge.front.geometry import (
    LEFT_EYE_EAR,
    RIGHT_EYE_EAR,
    Roi,
    eye_aspect_ratio,
    head_pose,
    mouth_open_ratio,
)
from edge.front.ssd import Detections, SsdDetector, box_overlap, letterbox

MODELS = ("face_detector", "face_landmarks", "person_detector")
FLOAT_ONLY = {
    "silero_vad": "recurrent (LSTM state carried between chunks: errors compound) and 2 ms per "
    "0.5 s already: stays FP32",
}
VIDEO_SUFFIXES = (".mkv", ".mp4", ".avi", ".mov", ".webm", ".m4v")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
#: The development set beside the repository (``../shared/realworld``), when present.
DEFAULT_FOOTAGE = Path(__file__).resolve().parents[3] / "shared" / "realworld"


@dataclass(frozen=True)
class Budget:
    """How far INT8 may stray from FP32 on held-out frames.

    Detector: 99 % of frames keep their found / not found decision (at most 1 frame in 100
    flips, which the stage's tracking and the fusion model's window absorb), and the face box it
    picks keeps IoU >= 0.85 on 95 % of frames (the mesh crop is 1.5x the box, so 0.85 moves
    its edges by a few per cent of the crop). Mesh: 99 % presence agreement; eye aspect ratio
    within 0.02 at p95 and 0.04 at most (open eyes read 0.23-0.32, closed under 0.20: 0.02 is a
    fifth of that margin), mouth opening the same, yaw / pitch / roll within 3 degrees at p95
    and 6 at most (a glance is 20 degrees and more). Person: 99 % presence agreement, best score
    within 0.05 at p95 and 0.10 at most (the score is itself a fusion-model feature).
    """

    detector_found: float = 0.99
    detector_iou_p5: float = 0.85
    mesh_flag: float = 0.99
    ear_p95: float = 0.02
    ear_max: float = 0.04
    mouth_p95: float = 0.02
    mouth_max: float = 0.04
    angle_p95: float = 3.0
    angle_max: float = 6.0
    person_present: float = 0.99
    person_score_p95: float = 0.05
    person_score_max: float = 0.10

    def with_overrides(self, items: Sequence[str]) -> Budget:
        """This budget with ``KEY=VALUE`` overrides (``ear_p95=0.03``); unknown keys raise."""
        known = {f.name for f in fields(self)}
        changes: dict[str, float] = {}
        for item in items:
            key, sep, value = item.partition("=")
            if not sep or key not in known:
                raise EdgeError(f"--budget {item!r}: expected KEY=VALUE with KEY one of {', '.join(sorted(known))}")
            try:
                changes[key] = float(value)
            except ValueError:
                raise EdgeError(f"--budget {item!r}: {value!r} is not a number") from None
        return replace(self, **changes)


# (figure, at least / at most, budget field) per model; a figure that is NaN was not measurable
CHECKS: dict[str, list[tuple[str, str, str]]] = {
    "face_detector": [("found_agreement", ">=", "detector_found"), ("iou_p5", ">=", "detector_iou_p5")],
    "face_landmarks": [
        ("flag_agreement", ">=", "mesh_flag"),
        ("ear_diff_p95", "<=", "ear_p95"), ("ear_diff_max", "<=", "ear_max"),
        ("mouth_diff_p95", "<=", "mouth_p95"), ("mouth_diff_max", "<=", "mouth_max"),
        ("angle_diff_p95", "<=", "angle_p95"), ("angle_diff_max", "<=", "angle_max"),
    ],
    "person_detector": [
        ("present_agreement", ">=", "person_present"),
        ("score_diff_p95", "<=", "person_score_p95"), ("score_diff_max", "<=", "person_score_max"),
    ],
}


# -- footage ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Clip:
    """Frames of one video file or image folder (BGR uint8, evenly spaced over it)."""

    name: str
    path: Path
    frames: list[np.ndarray]


def find_clips(sources: Sequence[str | Path]) -> list[Path]:
    """Video files and image folders under ``sources``: a video file, a folder of images, a
    folder of videos, or a folder of such folders (one level down, like recording folders)."""
    out: list[Path] = []
    for src in sources:
        p = Path(src)
        if p.is_file():
            out.append(p)
            continue
        if not p.is_dir():
            raise EdgeError(f"{p}: no such video file or folder")
        videos = sorted(q for q in p.iterdir() if q.suffix.lower() in VIDEO_SUFFIXES and q.is_file())
        if videos:
            out.extend(videos)
        elif any(q.suffix.lower() in IMAGE_SUFFIXES for q in p.iterdir()):
            out.append(p)
        else:
            for sub in sorted(q for q in p.iterdir() if q.is_dir()):
                found = [q for q in sub.iterdir() if q.suffix.lower() in VIDEO_SUFFIXES]
                if found or any(q.suffix.lower() in IMAGE_SUFFIXES for q in sub.iterdir()):
                    out.extend(find_clips([sub]))
    return out


def read_clip(path: str | Path, max_frames: int = 240) -> Clip:
    """Up to ``max_frames`` frames, evenly spaced, of a video file or an image folder; a clip's
    name is its file stem, or its folder's name for ``video.*`` in a recording folder."""
    import cv2

    p = Path(path)
    frames: list[np.ndarray] = []
    if p.is_dir():
        for f in sorted(q for q in p.iterdir() if q.suffix.lower() in IMAGE_SUFFIXES):
            img = cv2.imread(str(f), cv2.IMREAD_COLOR)
            if img is not None:
                frames.append(img)
        name = p.name
    else:
        cap = cv2.VideoCapture(str(p))
        while True:
            ok, bgr = cap.read()
            if not ok:
                break
            frames.append(bgr)
        cap.release()
        name = p.parent.name if p.stem == "video" else p.stem
    if not frames:
        raise EdgeError(f"{p}: no frames could be decoded")
    if len(frames) > max_frames:
        idx = np.linspace(0, len(frames) - 1, max_frames).round().astype(int)
        frames = [frames[i] for i in idx]
    return Clip(name, p, frames)


def split_clips(clips: Sequence[Clip], check: Sequence[str] | None = None) -> tuple[list[Clip], list[Clip]]:
    """Calibration clips and held-out clips: ``check`` names the held-out ones; by default every
    second clip in name order (the 2nd, 4th, ...) is held out."""
    ordered = sorted(clips, key=lambda c: c.name)
    if check is None:
        held = {c.name for c in ordered[1::2]}
    else:
        held = set(check)
        unknown = held - {c.name for c in ordered}
        if unknown:
            raise EdgeError(f"--check {', '.join(sorted(unknown))}: no such clip "
                            f"(clips: {', '.join(c.name for c in ordered)})")
    calib = [c for c in ordered if c.name not in held]
    held_out = [c for c in ordered if c.name in held]
    if not calib or not held_out:
        raise EdgeError(f"need at least one calibration clip and one held-out clip, have "
                        f"{len(calib)} and {len(held_out)} ({', '.join(c.name for c in ordered)})")
    return calib, held_out


# -- model inputs as the stages make them -------------------------------------------------------


class Inputs:
    """Prepared inputs of a batch-1 model: a calibration data reader for ONNX Runtime and
    :class:`edge.quant.Batches` for its sensitivity ranking."""

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


# -- the gate -----------------------------------------------------------------------------------


def _p(a: Sequence[float] | np.ndarray, q: float) -> float:
    v = np.asarray(a, np.float64)
    return float(np.percentile(v, q)) if v.size else math.nan


def _max(a: Sequence[float] | np.ndarray) -> float:
    v = np.asarray(a, np.float64)
    return float(v.max()) if v.size else math.nan


def _biggest(d: Detections) -> np.ndarray:
    """The face the stage follows: the biggest box."""
    areas = (d.boxes[:, 2] - d.boxes[:, 0]) * (d.boxes[:, 3] - d.boxes[:, 1])
    return d.boxes[int(np.argmax(areas))]


def gate_face_detector(fp32: SsdDetector, int8: SsdDetector, frames: Sequence[np.ndarray]) -> dict[str, float]:
    """Found / not found agreement per frame and IoU of the face the stage picks."""
    agree, found, ious, sdiff = 0, 0, [], []
    for f in frames:
        a, b = fp32.detect(f, bgr=True), int8.detect(f, bgr=True)
        agree += (len(a) > 0) == (len(b) > 0)
        found += len(a) > 0
        if len(a) and len(b):
            ious.append(float(box_overlap(_biggest(a), _biggest(b)[None])[0]))
            sdiff.append(abs(float(a.scores[0]) - float(b.scores[0])))
    n = max(1, len(frames))
    return {"frames": len(frames), "found_fp32": found, "found_agreement": agree / n,
            "iou_p5": _p(ious, 5), "iou_min": min(ious, default=math.nan),
            "iou_mean": float(np.mean(ious)) if ious else math.nan, "score_diff_max": _max(sdiff)}


def mesh_measures(out: dict[str, np.ndarray], roi: Roi, size: int, n: int) -> tuple[float, np.ndarray]:
    """Presence probability and ``[ear_left, ear_right, mouth, yaw, pitch, roll]`` of one mesh
    output, computed as the face stage computes them (landmarks mapped to frame pixels)."""
    pts = roi.to_frame(np.asarray(out["landmarks"], np.float64).reshape(n, 3), size)
    logit = float(np.asarray(out["face_flag"]).ravel()[0])
    presence = 1.0 / (1.0 + math.exp(-max(-100.0, min(100.0, logit))))
    yaw, pitch, roll = head_pose(pts)
    return presence, np.array([eye_aspect_ratio(pts, LEFT_EYE_EAR), eye_aspect_ratio(pts, RIGHT_EYE_EAR),
                               mouth_open_ratio(pts), yaw, pitch, roll])


def gate_face_landmarks(
    fp32: Any, int8: Any, crops: Sequence[tuple[Roi, np.ndarray]], card: FrontCard
) -> dict[str, float]:
    """Presence agreement and the derived features' differences on the stage's own crops."""
    name = next(iter(card.inputs))
    size = int(card.preprocess["width"])
    n = int(card.postprocess.get("num_landmarks", 468))
    th = float(card.postprocess.get("presence", {}).get("threshold", 0.5))
    agree, present = 0, 0
    diffs: list[np.ndarray] = []
    for roi, x in crops:
        pa, fa = mesh_measures(fp32.infer({name: x}), roi, size, n)
        pb, fb = mesh_measures(int8.infer({name: x}), roi, size, n)
        agree += (pa >= th) == (pb >= th)
        present += pa >= th
        if pa >= th and pb >= th:
            d = np.abs(fa - fb)
            d[3:] = np.abs((fa[3:] - fb[3:] + 180.0) % 360.0 - 180.0)
            diffs.append(d)
    d = np.array(diffs).reshape(-1, 6)
    ear, mouth, ang = d[:, 0:2].ravel(), d[:, 2], d[:, 3:6].ravel()
    return {"crops": len(crops), "present_fp32": present, "flag_agreement": agree / max(1, len(crops)),
            "ear_diff_p95": _p(ear, 95), "ear_diff_max": _max(ear),
            "mouth_diff_p95": _p(mouth, 95), "mouth_diff_max": _max(mouth),
            "angle_diff_p95": _p(ang, 95), "angle_diff_max": _max(ang),
            "yaw_diff_max": _max(d[:, 3]), "pitch_diff_max": _max(d[:, 4]), "roll_diff_max": _max(d[:, 5])}


def gate_person(fp32: Any, int8: Any, frames: Sequence[np.ndarray]) -> dict[str, float]:
    """Per-frame presence agreement and best-score difference through two person stages."""
    agree, present, count_agree, sdiff = 0, 0, 0, []
    for f in frames:
        a, b = fp32.process(f), int8.process(f)
        agree += a.present == b.present
        present += a.present
        count_agree += a.count == b.count
        if a.present and b.present:
            sdiff.append(abs(a.score - b.score))
    n = max(1, len(frames))
    return {"frames": len(frames), "present_fp32": present, "present_agreement": agree / n,
            "count_agreement": count_agree / n, "score_diff_p95": _p(sdiff, 95), "score_diff_max": _max(sdiff)}


def over_budget(model: str, figures: dict[str, float], budget: Budget) -> list[str]:
    """The checks a model fails, as ``figure value vs budget`` lines (NaN: not measured, which
    fails: a gate that saw nothing proves nothing)."""
    bad = []
    for fig, op, key in CHECKS[model]:
        v, lim = figures[fig], getattr(budget, key)
        if math.isnan(v) or (v < lim if op == ">=" else v > lim):
            bad.append(f"{fig} {v:.4g} (budget {op} {lim:g})")
    return bad


# -- timing -------------------------------------------------------------------------------------


def ms_per_inference(paths: dict[str, Path], feed: dict[str, np.ndarray], calls: int = 30,
                     rounds: int = 3) -> dict[str, float]:
    """Median ms per call of each model on one ORT intra-op thread, the models taking turns."""
    from edge.quant import session

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

    ref_stage = PersonStage(d)

    def person(p: Path) -> dict[str, float]:
        stage = PersonStage(d)
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

    from edge.quant import WEIGHT_OPS, logits_layers, preprocess, quantize, sensitivity
    from edge.trt import check_trt

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
    from edge.card import sha256_file

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
