"""Decisions: per-class probabilities over time become committed states, and rules over those
states become events ("sleep started", "smoke alarm ended").

The core is pure: :class:`Decider` takes probabilities and ``now_ns`` (a prediction's data time)
and returns :class:`Event` s; it never reads a clock. Per class it smooths with a time constant
in seconds (right for any tick spacing), applies hysteresis, and commits a change only after it
has held ``min_on``/``min_off`` seconds, back-dating the change to when it began. Rules are
configuration (``decisions:`` in the YAML, :class:`DecisionsConfig`): ``duration`` (an episode
lasting at least / ended before a bound), ``any_of`` such durations, ``cumulative`` (on-time
summed over a sliding window, reset by a long enough pause) and ``cadence`` (an alarm's beep
rhythm, matched by :mod:`edge.decisions.cadence` on beep intervals the caller detects). A
duration rule's ``unless`` names a measure of the window's sound the caller passes in
(:mod:`edge.features.partials`): above its level, the rule does not hold on that tick; an
``any_of`` condition's ``needs`` names one it must meet to hold (one not passed in is not met). Its
``except_during`` names classes whose episodes explain its own (a closure in a yawn is no
microsleep): an episode rule does not fire for an episode during which one was over its
threshold, a held rule does not hold on a tick where one is.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

from pydantic import ValidationError

from edge.decisions.cadence import CadenceTracker, Interval
from edge.runtime.card import ModelCard
from edge.timebase.clock import NS_PER_S
from edge.decisions.rules import (
    CadenceCondition,
    ClassDecision,
    CumulativeCondition,
    DecisionsConfig,
    DurationCondition,
    RuleConfig,
    SoundCheck,
    default_off,
)
from edge.config import line_of, read_yaml
from edge.errors import ConfigError


def parse_decisions(text: str, filename: str = "<decisions>") -> DecisionsConfig:
    """Validate YAML holding a ``decisions:`` section, or the section's body alone.

    Raises
    ------
    ConfigError
        One line per problem: ``file: decisions.rules.0.duration.at_lest: ... (line 4)``.
    """
    root, data = read_yaml(text, filename, "decisions")
    prefix: tuple[Any, ...] = ("decisions",) if "decisions" in data else ()
    try:
        return DecisionsConfig.model_validate(data["decisions"] if prefix else data)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            loc = prefix + tuple(err["loc"])
            msg = str(err["msg"]).removeprefix("Value error, ")
            lines.append(f"{filename}: {'.'.join(map(str, loc))}: {msg}{line_of(root, loc)}")
        raise ConfigError("\n".join(lines)) from None


@dataclass(frozen=True)
class Event:
    """A rule's event; ``t_ns`` is the data time of the tick that decided it."""

    kind: Literal["start", "update", "end"]
    rule: str
    t_ns: int
    started_ns: int
    duration_s: float  # start/update: so far; end: to the back-dated end of the episode
    peak: float  # highest smoothed probability of the evidence classes during the event
    evidence: dict[str, str] = field(hash=False)  # class -> modality its prediction rests on
    flagged: bool = False  # some evidence rested on a sensor reported degraded

    def to_json(self) -> dict[str, object]:
        return {
            "event": self.kind, "rule": self.rule, "t_ns": self.t_ns,
            "started_ns": self.started_ns, "duration_s": round(self.duration_s, 3),
            "peak": round(self.peak, 4), "evidence": dict(self.evidence), "flagged": self.flagged,
        }


@dataclass(frozen=True)
class ClassState:
    """One class now: committed state, smoothed and last raw probability, on-duration."""

    name: str
    on: bool  # committed state
    prob: float  # smoothed probability
    raw: float  # the last probability given
    since_ns: int | None  # when the committed state began (back-dated); None: never on
    on_duration_s: float  # committed on-time so far; 0 when off
    modality: str
    flagged: bool  # the last tick's prediction rested on a degraded sensor


_Tracks = Mapping[str, "_Track"]


class _Heard(NamedTuple):
    """What the caller heard in the tick's window besides the model: beep intervals by signal,
    sound measures by name."""

    beeps: Mapping[str, Sequence[Interval]]
    measures: Mapping[str, float | None]


