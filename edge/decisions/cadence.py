"""Alarm cadence matching: the onsets of a beep detector's beeps against a temporal pattern.

A smoke alarm's T3 and a CO alarm's T4 are recognised by their rhythm, not by a single window.
Prediction ticks come every 0.25-0.5 s, far too coarse for a 0.1 s beep, so this module works on
``(start_ns, end_ns)`` beeps of a finer "beep" signal that the caller detects and passes in
(:mod:`edge.features.beeps`).

The rhythm is judged on **onsets**. A room's reverb prolongs every beep by its decaying tail (a
real T3 alarm measured ~0.65 s on / ~0.35 s off, its pause ~1.2 s), but leaves the onsets where
they were (1.0, 1.0, 1.9 s apart). So a pattern step ``(on_s, off_s)`` asks for the next beep to
start ``on_s + off_s`` after this one, within ``rel_tolerance * (on_s + off_s) + tolerance``
(the device's spread plus where a room lets an onset be found);
a beep's own length is only bounded loosely: at least ``on_s / 2`` (not a click), at most
``on_s + smear`` (a continuous tone is no beep). A room does two more things to T4's 0.1 s
pulses, measured on synthetic alarms at RT60 0.5-0.8 s: it fills the gaps, so pulses merge into
fewer, longer beeps, and the field left after a group's last pulse can read as one more beep
starting where that pulse ends. Both are taken (:func:`_run_matches`, :func:`_is_tail`), with
half of a match's onsets still to be heard apart. The figures the shipped rules use:

* T3, ISO 8201 / ANSI S3.41 (NFPA 72 and UL 217 refer to it): on 0.5 s +/- 10 %, off 0.5 s
  +/- 10 %, three times, the last off 1.5 s +/- 10 % (quoted e.g. by the Ontario Building Code,
  appendix A-3.2.4.18.(2): "0.5 +/- 0.05 s ... 1.5 +/- 0.15 s"; that appendix also allows a bell
  struck "three times at a rate of one stroke per second followed by 2 s of silence" — onsets are
  the pattern). Onset to onset: 1.0, 1.0, then 2.0 s, each +/- 10 %.
* T4, NFPA 720 / UL 2034 (CO): four 0.1 s pulses 0.1 s apart, then 5 s off; onset to onset
  0.2, 0.2, 0.2, then 5.1 s. We allow +/- 10 % as for T3 (not checked against the text of
  NFPA 720 / UL 2034 here), plus ``tolerance`` (0.05 s) for where a reverberant room puts an
  onset, a few 10 ms columns either way.

:func:`match_cadence` is the whole rule and is pure; :class:`CadenceTracker` keeps the recent
beeps of a live signal and says whether the pattern is sounding at ``now_ns``.
"""

from __future__ import annotations

from collections.abc import Sequence

from edge.timebase.clock import NS_PER_S

Interval = tuple[int, int] | tuple[int, int, float]
"""One beep of a beep signal: ``(start_ns, end_ns)`` or ``(start_ns, end_ns, hz)``, end
exclusive, end > start. The start is its onset; the end may lag the tone's end by the room's
reverb tail. ``hz``, where the detector gives it, is the tone's pitch: an alarm beeps at one
pitch, so a pattern is matched among beeps within ``PITCH_TOLERANCE`` of each other, and a
voice or a tune beeping at other pitches in the same band cannot break its rhythm. Beeps
without a pitch belong to every pitch."""

PITCH_TOLERANCE = (0.06, 50.0)
"""Beeps of one tone: pitches within this fraction of each other, or this many Hz — one mel
channel either way (a tone between two channels may be given either), not two."""


def same_pitch(a: Interval, b: Interval) -> bool:
    """Whether two beeps may be of one tone (a beep without a pitch may be of any)."""
    if len(a) < 3 or len(b) < 3:
        return True
    fa, fb = float(a[2]), float(b[2])
    return abs(fa - fb) <= max(PITCH_TOLERANCE[0] * max(fa, fb), PITCH_TOLERANCE[1])


def _slack_ns(nominal_s: float, tolerance: float, rel_tolerance: float) -> int:
    # The device's spread (a fraction of the interval) and where a room lets an onset be found
    # (a few 10 ms columns) add up.
    return round((tolerance + rel_tolerance * nominal_s) * NS_PER_S)


def _steps(pattern: Sequence[tuple[float, float]]) -> list[float]:
    """Onset-to-onset interval of each step of a pattern."""
    return [on + off for on, off in pattern]


