"""TensorRT backend: a serialized plan, tensor-name I/O, ``execute_async_v3`` on one stream.

The plan's manifest is checked before the plan is deserialized (:func:`edge.runtime.trt.manifest_problems`);
a mismatch raises :class:`PlanMismatch` carrying the ONNX file to serve instead and the command
that rebuilds the plan. Buffers: page-locked host memory and device memory sized for the
profile's largest batch, allocated once; one CUDA stream; a pycuda context of our own, pushed
around each call so any thread may run the engine.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from edge.runtime.card import check_io
from edge.errors import EngineError
from edge.runtime.base import C, Engine
from edge.runtime.trt import (
    PlanMismatch,
    gpu_identity,
    import_cuda,
    import_trt,
    manifest_path,
    manifest_problems,
    rebuild_command,
)


class TensorRTEngine(Engine[C]):
    """A TensorRT plan. Options: ``device`` (CUDA device index, default 0)."""

    type_key = "tensorrt"

    def __init__(self, model_path: Path, card: C, options: dict[str, Any]) -> None:
        super().__init__(model_path, card, options)
        # Files first (a changed ONNX needs no TensorRT to notice), then this machine.
        problems = manifest_problems(model_path)
        if not problems:
            trt = import_trt()
            cuda = import_cuda()
            here = {"tensorrt": trt.__version__, **gpu_identity()}
            problems = manifest_problems(model_path, here)
        if problems:
            mf = manifest_path(model_path)
            try:
                m = json.loads(mf.read_text(encoding="utf-8")) if mf.is_file() else {}
            except ValueError:
                m = {}
            onnx = m.get("onnx")
            fallback = None
            if onnx:
                # The manifest is data, not config: its ONNX is used only from the plan's folder.
                candidate = (model_path.parent / onnx).resolve()
                if candidate.parent == model_path.parent.resolve():
                    fallback = candidate
            raise PlanMismatch(
                f"{model_path}: " + "; ".join(problems) + f". Rebuild: {rebuild_command(m, model_path)}",
                fallback=fallback,
            )
        cuda.init()
        self._ctx = cuda.Device(int(options.get("device", 0))).make_context()
        try:
            self._setup(trt, cuda, model_path, card)
        finally:
            self._ctx.pop()

    def _setup(self, trt: Any, cuda: Any, model_path: Path, card: C) -> None:
        self._cuda = cuda
        logger = trt.Logger(trt.Logger.WARNING)
        runtime = trt.Runtime(logger)
        engine = runtime.deserialize_cuda_engine(model_path.read_bytes())
        if engine is None:
            raise EngineError(f"{model_path}: TensorRT could not deserialize the plan")
        self._engine = engine
        self._context = engine.create_execution_context()
        self._stream = cuda.Stream()
        ins: dict[str, tuple[list[Any], str]] = {}
        outs: dict[str, tuple[list[Any], str]] = {}
        self._inputs: list[str] = []
        self._outputs: list[str] = []
        self._host: dict[str, np.ndarray] = {}
        self._device: dict[str, Any] = {}
        max_batch = 1
        for i in range(engine.num_io_tensors):
            name = engine.get_tensor_name(i)
            shape = list(engine.get_tensor_shape(name))
            dtype = np.dtype(trt.nptype(engine.get_tensor_dtype(name)))
            is_input = engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT
            if is_input:
                hi = list(engine.get_tensor_profile_shape(name, 0)[2])
                max_batch = max(max_batch, int(hi[0]))
                full = hi
                self._inputs.append(name)
            else:
                self._outputs.append(name)
                full = [max_batch if d < 0 else d for d in shape]
            sym = ["B" if d < 0 else int(d) for d in shape]
            (ins if is_input else outs)[name] = (sym, dtype.name)
            self._host[name] = cuda.pagelocked_empty(int(np.prod(full)), dtype)
            self._device[name] = cuda.mem_alloc(self._host[name].nbytes)
            self._context.set_tensor_address(name, int(self._device[name]))
        # Outputs sized after inputs: their batch follows the profile's largest batch.
        for name in self._outputs:
            shape = [max_batch if d < 0 else d for d in engine.get_tensor_shape(name)]
            size = int(np.prod(shape))
            if self._host[name].size < size:
                dtype = self._host[name].dtype
                self._host[name] = cuda.pagelocked_empty(size, dtype)
                self._device[name] = cuda.mem_alloc(self._host[name].nbytes)
                self._context.set_tensor_address(name, int(self._device[name]))
        check_io(card, str(model_path), ins, outs)
        self._max_batch = max_batch

    @property
    def max_batch(self) -> int | None:
        return self._max_batch

    def infer(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        cuda = self._cuda
        self._ctx.push()
        try:
            for name in self._inputs:
                a = np.ascontiguousarray(batch[name], dtype=self._host[name].dtype)
                if a.shape[0] > self._max_batch:
                    raise EngineError(f"batch {a.shape[0]} exceeds the plan's profile ({self._max_batch})")
                self._context.set_input_shape(name, a.shape)
                host = self._host[name][: a.size]
                host[:] = a.ravel()
                cuda.memcpy_htod_async(self._device[name], host, self._stream)
            if not self._context.execute_async_v3(self._stream.handle):
                raise EngineError(f"{self.model_path}: TensorRT execution failed")
            out = {}
            for name in self._outputs:
                shape = tuple(self._context.get_tensor_shape(name))
                host = self._host[name][: int(np.prod(shape))]
                cuda.memcpy_dtoh_async(host, self._device[name], self._stream)
                out[name] = host
            self._stream.synchronize()
            return {k: v.reshape(tuple(self._context.get_tensor_shape(k))).copy() for k, v in out.items()}
        finally:
            self._ctx.pop()

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        mf = manifest_path(self.model_path)
        if mf.is_file():
            d["manifest"] = json.loads(mf.read_text(encoding="utf-8"))
        return d


ENGINE = TensorRTEngine
