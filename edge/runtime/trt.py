"""TensorRT: what its ONNX parser would reject (checked anywhere), plan builds and manifests.

:func:`check_trt` needs only ``onnx``: it reads a model and reports, before anyone is at the
Jetson, the operators outside the TensorRT ONNX parser's documented support, the Q/DQ
placements TensorRT rejects (non-zero zero points, per-channel scales on activations or on a
weight axis other than the output channels, int32 bias dequantization) and dynamic dimensions
other than the batch. The operator list and restrictions are those of onnx-tensorrt's
``docs/operators.md`` support matrix.

:func:`build_plan` (``gpu`` extra) parses a QDQ ONNX file with the TensorRT 10+ Python API and
writes ``X.plan`` plus ``X.plan.json``, the manifest that :func:`manifest_problems` checks
before a plan is deserialized: TensorRT version, GPU and compute capability, precision, ONNX
hash, calibration hash, build flags and the batch profile.
"""

from __future__ import annotations

import datetime as _dt
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TextIO

from edge.runtime.card import sha256_file
from edge.errors import EngineError

GPU_EXTRA = "pip install -e '.[gpu]' (tensorrt, pycuda) on a machine with an NVIDIA GPU"

# Operators the parser documents as supported (default ONNX domain).
SUPPORTED_OPS = frozenset("""
Abs Acos Acosh Add And ArgMax ArgMin Asin Asinh Atan Atanh AveragePool BatchNormalization Cast
Ceil Celu Clip Concat Constant ConstantOfShape Conv ConvTranspose Cos Cosh CumSum DepthToSpace
DequantizeLinear Div Dropout Einsum Elu Equal Erf Exp Expand EyeLike Flatten Floor Gather
GatherElements GatherND Gemm GlobalAveragePool GlobalLpPool GlobalMaxPool Greater
GreaterOrEqual GRU HardSigmoid Identity If ImageScaler InstanceNormalization IsNaN LeakyRelu
Less LessOrEqual Log LogSoftmax Loop LRN LSTM LpNormalization LpPool MatMul Max MaxPool Mean
Min Mul Neg NonMaxSuppression Not Or Pad ParametricSoftplus Pow PRelu QuantizeLinear
RandomUniform RandomUniformLike Range ReduceL1 ReduceL2 ReduceLogSum ReduceLogSumExp ReduceMax
ReduceMean ReduceMin ReduceProd ReduceSum ReduceSumSquare Relu Reshape Resize ReverseSequence
RNN Round ScaledTanh Scan Scatter ScatterElements ScatterND Selu Shape Sigmoid Sign Sin Sinh
Size Slice Softmax Softplus Softsign SpaceToDepth Split Sqrt Squeeze Sub Sum Tan Tanh
ThresholdedRelu Tile TopK Transpose Unsqueeze Upsample Where Xor
""".split())
SPATIAL_2D_3D = ("Conv", "ConvTranspose", "AveragePool", "MaxPool")
# Inputs that must be constant (initializers or Constant nodes): op -> input positions.
CONST_INPUTS = {"Slice": (3,), "Squeeze": (1,), "Unsqueeze": (1,), "TopK": (1,), "CumSum": (1,)}


@dataclass(frozen=True)
class Finding:
    severity: str  # error, warning, info
    node: str
    message: str


def _load_onnx(path: str | Path) -> Any:
    import onnx

    p = Path(path)
    if not p.is_file():
        raise EngineError(f"{p}: no such model file")
    try:
        return onnx.load(str(p))
    except Exception as exc:  # protobuf decode errors
        raise EngineError(f"{p}: not an ONNX model: {str(exc).splitlines()[0]}") from None


