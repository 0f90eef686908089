"""What-if replays: a recording's front-end features changed before the model reads them.

``edge eval --recordings DIR --perturb face.yaw+15`` asks what the model would have said had
the camera been mounted 15 degrees to the side; ``face.eye_open_left*0.75
face.eye_open_right*0.75`` what it says of someone whose open eyes measure a quarter narrower.
A dev set holds a few people and one mounting each; this moves them along the axes the
front ends measure, on real footage, without new recordings. It is a probe of the model, not
of the front ends: the face mesh of a really narrower eye is not this.

A change applies to the frame targets that hold a measurement: ones with a frame (the window's
``front_mask``), and for a stage's feature, frames where that stage found something (its
``present`` feature, where the model reads it; an absent face stays zeros). Changes come
before the driver's baselines (:mod:`edge.front.roadbase`, :mod:`edge.front.eyebase`), as a
narrower eye or a camera aside would: the baselines see the changed eyes and yaw.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from edge.errors import ConfigError
from edge.features.serve import Features
from edge.front.features import FrontSpec

_CHANGE = re.compile(r"^([a-z_]+\.[a-z_]+)([*+])([-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)$")


@dataclass(frozen=True)
class Change:
    """One feature scaled (``*``) or shifted (``+``)."""

    feature: str
    op: str
    value: float

    def __str__(self) -> str:
        return f"{self.feature}{self.op}{self.value:g}"


def parse_changes(items: Sequence[str]) -> list[Change]:
    """``FEATURE*VALUE`` or ``FEATURE+VALUE`` (``face.yaw+-15`` shifts by -15)."""
    out = []
    for item in items:
        m = _CHANGE.match(item.strip())
        if m is None:
            raise ConfigError(f"--perturb {item!r}: write FEATURE*VALUE or FEATURE+VALUE, e.g. "
                              "face.eye_open_left*0.75 or face.yaw+15")
        out.append(Change(m.group(1), m.group(2), float(m.group(3))))
    return out


def feature_hook(spec: FrontSpec, changes: Sequence[Change]) -> Callable[[Features], Features]:
    """A function that applies ``changes`` to one window's features (a copy; the mask kept).

    Raises
    ------
    ConfigError
        A change names a feature the model does not read.
    """
    change = front_change(spec, changes)

    def apply(f: Features) -> Features:
        if f.front is None:
            return f
        return replace(f, front=change(f.front, f.front_mask))

    return apply


FrontChange = Callable[[np.ndarray, "np.ndarray | None"], np.ndarray]


def front_change(spec: FrontSpec, changes: Sequence[Change]) -> FrontChange:
    """:func:`feature_hook` on a window's ``front [T, F]`` and ``front_mask [T]`` (a copy), as
    the feature-level simulator hands them over (``edge eval --front-sim --perturb``)."""
    cols = []
    for c in changes:
        if c.feature not in spec.features:
            raise ConfigError(f"--perturb {c}: the model does not read {c.feature} (it reads "
                              f"{', '.join(spec.features)})")
        prefix = c.feature.partition(".")[0]
        present = f"{prefix}.present"
        gate = spec.features.index(present) if present in spec.features else None
        cols.append((spec.features.index(c.feature), gate, c.op, np.float32(c.value)))

    def apply(front: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
        front = front.copy()
        seen = np.ones(len(front), bool) if mask is None else mask > 0
        for col, gate, op, v in cols:
            rows = seen if gate is None else seen & (front[:, gate] > 0.5)
            front[rows, col] = front[rows, col] * v if op == "*" else front[rows, col] + v
        return front

    return apply
