"""Accuracy measures over tick sequences: frame-level and event-level, plus detection latency.

A *tick* is one window's prediction. Frame-level scores compare each tick's thresholded
prediction with its label. An *event* is a maximal run of consecutive positive ticks; a true
event is detected when a predicted positive overlaps it (within ``grace`` ticks after its end),
and a predicted event is correct when it overlaps a true one. Latency is the time from a true
event's first tick to the first positive tick that detects it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def runs(x: np.ndarray) -> list[tuple[int, int]]:
    """Half-open index ranges of consecutive True values."""
    x = np.asarray(x, bool)
    if x.size == 0:
        return []
    d = np.diff(np.concatenate([[0], x.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(d == 1).tolist(), np.flatnonzero(d == -1).tolist()))


def prf(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    """Precision, recall, F1; an empty class (no positives either way) scores 1."""
    if tp + fp + fn == 0:
        return 1.0, 1.0, 1.0
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return p, r, f


@dataclass
class ClassScores:
    precision: float
    recall: float
    f1: float
    support: int
    event_precision: float
    event_recall: float
    events: int
    latency_s_p50: float | None
    latency_s_max: float | None

    def to_json(self) -> dict[str, float | int | None]:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in self.__dict__.items()}


def score_class(
    pred: np.ndarray, label: np.ndarray, tick_s: np.ndarray, grace: int = 2
) -> ClassScores:
    """Scores of one class from boolean ``pred`` and ``label`` per tick and tick times (s)."""
    pred = np.asarray(pred, bool)
    label = np.asarray(label, bool)
    tp = int((pred & label).sum())
    fp = int((pred & ~label).sum())
    fn = int((~pred & label).sum())
    p, r, f = prf(tp, fp, fn)
    true_ev = runs(label)
    pred_ev = runs(pred)
    detected = 0
    latencies = []
    for a, b in true_ev:
        hit = np.flatnonzero(pred[a : min(len(pred), b + grace)])
        if hit.size:
            detected += 1
            latencies.append(float(tick_s[a + hit[0]] - tick_s[a]))
    correct = sum(1 for a, b in pred_ev if label[max(0, a - grace) : b + grace].any())
    ep, er, _ = prf(correct, len(pred_ev) - correct, len(true_ev) - detected)
    return ClassScores(
        precision=p,
        recall=r,
        f1=f,
        support=int(label.sum()),
        event_precision=ep,
        event_recall=er,
        events=len(true_ev),
        latency_s_p50=float(np.median(latencies)) if latencies else None,
        latency_s_max=float(np.max(latencies)) if latencies else None,
    )


def score(
    probs: np.ndarray,
    labels: np.ndarray,
    tick_s: np.ndarray,
    classes: list[str],
    thresholds: np.ndarray,
    segments: list[tuple[int, int]] | None = None,
) -> dict[str, object]:
    """Per-class scores and macro F1. ``segments`` keep runs from crossing scenario borders."""
    per: dict[str, ClassScores] = {}
    pred = probs >= thresholds[np.newaxis, :]
    segs = segments or [(0, len(labels))]
    for k, name in enumerate(classes):
        parts = [score_class(pred[a:b, k], labels[a:b, k], tick_s[a:b]) for a, b in segs]
        per[name] = _merge(parts, pred[:, k], labels[:, k])
    macro = float(np.mean([s.f1 for s in per.values()]))
    return {"macro_f1": round(macro, 4), "classes": {k: v.to_json() for k, v in per.items()}}


def _merge(parts: list[ClassScores], pred: np.ndarray, label: np.ndarray) -> ClassScores:
    tp = int((pred & label).sum())
    fp = int((pred & ~label).sum())
    fn = int((~pred & label).sum())
    p, r, f = prf(tp, fp, fn)
    events = sum(s.events for s in parts)
    det = sum(round(s.event_recall * s.events) for s in parts)
    lats = [s.latency_s_p50 for s in parts if s.latency_s_p50 is not None]
    maxes = [s.latency_s_max for s in parts if s.latency_s_max is not None]
    # Event precision over segments: weight by each segment's predicted-event count proxy.
    eps = [s.event_precision for s in parts]
    return ClassScores(
        precision=p,
        recall=r,
        f1=f,
        support=int(label.sum()),
        event_precision=float(np.mean(eps)) if eps else 1.0,
        event_recall=det / events if events else 1.0,
        events=events,
        latency_s_p50=float(np.median(lats)) if lats else None,
        latency_s_max=float(np.max(maxes)) if maxes else None,
    )
