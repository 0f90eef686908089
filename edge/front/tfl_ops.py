"""TFLite operator handlers for :mod:`edge.front.tflite2onnx`, one function per builtin.

Each handler reads the operator's inputs and options and appends the equivalent ONNX nodes.
Semantics worth a note: TFLite SAME padding can be asymmetric (the extra row/column goes
after), so pads are always explicit; TFLite's depthwise filter is ``[1, KH, KW, C*M]`` with
output channel ``c*M + m`` reading input channel ``c``, which is an ONNX grouped Conv with
``group=C``; TFLite DEPTH_TO_SPACE is ONNX's DCR mode.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from edge.front.tfl_read import TflOp, options

if TYPE_CHECKING:
    from edge.front.tflite2onnx import Ctx

Handler = Callable[["Ctx", TflOp], None]
OPS: dict[str, Handler] = {}

_TO_NCHW = [0, 3, 1, 2]
_TO_NHWC = [0, 2, 3, 1]


def _op(*names: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        for n in names:
            OPS[n] = fn
        return fn

    return register


def _activation(ctx: Ctx, op: TflOp, x: str, code: int, out: str | None = None) -> str:
    """Apply a fused activation (TFLite ActivationFunctionType) to ``x``."""
    if code == 0:
        return x if out is None else ctx.node("Identity", [x], out)
    if code == 1:
        return ctx.node("Relu", [x], out)
    if code in (2, 3):
        lo, hi = (-1.0, 1.0) if code == 2 else (0.0, 6.0)
        return ctx.node("Clip", [x, ctx.const(np.array(lo, np.float32)), ctx.const(np.array(hi, np.float32))], out)
    if code == 4:
        return ctx.node("Tanh", [x], out)
    raise ctx.error(op, f"fused activation {code} is not supported")


def _nhwc_op(ctx: Ctx, op: TflOp, op_type: str, inputs: list[str], act: int = 0, **attrs: Any) -> None:
    """``op_type`` in NCHW between two Transposes; the activation stays next to it (fusable)."""
    x = ctx.node("Transpose", [inputs[0]], perm=_TO_NCHW)
    y = ctx.node(op_type, [x, *inputs[1:]], **attrs)
    y = _activation(ctx, op, y, act)
    ctx.node("Transpose", [y], ctx.name(op.outputs[0]), perm=_TO_NHWC)


def same_pads(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TFLite SAME padding of one spatial dimension: (before, after); the odd pixel goes after."""
    effective = (kernel - 1) * dilation + 1
    out = -(-size // stride)
    total = max((out - 1) * stride + effective - size, 0)
    return total // 2, total - total // 2


def _pads(ctx: Ctx, op: TflOp, padding: int, hw: tuple[int, int], k: tuple[int, int],
          s: tuple[int, int], d: tuple[int, int] = (1, 1)) -> list[int]:
    if padding == 1:  # VALID
        return [0, 0, 0, 0]
    if padding != 0:
        raise ctx.error(op, f"padding type {padding} is not supported")
    (top, bottom), (left, right) = (same_pads(hw[i], k[i], s[i], d[i]) for i in range(2))
    return [top, left, bottom, right]


def _bias(ctx: Ctx, op: TflOp) -> list[str]:
    if len(op.inputs) > 2 and op.inputs[2] >= 0:
        return [ctx.input(op.inputs[2])]
    return []


@_op("CONV_2D")
def _conv(ctx: Ctx, op: TflOp) -> None:
    o = options(op, "Conv2DOptions")
    w = ctx.const_value(op, op.inputs[1], "filter")  # [O, KH, KW, I]
    n, h, wd, c = ctx.shape(op.inputs[0])
    s, d = (o.StrideH(), o.StrideW()), (o.DilationHFactor(), o.DilationWFactor())
    k = (w.shape[1], w.shape[2])
    ctx_w = ctx.const(w.transpose(0, 3, 1, 2).astype(np.float32), "w")
    _nhwc_op(ctx, op, "Conv", [ctx.input(op.inputs[0]), ctx_w, *_bias(ctx, op)],
             o.FusedActivationFunction(), kernel_shape=list(k), strides=list(s), dilations=list(d),
             pads=_pads(ctx, op, o.Padding(), (h, wd), k, s, d), group=c // w.shape[3])


@_op("DEPTHWISE_CONV_2D")
def _depthwise(ctx: Ctx, op: TflOp) -> None:
    o = options(op, "DepthwiseConv2DOptions")
    w = ctx.const_value(op, op.inputs[1], "filter")  # [1, KH, KW, C*M]
    n, h, wd, c = ctx.shape(op.inputs[0])
    s, d = (o.StrideH(), o.StrideW()), (o.DilationHFactor(), o.DilationWFactor())
    k = (w.shape[1], w.shape[2])
    weight = w[0].transpose(2, 0, 1)[:, None, :, :].astype(np.float32)  # [C*M, 1, KH, KW]
    _nhwc_op(ctx, op, "Conv", [ctx.input(op.inputs[0]), ctx.const(weight, "w"), *_bias(ctx, op)],
             o.FusedActivationFunction(), kernel_shape=list(k), strides=list(s), dilations=list(d),
             pads=_pads(ctx, op, o.Padding(), (h, wd), k, s, d), group=c)


@_op("MAX_POOL_2D", "AVERAGE_POOL_2D")
def _pool(ctx: Ctx, op: TflOp) -> None:
    o = options(op, "Pool2DOptions")
    n, h, w, c = ctx.shape(op.inputs[0])
    k, s = (o.FilterHeight(), o.FilterWidth()), (o.StrideH(), o.StrideW())
    attrs: dict[str, Any] = {"kernel_shape": list(k), "strides": list(s),
                             "pads": _pads(ctx, op, o.Padding(), (h, w), k, s)}
    if op.name == "AVERAGE_POOL_2D":
        attrs["count_include_pad"] = 0  # TFLite averages over the valid pixels only
    _nhwc_op(ctx, op, "MaxPool" if op.name == "MAX_POOL_2D" else "AveragePool",
             [ctx.input(op.inputs[0])], o.FusedActivationFunction(), **attrs)


@_op("PAD", "PADV2")
def _pad(ctx: Ctx, op: TflOp) -> None:
    p = ctx.const_value(op, op.inputs[1], "paddings").astype(np.int64)  # [rank, 2]
    inputs = [ctx.input(op.inputs[0]), ctx.const(np.concatenate([p[:, 0], p[:, 1]]), "pads")]
    if op.name == "PADV2" and len(op.inputs) > 2 and op.inputs[2] >= 0:
        inputs.append(ctx.input(op.inputs[2]))
    ctx.node("Pad", inputs, ctx.name(op.outputs[0]), mode="constant")


_UNARY = {"RELU": ("Relu", 0), "LOGISTIC": ("Sigmoid", 0), "TANH": ("Tanh", 0),
          "HARD_SWISH": ("HardSwish", 0), "RELU6": (None, 3), "RELU_N1_TO_1": (None, 2)}


@_op(*_UNARY)
def _unary(ctx: Ctx, op: TflOp) -> None:
    onnx_op, act = _UNARY[op.name]
    x, out = ctx.input(op.inputs[0]), ctx.name(op.outputs[0])
    if onnx_op is None:
        _activation(ctx, op, x, act, out)
    else:
        ctx.node(onnx_op, [x], out)


_BINARY = {"ADD": ("Add", "AddOptions"), "SUB": ("Sub", "SubOptions"),
           "MUL": ("Mul", "MulOptions"), "DIV": ("Div", "DivOptions")}


@_op(*_BINARY)
def _binary(ctx: Ctx, op: TflOp) -> None:
    onnx_op, opts = _BINARY[op.name]
    o = options(op, opts)
    act = o.FusedActivationFunction() if o is not None else 0
    y = ctx.node(onnx_op, [ctx.input(op.inputs[0]), ctx.input(op.inputs[1])],
                 None if act else ctx.name(op.outputs[0]))
    if act:
        _activation(ctx, op, y, act, ctx.name(op.outputs[0]))


@_op("CONCATENATION")
def _concat(ctx: Ctx, op: TflOp) -> None:
    o = options(op, "ConcatenationOptions")
    act = o.FusedActivationFunction()
    y = ctx.node("Concat", [ctx.input(i) for i in op.inputs],
                 None if act else ctx.name(op.outputs[0]), axis=int(o.Axis()))
    if act:
        _activation(ctx, op, y, act, ctx.name(op.outputs[0]))


@_op("RESHAPE", "SQUEEZE", "EXPAND_DIMS")
def _reshape(ctx: Ctx, op: TflOp) -> None:
    shape = np.array(ctx.shape(op.outputs[0]), dtype=np.int64)  # static: the output says it
    ctx.node("Reshape", [ctx.input(op.inputs[0]), ctx.const(shape, "shape")], ctx.name(op.outputs[0]))


@_op("TRANSPOSE")
def _transpose(ctx: Ctx, op: TflOp) -> None:
    perm = ctx.const_value(op, op.inputs[1], "permutation")
    ctx.node("Transpose", [ctx.input(op.inputs[0])], ctx.name(op.outputs[0]),
             perm=[int(p) for p in perm])


@_op("PRELU")
def _prelu(ctx: Ctx, op: TflOp) -> None:
    # the slope ([1, 1, C] or [C]) broadcasts onto NHWC from the right, as ONNX PRelu wants
    ctx.node("PRelu", [ctx.input(op.inputs[0]), ctx.input(op.inputs[1])], ctx.name(op.outputs[0]))


@_op("FULLY_CONNECTED")
def _fully_connected(ctx: Ctx, op: TflOp) -> None:
    o = options(op, "FullyConnectedOptions")
    if o is not None and o.WeightsFormat() != 0:
        raise ctx.error(op, "shuffled weights are not supported")
    w = ctx.const_value(op, op.inputs[1], "weights")  # [O, I]
    x = ctx.input(op.inputs[0])
    if len(ctx.shape(op.inputs[0])) != 2:
        x = ctx.node("Reshape", [x, ctx.const(np.array([-1, w.shape[1]], np.int64), "shape")])
    y = ctx.node("Gemm", [x, ctx.const(w.astype(np.float32), "w"), *_bias(ctx, op)], transB=1)
    y = _activation(ctx, op, y, o.FusedActivationFunction() if o is not None else 0)
    out_shape = ctx.shape(op.outputs[0])
    ctx.node("Reshape", [y, ctx.const(np.array(out_shape, np.int64), "shape")], ctx.name(op.outputs[0]))


@_op("MEAN")
def _mean(ctx: Ctx, op: TflOp) -> None:
    o = options(op, "ReducerOptions")
    axes = [int(a) for a in np.atleast_1d(ctx.const_value(op, op.inputs[1], "axes"))]
    ctx.node("ReduceMean", [ctx.input(op.inputs[0])], ctx.name(op.outputs[0]),
             axes=axes, keepdims=int(bool(o.KeepDims())) if o is not None else 0)


@_op("SOFTMAX")
def _softmax(ctx: Ctx, op: TflOp) -> None:
    o = options(op, "SoftmaxOptions")
    x = ctx.input(op.inputs[0])
    beta = float(o.Beta()) if o is not None else 1.0
    if beta != 1.0:
        x = ctx.node("Mul", [x, ctx.const(np.array(beta, np.float32))])
    ctx.node("Softmax", [x], ctx.name(op.outputs[0]), axis=-1)


@_op("DEPTH_TO_SPACE", "SPACE_TO_DEPTH")
def _depth_space(ctx: Ctx, op: TflOp) -> None:
    if op.name == "DEPTH_TO_SPACE":
        block = options(op, "DepthToSpaceOptions").BlockSize()
        # TFLite: out[h*b+i, w*b+j, c] = in[h, w, (i*b+j)*C' + c], ONNX's DCR order
        _nhwc_op(ctx, op, "DepthToSpace", [ctx.input(op.inputs[0])], blocksize=int(block), mode="DCR")
    else:
        block = options(op, "SpaceToDepthOptions").BlockSize()
        _nhwc_op(ctx, op, "SpaceToDepth", [ctx.input(op.inputs[0])], blocksize=int(block))


@_op("RESIZE_BILINEAR")
def _resize_bilinear(ctx: Ctx, op: TflOp) -> None:
    o = options(op, "ResizeBilinearOptions")
    align, half = bool(o.AlignCorners()), bool(o.HalfPixelCenters())
    if align and half:
        raise ctx.error(op, "align_corners and half_pixel_centers together are not supported")
    # TFLite: in = out * (in-1)/(out-1) | (out + 0.5) * in/out - 0.5 | out * in/out; the
    # ONNX modes of the same formulas (both clamp the neighbours at the border)
    mode = "align_corners" if align else "half_pixel" if half else "asymmetric"
    n, h, w, c = ctx.shape(op.outputs[0])
    sizes = ctx.const(np.array([n, c, h, w], np.int64), "sizes")
    _nhwc_op(ctx, op, "Resize", [ctx.input(op.inputs[0]), "", "", sizes],
             mode="linear", coordinate_transformation_mode=mode)


@_op("DEQUANTIZE", "DENSIFY")
def _fold_or_cast(ctx: Ctx, op: TflOp) -> None:
    """fp16 or sparse constants become dense fp32 constants here, so no node is needed."""
    src, out = op.inputs[0], op.outputs[0]
    out_dtype = ctx.tensor(out).dtype
    if ctx.is_const(src):
        ctx.consts[out] = ctx.consts[src].astype(out_dtype)
        return
    if op.name == "DEQUANTIZE" and ctx.tensor(src).dtype == np.float16:
        from onnx import TensorProto

        ctx.node("Cast", [ctx.input(src)], ctx.name(out), to=TensorProto.FLOAT)
        return
    raise ctx.error(op, "only constant or fp16 inputs are supported (no integer quantization)")
