"""What was playing before a sound: how far the sound stands out of it, and whether it had a beat.

Glass breaks in a room: its impact is the loudest thing the high band has heard for seconds. A
glass class can also fire inside music, a drum hit or a bright chord among others just like it,
which stands no higher than what the seconds before held. Over a window's log-mel columns,
:class:`BandRise` gives the dB by which the high band's loudest column in the newest ``seconds``
stands over the loudest tenth (the 90th percentile) of the columns older than ``seconds +
gap_s``: the room's own ongoing sound, its loud moments included.

Measured on the 16 kHz, 64-channel log-mel of the home card (6 s windows), channels centred at
2 kHz and above, at the ticks 0.5 and 0.75 s after a shatter's onset:

* four real shatters (``../shared/realworld``'s, home-dev-1's, two of ``edge sounds fetch``) in
  a quiet room: 34-41 dB; home-dev-1's turned down 24 dB: 17 dB;
* the same over read or telephone speech (room RT60 0.4 s, speech at -18 dBFS peak): with the
  shatter's peak at the speech's, 9.5 dB and more (median 11-21); 6 dB under it, 4-12 dB;
* the nine soundtracks of ``edge sounds fetch`` (30 s each at -12 dBFS peak), every 0.1 s
  from 6 s in: medians 1.5-6.3 dB, 82-100 % of the ticks of eight under 6 dB (a bright, busy
  one 38 %), a few passages up to 12 dB; where the shipped home model started ``glass_break``
  in one, 0.6 dB. A phone ringing or an alarm clock beeping on: 0.6-1.7 dB.

A rule's ``unless: {measure: band_rise, below: ...}`` (:mod:`edge.decisions.rules`) uses it as
evidence against a class of sudden sounds: what does not stand out of the room's sound is not
its event. It vetoes a real shatter too where the room was as loud a moment before (a shatter
well under loud music or speech).

Music also moves on to a louder passage: a soundtrack's new section, bright drums coming in
13 dB over the hats before, measured like a shatter on every count and started the shipped
model's ``glass_break``. What came before it had a beat. :class:`BeatBefore` gives the highest
normalised autocorrelation, at lags of ``lags_s``, of the high band's onset strength (its rises
from column to column) over the same older columns: a steady beat 0.6-1.0, two equal knocks
0.5 at most, three 0.67. Measured as above (every 0.1 s from 6 s in): read and telephone
speech at most 0.25, rain 0.15, home-dev-1 at most 0.39 (0.04 before its shatter); the
soundtracks' medians 0.17-0.77, 0.8 before the section that started ``glass_break``. Beeping
before a sound (an alarm's rhythm) has a beat too.

Speech read over music (a TV) passes both: a word's onset breaks the music's beat and stands
out of the 2-8 kHz band, and the shipped home model's glass class reached 0.99 on such a mix
though on neither part alone. Where it rose, it rose at 2-4 kHz, where a voice is bright;
above 4 kHz the music's hats and cymbals held the band as before. Shattering glass puts most
of its energy above 4 kHz. :class:`HighRise` is :class:`BandRise` of the channels centred at 4
kHz and above. Measured at the same ticks as above (rooms of RT60 0.4 s):

* real shatters of 16 kHz and more (``../shared/realworld``'s, home-dev-1's, three of ``edge
  sounds fetch``) in a quiet room 30-39 dB; over read or telephone speech at the speech's level
  24-36 dB, 6 dB under it 16-30 dB; a shatter recorded at 8 kHz (nothing above 4 kHz: the home
  model does not hear it either) 12 dB quiet, -1-18 dB over speech;
* around six of the seven ``glass_break`` the shipped model started in two rooms of speech
  read over soundtracks (both tick grids; the tick before, of, and after each), the 2-8 kHz
  band rose 4-12 dB, the top band -0.5-3.9 dB at four, 5.9 at one and 5.5-13 dB at the last;
* every 0.1 s over speech read over each of the bank's 20 music tracks (the speech's peak at
  and 6 dB over the music's, -12 dBFS): of the ticks the rise and beat checks pass, the top
  band rose under 6 dB on 79 % over a LibriSpeech reader, 83 % over telephone speech and 49 %
  over home-dev-1's two brighter readers; the music alone, 86-100 % of each track's ticks;
* real shatters over those tracks, with and without read speech: of the ticks the rise and
  beat checks pass, the top band keeps all with the shatter's peak 6 dB over the music's,
  88-92 % at the music's level and 82-85 % 6 dB under it.
"""