class _Track:
    """Smoothing, hysteresis and committed state of one class."""

    def __init__(
        self, name: str, modality: str, cfg: ClassDecision, on: float, off: float
    ) -> None:
        self.name, self.modality, self.hi, self.lo = name, modality, on, off
        self.tau_ns = cfg.tau * NS_PER_S
        self.min_ns = {True: round(cfg.min_on * NS_PER_S), False: round(cfg.min_off * NS_PER_S)}
        self.last_ns: int | None = None
        self.smoothed = self.raw = self.peak = 0.0
        self.raw_on = self.on = self.flagged = self.ep_flagged = False
        self.raw_since: int | None = None
        self.since: int | None = None
        self.started: int | None = None  # back-dated onset, on the tick it is committed
        self.ended: tuple[int, int, float, bool] | None = None  # (start, end, peak, flagged)

    def step(self, now_ns: int, p: float | None, flagged: bool) -> None:
        self.started = self.ended = None
        self.flagged = flagged
        if p is None:
            return  # the class was not predicted this tick: nothing is known, nothing changes
        if self.last_ns is None or self.tau_ns == 0:
            self.smoothed = p
        else:
            # Exact for a sample held over the tick interval, so irregular ticks are fine.
            alpha = 1.0 - math.exp(-(now_ns - self.last_ns) / self.tau_ns)
            self.smoothed += alpha * (p - self.smoothed)
        self.last_ns, self.raw = now_ns, p
        if not self.raw_on and self.smoothed >= self.hi:
            self.raw_on, self.raw_since = True, now_ns
            if not self.on:
                self.peak, self.ep_flagged = self.smoothed, False
        elif self.raw_on and self.smoothed <= self.lo:
            self.raw_on, self.raw_since = False, now_ns
        if self.raw_on or self.on:
            self.peak = max(self.peak, self.smoothed)
            self.ep_flagged |= flagged
        if self.raw_since is not None and self.raw_on != self.on:
            if now_ns - self.raw_since >= self.min_ns[self.raw_on]:
                if self.raw_on:
                    self.started = self.raw_since
                elif self.since is not None:
                    self.ended = (self.since, self.raw_since, self.peak, self.ep_flagged)
                self.on, self.since = self.raw_on, self.raw_since

    def on_ns(self, now_ns: int) -> int:
        """Committed on-time of the current episode; a pending end stops the count."""
        if not self.on or self.since is None:
            return 0
        end = now_ns if self.raw_on or self.raw_since is None else self.raw_since
        return max(0, end - self.since)


@dataclass
class _Emitter:
    """Turns a rule's per-tick 'holds / does not hold' into start, update and end events."""

    rule: str
    update_ns: int | None
    heartbeat: bool
    active: bool = False
    started: int = 0
    peak: float = 0.0
    flagged: bool = False
    evidence: dict[str, str] = field(default_factory=dict)
    _last_ns: int = 0
    _sent_peak: float = 0.0

    def _event(self, kind: Literal["start", "update", "end"], now: int, end: int) -> Event:
        return Event(kind, self.rule, now, self.started, (end - self.started) / NS_PER_S,
                     self.peak, dict(self.evidence), self.flagged)

    def hold(
        self, now: int, started: int, peak: float, ev: dict[str, str], flagged: bool
    ) -> list[Event]:
        if not self.active:
            self.active, self.started, self.peak, self.flagged = True, started, peak, flagged
            self.evidence, self._last_ns, self._sent_peak = dict(ev), now, peak
            return [self._event("start", now, now)]
        self.peak, self.flagged = max(self.peak, peak), self.flagged or flagged
        self.evidence.update(ev)
        due = self.update_ns is not None and now - self._last_ns >= self.update_ns
        if due and (self.heartbeat or self.peak > self._sent_peak):
            self._last_ns, self._sent_peak = now, self.peak
            return [self._event("update", now, now)]
        return []

    def release(self, now: int, end: int | None = None) -> list[Event]:
        if not self.active:
            return []
        self.active = False
        return [self._event("end", now, now if end is None else end)]


def _flag(tr: _Track) -> bool:
    return tr.flagged or (tr.on and tr.ep_flagged)


def _during(tracks: _Tracks, names: Sequence[str]) -> bool:
    """Whether any of the ``names`` classes is on by its thresholds now (smoothed, with
    hysteresis; not a committed state its ``min_off`` holds on: a closure just after a yawn
    is not in it)."""
    return any(tracks[c].raw_on for c in names)


