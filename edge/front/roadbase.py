"""Where the road is: head yaw, pitch and roll measured from the driver's own straight-ahead,
not the camera's.

The face stage measures yaw against the camera. A camera on the mirror or a pillar sees a
driver who watches the road turned 20-30 degrees, and a model that learned yaw around the
camera's axis reads that as looking away (``edge eval --recordings --perturb face.yaw+25``:
``distracted`` on most of an alert driver's ticks). A driver looks at the road most of the time,
so the median of his yaw over the last minutes is where the road is; :class:`RoadAngle` keeps
that median from the windows it serves (each window's newest frame target with a face adds its
yaw, up to ``samples`` of them; until there are ``min_samples`` the window's other targets count
too, ``first_samples`` of them and the samples at least) and subtracts from the yaw of every
frame with a face the part of it past ``deadband`` degrees -- when the head rests there: at
least ``support`` of the samples within ``spread`` degrees of the median, and that no further
aside than ``max_offset`` (a camera is mounted within some 35 degrees of the road; a head that
rests further aside, a driver turned away for the first seconds of a drive, is looking away).
A head that swings from side to side (driver-dev-head-turn: -48 to +29 degrees and back, the
median -10 with a sixth of the samples near it) has no straight-ahead, and is left as measured.

The deadband keeps a driver who faces the camera (the dev clips' alert driver at +0.8 degrees)
reading exactly as before; a mount further aside is brought back to the edge of it. Measured
on the simulator (``edge eval --front-sim 24 --draws 8 --perturb face.yaw+25``, the driver
model as served): macro F1 0.765 without, 0.885 with it, 0.904 with it seen from ahead (0.905
without). Settled there: a 5-degree band left 0.879; shifting by up to 40 degrees however far
aside the head rested took a driver turned away for a drive's first seconds for a mount (0.895
from ahead). The median holds while glances are fewer than
half of the samples; a driver who looks away for a minute moves it, which is why the history
is two minutes long. A model's card turns it on (``front.road_yaw``); the feature-level
simulator applies the same object window by window, as it does the eye baseline
(:mod:`edge.front.eyebase`), which reads the yaw after the shift, so that it still samples the
eyes of a driver looking ahead.

Pitch is the same story told by the camera's height (``front.road_pitch``): the dev clips'
drivers watch the road at +1 and +22 degrees of pitch, a camera above the eyes sees -25, so a
head pitched 8-20 degrees down to a phone in the lap is no pitch of its own -- only a drop from
the driver's own. Its median is taken off whole (no band: the models learned pitch measured
so) within 40 degrees: the simulator's heads rest at -25 to +24, and a camera 15 degrees
higher or lower than that took a fifth of them past 30 (``--perturb face.pitch+-15``:
macro F1 0.869 within 30, 0.918 within 40; 0.921 and 0.921 as simulated).

Roll is the camera's tilt (``front.road_roll``): the dev clips' drivers hold their heads at
-2.6 and +3.2 degrees, and a phone at the ear tilts the head 4-14 degrees to its side, so a
camera rolled 10-20 degrees read as a phone call that never ends with roll as measured
(driver-dev-alert-blink, ``--perturb face.roll+-20``: ``phone`` on 80 % of its ticks;
head-turn at +10: on 7 %). Its median is taken off whole within 25 degrees (a head resting
further over is leaning). The shipped driver networks learned with it in the simulator's loop,
and the one that answers ``eyes_closed`` does not read roll at all (``edge train --unread
face.roll``): with roll read, the tick after a real closure ended moved over its threshold
when roll was measured otherwise.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, ClassVar, TypeVar

import numpy as np

from edge.errors import EngineError
from edge.front.eyebase import EyeBaseline
from edge.front.rolling import RollingSamples, section_from_dict

_Spec = TypeVar("_Spec", bound="RoadAngleSpec")


@dataclass(frozen=True)
class RoadAngleSpec:
    """How one head angle is measured from the driver's own: the fields of a ``front.road_*``
    section of a fusion model's card (its subclasses name the section and the angle)."""

    SECTION: ClassVar[str] = ""
    ANGLE: ClassVar[str] = ""  # the face feature: face.<ANGLE>
    KEY: ClassVar[str] = ""  # its samples' key in a recording's restore

    samples: int = 480  # newest targets kept (one per window: 2 minutes at a 0.25 s hop)
    min_samples: int = 16  # before this many, the window's own targets count too
    first_samples: int = 12  # with them, before this many nothing is shifted
    deadband: float = 2.0  # degrees of the median left as they are
    max_offset: float = 35.0  # degrees: a median further aside is a look away, not a mount
    spread: float = 10.0  # degrees around the median that count as looking that way ...
    support: float = 0.5  # ... for at least this share of the samples, or nothing is shifted

    def __post_init__(self) -> None:
        if not (1 <= self.first_samples <= self.min_samples <= self.samples
                and 0 <= self.deadband < self.max_offset and self.spread > 0
                and 0 < self.support <= 1):
            raise EngineError(f"{self.SECTION}: inconsistent values {asdict(self)}")

    @classmethod
    def from_dict(cls: type[_Spec], data: Mapping[str, Any]) -> _Spec:
        return section_from_dict(cls, data, cls.SECTION)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class RoadYawSpec(RoadAngleSpec):
    """The ``front.road_yaw`` section: yaw past a 2-degree band, within 35 degrees."""

    SECTION: ClassVar[str] = "front.road_yaw"
    ANGLE: ClassVar[str] = "yaw"
    KEY: ClassVar[str] = "road"  # the key it had before the other angles were read too


