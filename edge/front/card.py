"""The front-end card: ``engines/front/NAME.yaml`` beside ``NAME.onnx``.

A front end is not a fusion model: it has no classes, no window and no log-mel spec, so it
does not fit :class:`edge.runtime.card.ModelCard` (whose ``check_io`` ties the last output dimension
to the classes). Its card says where the file came from (package, wheel and file hashes,
converter), under which licence, the tensor contract (names, shapes, dtypes, layout) and the
pre-/post-processing the pipeline must apply around it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field

from edge.runtime.card import load_yaml_card
from edge.errors import EngineError


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FrontTensor(_Model):
    """One input or output tensor of a front end."""

    shape: list[int | str] = Field(description="Dimensions; a string is dynamic (B: batch).")
    dtype: str = Field("float32", description="Element type.")
    layout: str = Field("", description="Axis meaning, e.g. NHWC, or N,anchors,values.")
    source_name: str = Field("", description="The tensor's name in the source model file.")
    description: str = Field("", description="What the tensor holds and its units.")


class Provenance(_Model):
    """Where the model file came from and how it became ONNX."""

    package: str = Field(description="Registry package that ships the model.")
    version: str = Field(description="Pinned package version.")
    wheel: str = Field(description="Wheel file name.")
    wheel_sha256: str = Field(description="SHA-256 of the wheel.")
    file: str = Field(description="Path of the model file inside the wheel.")
    file_sha256: str = Field(description="SHA-256 of that file.")
    converter: str = Field(description="What made the ONNX file: 'edge X.Y.Z tflite2onnx' or 'copied'.")
    onnx_sha256: str = Field(description="SHA-256 of the written ONNX file.")


class Licence(_Model):
    """Licence of the model weights, and the attribution it asks for."""

    spdx: str = Field(description="SPDX identifier (Apache-2.0, MIT).")
    attribution: str = Field(description="Copyright line to reproduce.")
    text_file: str = Field(description="Licence text copied from the wheel, beside the card.")


class FrontCard(_Model):
    """A front-end card."""

    name: str = Field(description="Model name (engines/front/NAME.onnx).")
    kind: str = Field("front-end", description="Always front-end: a pretrained real-world model.")
    version: int = Field(1, description="Card format version.")
    task: str = Field(description="What it does: face-detection, face-landmarks, vad, ...")
    description: str = Field("", description="One paragraph for a user.")
    provenance: Provenance = Field(description="Package, hashes, converter.")
    licence: Licence = Field(description="Licence and attribution.")
    inputs: dict[str, FrontTensor] = Field(description="Input tensors by name.")
    outputs: dict[str, FrontTensor] = Field(description="Output tensors by name.")
    preprocess: dict[str, Any] = Field(default_factory=dict, description="Input preparation.")
    postprocess: dict[str, Any] = Field(default_factory=dict, description="Output decoding.")
    metrics: dict[str, Any] = Field(default_factory=dict, description="Measured: conversion error, latency.")
    notes: str = Field("", description="Limits a user must know.")


def load_front_card(path: str | Path) -> FrontCard:
    """Read a front-end card; a missing or malformed card is an :class:`EngineError`."""
    return load_yaml_card(path, FrontCard, "front-end card", "run: edge front-ends import")


def card_text(card: FrontCard) -> str:
    """The card as YAML (key order as in the model)."""
    return yaml.safe_dump(card.model_dump(mode="json"), sort_keys=False, allow_unicode=True, width=100,
                          default_flow_style=None)


def check_onnx_io(card: FrontCard, path: str | Path) -> None:
    """Load ``path`` in ONNX Runtime and refuse tensors that differ from the card (name, shape,
    dtype); the message names the tensor and both values."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    try:
        sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    except Exception as exc:  # ORT's own exception types
        raise EngineError(f"{path}: cannot load ONNX model: {str(exc).splitlines()[0]}") from None
    types = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(int64)": "int64"}
    for kind, want, got in (("input", card.inputs, sess.get_inputs()), ("output", card.outputs, sess.get_outputs())):
        have = {t.name: (list(t.shape), types.get(t.type, t.type)) for t in got}
        if sorted(have) != sorted(want):
            raise EngineError(f"{path}: {kind} tensors {sorted(have)} do not match the card's {sorted(want)}")
        for name, info in want.items():
            shape, dtype = have[name]
            fixed_ok = len(shape) == len(info.shape) and all(
                not (isinstance(w, int) and isinstance(g, int) and w != g)
                for w, g in zip(info.shape, shape)
            )
            if not fixed_ok or dtype != info.dtype:
                raise EngineError(
                    f"{path}: {kind} '{name}' is {dtype} {shape}, the card says {info.dtype} {info.shape}"
                )