def match_cadence(
    intervals: Sequence[Interval],
    pattern: Sequence[tuple[float, float]],
    tolerance: float,
    cycles: int,
    *,
    now_ns: int | None = None,
    rel_tolerance: float = 0.0,
    smear: float = 0.4,
) -> int | None:
    """Find the latest run of beeps whose onsets repeat ``pattern`` ``cycles`` times.

    Parameters
    ----------
    intervals
        Beeps ``(start_ns, end_ns)`` of the beep signal, in any order, not overlapping.
    pattern
        One cycle as nominal ``(on_s, off_s)`` pairs; T3 is ``[(0.5, 0.5), (0.5, 0.5),
        (0.5, 1.5)]``. Beep ``k`` must start ``on_s + off_s`` of step ``k`` after beep
        ``k - 1`` did.
    tolerance
        Allowed deviation of every onset-to-onset interval, in seconds, on top of
        ``rel_tolerance``.
    cycles
        How many whole cycles in a row confirm the pattern.
    now_ns
        Time up to which ``intervals`` are complete: every beep that had ended by then is in
        the list. The pause after the last matched beep must be free of onsets for its nominal
        length minus the tolerance, and a beep that started inside it would have ended (at most
        ``on_s + smear`` later) before ``now_ns``; ``None`` means the list is complete.
    rel_tolerance
        Allowed deviation as a fraction of each onset-to-onset interval (the device's spread),
        so a 5.1 s pause has more slack than a 0.2 s step.
    smear
        How much longer (s) than its nominal ``on_s`` a beep may last: the room's reverb tail
        smears its end. A beep must also last at least ``on_s / 2``. Pulses a room merged
        (gaps of at most 0.15 s) may form one beep as long as their span, within the onset
        tolerances, plus ``smear``.

    Returns
    -------
    int or None
        Index, in ``sorted(intervals)``, of the first beep of the latest match; ``None`` if none.

    Notes
    -----
    The pauses on both sides of a match are bounded below only: the previous beep must have
    started at least the cycle's last step before the first (a match starts on a cycle
    boundary), and the next beep no earlier than the last step after the last. Without these
    bounds four beeps in a row would contain a T3 triple, and a 4-beep signal would pass as T3.
    """
    found = find_cadence(intervals, pattern, tolerance, cycles, now_ns=now_ns,
                         rel_tolerance=rel_tolerance, smear=smear)
    if found is None:
        return None
    return next(i for i, s in enumerate(sorted(intervals)) if s[0] == found[0][0])


