"""Alarm beeps from log-mel columns: the ON intervals that cadence rules match (T3, T4).

A smoke or CO alarm beeps a steady tone (about 3 kHz, or a 520 Hz square wave whose
fundamental stands out) for 0.1–0.5 s at a time. Model ticks (every 0.25–0.5 s) cannot resolve
a 0.1 s beep, but the 10 ms log-mel columns the features already compute can: a column holds a
beep when, inside the alarm's band, its strongest mel band stands ``prominence`` (natural
log units, 8 ≈ 35 dB in power) above the column's median. A beep is a run of such columns whose
peak stays within one mel band of where it started — a steady tone, not a sweep or speech —
at least ``min_s`` long, bridged across gaps of up to ``gap_s``. Pure and streaming: columns go
in by absolute index, finished beeps come out as column ranges.
"""

from __future__ import annotations

import numpy as np

from edge.features import LogMelSpec, mel_filterbank

# Beep signals of alarm tones by name, and their bands in Hz: the fundamental of a 520 Hz square
# wave, and the 3 kHz piezo tone. Each band is its own signal: a tune on the TV in one band
# must not interleave with an alarm's beeps in the other.
ALARM_SIGNALS: dict[str, tuple[float, float]] = {
    "beeps_520": (450.0, 650.0),
    "beeps_3k": (2800.0, 3600.0),
}


class BeepDetector:
    """Steady-tone beeps in a stream of log-mel columns.

    Parameters
    ----------
    spec
        The log-mel parameters of the columns.
    band
        Frequency range (Hz) the beep's tone lies in.
    prominence
        How far (natural log units) the in-band peak must stand above the column's median.
    min_s, gap_s
        Shortest beep, and the longest dropout bridged inside one.
    """

    def __init__(
        self,
        spec: LogMelSpec,
        band: tuple[float, float],
        prominence: float = 8.0,
        min_s: float = 0.05,
        gap_s: float = 0.03,
    ) -> None:
        fb = mel_filterbank(spec)
        freqs = np.linspace(0.0, spec.sample_rate / 2, fb.shape[1])
        centre = (fb * freqs).sum(1) / np.maximum(fb.sum(1), 1e-12)
        self.in_band = (centre >= band[0]) & (centre <= band[1])
        if not self.in_band.any():
            raise ValueError(f"no mel band lies in {band[0]:g}-{band[1]:g} Hz")
        self.prominence = prominence
        col_s = spec.hop_length / spec.sample_rate
        self.min_cols = max(1, int(round(min_s / col_s)))
        self.gap_cols = max(0, int(round(gap_s / col_s)))
        self._next = -1  # absolute index of the next column not yet seen
        self._run: tuple[int, int, int] | None = None  # (start col, last tonal col, mel band)

    def tonal(self, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per column of ``cols`` [n_mels, k]: whether it holds an in-band tone, and its band."""
        masked = np.where(self.in_band[:, None], cols, -np.inf)
        band = np.argmax(masked, axis=0)
        peak = masked[band, np.arange(cols.shape[1])]
        return peak - np.median(cols, axis=0) > self.prominence, band

    def push(self, first_col: int, cols: np.ndarray, ok: np.ndarray | None = None) -> list[tuple[int, int]]:
        """Feed columns ``first_col ..`` (already-seen ones are skipped); return the beeps that
        ended, as ``(start_col, end_col)`` with ``end_col`` exclusive. Invalid columns end a run."""
        skip = max(0, self._next - first_col)
        if skip >= cols.shape[1]:
            return []
        cols = cols[:, skip:]
        valid = np.ones(cols.shape[1], bool) if ok is None else np.asarray(ok, bool)[skip:]
        first_col += skip
        out: list[tuple[int, int]] = []
        if self._next >= 0 and first_col > self._next:  # columns were skipped: a run ends there
            self._close(out)
        is_tone, band = self.tonal(cols)
        for k in range(cols.shape[1]):
            c = first_col + k
            run = self._run
            if run is not None and c - run[1] > self.gap_cols + 1:
                self._close(out)
                run = None
            if not (valid[k] and is_tone[k]):
                continue
            b = int(band[k])
            if run is not None and abs(b - run[2]) <= 1:
                self._run = (run[0], c, run[2])
            else:
                self._close(out)
                self._run = (c, c, b)
        self._next = first_col + cols.shape[1]
        return out

    def _close(self, out: list[tuple[int, int]]) -> None:
        run = self._run
        if run is None:
            return
        self._run = None
        if run[1] - run[0] + 1 >= self.min_cols:
            out.append((run[0], run[1] + 1))