@dataclass(frozen=True)
class RoadPitchSpec(RoadAngleSpec):
    """The ``front.road_pitch`` section: the head's pitch, its median taken off whole (the
    camera's height is the whole of it) within 40 degrees."""

    SECTION: ClassVar[str] = "front.road_pitch"
    ANGLE: ClassVar[str] = "pitch"
    KEY: ClassVar[str] = "road_pitch"

    deadband: float = 0.0
    max_offset: float = 40.0


@dataclass(frozen=True)
class RoadRollSpec(RoadAngleSpec):
    """The ``front.road_roll`` section: the head's roll, its median taken off whole within 25
    degrees (a card's choice: not in
    :meth:`~edge.front.features.FrontSpec.default`)."""

    SECTION: ClassVar[str] = "front.road_roll"
    ANGLE: ClassVar[str] = "roll"
    KEY: ClassVar[str] = "road_roll"

    deadband: float = 0.0
    max_offset: float = 25.0


#: the angles in the order a :class:`DriverBaseline` runs them
ROAD_SPECS: tuple[type[RoadAngleSpec], ...] = (RoadYawSpec, RoadPitchSpec, RoadRollSpec)


class RoadAngle:
    """One driver's (one stream's) straight-ahead in one head angle (yaw, pitch or roll); call it
    on each window's ``front [T, F]`` in order. ``columns`` are the front columns of
    ``face.present`` and of the angle."""

    def __init__(self, spec: RoadAngleSpec, columns: Sequence[int]) -> None:
        self.spec = spec
        self.present, self.angle = (int(c) for c in columns)
        self._held = RollingSamples(spec.samples)

    def samples(self) -> list[float]:
        """The samples held, oldest first (what :meth:`restore` takes back)."""
        return self._held.values()

    def restore(self, samples: Sequence[float]) -> None:
        self._held.restore(samples)

    def reset(self) -> None:
        self._held.clear()

    @property
    def shift(self) -> float:
        """Degrees taken off the angle now (before the next window)."""
        return self._shift(self._held.sorted)

    def _shift(self, values: list[float], least: int | None = None) -> float:
        s = self.spec
        n = len(values)
        if n < (s.min_samples if least is None else least):
            return 0.0
        m = 0.5 * (values[(n - 1) // 2] + values[n // 2])
        near = bisect.bisect_right(values, m + s.spread) - bisect.bisect_left(values, m - s.spread)
        if near < s.support * n or abs(m) > s.max_offset:
            return 0.0  # the head rests nowhere, or so far aside that it looks away
        return float(np.sign(m) * max(0.0, abs(m) - s.deadband))

    def add(self, row: np.ndarray, valid: bool = True) -> None:
        """Take one frame target's angle as a sample if a face is there."""
        if valid and row[self.present] >= 0.5:
            self._held.add(float(row[self.angle]))

    def __call__(self, front: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        """``front`` with the angle of its frames with a face shifted, after its newest target is
        taken as a sample (a copy when shifted; the input is not changed)."""
        ok = np.ones(len(front), bool) if mask is None else np.asarray(mask) > 0
        if len(front):
            self.add(front[-1], bool(ok[-1]))
        if len(self._held) >= self.spec.min_samples:
            d = self.shift
        else:
            own = [float(r[self.angle]) for r, k in zip(front[:-1], ok[:-1])
                   if k and r[self.present] >= 0.5]
            d = self._shift(sorted(self._held.sorted + own), self.spec.first_samples)
        if d == 0.0:
            return front
        out = front.copy()
        face = ok & (front[:, self.present] >= 0.5)
        out[face, self.angle] -= d
        return out


class DriverBaseline:
    """The road's yaw, pitch and roll, then the eyes (which read the shifted yaw to know the
    driver looks ahead); one object for a stream, as :class:`~edge.front.eyebase.EyeBaseline`
    is alone. Its :meth:`samples` are ``{"road": [...], "road_pitch": [...], "road_roll": [...],
    "eyes": [...]}`` (a recording's ``restore``; ``road`` is the yaw's, the key it had before
    the other angles were read too), the parts it has."""

    def __init__(self, road: RoadAngle | None, eyes: EyeBaseline | None,
                 pitch: RoadAngle | None = None, roll: RoadAngle | None = None) -> None:
        self.road, self.eyes, self.pitch, self.roll = road, eyes, pitch, roll

    def _parts(self) -> list[tuple[str, RoadAngle | EyeBaseline]]:
        angles = [(a.spec.KEY, a) for a in (self.road, self.pitch, self.roll) if a is not None]
        return angles + ([("eyes", self.eyes)] if self.eyes is not None else [])

    def samples(self) -> dict[str, list[float]]:
        return {k: p.samples() for k, p in self._parts()}

    def state(self) -> dict[str, list[float]]:
        """What :meth:`restore` takes back: :meth:`samples` and the eyes' ``eyes_frontal`` and
        ``eyes_peak``."""
        return {**self.samples(), **(self.eyes.state() if self.eyes is not None else {})}

    def missing(self, samples: Mapping[str, Sequence[float]] | Sequence[float]) -> list[str]:
        """The road parts (``road``, ``road_pitch``, ``road_roll``) this baseline has and
        ``samples`` (a recording's) does not hold."""
        have = set(samples) if isinstance(samples, Mapping) else set()
        return [k for k, _ in self._parts() if k != "eyes" and k not in have]

    def restore(self, samples: Mapping[str, Sequence[float]] | Sequence[float]) -> None:
        """Samples as :meth:`samples` gives them; a bare list is the eyes' alone (a recording
        made by a model without the road baselines); a part without samples starts empty."""
        held = samples if isinstance(samples, Mapping) else {"eyes": samples}
        for k, p in self._parts():
            if isinstance(p, EyeBaseline):
                p.restore(held)
            else:
                p.restore(held.get(k, ()))

    def reset(self) -> None:
        """Every part empty, as at a stream's start: the next face may be another driver's."""
        for _, p in self._parts():
            p.reset()

    def __call__(self, front: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        for _, p in self._parts():
            front = p(front, mask)
        return front


def road_columns(features: Sequence[str], angle: str = "yaw") -> list[int]:
    """The columns :class:`RoadAngle` reads for ``angle`` (yaw, pitch, roll) in a front layout (an
    error if one is missing)."""
    want = ("face.present", f"face.{angle}")
    missing = [f for f in want if f not in features]
    if missing:
        raise EngineError(f"front.road_{angle} needs the features {missing}")
    return [list(features).index(f) for f in want]