def check_trt(path: str | Path) -> list[Finding]:
    """What TensorRT's ONNX parser would reject in ``path`` (empty: nothing found)."""
    from onnx import numpy_helper

    model = _load_onnx(path)
    g = model.graph
    out: list[Finding] = []
    inits = {t.name: t for t in g.initializer}
    consts = set(inits) | {o for n in g.node if n.op_type == "Constant" for o in n.output}
    producer = {o: n for n in g.node for o in n.output}
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    if opset is not None and opset > 21:
        out.append(Finding("warning", "", f"opset {opset}: newer than TensorRT 10's parser is known to read"))

    def is_weight(t: str) -> bool:
        """An initializer or Constant, possibly through its Q/DQ pair (AddQDQPairToWeight)."""
        if t in consts:
            return True
        n = producer.get(t)
        return n is not None and n.op_type in ("QuantizeLinear", "DequantizeLinear", "Identity") and is_weight(n.input[0])

    def attr(n: Any, name: str) -> Any:
        for a in n.attribute:
            if a.name == name:
                import onnx

                return onnx.helper.get_attribute_value(a)
        return None

    for n in g.node:
        where = n.name or n.output[0]
        if n.domain not in ("", "ai.onnx"):
            out.append(Finding("error", where, f"{n.domain}.{n.op_type}: a custom-domain operator (TensorRT needs a plugin)"))
            continue
        if n.op_type not in SUPPORTED_OPS:
            out.append(Finding("error", where, f"{n.op_type}: not supported by TensorRT's ONNX parser"))
            continue
        if n.op_type in SPATIAL_2D_3D:
            ks = attr(n, "kernel_shape")
            if ks is None and n.op_type.startswith("Conv") and n.input[1] in inits:
                ks = list(inits[n.input[1]].dims[2:])
            if ks is not None and len(ks) not in (2, 3):
                out.append(Finding("error", where, f"{n.op_type} over {len(ks)} spatial dimension(s): TensorRT documents 2D and 3D only"))
        if n.op_type in ("Conv", "ConvTranspose") and len(n.input) > 1 and not is_weight(n.input[1]):
            out.append(Finding("error", where, f"{n.op_type}: weights are computed, TensorRT needs an initializer"))
        for pos in CONST_INPUTS.get(n.op_type, ()):
            if len(n.input) > pos and n.input[pos] and n.input[pos] not in consts:
                out.append(Finding("error", where, f"{n.op_type}: input {pos} must be a constant"))
        if n.op_type in ("QuantizeLinear", "DequantizeLinear"):
            if len(n.input) > 2 and n.input[2] in inits:
                zp = numpy_helper.to_array(inits[n.input[2]])
                if zp.any():
                    out.append(Finding("error", where, f"{n.op_type}: zero point {zp.ravel()[:4].tolist()}... is not 0 (TensorRT takes symmetric quantization only)"))
                if zp.dtype.name == "int32":
                    out.append(Finding("error", where, f"{n.op_type}: int32 (bias) quantization; quantize with QuantizeBias=False"))
                if zp.dtype.name == "uint8":
                    out.append(Finding("error", where, f"{n.op_type}: uint8; TensorRT takes int8"))
            scale = inits.get(n.input[1])
            if scale is not None and len(scale.dims) == 1 and scale.dims[0] > 1:
                axis = attr(n, "axis")
                axis = 1 if axis is None else int(axis)
                if not is_weight(n.input[0]):
                    out.append(Finding("error", where, f"{n.op_type}: per-channel scale on an activation (TensorRT: per-tensor activations)"))
                else:
                    users = [u for u in g.node if n.output[0] in u.input]
                    for u in users:
                        want = 0
                        if u.op_type == "Gemm":
                            want = 0 if attr(u, "transB") else 1
                        elif u.op_type == "MatMul":
                            want = 1
                        elif u.op_type == "ConvTranspose":
                            want = 1
                        if axis != want:
                            out.append(Finding("error", where, f"{n.op_type}: per-channel weight axis {axis}, {u.op_type} needs axis {want} (output channels)"))
    for i in g.input:
        if i.name in inits:
            continue
        dims = i.type.tensor_type.shape.dim
        for k, d in enumerate(dims):
            if d.dim_param or not d.HasField("dim_value"):
                if k == 0:
                    out.append(Finding("info", i.name, "dynamic batch: the plan needs an optimization profile (edge build --trt makes one for batch 1..8)"))
                else:
                    out.append(Finding("error", i.name, f"dimension {k} is dynamic: fix it or give TensorRT a profile for it"))
    return out


