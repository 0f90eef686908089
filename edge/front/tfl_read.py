"""Read a TFLite flatbuffer into plain Python: tensors (with their constant data, sparse ones
densified), operators (name, inputs, outputs, options table) and the graph's inputs/outputs.

The ``tflite`` package (generated from the TFLite schema, pure Python) does the flatbuffer
access; everything else, densifying sparse tensors included, is ours.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edge.errors import ConfigError

# TFLite TensorType -> NumPy dtype (the types the front-end models use, and a few more)
_DTYPES: dict[int, np.dtype[Any]] = {
    0: np.dtype(np.float32),
    1: np.dtype(np.float16),
    2: np.dtype(np.int32),
    3: np.dtype(np.uint8),
    4: np.dtype(np.int64),
    6: np.dtype(np.bool_),
    7: np.dtype(np.int16),
    9: np.dtype(np.int8),
    10: np.dtype(np.float64),
}


class TfliteError(ConfigError):
    """A TFLite file that cannot be read or converted (the message names the file)."""


@dataclass
class TflTensor:
    """One tensor: static shape, element type and, for a constant, its (dense) data."""

    index: int
    name: str
    shape: tuple[int, ...]
    dtype: np.dtype[Any]
    data: np.ndarray | None = None


@dataclass
class TflOp:
    """One operator: builtin name, tensor indices (-1: an omitted optional input), options."""

    index: int
    name: str
    inputs: list[int]
    outputs: list[int]
    options: Any = None  # a flatbuffers Table, read through the matching tflite *Options class


@dataclass
class TflGraph:
    """The first (only) subgraph of a model."""

    tensors: list[TflTensor]
    ops: list[TflOp]
    inputs: list[int]
    outputs: list[int]
    description: str = ""
    metadata: dict[str, bytes] = field(default_factory=dict)


def _tflite() -> Any:
    try:
        import tflite  # type: ignore[import-untyped]
    except ImportError:
        raise TfliteError("reading TFLite files needs the tflite package: pip install tflite") from None
    return tflite


def read_graph(data: bytes, where: str) -> TflGraph:
    """Parse a ``.tflite`` file's bytes; ``where`` names it in errors."""
    tfl = _tflite()
    from tflite.utils import BUILTIN_OPCODE2NAME  # type: ignore[import-untyped]

    if len(data) < 8 or data[4:8] != b"TFL3":
        raise TfliteError(f"{where}: not a TFLite flatbuffer (no TFL3 identifier)")
    try:
        model = tfl.Model.GetRootAsModel(data, 0)
        if model.SubgraphsLength() != 1:
            raise TfliteError(f"{where}: {model.SubgraphsLength()} subgraphs; only one is supported")
        g = model.Subgraphs(0)
        tensors = [_read_tensor(tfl, model, g.Tensors(i), i, where) for i in range(g.TensorsLength())]
        ops = []
        for i in range(g.OperatorsLength()):
            op = g.Operators(i)
            code = model.OperatorCodes(op.OpcodeIndex())
            builtin = max(int(code.BuiltinCode()), int(code.DeprecatedBuiltinCode()))
            name = BUILTIN_OPCODE2NAME.get(builtin, f"builtin #{builtin}")
            if name == "CUSTOM":
                name = f"CUSTOM:{(code.CustomCode() or b'').decode(errors='replace')}"
            ops.append(TflOp(
                index=i,
                name=name,
                inputs=[int(x) for x in op.InputsAsNumpy()] if op.InputsLength() else [],
                outputs=[int(x) for x in op.OutputsAsNumpy()] if op.OutputsLength() else [],
                options=op.BuiltinOptions(),
            ))
        metadata = {}
        for i in range(model.MetadataLength()):
            md = model.Metadata(i)
            buf = model.Buffers(md.Buffer())
            metadata[(md.Name() or b"").decode()] = buf.DataAsNumpy().tobytes() if buf.DataLength() else b""
        return TflGraph(
            tensors=tensors,
            ops=ops,
            inputs=[int(x) for x in g.InputsAsNumpy()],
            outputs=[int(x) for x in g.OutputsAsNumpy()],
            description=(model.Description() or b"").decode(errors="replace"),
            metadata=metadata,
        )
    except TfliteError:
        raise
    except Exception as exc:  # a truncated or corrupt flatbuffer fails anywhere inside the reader
        raise TfliteError(f"{where}: corrupt TFLite flatbuffer ({type(exc).__name__}: {exc})") from None


def options(tfl_op: TflOp, cls_name: str) -> Any:
    """The operator's builtin options read as ``tflite.<cls_name>`` (None when absent)."""
    if tfl_op.options is None:
        return None
    obj = getattr(_tflite(), cls_name)()
    obj.Init(tfl_op.options.Bytes, tfl_op.options.Pos)
    return obj


