"""Front-end features: the one definition of what a fusion model over front ends sees.

A fusion model's card names its per-frame features (the ``front`` section, :class:`FrontSpec`):
``face.<name>`` from :data:`edge.front.face.FACE_FEATURES`, ``person.<name>`` from
:data:`edge.front.person.PERSON_FEATURES` and ``speech.p`` (the highest VAD chunk probability
within half a target spacing of the target). Serving (:func:`compose` over a window's
:class:`~edge.front.cascade.WindowFront`) and the feature-level simulator (which writes rows in
the same order) both build ``front [T, F]`` and ``front_mask [T]`` from these names, so a model
is fed exactly the way it was trained. Values are the stages' raw units (ratios, degrees,
normalized areas, probabilities); a result that is not there (no face, nothing processed yet)
is zeros, and ``face.present`` / ``person.person_present`` say so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from edge.errors import EngineError
from edge.front.face import FACE_FEATURES
from edge.front.person import PERSON_FEATURES

FACE_NAMES = FACE_FEATURES
PERSON_NAMES = PERSON_FEATURES
SPEECH_NAMES = ("p",)
STAGE_NAMES: dict[str, tuple[str, ...]] = {
    "face": FACE_NAMES, "person": PERSON_NAMES, "speech": SPEECH_NAMES,
}
STAGE_OF = {"face": "face", "person": "person", "speech": "vad"}  # feature prefix -> stage


@dataclass(frozen=True)
class FrontSpec:
    """The ``front`` section of a fusion model's card: its per-frame feature names in order."""

    features: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.features:
            raise EngineError("front.features: empty")
        for f in self.features:
            prefix, _, name = f.partition(".")
            if name not in STAGE_NAMES.get(prefix, ()):
                known = ", ".join(f"{p}.{n}" for p, ns in STAGE_NAMES.items() for n in ns)
                raise EngineError(f"front.features: unknown feature {f!r} (known: {known})")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FrontSpec:
        extra = sorted(set(data) - {"features"})
        if extra:
            raise EngineError(f"front: unknown keys {extra}")
        return cls(tuple(str(f) for f in data.get("features", ())))

    def to_dict(self) -> dict[str, Any]:
        return {"features": list(self.features)}

    @property
    def stages(self) -> set[str]:
        """The cascade stages these features need (face, person, vad)."""
        return {STAGE_OF[f.partition(".")[0]] for f in self.features}

    def columns(self, prefix: str) -> list[tuple[int, int]]:
        """``(column in front, index in the stage's vector)`` of the features of one prefix."""
        names = STAGE_NAMES[prefix]
        return [(k, names.index(f.partition(".")[2])) for k, f in enumerate(self.features)
                if f.partition(".")[0] == prefix]

    @classmethod
    def default(cls, task: str) -> FrontSpec:
        """The reference models' features: the face and speech for the driver, the person
        detector and speech for the home."""
        if task == "driver":
            return cls(tuple(f"face.{n}" for n in FACE_NAMES) + ("speech.p",))
        if task == "home":
            return cls(tuple(f"person.{n}" for n in PERSON_NAMES) + ("speech.p",))
        raise EngineError(f"no front-end features are defined for task {task!r}")


def compose(
    spec: FrontSpec,
    valid: np.ndarray,
    face: Sequence[Any] | None = None,
    person: Sequence[Any] | None = None,
    speech: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``front [T, F]`` float32 and ``front_mask [T]`` float32 of one window.

    ``valid`` says which frame targets have a frame; ``face`` / ``person`` hold each target's
    stage result (anything with ``vector()``, or None), ``speech`` each target's VAD
    probability (NaN: unknown). A target without a frame is zeros and masked.
    """
    t = len(valid)
    out = np.zeros((t, len(spec.features)), np.float32)
    for prefix, results in (("face", face), ("person", person)):
        cols = spec.columns(prefix)
        if not cols or results is None:
            continue
        dst = [c for c, _ in cols]
        src = [i for _, i in cols]
        for k, r in enumerate(results):
            if r is not None and valid[k]:
                out[k, dst] = np.asarray(r.vector(), np.float32)[src]
    cols = spec.columns("speech")
    if cols and speech is not None:
        out[:, cols[0][0]] = np.nan_to_num(np.asarray(speech, np.float32), nan=0.0)
    mask = np.asarray(valid, bool)
    out[~mask] = 0.0
    return out, mask.astype(np.float32)
