"""Our TFLite -> ONNX converter for float models with static shapes.

Layout: tensors stay NHWC as in TFLite; the layout-sensitive operators (convolutions, pools,
resize, depth-to-space) are wrapped in a Transpose pair to and from NCHW, which ONNX Runtime's
optimizer cancels between neighbours. Constant weights stored as fp16 (DEQUANTIZE) or sparse
(DENSIFY) are folded into dense fp32 initializers at conversion time. An operator with no
handler in :data:`edge.front.tfl_ops.OPS` is a :class:`TfliteError` naming the file and op.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from edge.front.tfl_read import TflGraph, TflOp, TflTensor, TfliteError, read_graph

OPSET = 17
IR_VERSION = 8  # opset 17 needs IR 8; older ONNX Runtimes (Jetson wheels) read it


def require_onnx() -> None:
    """A missing ``onnx`` package is a one-line error naming it, not an ImportError."""
    try:
        import onnx  # noqa: F401
    except ImportError:
        raise TfliteError("converting to ONNX needs the onnx package: pip install 'onnx>=1.15'") from None


class Ctx:
    """What an op handler works with: the TFLite graph, the constants, the ONNX nodes so far."""

    def __init__(self, graph: TflGraph, where: str, io_names: Mapping[int, str]) -> None:
        self.graph = graph
        self.where = where
        self.io_names = dict(io_names)
        self.nodes: list[Any] = []
        self.initializers: dict[str, np.ndarray] = {}
        self.consts: dict[int, np.ndarray] = {
            t.index: t.data for t in graph.tensors if t.data is not None
        }
        self._const_names: dict[int, str] = {}
        self._count = 0

    # -- tensors --------------------------------------------------------------------------
    def tensor(self, index: int) -> TflTensor:
        return self.graph.tensors[index]

    def shape(self, index: int) -> tuple[int, ...]:
        return self.graph.tensors[index].shape

    def is_const(self, index: int) -> bool:
        return index in self.consts

    def const_value(self, op: TflOp, index: int, what: str) -> np.ndarray:
        """A constant input's data; a computed one is an error naming the op and the input."""
        if index not in self.consts:
            raise self.error(op, f"its {what} is computed at run time; only constants are supported")
        return self.consts[index]

    def name(self, index: int) -> str:
        """The ONNX value name of a (non-constant) tensor: its TFLite name at the graph's edges."""
        return self.io_names.get(index, f"t{index}")

    def input(self, index: int) -> str:
        """An op input: a constant becomes an initializer (floats as fp32) the first time."""
        if index in self.consts:
            if index not in self._const_names:
                data = self.consts[index]
                if data.dtype.kind == "f":
                    data = data.astype(np.float32)
                self._const_names[index] = self.const(data, f"c{index}")
            return self._const_names[index]
        return self.name(index)

    # -- building -------------------------------------------------------------------------
    def const(self, data: np.ndarray, hint: str = "k") -> str:
        self._count += 1
        name = f"{hint}_{self._count}"
        self.initializers[name] = np.ascontiguousarray(data)
        return name

    def node(self, op_type: str, inputs: list[str], output: str | None = None, **attrs: Any) -> str:
        """Append a node; returns its (single) output name, made up unless given."""
        from onnx import helper

        self._count += 1
        out = output or f"{op_type.lower()}_{self._count}"
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=f"n{self._count}_{op_type}", **attrs))
        return out

    def error(self, op: TflOp, why: str) -> TfliteError:
        return TfliteError(f"{self.where}: operator #{op.index} {op.name}: {why}")


def convert(
    data: bytes,
    where: str,
    *,
    rename: Mapping[str, str] | None = None,
    doc: str = "",
    producer_version: str = "",
) -> Any:
    """Convert a ``.tflite`` file's bytes to an ``onnx.ModelProto``.

    Parameters
    ----------
    data
        The flatbuffer.
    where
        Names the file in errors (e.g. ``wheel.whl!mediapipe/modules/x.tflite``).
    rename
        TFLite input/output tensor names -> ONNX names (others keep their TFLite names).
    doc, producer_version
        Written into the model's ``doc_string`` and ``producer_version``.

    Raises
    ------
    TfliteError
        A corrupt file, an unsupported tensor type or operator, or a computed weight.
    """
    require_onnx()
    from onnx import TensorProto, checker, helper, numpy_helper

    from edge.front.tfl_ops import OPS

    graph = read_graph(data, where)
    rename = dict(rename or {})
    io_names = {i: rename.get(graph.tensors[i].name, graph.tensors[i].name) for i in graph.inputs + graph.outputs}
    ctx = Ctx(graph, where, io_names)
    for op in graph.ops:
        handler = OPS.get(op.name)
        if handler is None:
            raise TfliteError(f"{where}: operator #{op.index} {op.name} is not supported by the converter")
        handler(ctx, op)
    for i in graph.outputs:
        if i in ctx.consts:
            raise TfliteError(f"{where}: output {graph.tensors[i].name!r} is a constant")

    def value_info(index: int) -> Any:
        t = graph.tensors[index]
        elem = helper.np_dtype_to_tensor_dtype(t.dtype) if t.dtype != np.float16 else TensorProto.FLOAT16
        return helper.make_tensor_value_info(ctx.name(index), elem, list(t.shape))

    onnx_graph = helper.make_graph(
        ctx.nodes,
        "front",
        [value_info(i) for i in graph.inputs],
        [value_info(i) for i in graph.outputs],
        initializer=[numpy_helper.from_array(a, n) for n, a in ctx.initializers.items()],
    )
    model = helper.make_model(
        onnx_graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="edge",
        producer_version=producer_version,
        doc_string=doc,
    )
    model.ir_version = IR_VERSION
    try:
        checker.check_model(model, full_check=True)
    except Exception as exc:  # onnx raises ValidationError / InferenceError: a converter bug
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TfliteError(f"{where}: converted graph fails the ONNX checker: {first}") from None
    return model
