"""Scenario files: the labelled timelines the simulator renders, and their ground truth.

This module owns what a scenario *is*: the task, its classes, which classes cannot overlap, the
validation of a timeline, loading one from YAML, generating random ones for training, and the
exact labels at any instant. It knows nothing about pixels or samples.

A scenario file::

    task: driver
    seconds: 30
    seed: 3
    conditions: {lighting: dark, noise: 0.3, ir: true}
    events:
      - {label: eyes_closed, start: 2.0, end: 4.5}
      - {label: talking, start: 1.0, end: 9.0}

Intervals are half-open, ``[start, end)`` in seconds from the start of the scenario.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from edge.errors import ConfigError

Task = Literal["driver", "home"]
Lighting = Literal["dark", "normal", "glare"]
Eyewear = Literal["none", "glasses", "sunglasses"]
_LIGHTS: tuple[Lighting, ...] = ("dark", "normal", "glare")
_EYEWEAR: tuple[Eyewear, ...] = ("none", "glasses", "sunglasses")

CLASSES: dict[str, tuple[str, ...]] = {
    "driver": ("eyes_closed", "yawning", "distracted", "phone", "talking"),
    "home": ("person", "speech", "smoke_alarm", "co_alarm", "glass_break", "dog_bark"),
}
"""Target classes per task, in the column order of :func:`label_matrix`."""

EXCLUSIVE: dict[str, tuple[frozenset[str], ...]] = {
    # One mouth: it cannot yawn and talk at once.
    "driver": (frozenset({"yawning", "talking"}),),
    # One detector sounds one pattern at a time; a scene with both would have no clean truth.
    "home": (frozenset({"smoke_alarm", "co_alarm"}),),
}
"""Groups of classes whose intervals may not overlap (a class never overlaps itself either)."""

VARIANTS: dict[str, tuple[str, ...]] = {
    "distracted": ("left", "right", "down"),
    "phone": ("ear", "hand"),
    "smoke_alarm": ("tone", "square"),
}
"""Optional rendering variants per class; an event without one gets one chosen by the seed."""

# Plausible durations (s) per class, for random timelines.
_DURATIONS: dict[str, tuple[float, float]] = {
    "eyes_closed": (0.6, 5.0), "yawning": (2.5, 6.0), "distracted": (1.0, 6.0),
    "phone": (3.0, 15.0), "talking": (1.5, 10.0),
    "person": (3.0, 20.0), "speech": (1.0, 8.0), "smoke_alarm": (4.0, 16.0),
    "co_alarm": (5.8, 17.0), "glass_break": (0.4, 1.5), "dog_bark": (0.6, 4.0),
}
# Alarm patterns sound in whole cycles (s): T3 three beeps and its pause, T4 four pulses and
# its pause (edge.sim.home renders them). An alarm's label runs to the end of its last cycle:
# until the next group is due, nobody listening can tell a pause from the end.
ALARM_CYCLES: dict[str, float] = {"smoke_alarm": 4.0, "co_alarm": 5.7}
# Expected events per minute, per class.
_RATES: dict[str, float] = {
    "eyes_closed": 2.0, "yawning": 1.5, "distracted": 2.5, "phone": 1.0, "talking": 2.0,
    "person": 2.0, "speech": 2.0, "smoke_alarm": 0.8, "co_alarm": 0.8, "glass_break": 1.2,
    "dog_bark": 1.5,
}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Conditions(_Model):
    """How a scenario is filmed and heard; none of it changes the labels."""

    lighting: Lighting = Field(
        "normal", description="Scene light: dark (night, dim room), normal, or glare (low sun)."
    )
    noise: float = Field(
        0.2, ge=0, le=1, description="Sensor noise and acoustic background level, 0 (clean) to 1."
    )
    ir: bool = Field(False, description="Grey near-infrared camera with its own illuminator.")
    shake: float = Field(0.2, ge=0, le=1, description="Camera shake/vibration, 0 (none) to 1.")
    distractors: float = Field(
        0.5, ge=0, le=1, description="How often unlabelled distractor sights and sounds occur."
    )
    eyewear: Eyewear | None = Field(
        None, description="Driver task: what the driver wears on the eyes; unset: by the seed."
    )
    look_seed: int | None = Field(
        None, ge=0, description="Seed of the appearance (face, room, voices); unset: the seed."
    )


class Event(_Model):
    """One labelled interval ``[start, end)``."""

    label: str = Field(description="Class name; one of the task's classes.")
    start: float = Field(description="Start in seconds from the scenario start.")
    end: float = Field(description="End in seconds (exclusive); after start, within seconds.")
    variant: str | None = Field(
        None, description="Rendering variant of the class (see VARIANTS); unset: by the seed."
    )


class ScenarioError(ConfigError):
    """A scenario that is well-formed but inconsistent; ``problems`` lists ``(index, text)``."""

    def __init__(self, problems: list[tuple[int, str]]) -> None:
        self.problems = problems
        super().__init__("\n".join(_where(i) + text for i, text in problems))


def _where(index: int) -> str:
    return f"events[{index}]: "


class Scenario(_Model):
    """A timeline of labelled intervals with the conditions it is rendered in.

    Inconsistent timelines raise :class:`ScenarioError` (a :class:`ConfigError`) with one line
    per problem, naming the event index.
    """

    task: Task = Field(description="Which model the scenario is for: driver or home.")
    seconds: float = Field(gt=0, le=86400, description="Length of the scenario in seconds.")
    seed: int = Field(0, ge=0, description="Seed of everything random in the rendering.")
    conditions: Conditions = Field(
        default_factory=Conditions, description="Lighting, noise and other rendering conditions."
    )
    events: tuple[Event, ...] = Field((), description="Labelled intervals, in any order.")

    @model_validator(mode="after")
    def _consistent(self) -> Scenario:
        problems = check_events(self.task, self.seconds, self.events)
        if problems:
            raise ScenarioError(problems)
        return self

    @property
    def classes(self) -> tuple[str, ...]:
        """The task's class names, in label-matrix column order."""
        return CLASSES[self.task]


