"""Front-end features: the one definition of what a fusion model over front ends sees.

A fusion model's card names its per-frame features (the ``front`` section, :class:`FrontSpec`):
``face.<name>`` from :data:`edge.front.face.FACE_FEATURES`, ``person.<name>`` from
:data:`edge.front.person.PERSON_FEATURES`, ``hand.<name>`` from
:data:`edge.front.hand.HAND_FEATURES`, ``near.<name>`` (where the highest hand is relative to
the face of the same frame: :data:`NEAR_NAMES`) and ``speech.p`` (the highest VAD chunk
probability within half a target spacing of the target). Serving (:func:`compose` over a window's
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
from edge.front.eyebase import EyeBaseline, EyeBaselineSpec, eye_columns
from edge.front.roadbase import (DriverBaseline, RoadAngle, RoadAngleSpec, RoadPitchSpec,
                                 RoadRollSpec, RoadYawSpec,
                                 road_columns)
from edge.front.face import FACE_FEATURES, GAZE_FEATURES
from edge.front.hand import HAND_FEATURES
from edge.front.person import PERSON_FEATURES

FACE_NAMES = FACE_FEATURES
PERSON_NAMES = PERSON_FEATURES
HAND_NAMES = HAND_FEATURES
#: The highest hand relative to the face, in face heights (x in frame-width units): ``dx``,
#: ``dy`` (positive: below the face), and ``dist`` (their length over 4, capped at 1; 1 when
#: there is no hand or no face).
NEAR_NAMES = ("dx", "dy", "dist")
SPEECH_NAMES = ("p",)
STAGE_NAMES: dict[str, tuple[str, ...]] = {
    "face": FACE_NAMES, "person": PERSON_NAMES, "hand": HAND_NAMES, "near": NEAR_NAMES,
    "speech": SPEECH_NAMES,
}
#: feature prefix -> the cascade stages it needs
STAGE_OF: dict[str, tuple[str, ...]] = {
    "face": ("face",), "person": ("person",), "hand": ("hand",), "near": ("face", "hand"),
    "speech": ("vad",),
}
NEAR_SCALE = 4.0


@dataclass(frozen=True)
class FrontSpec:
    """The ``front`` section of a fusion model's card: its per-frame feature names in order,
    whether the eye columns are scaled to the driver's own eyes (:mod:`edge.front.eyebase`) and
    whether yaw, pitch and roll are measured from his own straight-ahead
    (:mod:`edge.front.roadbase`)."""

    features: tuple[str, ...]
    eye_baseline: EyeBaselineSpec | None = None
    road_yaw: RoadYawSpec | None = None
    road_pitch: RoadPitchSpec | None = None
    road_roll: RoadRollSpec | None = None

    def __post_init__(self) -> None:
        if not self.features:
            raise EngineError("front.features: empty")
        for f in self.features:
            prefix, _, name = f.partition(".")
            if name not in STAGE_NAMES.get(prefix, ()):
                known = ", ".join(f"{p}.{n}" for p, ns in STAGE_NAMES.items() for n in ns)
                raise EngineError(f"front.features: unknown feature {f!r} (known: {known})")
        if self.eye_baseline is not None:
            eye_columns(self.features)
        for spec in self.roads:
            road_columns(self.features, spec.ANGLE)

    @property
    def roads(self) -> list[RoadAngleSpec]:
        """The ``front.road_*`` sections the card has, yaw then pitch then roll."""
        return [s for s in (self.road_yaw, self.road_pitch, self.road_roll) if s is not None]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FrontSpec:
        extra = sorted(set(data) - {"features", "eye_baseline", "road_yaw", "road_pitch",
                                    "road_roll"})
        if extra:
            raise EngineError(f"front: unknown keys {extra}")
        eb, ry, rp, rr = (data.get(k) for k in ("eye_baseline", "road_yaw", "road_pitch",
                                                "road_roll"))
        return cls(tuple(str(f) for f in data.get("features", ())),
                   None if eb is None else EyeBaselineSpec.from_dict(eb),
                   None if ry is None else RoadYawSpec.from_dict(ry),
                   None if rp is None else RoadPitchSpec.from_dict(rp),
                   None if rr is None else RoadRollSpec.from_dict(rr))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"features": list(self.features)}
        if self.eye_baseline is not None:
            out["eye_baseline"] = self.eye_baseline.to_dict()
        for spec in self.roads:
            out[spec.SECTION.partition(".")[2]] = spec.to_dict()
        return out

    def eye_scaler(self) -> EyeBaseline | DriverBaseline | None:
        """A fresh baseline for one stream, called on each window's front in order: the road's
        yaw, pitch and roll then the eyes (:class:`~edge.front.roadbase.DriverBaseline`), the
        eyes alone (:class:`~edge.front.eyebase.EyeBaseline`), or None when the card asks for
        none."""
        eyes = (None if self.eye_baseline is None
                else EyeBaseline(self.eye_baseline, eye_columns(self.features)))
        if not self.roads:
            return eyes
        yaw, pitch, roll = ((None if spec is None
                             else RoadAngle(spec, road_columns(self.features, spec.ANGLE)))
                            for spec in (self.road_yaw, self.road_pitch, self.road_roll))
        return DriverBaseline(yaw, eyes, pitch, roll)

    @property
    def gaze(self) -> bool:
        """Whether the model reads gaze (the face stage must run the iris model)."""
        return any(f.partition(".")[2] in GAZE_FEATURES for f in self.features
                   if f.startswith("face."))

    @property
    def stages(self) -> set[str]:
        """The cascade stages these features need (face, person, hand, vad)."""
        return {st for f in self.features for st in STAGE_OF[f.partition(".")[0]]}

    def columns(self, prefix: str) -> list[tuple[int, int]]:
        """``(column in front, index in the stage's vector)`` of the features of one prefix."""
        names = STAGE_NAMES[prefix]
        return [(k, names.index(f.partition(".")[2])) for k, f in enumerate(self.features)
                if f.partition(".")[0] == prefix]

    @classmethod
    def default(cls, task: str, gaze: bool = False) -> FrontSpec:
        """The reference models' features: the face, the hand near it and speech for the
        driver (not the face's position in the frame: that is the camera's mounting; gaze only
        when asked), the person detector and speech for the home; the driver's eyes scaled to
        his own and his yaw, pitch and roll measured from his own (:mod:`edge.front.roadbase`)."""
        if task == "driver":
            skip = ("cx", "cy") + (() if gaze else GAZE_FEATURES)
            return cls(tuple(f"face.{n}" for n in FACE_NAMES if n not in skip)
                       + ("hand.present",) + tuple(f"near.{n}" for n in NEAR_NAMES)
                       + ("speech.p",), EyeBaselineSpec(), RoadYawSpec(), RoadPitchSpec(),
                       RoadRollSpec())
        if task == "home":
            if gaze:
                raise EngineError("the home model reads no face: it has no gaze")
            return cls(tuple(f"person.{n}" for n in PERSON_NAMES) + ("speech.p",))
        raise EngineError(f"no front-end features are defined for task {task!r}")


def compose(
    spec: FrontSpec,
    valid: np.ndarray,
    face: Sequence[Any] | None = None,
    person: Sequence[Any] | None = None,
    speech: np.ndarray | None = None,
    hand: Sequence[Any] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``front [T, F]`` float32 and ``front_mask [T]`` float32 of one window.

    ``valid`` says which frame targets have a frame; ``face`` / ``person`` / ``hand`` hold each
    target's stage result (anything with ``vector()``, or None), ``speech`` each target's VAD
    probability (NaN: unknown). A target without a frame is zeros and masked.
    """
    t = len(valid)
    out = np.zeros((t, len(spec.features)), np.float32)
    cols = spec.columns("near")
    if cols:
        dst = [c for c, _ in cols]
        src = [i for _, i in cols]
        for k in range(t):
            f = face[k] if face is not None else None
            h = hand[k] if hand is not None else None
            out[k, dst] = near(None if f is None else f.vector(),
                               None if h is None else h.vector())[src]
    for prefix, results in (("face", face), ("person", person), ("hand", hand)):
        cols = spec.columns(prefix)
        if not cols or results is None:
            continue
        dst = [c for c, _ in cols]
        src = [i for _, i in cols]
        for k, r in enumerate(results):
            if r is not None and valid[k]:
                out[k, dst] = _full(r.vector(), len(STAGE_NAMES[prefix]))[src]
    cols = spec.columns("speech")
    if cols and speech is not None:
        out[:, cols[0][0]] = np.nan_to_num(np.asarray(speech, np.float32), nan=0.0)
    mask = np.asarray(valid, bool)
    out[~mask] = 0.0
    return out, mask.astype(np.float32)


def _full(vector: Any, n: int) -> np.ndarray:
    """A stage vector as float32 of ``n`` values: one recorded before a stage's later features
    (a face's gaze) existed gets zeros for them, as a stage that does not read them gives."""
    v = np.asarray(vector, np.float32)
    return v if len(v) >= n else np.concatenate([v, np.zeros(n - len(v), np.float32)])


_FACE_AT = {n: FACE_NAMES.index(n) for n in ("present", "face_size", "cx", "cy")}
_HAND_AT = {n: HAND_NAMES.index(n) for n in ("present", "cx", "cy")}


def near(face: np.ndarray | None, hand: np.ndarray | None) -> np.ndarray:
    """:data:`NEAR_NAMES` of one frame from its face and hand vectors (either may be None)."""
    out = np.array([0.0, 0.0, 1.0], np.float32)
    if face is None or hand is None or face[_FACE_AT["present"]] < 0.5 \
            or hand[_HAND_AT["present"]] < 0.5 or face[_FACE_AT["face_size"]] <= 0:
        return out
    size = float(face[_FACE_AT["face_size"]])
    dx = (float(hand[_HAND_AT["cx"]]) - float(face[_FACE_AT["cx"]])) / size
    dy = (float(hand[_HAND_AT["cy"]]) - float(face[_FACE_AT["cy"]])) / size
    out[0], out[1] = np.clip(dx, -NEAR_SCALE, NEAR_SCALE), np.clip(dy, -NEAR_SCALE, NEAR_SCALE)
    out[2] = min(1.0, float(np.hypot(dx, dy)) / NEAR_SCALE)
    return out
