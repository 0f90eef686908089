"""The INT8 front ends' accuracy gate: the budget, and FP32 against INT8 through each stage's
own decoding on held-out real frames (see :mod:`edge.front.quantize`)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np

from edge.errors import EdgeError
from edge.front.geometry import (
    LEFT_EYE_EAR,
    RIGHT_EYE_EAR,
    Roi,
    eye_aspect_ratio,
    head_pose,
    mouth_open_ratio,
)
from edge.front.card import FrontCard
from edge.front.ssd import Detections, SsdDetector, box_overlap

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