class _DurationRule:
    def __init__(self, em: _Emitter, conds: list[DurationCondition],
                 unless: list[SoundCheck] | None = None, during: Sequence[str] = ()) -> None:
        self.em = em
        self.conds = [(c.class_, round(c.at_least * NS_PER_S), c.needs or []) for c in conds]
        self.unless, self.during = unless or [], list(during)

    def step(self, now: int, tracks: _Tracks, heard: _Heard) -> list[Event]:
        def met(needs: list[SoundCheck]) -> bool:
            return all(c.met(heard.measures.get(c.measure)) for c in needs)

        held = [t for c, least, needs in self.conds
                if (t := tracks[c]).on and t.on_ns(now) >= least and met(needs)]
        # The sound saying otherwise, or another class's episode explaining this one, keeps
        # the rule from starting on this tick; an event already running runs on to its
        # class's end (one episode, one event: a veto on a shatter's second tick, or a yawn
        # inside a long closure, does not cut it in two).
        if held and not self.em.active and (
                any(c.against(heard.measures.get(c.measure)) for c in self.unless)
                or _during(tracks, self.during)):
            held = []
        if held:
            started = min(t.since for t in held if t.since is not None)
            ev = {t.name: t.modality for t in held}
            return self.em.hold(now, started, max(t.peak for t in held), ev, any(map(_flag, held)))
        ends = [e[1] for c in self.em.evidence if (e := tracks[c].ended) is not None]
        return self.em.release(now, max(ends) if ends else None)


class _EpisodeRule:
    def __init__(self, em: _Emitter, cond: DurationCondition, during: Sequence[str] = ()) -> None:
        self.em, self.cls = em, cond.class_
        self.least = round(cond.at_least * NS_PER_S)
        self.less = round((cond.less_than or 0.0) * NS_PER_S)  # set: how this rule was chosen
        self.during = list(during)
        self.excused = False  # one of the during classes was on in the current episode

    def step(self, now: int, tracks: _Tracks, heard: _Heard) -> list[Event]:
        tr = tracks[self.cls]
        if tr.raw_on:
            self.excused |= _during(tracks, self.during)
        excused = self.excused
        if not (tr.on or tr.raw_on):
            self.excused = False  # the episode is over: the next one is judged afresh
        if tr.ended is None or not self.least <= tr.ended[1] - tr.ended[0] < self.less:
            return []
        if excused:
            return []
        start, end, peak, flagged = tr.ended
        events = self.em.hold(now, start, peak, {tr.name: tr.modality}, flagged or tr.flagged)
        return events + self.em.release(now, end)


class _CumulativeRule:
    def __init__(self, em: _Emitter, cond: CumulativeCondition) -> None:
        self.em, self.cls = em, cond.class_
        self.total = round(cond.total_at_least * NS_PER_S)
        self.within = round(cond.within * NS_PER_S)
        self.reset = None if cond.reset_after is None else round(cond.reset_after * NS_PER_S)
        self.spans: list[tuple[int, int | None]] = []  # committed on-episodes; None: still on

    def step(self, now: int, tracks: _Tracks, heard: _Heard) -> list[Event]:
        tr = tracks[self.cls]
        if tr.started is not None:
            # Ticks may skip the moment the pause reached reset_after: judge the whole pause.
            last = self.spans[-1][1] if self.spans else None
            if self.reset is not None and last is not None and tr.started - last >= self.reset:
                self.spans.clear()
            self.spans.append((tr.started, None))
        if tr.ended is not None and self.spans and self.spans[-1][1] is None:
            self.spans[-1] = (self.spans[-1][0], tr.ended[1])
        pause = 0 if tr.on or tr.since is None else now - tr.since
        if self.reset is not None and pause >= self.reset:
            self.spans.clear()
        lo = now - self.within
        self.spans = [(a, b) for a, b in self.spans if b is None or b > lo]
        open_end = now if tr.since is None else tr.since + tr.on_ns(now)
        total = sum(max(0, min(open_end if b is None else b, now) - max(a, lo))
                    for a, b in self.spans)
        if total >= self.total:
            peak = tr.peak if tr.on else tr.smoothed
            start = max(self.spans[0][0], lo)
            return self.em.hold(now, start, peak, {tr.name: tr.modality}, _flag(tr))
        return self.em.release(now)