def check_events(task: str, seconds: float, events: tuple[Event, ...]) -> list[tuple[int, str]]:
    """Problems of a timeline as ``(event index, one-line text)``; empty when consistent."""
    classes = CLASSES[task]
    problems: list[tuple[int, str]] = []
    for i, ev in enumerate(events):
        if ev.label not in classes:
            problems.append((i, f"unknown class {ev.label!r} for task {task} "
                                f"(expected one of {', '.join(classes)})"))
        if ev.start < 0 or ev.end < 0:
            problems.append((i, f"{ev.label}: negative time (start {ev.start:g}, end {ev.end:g})"))
        if ev.end <= ev.start:
            problems.append((i, f"{ev.label}: end {ev.end:g} must be after start {ev.start:g}"))
        if ev.end > seconds:
            problems.append((i, f"{ev.label}: end {ev.end:g} is beyond seconds {seconds:g}"))
        if ev.variant is not None and ev.variant not in VARIANTS.get(ev.label, ()):
            allowed = ", ".join(VARIANTS.get(ev.label, ())) or "none"
            problems.append((i, f"{ev.label}: unknown variant {ev.variant!r} (allowed: {allowed})"))
    for j, b in enumerate(events):
        for i, a in enumerate(events[:j]):
            if a.start < b.end and b.start < a.end and _exclusive(task, a.label, b.label):
                why = "the same class" if a.label == b.label else f"exclusive class {a.label}"
                problems.append((j, f"{b.label} [{b.start:g}, {b.end:g}) overlaps events[{i}] "
                                    f"of {why} [{a.start:g}, {a.end:g})"))
    return problems


def _exclusive(task: str, a: str, b: str) -> bool:
    return a == b or any(a in g and b in g for g in EXCLUSIVE[task])


# -- loading ---------------------------------------------------------------------------