def _read_tensor(tfl: Any, model: Any, t: Any, index: int, where: str) -> TflTensor:
    name = (t.Name() or b"").decode(errors="replace")
    ttype = int(t.Type())
    if ttype not in _DTYPES:
        raise TfliteError(f"{where}: tensor {name!r} has TFLite type {ttype}, which is not supported")
    dtype = _DTYPES[ttype]
    shape = tuple(int(d) for d in t.ShapeAsNumpy()) if t.ShapeLength() else ()
    if t.ShapeSignatureLength() and any(int(d) < 0 for d in t.ShapeSignatureAsNumpy()):
        raise TfliteError(f"{where}: tensor {name!r} has a dynamic shape; only static shapes are supported")
    if t.Quantization() is not None and t.Quantization().ScaleLength():
        raise TfliteError(f"{where}: tensor {name!r} is integer-quantized; only float models are supported")
    buf = model.Buffers(t.Buffer())
    data = None
    if buf is not None and buf.DataLength():
        raw = buf.DataAsNumpy().tobytes()
        values = np.frombuffer(raw, dtype=dtype.newbyteorder("<")).astype(dtype)
        sparsity = t.Sparsity()
        if sparsity is not None:
            data = densify(tfl, sparsity, values, shape, f"{where}: tensor {name!r}")
        else:
            if values.size != int(np.prod(shape, dtype=np.int64)):
                raise TfliteError(f"{where}: tensor {name!r} has {values.size} values for shape {shape}")
            data = values.reshape(shape)
    return TflTensor(index=index, name=name, shape=shape, dtype=dtype, data=data)


def _index_vector(tfl: Any, kind: int, table: Any, where: str) -> np.ndarray:
    cls = {1: "Int32Vector", 2: "Uint16Vector", 3: "Uint8Vector"}.get(kind)
    if cls is None or table is None:
        raise TfliteError(f"{where}: sparse index vector of unknown type {kind}")
    vec = getattr(tfl, cls)()
    vec.Init(table.Bytes, table.Pos)
    if not vec.ValuesLength():
        return np.zeros(0, dtype=np.int64)
    return np.asarray(vec.ValuesAsNumpy(), dtype=np.int64)


def densify(tfl: Any, sparsity: Any, values: np.ndarray, shape: tuple[int, ...], where: str) -> np.ndarray:
    """A dense array from TFLite's sparse format (per traversed dimension: dense, or CSR
    segments + indices; optional block dimensions), walked level by level with NumPy.

    A dense level multiplies the running position, a CSR level replaces it with the entry's
    slot (which indexes the next level's segments). The values are stored in depth-first
    traversal order, the order in which the expansion keeps its leaves.
    """
    order = [int(x) for x in sparsity.TraversalOrderAsNumpy()] if sparsity.TraversalOrderLength() else []
    block_map = [int(x) for x in sparsity.BlockMapAsNumpy()] if sparsity.BlockMapLength() else []
    rank = len(shape)
    levels = sparsity.DimMetadataLength()
    if not order:
        order = list(range(levels))
    if levels != len(order) or levels != rank + len(block_map):
        raise TfliteError(f"{where}: inconsistent sparsity ({levels} levels for rank {rank})")
    pos = np.zeros(1, dtype=np.int64)  # running position per partial path
    coords = np.zeros((1, levels), dtype=np.int64)  # index per level (by traversal slot)
    sizes = [0] * levels
    for level in range(levels):
        meta = sparsity.DimMetadata(level)
        if int(meta.Format()) == 0:  # DENSE
            n = int(meta.DenseSize())
            sizes[level] = n
            idx = np.tile(np.arange(n, dtype=np.int64), len(pos))
            pos = np.repeat(pos, n) * n + idx
            coords = np.repeat(coords, n, axis=0)
            coords[:, level] = idx
        else:  # SPARSE_CSR
            segs = _index_vector(tfl, int(meta.ArraySegmentsType()), meta.ArraySegments(), where)
            inds = _index_vector(tfl, int(meta.ArrayIndicesType()), meta.ArrayIndices(), where)
            if len(segs) < int(pos.max(initial=0)) + 2 or len(inds) < int(segs[-1]):
                raise TfliteError(f"{where}: sparse segments do not cover the tensor")
            counts = segs[pos + 1] - segs[pos]
            starts = np.repeat(segs[pos], counts)
            offsets = np.arange(int(counts.sum()), dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)
            slots = starts + offsets
            coords = np.repeat(coords, counts, axis=0)
            coords[:, level] = inds[slots]
            pos = slots
    if len(pos) != values.size:
        raise TfliteError(f"{where}: sparse data has {values.size} values, the indices address {len(pos)}")
    # traversal slots -> dense coordinates (a blocked dimension: outer * block + inner)
    dense_idx = np.zeros((len(pos), rank), dtype=np.int64)
    slot_of = {dim: level for level, dim in enumerate(order)}
    for d in range(rank):
        dense_idx[:, d] = coords[:, slot_of[d]]
    for k, d in enumerate(block_map):
        level = slot_of[rank + k]
        block = sizes[level] or int(sparsity.DimMetadata(level).DenseSize())
        dense_idx[:, d] = dense_idx[:, d] * block + coords[:, level]
    out = np.zeros(shape, dtype=values.dtype)
    if len(pos):
        out[tuple(dense_idx.T)] = values
    return out
