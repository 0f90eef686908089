"""The engine interface and the registry that config ``engine: {type: ...}`` selects from.

Backends register under a type key and are imported only when chosen, so a missing optional
dependency (TensorRT, pycuda) is a clear error naming the extra, not an import-time crash.
"""

from __future__ import annotations

import importlib
import logging
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, Generic, TypeVar

import numpy as np

from edge.runtime.card import CardLike
from edge.errors import EngineError

log = logging.getLogger(__name__)

# type key -> module that defines the backend's Engine subclass as ``ENGINE``
BACKENDS = {
    "onnx": "edge.runtime.onnx",
    "tensorrt": "edge.runtime.tensorrt",
}


C = TypeVar("C", bound=CardLike)


class Engine(ABC, Generic[C]):
    """Runs one model: ``infer(batch)`` maps input arrays by name to output arrays by name.

    The card is the fusion model's :class:`~edge.runtime.card.ModelCard`, or a front end's
    :class:`~edge.front.card.FrontCard`: both run through the same backends.
    """

    type_key = ""

    def __init__(self, model_path: Path, card: C, options: dict[str, Any]) -> None:
        self.model_path = model_path
        self.card = card
        self.options = options

    @abstractmethod
    def infer(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run one batch."""

    @property
    @abstractmethod
    def max_batch(self) -> int | None:
        """Largest batch the engine accepts in one call (None: any)."""

    def warmup(self, runs: int = 3) -> None:
        """Run zero inputs a few times so the first real window is not the slow one."""
        batch = {}
        for name, info in self.card.inputs.items():
            shape = [1 if isinstance(d, str) else d for d in info.shape]
            batch[name] = np.zeros(shape, dtype=np.dtype(info.dtype))
        for _ in range(runs):
            self.infer(batch)

    def describe(self) -> dict[str, Any]:
        """What is running, for /healthz and logs."""
        return {"type": self.type_key, "model": str(self.model_path), "name": self.card.name}


def load_engine(
    type_key: str, model_path: str | Path, card: C, options: dict[str, Any] | None = None
) -> Engine[C]:
    """Build and load the engine registered under ``type_key``."""
    module_name = BACKENDS.get(type_key)
    if module_name is None:
        raise EngineError(f"unknown engine type {type_key!r} (known: {', '.join(sorted(BACKENDS))})")
    module = importlib.import_module(module_name)
    engine_cls: type[Engine[C]] = module.ENGINE
    path = Path(model_path)
    if not path.is_file():
        raise EngineError(f"{path}: no such model file")
    return engine_cls(path, card, options or {})


def open_engine(
    type_key: str, model_path: str | Path, card: C, options: dict[str, Any] | None = None
) -> Engine[C]:
    """:func:`load_engine`, except that a TensorRT plan built for another GPU, another TensorRT
    or an older ONNX file is not deserialized: the reason and the rebuild command are logged and
    its ONNX file is served through ONNX Runtime (CPU) instead."""
    from edge.runtime.trt import PlanMismatch

    try:
        return load_engine(type_key, model_path, card, options)
    except PlanMismatch as exc:
        if exc.fallback is None or not exc.fallback.is_file():
            raise
        log.warning("%s; serving %s through ONNX Runtime instead", exc, exc.fallback)
        opts = {"threads": (options or {}).get("threads", 1)}
        return load_engine("onnx", exc.fallback, card, opts)
