"""How long a sound's impacts go on: a shatter is many, a strike is one.

Glass breaking is a burst of impacts: the pane or bottle gives, and its pieces land and hit
each other for a few hundred milliseconds, each a sharp rise in the high band. A crash cymbal,
a ride, a hand clap, a click or a desk bell is one strike followed by a smooth decay, however
broadband it sounds. Over the last ``seconds`` of a window's log-mel columns,
:class:`ImpactSpread` finds the impacts in the high band's level (channels centred at ``lo_hz``
and above: a rise of ``rise_db`` over its lowest of the previous ``back_s``, within
``within_db`` of the loudest column, at least ``gap_s`` after the last one) and gives the
seconds from the first to the last. Measured on the 16 kHz, 64-channel log-mel of the home
card, each sound at -12 dBFS peak in rooms of RT60 0.3, 0.5 and 0.8 s (three draws of each),
at the ticks a rule on 0.25 s ticks could hold on (0.5-0.75 s after the onset for glass,
0.25-0.75 s for the rest):

* real glass (five shatters: ``../shared/realworld``'s and four of ``edge sounds fetch``): 0.12
  or more in 84 % of the cases, home-dev-1's 0.48; the misses are minetest's first file at
  RT60 0.8 s and a game's crystal shatter (a single hit) at 0.5-0.8 s: in a long tail the
  first impact drowns the pieces that land 20-30 dB under it;
* 24 real strikes (crash cymbals, rides, bells, claps, hammers, a whack, a balloon, wood
  smashed): under 0.12 in 92 %; over it mostly crash cymbals whose wash swells by 4 dB and
  more. A bottle's clinks (several hits of glass on glass) measure like a shatter.

A rule's ``unless: {measure: impact_spread, below: ...}`` (:mod:`edge.decisions.rules`) uses it
as evidence against the glass class, which a single broadband strike can fool. Speech or
music under a strike adds impacts of their own and lengthens the spread: the measure only
ever vetoes, so noise makes it say less, never more.
"""

from __future__ import annotations

import numpy as np

from edge.features.logmel import LogMelSpec, band_db, band_rows


class ImpactSpread:
    """Seconds from the first to the last impact in the high band of the newest columns.

    Parameters
    ----------
    spec
        The log-mel parameters of the columns.
    lo_hz
        Channels whose centre lies at or above this form the band.
    seconds
        How much of the window (its newest columns) is searched.
    rise_db, back_s
        An impact: the band's level ``rise_db`` over its lowest in the ``back_s`` before.
    within_db
        ... and within this of the loudest column searched (not the room's noise).
    gap_s
        Impacts closer than this are one.
    """

    def __init__(self, spec: LogMelSpec, lo_hz: float = 2000.0, seconds: float = 1.0,
                 rise_db: float = 4.0, within_db: float = 25.0, back_s: float = 0.03,
                 gap_s: float = 0.03) -> None:
        self.rows = band_rows(spec, lo_hz)
        per_s = spec.sample_rate / spec.hop_length
        self.columns = max(2, round(seconds * per_s))
        self.back = max(1, round(back_s * per_s))
        self.gap = max(1, round(gap_s * per_s))
        self.per_s = per_s
        self.rise, self.within = rise_db, within_db

    def __call__(self, cols: np.ndarray, ok: np.ndarray | None = None) -> float | None:
        """The spread over the newest columns of ``cols`` (log-mel ``[n_mels, T]``, oldest
        first); ``ok`` marks valid columns. None when fewer than half of them are valid."""
        take = cols[self.rows, -self.columns:].astype(np.float64)
        level = band_db(take)
        if ok is not None:
            valid = np.asarray(ok[-self.columns:], bool)
            if 2 * int(valid.sum()) < self.columns:
                return None
            if not valid.all():  # a gap is no impact, and nothing rises out of it
                level = np.where(valid, level, level[valid].min())
        elif 2 * level.size < self.columns:
            return None
        if level.size <= self.back:
            return 0.0
        before = np.lib.stride_tricks.sliding_window_view(level[:-1], self.back).min(axis=1)
        rising = level[self.back:] - before >= self.rise
        loud = level[self.back:] > level.max() - self.within
        impacts: list[int] = []
        for i in np.flatnonzero(rising & loud):
            if not impacts or i - impacts[-1] >= self.gap:
                impacts.append(int(i))
        return 0.0 if len(impacts) < 2 else (impacts[-1] - impacts[0]) / self.per_s
