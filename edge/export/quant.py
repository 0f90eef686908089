"""INT8 by explicit quantization: QDQ export from a calibration set, with an accuracy gate.

``edge build --model engines/X.onnx --int8 --calibration calibration/NAME`` runs ONNX Runtime's
shape pre-processing and ``quantize_static`` in QDQ format on the weight layers (Conv, Gemm,
MatMul) with the settings TensorRT accepts as well: symmetric int8 activations and weights
(zero points 0), per-channel weights, float biases (``QuantizeBias=False``), weights kept as
float with a Q/DQ pair (``AddQDQPairToWeight=True``). The logits layers stay float. The
result, ``X.int8.onnx``, runs INT8 on ONNX Runtime's CPU kernels and is what a TensorRT INT8
plan is built from.

The gate (:mod:`edge.export.gate`) scores FP32 and INT8 on the set's held-out ``check``
windows with the card's thresholds; a macro-F1 drop over the budget fails the build
(:class:`GateFailed`, exit 1) with a table of what dropped. Windows without labels (a set cut
from live sources) are scored against FP32's own decisions, one (window, class) at a time: the
share of its clear decisions that INT8 changes, and no class collapsed. With ``auto_exclude``
the build ranks the quantized layers by how much error each adds (relative error of its output
against FP32, minus what it received) and keeps the worst in float — 1, 2, 4, ... of them —
until the gate passes, and says which.
"""

from __future__ import annotations

import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, Protocol, TextIO

import numpy as np

from edge.export.calib import CalibrationSet, load_calibration, uncovered
from edge.runtime.card import card_path_for, load_card, save_card
from edge.errors import EdgeError, EngineError
from edge.runtime.onnx import cpu_int8_dot, session_options
from edge.export.gate import (
    BORDER_LOGIT, GateFailed, GateResult, against_fp32, borderline, compare_logits,
)
from edge.train.data import WindowSet

METHODS = ("entropy", "percentile", "minmax")
WEIGHT_OPS = ("Conv", "Gemm", "MatMul")


class Batches(Protocol):
    """Model inputs by index (a :class:`WindowSet`, or the front ends' prepared frames)."""

    def __len__(self) -> int: ...

    def inputs(self, idx: slice) -> dict[str, np.ndarray]: ...


def int8_path_for(model: str | Path) -> Path:
    p = Path(model)
    name = p.name[: -len(".onnx")] if p.name.endswith(".onnx") else p.name
    return p.with_name(f"{name}.int8.onnx")


def is_qdq(model: Any) -> bool:
    """True for an ONNX graph with Q/DQ nodes: an INT8 build, not a model to train or merge."""
    return any(n.op_type in ("QuantizeLinear", "DequantizeLinear") for n in model.graph.node)


def session(path: str | Path, threads: int = 1) -> Any:
    import onnxruntime as ort

    try:
        return ort.InferenceSession(str(path), session_options(threads),
                                    providers=["CPUExecutionProvider"])
    except Exception as exc:  # ORT raises its own exception types for bad files
        raise EngineError(f"{path}: cannot load ONNX model: {str(exc).splitlines()[0]}") from None


def _runner(sess: Any) -> Callable[[dict[str, np.ndarray]], Any]:
    """A session's call on one batch of inputs, every output."""
    return lambda feed: sess.run(None, feed)


def run_model(sess: Any, ws: Batches, batch: int = 32, outputs: list[str] | None = None) -> list[np.ndarray]:
    """Outputs of ``sess`` over all windows of ``ws`` (concatenated over batches)."""
    names = outputs or [o.name for o in sess.get_outputs()]
    parts: list[list[np.ndarray]] = [[] for _ in names]
    for i in range(0, len(ws), batch):
        res = sess.run(names, ws.inputs(slice(i, i + batch)))
        for k, r in enumerate(res):
            parts[k].append(r)
    return [np.concatenate(p) for p in parts]


def serving_ms(runs: list[Callable[[dict[str, np.ndarray]], Any]], ws: Batches,
               windows: int = 32, rounds: int = 5) -> list[float]:
    """Milliseconds a window takes each of ``runs`` (a model's call on one batch of inputs) as
    serving calls it, one window at a time, on the first ``windows`` of ``ws``: the runs in turn
    within each round, the median round; a round of each first, unmeasured, to warm up."""
    feeds = [ws.inputs(slice(i, i + 1)) for i in range(min(windows, len(ws)))]
    times: list[list[float]] = [[] for _ in runs]
    for r in range(rounds + 1):
        for k, run in enumerate(runs):
            t0 = time.perf_counter()
            for feed in feeds:
                run(feed)
            if r:
                times[k].append((time.perf_counter() - t0) / max(1, len(feeds)))
    return [1e3 * float(np.median(t)) for t in times]


