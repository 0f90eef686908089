"""The INT8 accuracy gate: FP32 and INT8 logits scored on the same held-out windows.

Against labels, the gate is the macro-F1 drop (:func:`compare_logits`). Windows without labels
(a set cut from live sources) are scored against FP32's own decisions (:func:`against_fp32`):
the drop is the share of FP32's clear decisions that INT8 changes, in points, a decision near
its threshold counting neither way (:data:`BORDER_LOGIT`), and a class whose clear yeses INT8
mostly loses or adds fails it whatever the share. :mod:`edge.export.quant` builds the INT8
model behind it; ``edge compare`` reports the same measures.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from edge.errors import EdgeError
from edge.evaluate.metrics import prf
from edge.runtime.card import ModelCard


class GateFailed(EdgeError):
    """INT8 lost more macro F1 (or, on unlabelled windows, changed more of FP32's clear
    decisions) than the budget allows."""


@dataclass
class GateResult:
    fp32_f1: dict[str, float]
    int8_f1: dict[str, float]
    fp32_macro: float
    int8_macro: float
    max_abs_logit_diff: float
    mean_abs_logit_diff: float
    decision_agreement: float
    windows: int
    excluded: list[str] = field(default_factory=list)
    #: Scored against FP32's decisions (unlabelled windows): how many of them were clear (not
    #: borderline), those INT8 changed as (window, class, FP32 probability, INT8's), and the
    #: classes whose clear yeses INT8 mostly lost or added (class: what it did).
    clear_decisions: int | None = None
    flipped: list[tuple[int, str, float, float]] = field(default_factory=list)
    collapsed: dict[str, str] = field(default_factory=dict)

    @property
    def drop_points(self) -> float:
        """Macro-F1 points lost against labels; against FP32's decisions, the percentage of
        its clear decisions INT8 changed. There a class FP32 says yes to on one window of 20
        would lose its whole F1 (a fifth of the macro) to one changed decision of 100."""
        if self.clear_decisions is not None:
            return 100.0 * len(self.flipped) / max(self.clear_decisions, 1)
        return 100.0 * (self.fp32_macro - self.int8_macro)

    def over(self, budget_points: float) -> bool:
        """Whether the gate fails: the drop over the budget, or a class collapsed."""
        return self.drop_points > budget_points or bool(self.collapsed)

    def table(self) -> str:
        if self.clear_decisions is not None:
            lines = [f"INT8 changed {len(self.flipped)} of FP32's {self.clear_decisions} clear "
                     f"decisions ({self.drop_points:.2f} points)" + (":" if self.flipped else "")]
            lines += [f"  window {i}: {c} FP32 {pa:.3f}, INT8 {pb:.3f}" for i, c, pa, pb in self.flipped]
            lines += [f"{c}: {what}" for c, what in self.collapsed.items()]
            lines.append(f"logits |diff| max {self.max_abs_logit_diff:.4f} mean "
                         f"{self.mean_abs_logit_diff:.4f}; decisions agree "
                         f"{100 * self.decision_agreement:.2f} %, borderline ones included "
                         f"({self.windows} held-out windows)")
            return "\n".join(lines)
        lines = [f"{'class':<14} {'FP32 F1':>8} {'INT8 F1':>8} {'drop':>7}"]
        for c in self.fp32_f1:
            d = 100 * (self.fp32_f1[c] - self.int8_f1[c])
            lines.append(f"{c:<14} {self.fp32_f1[c]:>8.3f} {self.int8_f1[c]:>8.3f} {d:>6.1f}p")
        lines.append(f"{'macro':<14} {self.fp32_macro:>8.3f} {self.int8_macro:>8.3f} "
                     f"{self.drop_points:>6.1f}p")
        lines.append(f"logits |diff| max {self.max_abs_logit_diff:.4f} mean "
                     f"{self.mean_abs_logit_diff:.4f}; decisions agree {100 * self.decision_agreement:.2f} %"
                     f" ({self.windows} held-out windows)")
        return "\n".join(lines)


def class_f1(probs: np.ndarray, labels: np.ndarray, thresholds: np.ndarray, classes: list[str]) -> dict[str, float]:
    pred = probs >= thresholds[np.newaxis, :]
    truth = labels >= 0.5
    out = {}
    for k, c in enumerate(classes):
        tp = int((pred[:, k] & truth[:, k]).sum())
        fp = int((pred[:, k] & ~truth[:, k]).sum())
        fn = int((~pred[:, k] & truth[:, k]).sum())
        out[c] = round(prf(tp, fp, fn)[2], 4)
    return out


#: Against FP32's own decisions (unlabelled check windows), a decision whose FP32 logit lies
#: within this of its class threshold's is borderline: FP32's decision there is as much chance
#: as INT8's, and it counts neither way. On the live driver clip INT8 moves the talking logit
#: by up to 0.44 in four builds (100 decisions each), 0.53 and 0.66 in others: a 0.70
#: threshold's borderline is 0.59-0.79, a 0.5 one's 0.38-0.62. A wider band is not needed for
#: those: a clear decision INT8 changes costs its share of the clear ones, not a class's F1.
BORDER_LOGIT = 0.5


def borderline(card: ModelCard, logits: np.ndarray) -> np.ndarray:
    """``[N, C]`` bool: where ``logits`` lie within :data:`BORDER_LOGIT` of the thresholds."""
    th = np.clip(np.array([c.threshold for c in card.classes], np.float64), 1e-6, 1 - 1e-6)
    return np.asarray(np.abs(logits - np.log(th / (1 - th))) < BORDER_LOGIT)


def compare_logits(card: ModelCard, labels: np.ndarray | None, a: np.ndarray,
                   b: np.ndarray) -> GateResult:
    """Scores of two models' logits on the same windows: per-class F1 against ``labels``
    (NaN without them), the logit differences and the decision agreement."""
    th = np.array([c.threshold for c in card.classes], np.float32)
    pa, pb = 1 / (1 + np.exp(-a)), 1 / (1 + np.exp(-b))
    classes = card.class_names
    nan = {c: float("nan") for c in classes}
    fa = nan if labels is None else class_f1(pa, labels, th, classes)
    fb = dict(nan) if labels is None else class_f1(pb, labels, th, classes)
    diff = np.abs(a - b)
    return GateResult(
        fp32_f1=fa,
        int8_f1=fb,
        fp32_macro=float(np.mean(list(fa.values()))),
        int8_macro=float(np.mean(list(fb.values()))),
        max_abs_logit_diff=float(diff.max()) if diff.size else 0.0,
        mean_abs_logit_diff=float(diff.mean()) if diff.size else 0.0,
        decision_agreement=float(((pa >= th) == (pb >= th)).mean()) if diff.size else 1.0,
        windows=len(a),
    )


#: Changes of a class's clear decisions, one way, that may make a collapse: live windows
#: overlap (a 2 s window every 0.25 s), so one moment near a threshold is in several of them,
#: and two changed together are one event as often as not.
COLLAPSE_MIN = 3


def against_fp32(card: ModelCard, a: np.ndarray, b: np.ndarray) -> GateResult:
    """INT8's logits ``b`` scored against FP32's ``a`` decisions on unlabelled windows: the
    decisions within :data:`BORDER_LOGIT` of a threshold count neither way, the rest are the
    clear decisions of :attr:`GateResult.drop_points`. A class collapses where INT8 changes
    at least :data:`COLLAPSE_MIN` of its clear decisions one way, more than half as many as
    FP32's clear yeses of it: most of them lost, or as many again added (the share alone would
    let a rare class vanish among many easy noes). No F1 (NaN): there are no labels."""
    th = np.array([c.threshold for c in card.classes], np.float32)
    res = compare_logits(card, None, a, b)
    pa, pb = 1 / (1 + np.exp(-a)), 1 / (1 + np.exp(-b))
    decided = pa >= th
    clear = ~borderline(card, a)
    changed = (decided != (pb >= th)) & clear
    res.clear_decisions = int(clear.sum())
    res.flipped = [(int(i), card.class_names[k], round(float(pa[i, k]), 3), round(float(pb[i, k]), 3))
                   for i, k in zip(*np.nonzero(changed))]
    for k, c in enumerate(card.class_names):
        yes = int((decided[:, k] & clear[:, k]).sum())
        lost = int((changed[:, k] & decided[:, k]).sum())
        added = int((changed[:, k] & ~decided[:, k]).sum())
        if lost >= COLLAPSE_MIN and 2 * lost > yes:
            res.collapsed[c] = f"INT8 says no on {lost} of FP32's {yes} clear yes"
        elif added >= COLLAPSE_MIN and 2 * added > yes:
            res.collapsed[c] = f"INT8 says yes on {added} clear no (FP32: {yes} clear yes)"
    return res