from __future__ import annotations

import numpy as np

from edge.features.logmel import LogMelSpec, band_db, band_rows


class _Before:
    """The high band's rows and the window's newest part (left out of "before")."""

    def __init__(self, spec: LogMelSpec, lo_hz: float, seconds: float, gap_s: float) -> None:
        self.rows = band_rows(spec, lo_hz)
        self.per_s = spec.sample_rate / spec.hop_length
        self.newest = max(1, round(seconds * self.per_s))
        self.skip = self.newest + max(0, round(gap_s * self.per_s))


class BandRise(_Before):
    """dB by which the high band's loudest newest column stands over the loudest tenth before.

    Parameters
    ----------
    spec
        The log-mel parameters of the columns.
    lo_hz
        Channels whose centre lies at or above this form the band.
    seconds
        The newest part of the window, where the sound is.
    gap_s
        Columns this much older still count as neither (the sound's run-up).
    before_s
        At least this many seconds of valid columns before, or the window is not measured.
    quantile
        Of the band's level over the columns before: what "as loud as before" means.
    """

    def __init__(self, spec: LogMelSpec, lo_hz: float = 2000.0, seconds: float = 1.0,
                 gap_s: float = 0.25, before_s: float = 1.0, quantile: float = 90.0) -> None:
        super().__init__(spec, lo_hz, seconds, gap_s)
        self.least = max(1, round(before_s * self.per_s))
        self.quantile = quantile

    def __call__(self, cols: np.ndarray, ok: np.ndarray | None = None) -> float | None:
        """The rise over ``cols`` (log-mel ``[n_mels, T]``, oldest first); ``ok`` marks valid
        columns. None when the newest part has no valid column, or fewer than ``before_s`` of
        valid columns lie before it (a window just started, a gap)."""
        level = band_db(cols[self.rows])
        valid = np.ones(level.size, bool) if ok is None else np.asarray(ok, bool)[-level.size:]
        if level.size <= self.skip:
            return None
        new = level[-self.newest:][valid[-self.newest:]]
        old = level[:-self.skip][valid[:-self.skip]]
        if not new.size or old.size < self.least:
            return None
        return float(new.max() - np.percentile(old, self.quantile))


class HighRise(BandRise):
    """:class:`BandRise` of the top band, where a shatter's energy is: channels centred at 4 kHz
    and above (its other parameters and their defaults are :class:`BandRise`'s)."""

    def __init__(self, spec: LogMelSpec, lo_hz: float = 4000.0, **kw: float) -> None:
        super().__init__(spec, lo_hz, **kw)


class BeatBefore(_Before):
    """The beat of the high band over the columns before the newest: its onset strength's
    highest normalised autocorrelation at lags within ``lags_s``.

    Parameters
    ----------
    spec
        The log-mel parameters of the columns.
    lo_hz
        Channels whose centre lies at or above this form the band.
    seconds, gap_s
        The newest part of the window and its run-up, left out (as :class:`BandRise`).
    lags_s
        The beat periods looked for (s).
    """

    def __init__(self, spec: LogMelSpec, lo_hz: float = 2000.0, seconds: float = 1.0,
                 gap_s: float = 0.25, lags_s: tuple[float, float] = (0.15, 1.5)) -> None:
        super().__init__(spec, lo_hz, seconds, gap_s)
        self.lags = (max(1, round(lags_s[0] * self.per_s)), max(2, round(lags_s[1] * self.per_s)))

    def __call__(self, cols: np.ndarray, ok: np.ndarray | None = None) -> float | None:
        """The beat over ``cols`` (log-mel ``[n_mels, T]``, oldest first); ``ok`` marks valid
        columns. None when the columns before hold less than two of the longest period or
        any invalid one (a gap is no beat and breaks one)."""
        older = cols[self.rows, :max(0, cols.shape[1] - self.skip)]
        if older.shape[1] < 2 * self.lags[1]:
            return None
        if ok is not None and not np.asarray(ok, bool)[-cols.shape[1]:][:older.shape[1]].all():
            return None
        level = band_db(older)
        onset = np.maximum(np.diff(level), 0.0)
        onset -= onset.mean()
        energy = float(onset @ onset)
        if energy <= 1e-12:
            return 0.0
        lo, hi = self.lags
        ac = np.correlate(onset, onset, "full")[onset.size - 1 + lo: onset.size + hi]
        return float(ac.max()) / energy
