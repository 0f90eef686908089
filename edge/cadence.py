"""Alarm cadence matching: ON intervals of a beep detector against an on/off pattern.

A smoke alarm's T3 (0.5 s on, 0.5 s off, three times, the last off 1.5 s) and a CO alarm's T4
(0.1 s on/off four times, then 5 s off) are recognised by their rhythm, not by a single window.
Prediction ticks come every 0.25-0.5 s, far too coarse for a 0.1 s beep, so this module works on
``(start_ns, end_ns)`` intervals of a finer "beep" signal that the caller detects and passes in.

:func:`match_cadence` is the whole rule and is pure; :class:`CadenceTracker` keeps the recent
intervals of a live signal and says whether the pattern is sounding at ``now_ns``.
"""

from __future__ import annotations

from collections.abc import Sequence

from edge.clock import NS_PER_S

Interval = tuple[int, int]
"""One ON stretch of a beep signal: ``(start_ns, end_ns)``, end exclusive, end > start."""


def _tol_ns(nominal_s: float, tolerance: float, rel_tolerance: float) -> int:
    return round(max(tolerance, rel_tolerance * nominal_s) * NS_PER_S)


def _close(value_ns: int, nominal_s: float, tolerance: float, rel_tolerance: float) -> bool:
    slack = _tol_ns(nominal_s, tolerance, rel_tolerance)
    return abs(value_ns - round(nominal_s * NS_PER_S)) <= slack


def match_cadence(
    intervals: Sequence[Interval],
    pattern: Sequence[tuple[float, float]],
    tolerance: float,
    cycles: int,
    *,
    now_ns: int | None = None,
    rel_tolerance: float = 0.0,
) -> int | None:
    """Find the latest run of beeps that repeats ``pattern`` ``cycles`` times.

    Parameters
    ----------
    intervals
        ON intervals ``(start_ns, end_ns)`` of the beep signal, in any order, not overlapping.
    pattern
        One cycle as ``(on_s, off_s)`` pairs; T3 is ``[(0.5, 0.5), (0.5, 0.5), (0.5, 1.5)]``.
    tolerance
        Allowed deviation of every on and off length, in seconds.
    cycles
        How many whole cycles in a row confirm the pattern.
    now_ns
        Time up to which ``intervals`` are complete. The off after the last matched beep must be
        silent for at least its nominal length minus the tolerance, up to the next interval or up
        to ``now_ns``; ``None`` means the list is complete (silence after the last interval).
    rel_tolerance
        Allowed deviation as a fraction of each nominal length; the larger bound applies, so a
        5 s pause can have more slack than a 0.1 s beep.

    Returns
    -------
    int or None
        Index, in ``sorted(intervals)``, of the first beep of the latest match; ``None`` if none.

    Notes
    -----
    The silences on both sides of a match are bounded below only: the gap before the first beep
    must be at least the cycle's last off (a match starts on a cycle boundary) and the gap after
    the last beep at least its off. Without these bounds four beeps in a row would contain a
    T3 triple, and a 4-beep signal would pass as T3.
    """
    if not pattern or cycles < 1:
        raise ValueError("match_cadence needs a non-empty pattern and cycles >= 1")
    spans = sorted(intervals)
    n = len(pattern) * cycles
    last_off = pattern[-1][1]
    lead_ns = round(last_off * NS_PER_S) - _tol_ns(last_off, tolerance, rel_tolerance)
    for i in range(len(spans) - n, -1, -1):
        if i > 0 and spans[i][0] - spans[i - 1][1] < lead_ns:
            continue
        if _run_matches(spans, i, n, pattern, tolerance, rel_tolerance, now_ns):
            return i
    return None


def _run_matches(
    spans: Sequence[Interval],
    i: int,
    n: int,
    pattern: Sequence[tuple[float, float]],
    tolerance: float,
    rel_tolerance: float,
    now_ns: int | None,
) -> bool:
    for k in range(n):
        on_s, off_s = pattern[k % len(pattern)]
        start, end = spans[i + k]
        if not _close(end - start, on_s, tolerance, rel_tolerance):
            return False
        if k < n - 1:
            if not _close(spans[i + k + 1][0] - end, off_s, tolerance, rel_tolerance):
                return False
            continue
        # The final off: only its lower bound can be known (the alarm may stop after it).
        least = round(off_s * NS_PER_S) - _tol_ns(off_s, tolerance, rel_tolerance)
        if i + k + 1 < len(spans):
            quiet_until = spans[i + k + 1][0]
        elif now_ns is None:
            return True
        else:
            quiet_until = now_ns
        if quiet_until - end < least:
            return False
    return True


