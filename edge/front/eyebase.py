"""The driver's own eye opening: eye aspect ratios scaled up for eyes narrower than the usual.

Eye aspect ratio differs from face to face: an open eye measures 0.23-0.25 on the dev clips'
two subjects, and 0.75 of that (an eye a quarter narrower, or a camera above the eyes looking
down on the lids) is where a model that learned the usual open eye reads a half-closed one
(``edge eval --recordings --perturb face.eye_open_left*0.75 face.eye_open_right*0.75``:
microsleep on driver-dev-head-turn). A driver monitor calibrates to its driver;
:class:`EyeBaseline` does it from the windows it serves: each window's newest frame target,
when a face is there looking ahead (``|yaw|`` up to ``max_yaw``) with both eyes at or above
``floor``, adds its mean eye aspect ratio to the last ``samples`` of them; once there are
``min_samples`` (until then the window's other targets count too, ``first_samples`` of them
and the samples at least, so a drive's first second is not left as measured: a narrow eye read
as closed there starts a microsleep), the window's eye columns are multiplied by ``nominal / q``
(``q`` their ``quantile``), never by less than 1 and never by more than ``max_scale``.

Only narrower eyes are widened, so a usual or wide eye reads as it did; an eye closed for a
while does not become the baseline (closed eyes measure below ``floor``, and the quantile sits
in the open frames while fewer than a quarter of them are closed); ``max_scale`` bounds what a
wrong baseline can do. A model's card turns it on (``front.eye_baseline``), and the
feature-level simulator applies the same object window by window, so a model is trained on
what it is served. Eyes that close slowly over minutes are the price: the baseline follows them
down (at most ``max_scale``), so it is no PERCLOS measure.

Eyes whose open measure is under ``floor`` (a third narrower than the dev subjects', or seen
from above) would never give a sample and read as closed for the whole drive. By its level
alone such an eye cannot be told from a usual eye held shut (alert-blink's shut frame measures
0.14-0.15, 0.6 of its open), so time tells: every frame target looking ahead is also kept (the
narrower eye's aspect ratio, with no floor). Eyes whose median there has reached ``floor``
once ``min_samples`` are kept (open more than half the time) keep the floor where it is,
however long they are shut after. Eyes that never have, once ``narrow_after`` are kept, are
taken for narrow open eyes: the floor comes down to ``narrow_ratio`` of their
``narrow_quantile`` (where they sit open; a blink falls to about 0.6 of it and stays out), and
the scale comes from the targets over it, up to ``narrow_max_scale``. A drive that opens with
``narrow_after`` frame targets of eyes held shut (10 s at a 0.25 s hop) has them taken for
narrow open eyes.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from edge.errors import EngineError
from edge.front.rolling import RollingSamples, section_from_dict


@dataclass(frozen=True)
class EyeBaselineSpec:
    """The ``front.eye_baseline`` section of a fusion model's card."""

    nominal: float = 0.23  # the open eye the scaled eyes are brought up to
    max_scale: float = 1.35
    quantile: float = 0.75
    samples: int = 480  # newest targets kept (one per window: 2 minutes at a 0.25 s hop)
    min_samples: int = 12  # before this many, the window's own targets count too
    first_samples: int = 4  # with them, before this many nothing is scaled
    floor: float = 0.15  # a sample's eyes both at least this open (closed ones measure less)
    max_yaw: float = 25.0  # degrees: looking ahead
    # eyes that never reach the floor: after this many frame targets looking ahead (0: never)
    narrow_after: int = 40
    narrow_ratio: float = 0.7  # the floor then: this share of the open level ...
    narrow_quantile: float = 0.9  # ... this quantile of the eyes looking ahead, floor or not
    narrow_max_scale: float = 2.0  # and the scale up to this

    def __post_init__(self) -> None:
        if not (0 < self.nominal < 1 and self.max_scale >= 1 and 0 < self.quantile < 1
                and 1 <= self.first_samples <= self.min_samples <= self.samples
                and 0 <= self.floor < self.nominal
                and self.max_yaw > 0
                and (self.narrow_after == 0 or self.narrow_after >= self.min_samples)
                and 0 < self.narrow_ratio < 1 and 0 < self.narrow_quantile < 1
                and self.narrow_max_scale >= 1):
            raise EngineError(f"front.eye_baseline: inconsistent values {asdict(self)}")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EyeBaselineSpec:
        return section_from_dict(cls, data, "front.eye_baseline")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class EyeBaseline:
    """One driver's (one stream's) eye baseline; call it on each window's ``front [T, F]`` in
    order. ``columns`` are the front columns of ``face.present``, ``face.eye_open_left``,
    ``face.eye_open_right`` and ``face.yaw``."""

    def __init__(self, spec: EyeBaselineSpec, columns: Sequence[int]) -> None:
        self.spec = spec
        self.present, self.left, self.right, self.yaw = (int(c) for c in columns)
        self._held = RollingSamples(spec.samples)
        # every frame target looking ahead, floor or not: the narrower eye's aspect ratio
        self._frontal = RollingSamples(spec.samples)
        self._peak = 0.0  # the highest median they have had (0 until min_samples)

    def reset(self) -> None:
        self._held.clear()
        self._frontal.clear()
        self._peak = 0.0

    def samples(self) -> list[float]:
        """The samples held, oldest first."""
        return self._held.values()

    def state(self) -> dict[str, list[float]]:
        """What :meth:`restore` takes back: the samples (``eyes``), the narrower eye of every
        target looking ahead (``eyes_frontal``), oldest first, and the highest median they have
        had (``eyes_peak``, one value)."""
        return {"eyes": self._held.values(), "eyes_frontal": self._frontal.values(),
                "eyes_peak": [self._peak]}

    def restore(self, samples: Sequence[float] | Mapping[str, Sequence[float]]) -> None:
        """Hold exactly what :meth:`state` gave (the newest ``spec.samples`` of each), as a
        baseline that had taken them would (a replay starts where the live run was). A bare
        list is the samples alone (a recording made before ``eyes_frontal`` was kept); of a
        recording that also kept the road's (:class:`~edge.front.roadbase.DriverBaseline`'s
        ``{"road": ..., "road_pitch": ..., "road_roll": ..., "eyes": ...}``), the eyes'."""
        held = samples if isinstance(samples, Mapping) else {"eyes": samples}
        self._held.restore(held.get("eyes", ()))
        self._frontal.restore(held.get("eyes_frontal", ()))
        self._peak = max([0.0, *map(float, held.get("eyes_peak", ()))])

    @property
    def floor(self) -> float:
        """The floor a sample's eyes must reach now: ``spec.floor``, lower once the eyes looking
        ahead have not reached it for long (the module's docstring)."""
        s = self.spec
        if not s.narrow_after or len(self._frontal) < s.narrow_after or self._peak >= s.floor:
            return s.floor
        return min(s.floor, s.narrow_ratio * self._quantile(s.narrow_quantile))

    def _quantile(self, q: float) -> float:
        """The quantile ``q`` of the targets looking ahead."""
        got = self._frontal.sorted
        return got[min(len(got) - 1, int(q * len(got)))]

    @property
    def scale(self) -> float:
        """What the eye columns are multiplied by now (before the next window)."""
        floor = self.floor
        if floor < self.spec.floor:  # narrow eyes: the targets looking ahead over the lower floor
            got = self._frontal.sorted
            return self._scale(got[bisect.bisect_left(got, floor):], cap=self.spec.narrow_max_scale)
        return self._scale(self._held.sorted)

    def _scale(self, values: list[float], least: int | None = None,
               cap: float | None = None) -> float:
        s = self.spec
        n = len(values)
        if n < (s.min_samples if least is None else least):
            return 1.0
        q = values[min(n - 1, int(s.quantile * n))]
        return float(min(s.max_scale if cap is None else cap,
                         max(1.0, s.nominal / max(q, 1e-6))))

    def _frontal_eye(self, row: np.ndarray) -> tuple[float, float] | None:
        """One frame target's narrower and mean eye opening if it looks ahead."""
        if row[self.present] < 0.5 or abs(float(row[self.yaw])) > self.spec.max_yaw:
            return None
        lo, hi = float(row[self.left]), float(row[self.right])
        return min(lo, hi), 0.5 * (lo + hi)

    def _sample(self, row: np.ndarray) -> float | None:
        """One frame target's mean eye opening if it is a sample."""
        eye = self._frontal_eye(row)
        return None if eye is None or eye[0] < self.spec.floor else eye[1]

    def add(self, row: np.ndarray, valid: bool = True) -> None:
        """Take one frame target's row as a sample if it is one."""
        eye = self._frontal_eye(row) if valid else None
        if eye is not None:
            self._frontal.add(eye[0])
            if eye[0] >= self.spec.floor:
                self._held.add(eye[1])
            if len(self._frontal) >= self.spec.min_samples:
                self._peak = max(self._peak, self._quantile(0.5))

    def __call__(self, front: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        """``front`` with the eye columns scaled, after its newest target is taken as a sample
        (a copy when scaled; the input is not changed). Until there are ``min_samples``, the
        window's own frame targets count too (a window holds 2 s of targets; the samples come
        one a window), and ``first_samples`` of them are enough."""
        if len(front):
            self.add(front[-1], True if mask is None else bool(mask[-1] > 0))
        if len(self._held) >= self.spec.min_samples or self.floor < self.spec.floor:
            k = self.scale
        else:
            rows = front[:-1] if mask is None else front[:-1][np.asarray(mask)[:-1] > 0]
            own = [v for v in map(self._sample, rows) if v is not None]
            k = self._scale(sorted(self._held.sorted + own), self.spec.first_samples)
        if k == 1.0:
            return front
        out = front.copy()
        out[:, [self.left, self.right]] *= k
        return out


def eye_columns(features: Sequence[str]) -> list[int]:
    """The columns :class:`EyeBaseline` reads in a front layout (an error if one is missing)."""
    want = ("face.present", "face.eye_open_left", "face.eye_open_right", "face.yaw")
    missing = [f for f in want if f not in features]
    if missing:
        raise EngineError(f"front.eye_baseline needs the features {missing}")
    return [list(features).index(f) for f in want]