def logits_layers(model: Any) -> list[str]:
    """Names of the weight layers nearest the outputs (found by walking back through
    element-wise and shape ops): the logits layers, kept in float."""
    producers = {o: n for n in model.graph.node for o in n.output}
    found: list[str] = []
    seen: set[str] = set()
    stack = [o.name for o in model.graph.output]
    while stack:
        t = stack.pop()
        n = producers.get(t)
        if n is None or n.name in seen:
            continue
        seen.add(n.name)
        if n.op_type in WEIGHT_OPS:
            found.append(n.name)
            continue
        stack.extend(n.input)
    return sorted(found)


class _Reader:
    """ONNX Runtime calibration reader over the ``calib`` windows, a batch at a time (whole
    batches only: the histogram calibrators stack batches, so all must have one size)."""

    def __init__(self, ws: WindowSet, batch: int = 8) -> None:
        self.ws, self.batch, self.i = ws, max(1, min(batch, len(ws))), 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self.i + self.batch > len(self.ws):
            return None
        b = self.ws.inputs(slice(self.i, self.i + self.batch))
        self.i += self.batch
        return b

    def rewind(self) -> None:
        self.i = 0

    def __len__(self) -> int:
        return len(self.ws) // self.batch


def preprocess(model_path: Path, out: Path) -> None:
    """ONNX Runtime's shape pre-processing (symbolic shapes only where sympy is present)."""
    import importlib.util

    from onnxruntime.quantization import quant_pre_process

    quant_pre_process(
        str(model_path), str(out), skip_symbolic_shape=importlib.util.find_spec("sympy") is None
    )