def format_findings(path: str | Path, findings: list[Finding]) -> str:
    errors = [f for f in findings if f.severity == "error"]
    lines = [f"{f.severity:<7} {f.node}: {f.message}" if f.node else f"{f.severity:<7} {f.message}" for f in findings]
    verdict = (f"{path}: {len(errors)} problem(s) TensorRT would reject" if errors
               else f"{path}: nothing TensorRT's parser is documented to reject")
    return "\n".join(lines + [verdict])


# -- plans and manifests (gpu extra) --------------------------------------------------------


def import_trt() -> Any:
    try:
        import tensorrt as trt
    except ImportError:
        raise EngineError(f"TensorRT is not installed: {GPU_EXTRA}") from None
    return trt


def import_cuda() -> Any:
    try:
        import pycuda.driver as cuda
    except ImportError:
        raise EngineError(f"pycuda is not installed: {GPU_EXTRA}") from None
    return cuda


def gpu_identity() -> dict[str, Any]:
    """Name and compute capability of GPU 0."""
    cuda = import_cuda()
    try:
        cuda.init()
        dev = cuda.Device(0)
    except Exception as exc:  # pycuda raises its own LogicError/RuntimeError
        raise EngineError(f"no usable CUDA GPU: {exc}") from None
    major, minor = dev.compute_capability()
    return {"gpu": dev.name(), "compute_capability": f"{major}.{minor}"}


def manifest_path(plan: str | Path) -> Path:
    p = Path(plan)
    return p.with_name(p.name + ".json")


def rebuild_command(manifest: dict[str, Any], plan: Path) -> str:
    flags = " --fp16" if manifest.get("fp16") else ""
    return f"edge build --model {manifest.get('onnx', '<model>.int8.onnx')} --trt{flags} --out {plan}"


def manifest_problems(plan: str | Path, here: dict[str, Any] | None = None) -> list[str]:
    """Why ``plan`` must not be deserialized here (empty: it may). ``here`` is this machine's
    ``{"tensorrt": version, "gpu": name, "compute_capability": "8.7"}``."""
    p = Path(plan)
    mf = manifest_path(p)
    if not mf.is_file():
        return [f"{mf}: no manifest beside the plan"]
    try:
        m = json.loads(mf.read_text(encoding="utf-8"))
    except ValueError as exc:
        return [f"{mf}: unreadable manifest: {exc}"]
    problems = []
    if here is not None:
        for key in ("tensorrt", "gpu", "compute_capability"):
            if m.get(key) != here.get(key):
                problems.append(f"built for {key} {m.get(key)!r}, this machine has {here.get(key)!r}")
    onnx_path = m.get("onnx")
    if onnx_path:
        src = Path(onnx_path)
        if not src.is_absolute():
            src = p.parent / src
        if src.is_file() and sha256_file(src) != m.get("onnx_sha256"):
            problems.append(f"{src} changed since the plan was built")
    if sha256_file(p) != m.get("plan_sha256"):
        problems.append(f"{p} does not match its manifest's hash")
    return problems