class CadenceRule:
    """A cadence rule on its own: beep intervals in (via :meth:`update`), events out.

    Parameters
    ----------
    name
        Rule name for the events.
    cond
        The pattern, tolerances and cycles.
    modality
        What the evidence rests on (``audio`` for a beep detector).
    update_every, heartbeat
        As in :class:`DecisionsConfig`.
    delivery
        Longest delay (s) between a beep's end and its arrival in :meth:`update`.
    """

    def __init__(self, name: str, cond: CadenceCondition, modality: str = "audio", *,
                 update_every: float | None = None, heartbeat: bool = False,
                 delivery: float = 0.5) -> None:
        upd = None if update_every is None else round(update_every * NS_PER_S)
        self.em = _Emitter(name, upd, heartbeat)
        self.cls, self.modality = cond.class_, modality
        sig = cond.signal or cond.class_
        self.signals = [sig] if isinstance(sig, str) else list(sig)
        # One tracker per signal: beeps of another tone band must not break a rhythm.
        self.trackers = {
            s: CadenceTracker(cond.pattern, cond.tolerance, cond.cycles, cond.rel_tolerance, delivery,
                              smear=cond.smear)
            for s in self.signals
        }
        self.gate = cond.gate
        self.tracker = self.trackers[self.signals[0]]

    def update(self, now_ns: int, intervals: Sequence[Interval] | Mapping[str, Sequence[Interval]] = (),
               prob: float = 1.0, flagged: bool = False, class_on: bool = True) -> list[Event]:
        """Add beeps ended by ``now_ns`` (one list: the first signal's; a mapping: by signal);
        ``prob`` is the class's confidence for the peak. Holds while any signal's rhythm does
        (and, for a gated rule, while ``class_on``: a class is never the only evidence)."""
        by_signal = intervals if isinstance(intervals, Mapping) else {self.signals[0]: intervals}
        on = [t for s, t in self.trackers.items() if t.update(now_ns, by_signal.get(s, ()))]
        if self.gate and not class_on:
            on = []
        starts = [t.started_ns for t in on if t.started_ns is not None]
        if starts:
            return self.em.hold(now_ns, min(starts), prob, {self.cls: self.modality}, flagged)
        ends = [t.match_end_ns for t in self.trackers.values() if t.match_end_ns is not None]
        return self.em.release(now_ns, max(ends) if ends else None)

    def step(self, now: int, tracks: _Tracks, heard: _Heard) -> list[Event]:
        tr = tracks[self.cls]
        return self.update(now, {s: heard.beeps.get(s, ()) for s in self.signals}, tr.smoothed,
                           tr.flagged, tr.on)


def degraded_flags(
    video_valid: float, audio_valid: float, at_least: float = 0.5
) -> dict[str, bool]:
    """Flags for :meth:`Decider.update` from a prediction's valid fractions (edge.service.run)."""
    return {"video_degraded": video_valid < at_least, "audio_degraded": audio_valid < at_least}


_Rule = _DurationRule | _EpisodeRule | _CumulativeRule | CadenceRule


def _rule_classes(rule: RuleConfig) -> list[tuple[str, str]]:
    """(key path, class) of every class a rule names."""
    during = [(f"except_during.{i}", c) for i, c in enumerate(rule.except_during or [])]
    if rule.any_of:
        return [(f"any_of.{i}.class", c.class_) for i, c in enumerate(rule.any_of)] + during
    kind = next(k for k in ("duration", "cumulative", "cadence") if getattr(rule, k))
    return [(f"{kind}.class", getattr(rule, kind).class_)] + during