class CadenceTracker:
    """Whether a pattern is sounding, from beep intervals that arrive as they end.

    Parameters
    ----------
    pattern, tolerance, cycles, rel_tolerance
        As in :func:`match_cadence`.
    delivery
        Longest delay, in seconds, between a beep's end and its arrival in :meth:`update` (the
        caller hands beeps over at its ticks); silence is judged with this much slack.

    Notes
    -----
    The pattern starts sounding when :func:`match_cadence` first finds ``cycles`` new cycles. It
    stops when no beep has ended for longer than the pattern allows between two beep ends (an
    off plus the next on, plus tolerance and ``delivery``), or when no match has ended within
    one cycle plus that span (the beeps go on, but in another rhythm). Intervals older than two
    confirmation spans are forgotten.
    """

    def __init__(
        self,
        pattern: Sequence[tuple[float, float]],
        tolerance: float,
        cycles: int,
        rel_tolerance: float = 0.0,
        delivery: float = 0.5,
    ) -> None:
        if not pattern or cycles < 1:
            raise ValueError("CadenceTracker needs a non-empty pattern and cycles >= 1")
        self.pattern = [(float(a), float(b)) for a, b in pattern]
        self.tolerance = tolerance
        self.cycles = cycles
        self.rel_tolerance = rel_tolerance
        period_s = sum(a + b for a, b in self.pattern)
        # A beep is known only once it has ended, so the longest quiet stretch of a sounding
        # pattern runs from one beep's end to the next one's: an off plus the following on.
        ons = [a for a, _ in self.pattern]
        span = max(b + ons[(k + 1) % len(ons)] for k, (_, b) in enumerate(self.pattern))
        slack = _tol_ns(span, tolerance, rel_tolerance)
        self._silence_ns = round((span + delivery) * NS_PER_S) + slack
        self._stale_ns = round(period_s * NS_PER_S) + self._silence_ns
        self._keep_ns = 2 * round(period_s * cycles * NS_PER_S) + self._silence_ns
        self._spans: list[Interval] = []
        self.active = False
        self.started_ns: int | None = None
        self.match_end_ns: int | None = None
        # End of the last match of a finished episode: a later episode needs a newer match, or
        # the old beeps, still remembered, would start it again.
        self._done_ns = -1

    def update(self, now_ns: int, intervals: Sequence[Interval] = ()) -> bool:
        """Add intervals that have ended by ``now_ns`` and return whether the pattern sounds."""
        for start, end in intervals:
            if end <= start:
                raise ValueError(f"beep interval ({start}, {end}) does not end after it starts")
            self._spans.append((int(start), int(end)))
        self._spans.sort()
        self._spans = [s for s in self._spans if s[1] >= now_ns - self._keep_ns]
        n = len(self.pattern) * self.cycles
        i = match_cadence(
            self._spans,
            self.pattern,
            self.tolerance,
            self.cycles,
            now_ns=now_ns,
            rel_tolerance=self.rel_tolerance,
        )
        if i is not None and self._spans[i + n - 1][1] > self._done_ns:
            end = self._spans[i + n - 1][1]
            if not self.active:
                # Sounding for at least this update, even if the beeps have already stopped:
                # a caller with sparse updates still sees the episode start and end.
                self.active, self.started_ns, self.match_end_ns = True, self._spans[i][0], end
                return True
            self.match_end_ns = end if self.match_end_ns is None else max(self.match_end_ns, end)
        if self.active and self.match_end_ns is not None:
            last_end = self._spans[-1][1] if self._spans else self.match_end_ns
            if now_ns - last_end > self._silence_ns or now_ns - self.match_end_ns > self._stale_ns:
                self.active, self._done_ns = False, self.match_end_ns
        return self.active
