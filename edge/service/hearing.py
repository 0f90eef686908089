"""What a stream's rules hear besides the model: alarm beeps for cadence rules, sound measures
for rules' ``unless`` and conditions' ``needs``, both from the log-mel columns of the window the model just saw.

:class:`Hearing` is built from the ``decisions:`` section (the signals and measures its rules
name) and pushed each tick's window; :meth:`Hearing.heard` returns what
:meth:`edge.decisions.decide.Decider.update` takes as ``beeps`` and ``measures``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping

import numpy as np

from edge.decisions.rules import DecisionsConfig
from edge.errors import ConfigError
from edge.features.beeps import ALARM_SIGNALS, BeepDetector
from edge.features.impacts import ImpactSpread
from edge.features.logmel import LogMelSpec
from edge.features.partials import PartialShare
from edge.features.rise import BandRise, BeatBefore, HighRise

Beeps = dict[str, list[tuple[int, int, float]]]
Measure = Callable[[np.ndarray, np.ndarray | None], float | None]

#: The sound measures a rule's ``unless`` or a condition's ``needs`` may name
#: (edge.decisions.rules.SoundCheck).
MEASURES: dict[str, Callable[[LogMelSpec], Measure]] = {
    "partial_share": PartialShare,
    "impact_spread": ImpactSpread,
    "band_rise": BandRise,
    "high_rise": HighRise,
    "beat_before": BeatBefore,
}


def rule_signals(dc: DecisionsConfig | None) -> tuple[set[str], set[str]]:
    """The beep signals the cadence rules of ``dc`` name, and the measures their ``unless``
    (and their any_of conditions' needs) name; unknown signals raise :class:`ConfigError`
    (measures are checked by the config)."""
    signals: set[str] = set()
    measures: set[str] = set()
    for rule in dc.rules if dc is not None else []:
        if rule.cadence is not None:
            sig = rule.cadence.signal or rule.cadence.class_
            signals.update([sig] if isinstance(sig, str) else sig)
        measures.update(c.measure for c in rule.unless or [])
        for cond in rule.any_of or []:
            measures.update(c.measure for c in cond.needs or [])
    unknown = sorted(signals - set(ALARM_SIGNALS))
    if unknown:
        raise ConfigError(
            f"decisions: unknown beep signal(s) {', '.join(unknown)} "
            f"(known: {', '.join(sorted(ALARM_SIGNALS))})"
        )
    return signals, measures


def unheard(dc: DecisionsConfig | None) -> list[str]:
    """What the rules of ``dc`` lose on a stream without audio, one line per rule that hears
    (a beep rhythm never starts, a ``needs`` is never met, an ``unless`` never vetoes)."""
    lines = []
    for rule in dc.rules if dc is not None else []:
        conds = rule.any_of or []
        if rule.cadence is not None:
            lines.append(f"{rule.name} never starts (its beep rhythm is never heard)")
            continue
        if conds and all(cond.needs for cond in conds):
            lines.append(f"{rule.name} never starts (each condition needs a sound measured)")
            continue
        lost = []
        if any(cond.needs for cond in conds):
            lost.append("its conditions that need a sound measured never hold")
        if rule.unless:
            lost.append("its unless never holds it back")
        if lost:
            lines.append(f"{rule.name}: {' and '.join(lost)}")
    return lines


class Hearing:
    """Beep detectors and sound measures of the streams with audio.

    Parameters
    ----------
    dc
        The ``decisions:`` section (None: nothing to hear).
    spec
        The model card's log-mel parameters (the columns pushed).
    streams
        The streams with audio.
    """

    def __init__(self, dc: DecisionsConfig | None, spec: LogMelSpec,
                 streams: Iterable[str]) -> None:
        signals, measures = rule_signals(dc)
        self.hop = spec.hop_length
        self.detectors = {
            n: {s: BeepDetector(spec, ALARM_SIGNALS[s]) for s in sorted(signals)} for n in streams
        }
        # One measure object serves every stream: it keeps nothing between windows.
        self.measures = {m: MEASURES[m](spec) for m in sorted(measures)}

    def heard(self, stream: str, audio_n0: int, cols: np.ndarray, ok: np.ndarray,
              time_of_sample: Callable[[int], int]
              ) -> tuple[Beeps, Mapping[str, float | None]]:
        """Beeps that ended in the window (by signal, pipeline time, with their tone's pitch in
        Hz) and the window's sound measures, from its log-mel ``cols`` (``[n_mels, T]``, first
        column at sample ``audio_n0``) and their validity ``ok``."""
        dets = self.detectors.get(stream)
        if dets is None:
            return {}, {}
        first = audio_n0 // self.hop
        beeps = {
            s: [(time_of_sample(a * self.hop), time_of_sample(b * self.hop), hz)
                for a, b, hz in det.push(first, cols, ok)]
            for s, det in dets.items()
        }
        return beeps, _Measured(self.measures, cols, ok)


class _Measured(Mapping[str, "float | None"]):
    """A window's sound measures, each computed when a rule first asks for it (a rule asks
    only on a tick where it would hold), then kept."""

    def __init__(self, measures: Mapping[str, Measure], cols: np.ndarray, ok: np.ndarray) -> None:
        self._measures, self._cols, self._ok = measures, cols, ok
        self._done: dict[str, float | None] = {}

    def __getitem__(self, name: str) -> float | None:
        if name not in self._done:
            self._done[name] = self._measures[name](self._cols, self._ok)
        return self._done[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._measures)

    def __len__(self) -> int:
        return len(self._measures)
