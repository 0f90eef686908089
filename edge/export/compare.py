"""``edge compare A B --data calibration/NAME``: two engines on the same windows.

Either side may be an FP32 ONNX file, an INT8 QDQ ONNX file (both on ONNX Runtime) or a
TensorRT plan. Reported: max and mean absolute difference of the logits, top-class and
per-class decision agreement, each engine's per-class F1 (where the windows are labelled; where
not, B scored against A's clear decisions as ``edge build``'s gate scores INT8), mean time per
window in batches of :data:`BATCH` (fewer where an engine takes fewer: a TensorRT plan built
for 1), and per window one at a time as serving calls it (both engines in
turn, the median of 5 rounds over the first 32 windows).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from edge.export.calib import load_calibration
from edge.runtime.card import card_path_for, load_card
from edge.export.gate import against_fp32, compare_logits
from edge.export.quant import serving_ms
from edge.runtime.base import Engine, load_engine
from edge.train.data import WindowSet


def engine_for(path: str | Path, threads: int = 1) -> Engine:
    """The engine a file needs: ``.plan`` on TensorRT, ONNX files on ONNX Runtime."""
    p = Path(path)
    card = load_card(card_path_for(p))
    kind = "tensorrt" if p.suffix == ".plan" else "onnx"
    return load_engine(kind, p, card, {"threads": threads})


#: Windows a call when timing an engine in batches.
BATCH = 16


def batch_for(engine: Engine, batch: int = BATCH) -> int:
    """``batch``, or the engine's ``max_batch`` where smaller (a plan built for 1 runs 1)."""
    limit = engine.max_batch
    return batch if limit is None else max(1, min(batch, limit))


def run_engine(engine: Engine, ws: WindowSet, batch: int = BATCH) -> tuple[np.ndarray, float]:
    """Logits of every window and the mean seconds per window, in batches of
    :func:`batch_for`."""
    step = batch_for(engine, batch)
    out = []
    t0 = time.perf_counter()
    for i in range(0, len(ws), step):
        res = engine.infer(ws.inputs(slice(i, i + step)))
        out.append(next(iter(res.values())))
    dt = (time.perf_counter() - t0) / max(1, len(ws))
    return np.concatenate(out).astype(np.float32), dt


def compare(a: str | Path, b: str | Path, data: str | Path, part: str = "check", threads: int = 1) -> dict[str, Any]:
    ea, eb = engine_for(a, threads), engine_for(b, threads)
    if ea.card.class_names != eb.card.class_names:
        raise ValueError("the two engines have different classes")
    cs = load_calibration(data, ea.card)
    ws = cs.part(part)
    la, ta = run_engine(ea, ws)
    lb, tb = run_engine(eb, ws)
    th = np.array([c.threshold for c in ea.card.classes], np.float32)
    pa, pb = 1 / (1 + np.exp(-la)), 1 / (1 + np.exp(-lb))
    scores = compare_logits(ea.card, ws.labels if cs.labelled else None, la, lb)
    report: dict[str, Any] = {
        "a": str(a),
        "b": str(b),
        "data": str(data),
        "part": part,
        "windows": len(ws),
        "max_abs_logit_diff": scores.max_abs_logit_diff,
        "mean_abs_logit_diff": scores.mean_abs_logit_diff,
        "top_class_agreement": float((la.argmax(1) == lb.argmax(1)).mean()),
        "decision_agreement": {c: float(((pa >= th) == (pb >= th))[:, k].mean())
                               for k, c in enumerate(ea.card.class_names)},
        "ms_per_window": {"a": 1e3 * ta, "b": 1e3 * tb},
        "batch": {"a": batch_for(ea), "b": batch_for(eb)},
    }
    served = serving_ms([ea.infer, eb.infer], ws)
    report["serving_ms_per_window"] = {"a": served[0], "b": served[1]}
    if cs.labelled:
        report["f1"] = {"a": scores.fp32_f1, "b": scores.int8_f1}
    else:  # as edge build's gate scores unlabelled windows
        g = against_fp32(ea.card, la, lb)
        report["against_a"] = {"clear_decisions": g.clear_decisions, "changed": len(g.flipped),
                               "points": g.drop_points, "collapsed": g.collapsed}
    return report


def format_compare(r: dict[str, Any]) -> str:
    lines = [
        f"{k.upper()}: {r[k]}  ({r['ms_per_window'][k]:.2f} ms/window in batches of "
        f"{r['batch'][k]}, {r['serving_ms_per_window'][k]:.2f} one at a time as served)"
        for k in ("a", "b")
    ] + [
        f"{r['windows']} {r['part']} windows of {r['data']}",
        f"logits |A-B|: max {r['max_abs_logit_diff']:.4f}, mean {r['mean_abs_logit_diff']:.4f}; "
        f"top class agrees {100 * r['top_class_agreement']:.2f} %",
        f"{'class':<14} {'agree':>8}" + (f" {'F1 A':>7} {'F1 B':>7}" if "f1" in r else ""),
    ]
    for c, agree in r["decision_agreement"].items():
        row = f"{c:<14} {100 * agree:>7.2f}%"
        if "f1" in r:
            row += f" {r['f1']['a'][c]:>7.3f} {r['f1']['b'][c]:>7.3f}"
        lines.append(row)
    if "f1" in r:
        ma = float(np.mean(list(r["f1"]["a"].values())))
        mb = float(np.mean(list(r["f1"]["b"].values())))
        lines.append(f"{'macro':<14} {'':>8} {ma:>7.3f} {mb:>7.3f}")
    if "against_a" in r:
        g = r["against_a"]
        lines.append(f"unlabelled windows, as edge build's gate: B changed {g['changed']} of A's "
                     f"{g['clear_decisions']} clear decisions ({g['points']:.2f} points)"
                     + "".join(f"; {c}: {w}" for c, w in g["collapsed"].items()))
    return "\n".join(lines)
