"""How much of a sound's high band a few partials hold: a struck bell is not a shatter.

A bell, a chime, a glass tapped (not broken) ring at a few partials that hold still while they
decay; a glass breaking is a broadband impact followed by shards, each ringing at its own
pitches, over a spread of noise. Over the last ``seconds`` of a window's log-mel columns,
:class:`PartialShare` gives the share of the high band's energy (channels centred at
``lo_hz`` and above) that its ``k`` strongest channels hold. Measured on the 16 kHz, 64-channel
log-mel of the home card, 0.1-0.75 s after the onset, in rooms of RT60 0.3-0.8 s:

* bells 0.83-1.00: a bicycle bell (a 2.9-3.5 kHz dome struck in a trill), a desk bell struck
  once at 2-4.5 kHz, a doorbell's ding-dong;
* glass 0.13-0.28 (home-dev-1's shatter, the real glass of ``sounds/`` in three rooms), the
  simulator's glass at most 0.64 up to 0.5 s after the impact (30 draws), when a rule on
  0.25 s ticks has decided; a camera shutter 0.26-0.64, a church bell (its partials mostly
  below the band) 0.14.

A rule's ``unless: {measure: partial_share, above: ...}`` (:mod:`edge.decisions.rules`) uses
it as evidence against a class: the model's glass class has heard struck partials in the
simulator's glass and can take a bell for one. A tone or beep sounding over a glass break (an
alarm in the same half second) raises the share too; a quiet bell under room noise lowers it.
"""

from __future__ import annotations

import numpy as np

from edge.features.logmel import LogMelSpec, mel_centres

class PartialShare:
    """The share of the high band's energy held by its ``k`` strongest mel channels.

    Parameters
    ----------
    spec
        The log-mel parameters of the columns.
    lo_hz
        Channels whose centre lies at or above this form the band.
    seconds
        How much of the window (its newest columns) is measured.
    k
        How many channels are "a few partials" (a partial spreads over one or two).
    """

    def __init__(self, spec: LogMelSpec, lo_hz: float = 1500.0, seconds: float = 0.5,
                 k: int = 4) -> None:
        self.rows = np.flatnonzero(mel_centres(spec) >= lo_hz)
        if len(self.rows) <= k:
            raise ValueError(f"{len(self.rows)} mel channels from {lo_hz:g} Hz: need more than "
                             f"k = {k}")
        self.columns = max(1, round(seconds * spec.sample_rate / spec.hop_length))
        self.k = k

    def __call__(self, cols: np.ndarray, ok: np.ndarray | None = None) -> float | None:
        """The share over the newest columns of ``cols`` (log-mel ``[n_mels, T]``, oldest
        first); ``ok`` marks valid columns. None when fewer than half of them are valid."""
        take = cols[self.rows, -self.columns:]
        if ok is not None:
            take = take[:, np.asarray(ok[-self.columns:], bool)]
        if 2 * take.shape[1] < self.columns:
            return None
        power = np.exp(take.astype(np.float64)).mean(axis=1)
        top = np.partition(power, len(power) - self.k)[-self.k:]
        return float(top.sum() / power.sum())
