"""Model cards: the contract between a model file and the pipeline that serves it.

A model is ``engines/NAME.onnx`` plus ``engines/NAME.yaml``: the task, the classes and what they
mean, the input and output tensors (names, shapes, dtypes, preprocessing), recommended
thresholds, provenance and measured metrics. :func:`check_io` compares what an engine reports
against the card and refuses a mismatch with a message naming the tensor and both shapes.
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path
from collections.abc import Mapping
from typing import Any, Protocol, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from edge.errors import EngineError


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ClassInfo(_Model):
    """One output class."""

    name: str = Field(description="Class name, used in rules and outputs.")
    description: str = Field("", description="What a positive means.")
    modality: str = Field("both", description="Which modality carries it: video, audio or both.")
    threshold: float = Field(0.5, ge=0, le=1, description="Recommended probability threshold.")


class TensorInfo(_Model):
    """One input or output tensor; a string dimension is symbolic (the batch, ``B``)."""

    shape: list[int | str] = Field(description="Dimensions; strings are dynamic.")
    dtype: str = Field("float32", description="Element type.")
    description: str = Field("", description="What the tensor holds.")


class ModelCard(_Model):
    """A model card (``NAME.yaml`` beside ``NAME.onnx``)."""

    name: str = Field(description="Model name.")
    task: str = Field(description="Task the classes belong to (driver, home, ...).")
    version: int = Field(1, description="Card format version.")
    classes: list[ClassInfo] = Field(description="Output classes, in logit order.")
    window: dict[str, float] = Field(description="Window the model expects: seconds, frames.")
    video: dict[str, Any] = Field(description="Frame preprocessing (edge.features.frames.VideoSpec).")
    audio: dict[str, Any] = Field(description="Log-mel parameters (edge.features.logmel.LogMelSpec).")
    inputs: dict[str, TensorInfo] = Field(description="Input tensors by name.")
    outputs: dict[str, TensorInfo] = Field(description="Output tensors by name.")
    front: dict[str, Any] = Field(
        default_factory=dict, description="Per-frame front-end features the model reads "
        "(edge.front.features.FrontSpec: face, person, hand, speech; eye_baseline: the "
        "driver's eyes scaled to his own, edge.front.eyebase; road_yaw, road_pitch, road_roll: "
        "his head's angles from his own straight-ahead, edge.front.roadbase); empty: it reads "
        "pixels.")
    activation: str = Field("sigmoid", description="Logits to probabilities: sigmoid (multi-label).")
    provenance: dict[str, Any] = Field(default_factory=dict, description="Data, seed, command.")
    metrics: dict[str, Any] = Field(default_factory=dict, description="Measured metrics.")
    notes: str = Field("", description="Limits a user must know.")

    @property
    def class_names(self) -> list[str]:
        return [c.name for c in self.classes]


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file (model, card, plan, shard), read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def card_path_for(model: str | Path) -> Path:
    """``engines/x.onnx``, ``x.int8.onnx`` and ``x[.int8|.fp16].plan`` all have the card ``x.yaml``."""
    p = Path(model)
    name = p.name
    for suffix in (".int8.onnx", ".onnx", ".int8.plan", ".fp16.plan", ".plan"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    return p.with_name(name + ".yaml")


M = TypeVar("M", bound=BaseModel)


def load_yaml_card(path: str | Path, model: type[M], what: str, missing: str) -> M:
    """Read a YAML card into ``model``; a missing (``missing`` says what to do) or malformed
    card is one :class:`EngineError` naming the file and, for a bad field, its key path."""
    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise EngineError(f"{p}: no {what} ({missing})") from None
    except (OSError, yaml.YAMLError) as exc:
        raise EngineError(f"{p}: cannot read {what}: {exc}") from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(x) for x in first["loc"])
        raise EngineError(f"{p}: bad {what}: {loc}: {first['msg']}") from None


def load_card(path: str | Path) -> ModelCard:
    """Read a model card; a missing or malformed card is an :class:`EngineError`."""
    return load_yaml_card(path, ModelCard, "model card", "every model needs NAME.yaml beside it")


def save_card(card: ModelCard, path: str | Path) -> None:
    """Write a card as YAML (key order as in the model)."""
    Path(path).write_text(
        yaml.safe_dump(card.model_dump(mode="json"), sort_keys=False, allow_unicode=True),
        encoding="utf-8",
    )


def _dims_match(expected: list[int | str], actual: list[int | str | None]) -> bool:
    if len(expected) != len(actual):
        return False
    for e, a in zip(expected, actual):
        if isinstance(e, int) and isinstance(a, int) and e != a:
            return False
    return True


class TensorLike(Protocol):
    """A card's tensor entry: what :func:`check_io` and warm-up read."""

    @property
    def shape(self) -> list[int | str]: ...

    @property
    def dtype(self) -> str: ...


class CardLike(Protocol):
    """What an engine needs of its card: a name and the tensors. A fusion model's
    :class:`ModelCard` and a front end's :class:`edge.front.card.FrontCard` both are one."""

    @property
    def name(self) -> str: ...

    @property
    def inputs(self) -> Mapping[str, TensorLike]: ...

    @property
    def outputs(self) -> Mapping[str, TensorLike]: ...


def check_io(
    card: CardLike,
    model_name: str,
    inputs: dict[str, tuple[list[int | str | None], str]],
    outputs: dict[str, tuple[list[int | str | None], str]],
) -> None:
    """Refuse an engine whose tensors differ from its card (names, ranks, fixed dims, dtypes)."""
    for kind, want, got in (("input", card.inputs, inputs), ("output", card.outputs, outputs)):
        missing = sorted(set(want) - set(got))
        extra = sorted(set(got) - set(want))
        if missing or extra:
            raise EngineError(
                f"{model_name}: {kind} tensors {sorted(got)} do not match the card's "
                f"{sorted(want)}"
            )
        for name, info in want.items():
            shape, dtype = got[name]
            if not _dims_match(info.shape, shape):
                raise EngineError(
                    f"{model_name}: {kind} '{name}' has shape {shape}, the card expects {info.shape}"
                )
            if dtype != info.dtype:
                raise EngineError(
                    f"{model_name}: {kind} '{name}' is {dtype}, the card expects {info.dtype}"
                )
    if not isinstance(card, ModelCard):  # a front end has no classes
        return
    n_out = next(iter(card.outputs.values())).shape[-1]
    if isinstance(n_out, int) and n_out != len(card.classes):
        raise EngineError(
            f"{model_name}: {n_out} outputs but the card names {len(card.classes)} classes"
        )


_Spec = TypeVar("_Spec")


def spec_from_dict(cls: type[_Spec], data: Mapping[str, Any], where: str) -> _Spec:
    """Build a spec from a card section; unknown keys and bad values name the section."""
    known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - known)
    if unknown:
        raise EngineError(f"{where}: unknown key(s) {unknown} (known: {sorted(known)})")
    kwargs: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as e:
        raise EngineError(f"{where}: {e}") from None