def build_plan(
    onnx_path: str | Path,
    fp16: bool = False,
    out: str | Path | None = None,
    workspace_mb: int = 1024,
    max_batch: int = 8,
    log: TextIO | None | Literal["stderr"] = "stderr",
) -> Path:
    """Parse a (QDQ) ONNX file and build a serialized TensorRT plan plus its manifest."""
    log = sys.stderr if log == "stderr" else log  # looked up now: stderr may be swapped
    from edge.runtime.card import card_path_for, load_card

    trt = import_trt()
    src = Path(onnx_path)
    if not src.is_file():
        raise EngineError(f"{src}: no such model file")
    card = load_card(card_path_for(src))
    ident = gpu_identity()
    plan = Path(out) if out is not None else src.with_name(src.name.replace(".int8.onnx", "").replace(".onnx", "") + ".plan")
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    qdq = src.name.endswith(".int8.onnx") or any(
        n.op_type == "QuantizeLinear" for n in _load_onnx(src).graph.node
    )
    # TensorRT 11 has no INT8/FP16 builder flags: networks are strongly typed (precision from
    # the Q/DQ nodes). TensorRT 10 keeps the flags; weakly typed with INT8 (+FP16) there.
    strongly = not hasattr(trt.BuilderFlag, "INT8")
    flags = 0
    if strongly and hasattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED"):
        flags |= 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(src)):
        errs = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        raise EngineError(f"{src}: TensorRT's parser refused it:\n" + "\n".join(errs))
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_mb << 20)
    build_flags = []
    if not strongly:
        if qdq:
            config.set_flag(trt.BuilderFlag.INT8)
            build_flags.append("INT8")
        if fp16:
            config.set_flag(trt.BuilderFlag.FP16)
            build_flags.append("FP16")
    else:
        build_flags.append("STRONGLY_TYPED")
    profile = builder.create_optimization_profile()
    shapes = {}
    for i in range(network.num_inputs):
        t = network.get_input(i)
        dims = list(t.shape)
        info = card.inputs.get(t.name)
        fixed = [int(d) if d >= 0 else 1 for d in dims]
        if info is not None:
            fixed = [1 if isinstance(d, str) else int(d) for d in info.shape]
        lo, opt, hi = list(fixed), list(fixed), list(fixed)
        if dims and dims[0] < 0:
            lo[0], opt[0], hi[0] = 1, 1, max_batch
        profile.set_shape(t.name, lo, opt, hi)
        shapes[t.name] = {"min": lo, "opt": opt, "max": hi}
    config.add_optimization_profile(profile)
    cache_file = plan.with_name("timing.cache")
    cache = config.create_timing_cache(cache_file.read_bytes() if cache_file.is_file() else b"")
    config.set_timing_cache(cache, ignore_mismatch=False)
    if log is not None:
        print(f"edge build: building {plan} on {ident['gpu']} (TensorRT {trt.__version__}, "
              f"{'+'.join(build_flags)}) ...", file=log, flush=True)
    blob = builder.build_serialized_network(network, config)
    if blob is None:
        raise EngineError(f"{src}: TensorRT could not build a plan (see its log above)")
    plan.parent.mkdir(parents=True, exist_ok=True)
    tmp = plan.with_name(plan.name + ".tmp")
    tmp.write_bytes(bytes(blob))
    tmp.replace(plan)
    cache_file.write_bytes(bytes(config.get_timing_cache().serialize()))
    int8 = card.metrics.get("int8", {})
    manifest = {
        "tensorrt": trt.__version__,
        **ident,
        "precision": "int8" if qdq else ("fp16" if fp16 else "fp32"),
        "fp16": fp16,
        "build_flags": build_flags,
        "onnx": str(Path(src.name)) if src.parent == plan.parent else str(src.resolve()),
        "onnx_sha256": sha256_file(src),
        "calibration_hash": int8.get("calibration_hash"),
        "profile": shapes,
        "plan_sha256": sha256_file(plan),
        "built": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    manifest_path(plan).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    if log is not None:
        print(f"edge build: wrote {plan} and {manifest_path(plan).name}", file=log)
    return plan


class PlanMismatch(EngineError):
    """A plan that must not be deserialized on this machine; ``fallback`` is its ONNX file."""

    def __init__(self, message: str, fallback: Path | None = None) -> None:
        super().__init__(message)
        self.fallback = fallback
