"""Front-end engines: ``engines/front/NAME.onnx`` (or its INT8 or TensorRT build) with its card,
run through the same :class:`~edge.runtime.base.Engine` backends as the fusion model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edge.errors import EngineError
from edge.front.card import FrontCard, load_front_card
from edge.runtime.base import Engine, open_engine

FRONT_DIR = Path("engines/front")


def front_model_path(front_dir: str | Path, name: str, type_key: str = "onnx",
                     int8: bool = False) -> Path:
    """The file of front end ``name`` in ``front_dir`` for a backend and precision."""
    d = Path(front_dir)
    if type_key == "tensorrt":
        return d / f"{name}{'.int8' if int8 else ''}.plan"
    return d / f"{name}{'.int8' if int8 else ''}.onnx"


def has_int8(name: str, front_dir: str | Path = FRONT_DIR, type_key: str = "onnx") -> bool:
    """Whether front end ``name`` has an INT8 build in ``front_dir`` for backend ``type_key``
    (``edge front-ends build --int8`` writes one only for a model within its accuracy budget)."""
    return front_model_path(front_dir, name, type_key, int8=True).is_file()


def open_front(
    name: str,
    front_dir: str | Path = FRONT_DIR,
    type_key: str = "onnx",
    options: dict[str, Any] | None = None,
    int8: bool = False,
) -> Engine[FrontCard]:
    """Load front end ``name`` (its card ``front_dir/NAME.yaml``) on backend ``type_key``;
    one intra-op thread by default, like the fusion model."""
    d = Path(front_dir)
    card = load_front_card(d / f"{name}.yaml")
    path = front_model_path(d, name, type_key, int8)
    if not path.is_file():
        raise EngineError(f"{path}: no such front-end model (run: edge front-ends import)")
    opts = {"threads": 1, **(options or {})}
    return open_engine(type_key, path, card, opts)