class Decider:
    """Class states and rule events of one stream, from its probabilities over time.

    Parameters
    ----------
    config
        The ``decisions:`` section.
    classes
        The model's class names.
    thresholds
        Model card thresholds by class: the default ``on`` level (0.5 where missing).
    modalities
        Model card modality by class (video, audio or both): evidence, and which flags apply.
    delivery
        Longest delay (s) between a beep's end and its arrival in :meth:`update`.

    Raises
    ------
    ConfigError
        A rule or class entry names an unknown class, or a class's off is not below its on.
    """

    def __init__(self, config: DecisionsConfig, classes: Sequence[str],
                 thresholds: Mapping[str, float] | None = None,
                 modalities: Mapping[str, str] | None = None, *, delivery: float = 0.5) -> None:
        known = list(classes)
        thresholds, modalities = thresholds or {}, modalities or {}
        have = ", ".join(known)
        for name in config.classes:
            if name not in known:
                raise ConfigError(f"decisions.classes.{name}: unknown class (the model has {have})")
        for i, rule in enumerate(config.rules):
            for path, name in _rule_classes(rule):
                if name not in known:
                    raise ConfigError(
                        f"decisions.rules.{i}.{path}: unknown class {name!r} (the model has {have})"
                    )
        self._tracks: dict[str, _Track] = {}
        for name in known:
            merged = config.for_class(name)
            on = merged.on_threshold
            on = float(thresholds.get(name, 0.5)) if on is None else on
            off = merged.off_threshold
            off = default_off(on) if off is None else off
            if not 0 <= off < on <= 1:
                raise ConfigError(
                    f"decisions.classes.{name}: need 0 <= off < on <= 1, got on={on:g} off={off:g}"
                )
            self._tracks[name] = _Track(name, modalities.get(name, "both"), merged, on, off)
        upd = None if config.update_every is None else round(config.update_every * NS_PER_S)
        self._rules: list[_Rule] = []
        for rule in config.rules:
            if rule.cadence:
                mod = modalities.get(rule.cadence.class_, "audio")
                self._rules.append(CadenceRule(rule.name, rule.cadence, mod, delivery=delivery,
                                               update_every=config.update_every,
                                               heartbeat=config.heartbeat))
                continue
            em = _Emitter(rule.name, upd, config.heartbeat)
            during = rule.except_during or []
            if rule.any_of:
                self._rules.append(_DurationRule(em, list(rule.any_of), rule.unless, during))
            elif rule.duration and rule.duration.less_than is not None:
                self._rules.append(_EpisodeRule(em, rule.duration, during))
            elif rule.duration:
                self._rules.append(_DurationRule(em, [rule.duration], rule.unless, during))
            elif rule.cumulative:
                self._rules.append(_CumulativeRule(em, rule.cumulative))
        self._last_ns: int | None = None

    @classmethod
    def from_card(
        cls, config: DecisionsConfig, card: ModelCard, *, delivery: float = 0.5
    ) -> "Decider":
        """A decider for a model card's classes, thresholds and modalities."""
        return cls(config, card.class_names, {c.name: c.threshold for c in card.classes},
                   {c.name: c.modality for c in card.classes}, delivery=delivery)

    def update(self, now_ns: int, probs: Mapping[str, float],
               flags: Mapping[str, bool] | None = None,
               beeps: Mapping[str, Sequence[Interval]] | None = None,
               measures: Mapping[str, float | None] | None = None) -> list[Event]:
        """Advance to ``now_ns`` with one tick's probabilities; return the events it decides.

        Parameters
        ----------
        now_ns
            Data time of the prediction (its window end); must not go backwards.
        probs
            Probability by class; a class left out keeps its state.
        flags
            ``video_degraded`` / ``audio_degraded``: events resting on a class whose modality
            (both of them, for ``both``) is degraded carry ``flagged=True``.
        beeps
            Beep ON intervals ``(start_ns, end_ns)`` that ended since the last call, by signal
            name, for cadence rules.
        measures
            The window's sound measures by name (:data:`edge.service.hearing.MEASURES`), for
            rules' ``unless`` and conditions' ``needs``; a measure left out or None says
            nothing against a rule and does not meet a need.
        """
        if self._last_ns is not None and now_ns < self._last_ns:
            raise ValueError(f"now_ns went backwards: {now_ns} < {self._last_ns}")
        self._last_ns = now_ns
        flags = flags or {}
        bad = {m for m in ("video", "audio") if flags.get(f"{m}_degraded")}
        for name, tr in self._tracks.items():
            degraded = tr.modality in bad or (tr.modality == "both" and len(bad) == 2)
            p = probs.get(name)
            tr.step(now_ns, None if p is None else float(p), degraded)
        events: list[Event] = []
        heard = _Heard(beeps or {}, measures or {})
        for rule in self._rules:
            events += rule.step(now_ns, self._tracks, heard)
        return events

    def states(self, now_ns: int | None = None) -> dict[str, ClassState]:
        """Every class's state; on-durations are measured to ``now_ns`` (default: last tick)."""
        now = now_ns if now_ns is not None else (self._last_ns or 0)
        return {
            n: ClassState(n, t.on, t.smoothed, t.raw, t.since, t.on_ns(now) / NS_PER_S,
                          t.modality, t.flagged)
            for n, t in self._tracks.items()
        }

    def active(self) -> list[str]:
        """Names of the rules whose event is running."""
        return [r.em.rule for r in self._rules if r.em.active]

    def close(self) -> list[Event]:
        """End every running event at the last tick (the decider is being replaced: a reload
        of the rules); a consumer that saw a start sees its end."""
        now = self._last_ns or 0
        return [e for r in self._rules for e in r.em.release(now)]