def quantize(
    pre: Path, out: Path, reader: Any | None, method: str, exclude: list[str], cache: Path,
    extra_options: dict[str, Any] | None = None,
) -> None:
    """QDQ int8 with TensorRT-compatible settings; tensor ranges cached in ``cache``.

    ``reader`` is an ONNX Runtime calibration data reader (``get_next``, ``rewind``), or None
    once ``cache`` holds the ranges; ``extra_options`` adds to (not replaces) the TensorRT
    settings, e.g. ``CalibMaxIntermediateOutputs`` to calibrate in chunks."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    cm = {"entropy": CalibrationMethod.Entropy, "percentile": CalibrationMethod.Percentile,
          "minmax": CalibrationMethod.MinMax}[method]
    quantize_static(
        str(pre),
        str(out),
        calibration_data_reader=reader,
        quant_format=QuantFormat.QDQ,
        # Weight layers only: Q/DQ around the mask arithmetic and pooling costs more on a CPU
        # than it saves (1.52x -> 1.62x over FP32 for the driver model, one thread).
        op_types_to_quantize=list(WEIGHT_OPS),
        per_channel=True,
        activation_type=QuantType.QInt8,
        weight_type=QuantType.QInt8,
        nodes_to_exclude=exclude,
        calibrate_method=cm,
        calibration_cache_path=str(cache),
        extra_options={
            "ActivationSymmetric": True,
            "WeightSymmetric": True,
            "QuantizeBias": False,
            "AddQDQPairToWeight": True,
            "CalibPercentile": 99.999,
            **(extra_options or {}),
        },
    )


def _with_outputs(model_path: Path, names: list[str], out: Path) -> None:
    import onnx

    m = onnx.load(str(model_path))
    have = {o.name for o in m.graph.output}
    for n in names:
        if n not in have:
            m.graph.output.append(onnx.helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, None))
    onnx.save(m, str(out))


def sensitivity(
    pre: Path, qdq: Path, ws: Batches, candidates: list[str], tmp: Path, batch: int = 32
) -> list[tuple[str, float]]:
    """Quantized layers, most harmful first: relative error each adds to its output."""
    import onnx

    m = onnx.load(str(pre))
    nodes = {n.name: n for n in m.graph.node}
    producers = {o: n.name for n in m.graph.node for o in n.output}
    outs = {name: nodes[name].output[0] for name in candidates if name in nodes}
    _with_outputs(pre, list(outs.values()), tmp / "fp32-taps.onnx")
    _with_outputs(qdq, list(outs.values()), tmp / "int8-taps.onnx")
    names = list(outs.values())
    f = run_model(session(tmp / "fp32-taps.onnx", 2), ws, batch, outputs=names)
    q = run_model(session(tmp / "int8-taps.onnx", 2), ws, batch, outputs=names)
    err = {}
    for t, a, b in zip(names, f, q):
        err[t] = float(np.linalg.norm(a - b)) / max(float(np.linalg.norm(a)), 1e-12)

    def upstream(tensor: str, depth: int = 0) -> float:
        """Largest error among the tapped tensors feeding ``tensor``."""
        node = producers.get(tensor)
        if node is None or depth > 50:
            return 0.0
        best = 0.0
        for i in nodes[node].input:
            if i in err:
                best = max(best, err[i])
            else:
                best = max(best, upstream(i, depth + 1))
        return best

    added = [(name, err[t] - upstream(t)) for name, t in outs.items()]
    return sorted(added, key=lambda kv: -kv[1])


def build_int8(
    model_path: str | Path,
    calibration: str | Path,
    method: str = "entropy",
    budget_points: float = 1.0,
    auto_exclude: bool = False,
    out: str | Path | None = None,
    log: TextIO | None | Literal["stderr"] = "stderr",
) -> tuple[Path, GateResult]:
    """Quantize, gate, write ``X.int8.onnx`` and the INT8 metrics into the card."""
    log = sys.stderr if log == "stderr" else log  # looked up now: stderr may be swapped
    import onnx

    if method not in METHODS:
        raise EdgeError(f"unknown calibration method {method!r} ({', '.join(METHODS)})")
    src = Path(model_path)
    if not src.is_file():
        raise EngineError(f"{src}: no such model file")
    card_file = card_path_for(src)
    card = load_card(card_file)
    cs: CalibrationSet = load_calibration(calibration, card)
    calib, check = cs.part("calib"), cs.part("check")
    if len(calib) == 0:
        raise EdgeError(f"{calibration}: no calib windows")
    if len(check) == 0:
        raise EdgeError(f"{calibration}: the accuracy gate needs held-out (check) windows")
    dst = Path(out) if out is not None else int8_path_for(src)
    started = time.monotonic()

    def say(text: str) -> None:
        if log is not None:
            print(f"edge build: {text}", file=log, flush=True)

    with tempfile.TemporaryDirectory(prefix="edge-int8-") as tmpdir:
        tmp = Path(tmpdir)
        pre = tmp / "pre.onnx"
        preprocess(src, pre)
        keep_float = logits_layers(onnx.load(str(pre)))
        say(f"{len(calib)} calib windows, {len(check)} check windows, method {method}; "
            f"logits layers kept float: {', '.join(keep_float)}")
        beyond = uncovered(card, calib, check)
        beyond_note = (f"the check windows go beyond the calibrated range of {len(beyond)} "
                       f"feature{'s' if len(beyond) > 1 else ''}: {'; '.join(beyond)}. INT8 "
                       "clips what its calibration did not see: a failed gate may be that "
                       "(calibrate from recordings that have it, or add simulated windows: "
                       "edge calibrate --with-sim 8)") if beyond else ""
        if beyond:
            say(beyond_note)
        fp32 = run_model(session(pre), check)[0]
        border: np.ndarray | None = None
        reference = "labels" if cs.labelled else "fp32 decisions"
        if not cs.labelled:  # live windows: INT8 must make FP32's decisions
            border = borderline(card, fp32)
            say("the check windows are unlabelled: INT8 is scored against FP32's decisions, "
                f"the share of its clear ones changed ({int(border.sum())} of {border.size} "
                f"within {BORDER_LOGIT:g} of a threshold's logit count neither way)")
            if not (~border).any():
                raise EdgeError(f"{calibration}: FP32 decides nothing clearly on the "
                                f"{len(check)} check windows (every logit within "
                                f"{BORDER_LOGIT:g} of a threshold's): calibrate from more live seconds")
            if (~border).sum() * budget_points < 100:
                say(f"only {int((~border).sum())} clear decisions: one changed decision is over "
                    f"the {budget_points:g}-point budget (calibrate from more live seconds)")
        cache = tmp / "ranges.json"
        reader = _Reader(calib)
        excluded: list[str] = []
        candidates: list[str] | None = None
        step = 0
        while True:
            qdq = tmp / "int8.onnx"
            t0 = time.monotonic()
            quantize(pre, qdq, reader, method, keep_float + excluded, cache)
            reader = None  # type: ignore[assignment]  # ranges come from the cache from now on
            int8 = run_model(session(qdq), check)[0]
            res = (compare_logits(card, check.labels, fp32, int8) if cs.labelled
                   else against_fp32(card, fp32, int8))
            res.excluded = list(excluded)
            measure = (f"INT8 macro F1 {res.int8_macro:.4f} vs FP32 {res.fp32_macro:.4f}"
                       if cs.labelled else
                       f"INT8 changed {len(res.flipped)} of FP32's {res.clear_decisions} clear decisions")
            say(f"{measure} (drop {res.drop_points:.2f} points, budget {budget_points:g}); "
                f"{len(excluded)} layers float ({time.monotonic() - t0:.0f} s)")
            if not res.over(budget_points):
                break
            what = ("INT8 macro F1 dropped" if cs.labelled else "INT8's changed decisions cost")
            what += f" {res.drop_points:.2f} points (budget {budget_points:g})"
            what += f", {len(res.collapsed)} classes collapsed" if res.collapsed else ""
            if not auto_exclude:
                raise GateFailed(
                    f"{what}:\n"
                    + res.table()
                    + "\nrerun with --auto-exclude to keep the most sensitive layers in float"
                    + (f"; {beyond_note}" if beyond else "")
                )
            if candidates is None:
                weights = [n.name for n in onnx.load(str(pre)).graph.node
                           if n.op_type in WEIGHT_OPS and n.name not in keep_float]
                ranked = sensitivity(pre, qdq, calib.take(slice(0, 64)), weights, tmp)
                candidates = [n for n, _ in ranked]
                say("most sensitive layers: " + ", ".join(f"{n} (+{e:.3f})" for n, e in ranked[:5]))
            step = max(1, 2 * step)
            if len(excluded) >= len(candidates):
                raise GateFailed(
                    f"{what} with every layer in float:\n"
                    + res.table()
                    + (f"\n{beyond_note}" if beyond else "")
                )
            excluded = candidates[: min(len(candidates), step)]
        # the model served, against the INT8 one; rounded as the card keeps them
        fp32_ms, int8_ms = (round(ms, 3) for ms in serving_ms(
            [_runner(session(src)), _runner(session(qdq))], check))
        dot = cpu_int8_dot()
        cpu = (f"{platform.machine()}, "
               + {True: "an int8 dot-product instruction", False: "no int8 dot-product "
                  "instruction", None: "its int8 dot product unknown"}[dot])
        say(f"on this CPU ({cpu}), a window at a time on one thread: FP32 {fp32_ms:.2f} ms, "
            f"INT8 {int8_ms:.2f} ms")
        if int8_ms >= fp32_ms:
            why = ("ONNX Runtime's INT8 CPU kernels are made to gain with VNNI, AMX or ARM's dot "
                   "product" if dot is False else "ONNX Runtime's INT8 CPU kernels need not beat "
                   "FP32 on a network this small, even with an int8 dot product")
            say(f"INT8 is no faster than FP32 here: {why}, and TensorRT builds its own; on this "
                f"CPU serving {src.name} may cost less")
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(qdq, dst)
    card.metrics["int8"] = {
        "file": dst.name,
        "calibration": str(calibration),
        "calibration_hash": cs.manifest.get("hash"),
        "method": method,
        "check_windows": res.windows,
        "reference": reference,
        **({
            "fp32_macro_f1": round(res.fp32_macro, 4),
            "int8_macro_f1": round(res.int8_macro, 4),
            "int8_f1": res.int8_f1,
        } if border is None else {
            "borderline_decisions": int(border.sum()),
            "clear_decisions": res.clear_decisions,
            "clear_decisions_changed": len(res.flipped),
        }),
        "max_abs_logit_diff": round(res.max_abs_logit_diff, 4),
        "decision_agreement": round(res.decision_agreement, 4),
        "float_layers": keep_float + excluded,
        "check_beyond_calibration": beyond,
        "cpu_ms_per_window": {"fp32": fp32_ms, "int8": int8_ms, "cpu": cpu, "batch": 1,
                              "threads": 1},
    }
    save_card(card, card_file)
    say(f"wrote {dst} ({time.monotonic() - started:.0f} s)")
    if excluded:
        say("kept in float to pass the gate: " + ", ".join(excluded))
    return dst, res