def parse_scenario(text: str, filename: str = "<scenario>") -> Scenario:
    """Validate YAML text into a :class:`Scenario`.

    Raises
    ------
    ConfigError
        One line per problem: ``file: events[2]: end 4 must be after start 5 (line 9)``.
    """
    from edge.config import line_of, read_yaml

    root, data = read_yaml(text, filename, "task, seconds, events")
    try:
        return Scenario.model_validate(data)
    except ScenarioError as exc:
        lines = [f"{_where(i)}{text}{line_of(root, ('events', i))}" for i, text in exc.problems]
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            loc = tuple(err["loc"])
            path = "".join(f"[{k}]" if isinstance(k, int) else f".{k}" for k in loc).lstrip(".")
            msg = str(err["msg"]).removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                msg = "unknown key"
            lines.append(f"{path or '<top>'}: {msg}{line_of(root, loc)}")
    raise ConfigError("\n".join(f"{filename}: {ln}" for ln in lines)) from None


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario YAML file; problems raise :class:`ConfigError`."""
    from edge.config import read_text

    return parse_scenario(read_text(path, "scenario"), str(path))


# -- ground truth ----------------------------------------------------------------------


def labels_at(scenario: Scenario, t_s: float) -> dict[str, bool]:
    """Which classes are active at ``t_s`` (intervals are half-open)."""
    active = {ev.label for ev in scenario.events if ev.start <= t_s < ev.end}
    return {c: c in active for c in scenario.classes}


def label_matrix(scenario: Scenario, times: np.ndarray) -> np.ndarray:
    """Labels at many instants.

    Parameters
    ----------
    scenario
        The timeline.
    times
        Seconds, any shape ``S``.

    Returns
    -------
    numpy.ndarray
        bool ``[*S, n_classes]``, columns in :attr:`Scenario.classes` order.
    """
    t = np.asarray(times, dtype=np.float64)
    out = np.zeros((*t.shape, len(scenario.classes)), dtype=bool)
    for ev in scenario.events:
        out[..., scenario.classes.index(ev.label)] |= (t >= ev.start) & (t < ev.end)
    return out


def label_fraction(scenario: Scenario, t0: float, t1: float) -> np.ndarray:
    """Fraction of ``[t0, t1)`` each class covers, float32 ``[n_classes]`` (for window labels)."""
    if t1 <= t0:
        raise ValueError(f"empty span [{t0}, {t1})")
    out = np.zeros(len(scenario.classes), dtype=np.float64)
    for ev in scenario.events:  # a class never overlaps itself, so sums stay <= 1
        out[scenario.classes.index(ev.label)] += max(0.0, min(t1, ev.end) - max(t0, ev.start))
    return (out / (t1 - t0)).astype(np.float32)


# -- random timelines ------------------------------------------------------------------


def random_scenario(task: Task, seconds: float, rng: np.random.Generator) -> Scenario:
    """A varied, valid random scenario for training data.

    Event counts are Poisson per class, durations drawn per class, some scenes are empty, and
    plausible pairs are correlated (talking on the phone; speech while a person is in view).
    Conditions (lighting, IR, noise, shake, distractors, eyewear) are drawn too.
    """
    lighting = _LIGHTS[int(rng.choice(3, p=[0.3, 0.45, 0.25]))]
    conditions = Conditions(
        lighting=lighting,
        noise=float(rng.uniform(0.0, 0.8)),
        ir=bool(rng.random() < (0.6 if lighting == "dark" else 0.1)),
        shake=float(rng.uniform(0.0, 0.7 if task == "driver" else 0.15)),
        distractors=float(rng.uniform(0.0, 1.0)),
        eyewear=_EYEWEAR[int(rng.choice(3, p=[0.55, 0.3, 0.15]))],
    )
    placed: list[Event] = []
    busy = 0.15 if rng.random() < 0.15 else 1.0  # some nearly empty scenes: plenty of negatives
    for label in CLASSES[task]:
        for _ in range(int(rng.poisson(_RATES[label] * busy * seconds / 60.0 + 0.15))):
            _place(task, seconds, label, rng, placed)
    pair = ("phone", "talking") if task == "driver" else ("person", "speech")
    for outer in [ev for ev in placed if ev.label == pair[0]]:
        if rng.random() < 0.6:
            _place(task, seconds, pair[1], rng, placed, within=(outer.start, outer.end))
    placed.sort(key=lambda ev: (ev.start, ev.label))
    return Scenario(task=task, seconds=seconds, seed=int(rng.integers(0, 2**31 - 1)),
                    conditions=conditions, events=tuple(placed))


def with_extra_events(sc: Scenario, rates: dict[str, float], rng: np.random.Generator) -> Scenario:
    """``sc`` with more events of some classes: Poisson, ``rates`` per minute, each where it
    fits the events already there (for training sets short of a rare class)."""
    placed = list(sc.events)
    for label in sorted(rates):
        for _ in range(int(rng.poisson(rates[label] * sc.seconds / 60.0))):
            _place(sc.task, sc.seconds, label, rng, placed)
    placed.sort(key=lambda ev: (ev.start, ev.label))
    return sc.model_copy(update={"events": tuple(placed)})


def _place(task: str, seconds: float, label: str, rng: np.random.Generator,
           placed: list[Event], within: tuple[float, float] | None = None) -> None:
    """Add one event of ``label`` where it fits; give up quietly after a few tries."""
    lo, hi = within if within is not None else (0.0, seconds)
    d_min, d_max = _DURATIONS[label]
    for _ in range(8):
        dur = float(rng.uniform(d_min, d_max))
        room = 0.9 * (hi - lo)
        if label in ALARM_CYCLES:  # whole cycles, as many as fit
            cycle = ALARM_CYCLES[label]
            dur = cycle * max(1, min(round(dur / cycle), int(room / cycle)))
        dur = min(dur, room)
        if dur <= 0.05:
            return
        start = round(float(rng.uniform(lo, hi - dur)), 3)
        end = min(round(start + dur, 3), hi)
        if not any(p.start < end and start < p.end and _exclusive(task, p.label, label)
                   for p in placed):
            placed.append(Event(label=label, start=start, end=end))
            return