def find_cadence(
    intervals: Sequence[Interval],
    pattern: Sequence[tuple[float, float]],
    tolerance: float,
    cycles: int,
    *,
    now_ns: int | None = None,
    rel_tolerance: float = 0.0,
    smear: float = 0.4,
) -> list[Interval] | None:
    """The beeps of the latest match of :func:`match_cadence` (same parameters), in order;
    ``None`` if none."""
    if not pattern or cycles < 1:
        raise ValueError("match_cadence needs a non-empty pattern and cycles >= 1")
    n = len(pattern) * cycles
    steps = _steps(pattern)
    lead_ns = round(steps[-1] * NS_PER_S) - _slack_ns(steps[-1], tolerance, rel_tolerance)
    best: list[Interval] | None = None
    # Onsets closer than half the pattern's shortest step are one beep to it: a room can make a
    # T3 beep seem to start twice (its first reflections beat with the direct sound).
    close_ns = round(min(steps) / 2 * NS_PER_S)
    for spans in (_joined(v, close_ns) for v in _by_pitch(sorted(intervals))):
        for i in range(len(spans) - (n + 1) // 2, -1, -1):
            if best is not None and spans[i][0] <= best[0][0]:
                break
            if i > 0 and spans[i][0] - spans[i - 1][0] < lead_ns:
                continue
            run = _run_matches(spans, i, n, pattern, tolerance, rel_tolerance, smear, now_ns)
            if run is not None:
                best = run
                break
    return best


# A beep's tail in a reverberant room can read as one more beep that starts where it ends.
_TAIL_GAP_NS = round(0.05 * NS_PER_S)


def _is_tail(beep: Interval, prev: Interval, nxt: Interval, step: tuple[float, float],
             smear: float) -> bool:
    """Whether ``nxt`` is the reverberant tail of ``beep`` rather than a beep of its own, where
    ``beep`` is followed by a pause ``step`` = (on_s, off_s): it starts within 50 ms of the end
    of ``prev`` (``beep`` or a tail of it) and before ``on_s + smear`` after ``beep``'s onset,
    and the pause is long (off_s over on_s + smear), so no onset of the pattern is due that
    soon. A room's decaying field
    rises from its notches; after the last pulse of a T4 group (RT60 0.8 s) the detector split
    it off as a fifth beep 0.15-0.2 s after the fourth's onset, and the pause after a group
    must hold no onset."""
    on_s, off_s = step
    if off_s <= on_s + smear:
        return False
    return (nxt[0] - prev[1] <= _TAIL_GAP_NS
            and nxt[0] - beep[0] < round((on_s + smear) * NS_PER_S))


def _joined(spans: list[Interval], close_ns: int) -> list[Interval]:
    """Beeps in order, each joined with those starting within ``close_ns`` of its onset."""
    out: list[Interval] = []
    for s in spans:
        if out and s[0] - out[-1][0] < close_ns:
            last = out[-1]
            out[-1] = (last[0], max(last[1], s[1]), *last[2:])
        else:
            out.append(s)
    return out


def _by_pitch(spans: list[Interval]) -> list[list[Interval]]:
    """The beeps of each pitch that occurs (with the beeps that have none), in order."""
    anchors = {float(s[2]): s for s in spans if len(s) > 2}
    if not anchors:
        return [spans]
    return [[s for s in spans if same_pitch(s, a)] for _, a in sorted(anchors.items())]


# Pulses this close (off_s at most this) may be heard as one beep: a room's field fills gaps of
# T4's 0.1 s, but not T3's 0.5 s.
_MERGE_OFF_S = 0.15


def _mergeable(pattern: Sequence[tuple[float, float]], p: int) -> int:
    """How many steps from step ``p`` one beep may cover: the step itself and those after it
    in the cycle while the gap before each is at most ``_MERGE_OFF_S``."""
    r = 1
    while p + r < len(pattern) and pattern[p + r - 1][1] <= _MERGE_OFF_S:
        r += 1
    return r


def _on_bounds(pattern: Sequence[tuple[float, float]], p: int, r: int, tolerance: float,
               rel_tolerance: float) -> tuple[float, float]:
    """Shortest and longest (s, before the room's smear) a beep covering steps ``p .. p + r -
    1`` may be: one beep at least ``on_s / 2`` and at most ``on_s``; merged pulses their
    nominal span within the onset tolerances."""
    if r == 1:
        on_s = pattern[p][0]
        return on_s / 2, on_s
    span = sum(a + b for a, b in pattern[p:p + r - 1]) + pattern[p + r - 1][0]
    return span * (1 - rel_tolerance) - tolerance, span * (1 + rel_tolerance) + tolerance


def _run_matches(
    spans: Sequence[Interval],
    i: int,
    n: int,
    pattern: Sequence[tuple[float, float]],
    tolerance: float,
    rel_tolerance: float,
    smear: float,
    now_ns: int | None,
) -> list[Interval] | None:
    """The beeps from ``spans[i]`` that repeat ``pattern`` for ``n`` steps, or ``None``.

    A beep before a long pause may be followed by its own tail (:func:`_is_tail`), passed
    over. Pulses of one group with gaps of at most ``_MERGE_OFF_S`` may be heard as fewer,
    longer beeps (a reverberant room fills T4's 0.1 s gaps: at RT60 0.5-0.8 s a group may
    read as one 0.8 s beep), but at least half of the ``n`` onsets must be heard apart: a tone
    that merely repeats every 5.7 s is no T4.
    """
    steps = _steps(pattern)
    period = len(pattern)

    def walk(j: int, k: int, run: list[Interval]) -> list[Interval] | None:
        if k == n:
            return run if 2 * len(run) >= n else None
        if j >= len(spans):
            return None
        p = k % period
        start, end = spans[j][0], spans[j][1]
        for r in range(1, _mergeable(pattern, p) + 1):
            lo, top = _on_bounds(pattern, p, r, tolerance, rel_tolerance)
            if not lo * NS_PER_S <= end - start <= (top + smear) * NS_PER_S:
                continue
            nxt = j + 1
            while nxt < len(spans) and _is_tail(spans[j], spans[nxt - 1], spans[nxt],
                                                (top, pattern[p + r - 1][1]), smear):
                nxt += 1
            step = sum(steps[p:p + r])
            nominal = round(step * NS_PER_S)
            slack = _slack_ns(step, tolerance, rel_tolerance)
            if k + r < n:
                if nxt < len(spans) and abs(spans[nxt][0] - start - nominal) <= slack:
                    found = walk(nxt, k + r, run + [spans[j]])
                    if found is not None:
                        return found
                continue
            # The last pause: only its lower bound can be known (the alarm may stop after it).
            if nxt < len(spans):
                ok = spans[nxt][0] - start >= nominal - slack
            elif now_ns is None:
                ok = True
            else:
                # A beep starting inside the pause would be known once it ended, at most the
                # first step's longest beep later. (Pulses merged into a longer beep are known
                # later still; waiting for them would delay every T4 by 0.7 s, and a merged
                # group inside the pause of a T4 already heard twice is not a case worth it.)
                longest = round((pattern[0][0] + smear) * NS_PER_S)
                ok = now_ns - start >= nominal - slack + longest
            if ok:
                found = walk(nxt, n, run + [spans[j]])
                if found is not None:
                    return found
        return None

    return walk(i, 0, [])


class CadenceTracker:
    """Whether a pattern is sounding, from beeps that arrive as they end.

    Parameters
    ----------
    pattern, tolerance, cycles, rel_tolerance, smear
        As in :func:`match_cadence`.
    delivery
        Longest delay, in seconds, between a beep's end and its arrival in :meth:`update` (the
        caller hands beeps over at its ticks); beeps are complete up to ``now_ns`` minus this.

    Notes
    -----
    The pattern starts sounding when :func:`match_cadence` first finds ``cycles`` new cycles. It
    stops when no beep has started for longer than the pattern allows between two onsets, plus
    the time to learn of the next beep (its longest length and ``delivery``), or when no match
    has ended within a cycle plus the pause that confirms one (the beeps go on, but in another
    rhythm). Beeps older than two confirmation spans are forgotten.
    """

    def __init__(
        self,
        pattern: Sequence[tuple[float, float]],
        tolerance: float,
        cycles: int,
        rel_tolerance: float = 0.0,
        delivery: float = 0.5,
        *,
        smear: float = 0.4,
    ) -> None:
        if not pattern or cycles < 1:
            raise ValueError("CadenceTracker needs a non-empty pattern and cycles >= 1")
        self.pattern = [(float(a), float(b)) for a, b in pattern]
        self.tolerance = tolerance
        self.cycles = cycles
        self.rel_tolerance = rel_tolerance
        self.smear = smear
        self._delivery_ns = round(delivery * NS_PER_S)
        steps = _steps(self.pattern)
        period_s = sum(steps)
        # A beep is known only once it has ended and arrived, so the longest quiet stretch of a
        # sounding pattern runs from one onset to the arrival of the next beep.
        known_s = max(a for a, _ in self.pattern) + smear + delivery
        self._silence_ns = max(
            round((s + known_s) * NS_PER_S) + _slack_ns(s, tolerance, rel_tolerance) for s in steps
        )
        # A sounding pattern ends a new match every cycle, known once the pause after it has
        # passed (match_cadence's now_ns): a voice beeping at the alarm's pitch after it
        # stopped must not keep it sounding.
        wait_s = steps[-1] + self.pattern[0][0] + smear + delivery
        self._stale_ns = (round((period_s * (1 + rel_tolerance) + wait_s) * NS_PER_S)
                          + _slack_ns(steps[-1], tolerance, rel_tolerance))
        self._keep_ns = 2 * round(period_s * cycles * NS_PER_S) + self._silence_ns
        self._spans: list[Interval] = []
        self.active = False
        self.started_ns: int | None = None
        self.match_end_ns: int | None = None
        # End of the last match of a finished episode: a later episode needs a newer match, or
        # the old beeps, still remembered, would start it again.
        self._done_ns = -1
        self._tone: Interval = (0, 1)  # a beep of the sounding pattern: its pitch

    def update(self, now_ns: int, intervals: Sequence[Interval] = ()) -> bool:
        """Add beeps that have ended by ``now_ns`` and return whether the pattern sounds."""
        for beep in intervals:
            start, end = int(beep[0]), int(beep[1])
            if end <= start:
                raise ValueError(f"beep interval ({start}, {end}) does not end after it starts")
            self._spans.append((start, end, float(beep[2])) if len(beep) > 2 else (start, end))
        self._spans.sort()
        self._spans = [s for s in self._spans if s[1] >= now_ns - self._keep_ns]
        found = find_cadence(
            self._spans,
            self.pattern,
            self.tolerance,
            self.cycles,
            now_ns=now_ns - self._delivery_ns,
            rel_tolerance=self.rel_tolerance,
            smear=self.smear,
        )
        if found is not None and found[-1][1] > self._done_ns:
            end = found[-1][1]
            if not self.active:
                # Sounding for at least this update, even if the beeps have already stopped:
                # a caller with sparse updates still sees the episode start and end.
                self.active, self.started_ns, self.match_end_ns = True, found[0][0], end
                self._tone = found[0]
                return True
            self.match_end_ns = end if self.match_end_ns is None else max(self.match_end_ns, end)
        if found is not None and self.active:
            self._tone = found[0]
        if self.active and self.match_end_ns is not None:
            # Beeps of other pitches (a voice, a tune) do not keep the alarm sounding.
            ours = [s[0] for s in self._spans if same_pitch(s, self._tone)]
            last_onset = ours[-1] if ours else self.match_end_ns
            if now_ns - last_onset > self._silence_ns or now_ns - self.match_end_ns > self._stale_ns:
                self.active, self._done_ns = False, self.match_end_ns
        return self.active
