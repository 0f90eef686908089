"""Alarm beeps from log-mel columns: the beeps whose onsets cadence rules match (T3, T4).

A smoke or CO alarm beeps a steady tone for 0.1-0.5 s at a time: a piezo anywhere from about
2 kHz to 3.6 kHz (with harmonics), or a 520 Hz square wave whose fundamental stands out. Model
ticks (every 0.25-0.5 s) cannot resolve a 0.1 s beep, but the 10 ms log-mel columns the features
already compute can.

What a room does to a beep decides how it is found. Its *onset* stays sharp: the direct sound
arrives first, and the level in the tone's mel band jumps within two or three columns. Its *end*
is smeared: the reverberant field decays exponentially (60 dB per RT60, 0.3-0.8 s in homes), so
a 0.5 s beep can seem 0.65 s long and its gap 0.35 s. So a beep starts at an onset and the rhythm
is judged on onsets (:mod:`edge.decisions.cadence`); its end is only loosely known. Nothing here is an
absolute level: an onset is a rise above the channel's own level just before it, a tone is a
channel standing above its neighbouring channels, a beep lasts while its channel stays within
``hold_db`` of the level it reached — so an alarm is found at -40 dBFS as at -6 dBFS, and over
speech or room noise as long as the tone stands above them in its own channel.

Rules, per column and mel channel in the band (levels in dB; one tone owns its channel and
those its window spreads it over, at least +/- 160 Hz, so several tones are followed at once):

* onset: the channel rises ``rise_db`` above its lowest level over the preceding
  ``lookback_s`` (the local floor), stands ``tonal_db`` above the median of the channels around
  it, and is the loudest of its zone (a tone's spectral peak, not its skirt);
* a beep goes on while the loudest of its channel and the two beside it stays within
  ``hold_db`` of the median of its levels so far (a beep's first columns, where the direct
  sound and the first reflections beat, can stand 10 dB over the level it then holds);
  dropouts of up to ``gap_s`` are bridged;
* the same tone again after a dip of ``redip_db`` in a young beep (its first ``refill_max_s``)
  starts a new beep once it holds within ``refill_db`` of the beep's level: in a reverberant
  room the 0.1 s gaps of a T4 fill with the tail of the pulse before. In the tail of a beep that
  has ended, the tone must come back within ``back_db`` of that beep's level for ``sustain_s``:
  a tail's own fluctuations rise from their notches, but not to the beep's level;
* a beep is reported only if it is a lone tone: at its loud columns, ``sharp_db`` above the
  median of its flanks (channels 150-300 Hz, or 7-15 %, away), where a voice has harmonics or a
  formant's skirt and a tone has nothing. A beep shorter than ``min_s`` is dropped; one longer
  than ``max_s`` is reported once it reaches it (a continuous tone), and nothing more is looked
  for at its pitch until it stops;
* and only if its tone peaks in the band: a beep in a band's edge channel is not reported when
  the channel beside it outside the band was the louder on most of its columns. A 425 Hz dial
  or busy tone (and a 400 Hz one) peaks in the 409 Hz channel, and its skirt held the 454 Hz
  channel at the edge of the 520 Hz band: beeping three times and pausing 1 s, it was a T3. A
  520 Hz alarm 10 % low (468 Hz) peaks in the 454 Hz channel and is still heard. Such a beep
  still holds its channel while it lasts and leaves its tail, as a reported one does.

Beeps carry the centre of their tone's channel, so :mod:`edge.decisions.cadence` matches a rhythm among
beeps of one pitch: a voice or a tune beeping at other pitches in the band cannot break it.

Pure and streaming: columns go in by absolute index, finished beeps come out as column ranges.
"""

from __future__ import annotations

import bisect

import numpy as np

from edge.features.logmel import LogMelSpec, mel_centres

# Beep signals of alarm tones by name, and the band (Hz) their tone's mel channel lies in: the
# fundamental of a 520 Hz square wave (NFPA 72 low-frequency alarm, 520 Hz +/- 10 %) and the
# piezo band of household smoke and CO alarms (about 2.0-3.6 kHz; RECIPES.md). Each band is its
# own signal: a tune on the TV in one band must not interleave with an alarm's beeps in the other.
ALARM_SIGNALS: dict[str, tuple[float, float]] = {
    "beeps_520": (440.0, 640.0),
    "beeps_3k": (1900.0, 3800.0),
}

_DB = np.log(10.0) / 10.0  # natural-log units (the log-mel's) per dB of power

Beep = tuple[int, int, float]
"""A beep in column numbers: ``(start_col, end_col, hz)``, end exclusive; ``hz`` is the centre
of its tone's mel channel (beeps of one alarm share it)."""


class BeepDetector:
    """Steady-tone beeps, found by their onsets, in a stream of log-mel columns.

    Parameters
    ----------
    spec
        The log-mel parameters of the columns.
    band
        Frequency range (Hz) the centre of the tone's mel channel lies in.
    rise_db, lookback_s
        An onset rises this far above the channel's lowest level over the span before it.
    tonal_db, neighbours
        ... and stands this far above the median of the channels within ``neighbours``.
    hold_db
        A beep goes on while its level stays within this of the median of its levels.
    redip_db, refill_db, refill_s, refill_max_s
        In a beep younger than ``refill_max_s``, a dip of ``redip_db`` and a rise of as much,
        holding within ``refill_db`` of the beep's level within ``refill_s``, starts a new beep.
    back_db, sustain_s, confirm_s, tail_s
        Within ``tail_s`` of a beep's end, its tone starts a new beep only once it holds within
        ``back_db`` of that beep's level for ``sustain_s``, within ``confirm_s`` of rising.
    sharp_db
        A beep's loud columns stand this far above the median of its flank channels.
    min_s, gap_s, max_s
        Shortest beep; longest dropout bridged inside one; longest beep before it is reported
        as a continuous tone.
    attack_s
        A beep's first columns, not used for its level when looking for a dip.
    """

    def __init__(
        self,
        spec: LogMelSpec,
        band: tuple[float, float],
        *,
        rise_db: float = 12.0,
        tonal_db: float = 12.0,
        hold_db: float = 10.0,
        redip_db: float = 6.0,
        back_db: float = 6.0,
        refill_db: float = 3.0,
        tail_s: float = 2.0,
        sustain_s: float = 0.03,
        confirm_s: float = 0.2,
        refill_s: float = 0.12,
        refill_max_s: float = 0.3,
        min_s: float = 0.05,
        gap_s: float = 0.03,
        max_s: float = 2.0,
        lookback_s: float = 0.08,
        attack_s: float = 0.05,
        neighbours: int = 8,
        sharp_db: float = 18.0,
    ) -> None:
        centre = mel_centres(spec)
        rows = np.flatnonzero((centre >= band[0]) & (centre <= band[1]))
        if not len(rows):
            raise ValueError(f"no mel band lies in {band[0]:g}-{band[1]:g} Hz")
        n_mels = spec.n_mels
        self.rows = rows
        # Each in-band channel's neighbourhood for the tone test, shifted inward at the edges.
        width = min(2 * neighbours + 1, n_mels)
        lo = np.clip(rows - neighbours, 0, n_mels - width)
        self._hood = lo[:, None] + np.arange(width)[None, :]  # [n_rows, width]
        col_s = spec.hop_length / spec.sample_rate
        self.col_s = col_s
        self.rise, self.tonal = rise_db * _DB, tonal_db * _DB
        self.hold, self.redip, self.back = hold_db * _DB, redip_db * _DB, back_db * _DB
        self.refill = refill_db * _DB
        self.sharp = sharp_db * _DB
        self.min_cols = max(1, int(round(min_s / col_s)))
        self.gap_cols = max(0, int(round(gap_s / col_s)))
        self.max_cols = max(self.min_cols + 1, int(round(max_s / col_s)))
        self.look = max(1, int(round(lookback_s / col_s)))
        self.attack = max(1, int(round(attack_s / col_s)))
        # The floor is read from columns [t - look - 2, t - 2]: a Hann window straddling the
        # onset already holds part of the tone, so the two columns before it are left out.
        self._skip = 2
        self._hist = np.zeros((n_mels, 0), np.float32)  # columns before _next, for the floor
        self._next = -1  # absolute index of the next column not yet seen
        self.tail_cols = max(1, int(round(tail_s / col_s)))
        self.sustain = max(1, int(round(sustain_s / col_s)))
        self.confirm = max(self.sustain, int(round(confirm_s / col_s)))
        self.refill_cols = max(self.sustain, int(round(refill_s / col_s)))
        self.refill_max = int(round(refill_max_s / col_s))
        self.hz = [float(f) for f in centre[rows]]  # centre of each in-band channel
        # The flanks of a tone: channels just past the +/- 80 Hz its window spreads it over
        # (and past a voice's formant peak), where speech has harmonics and a tone has none.
        self._flanks = []
        for f in self.hz:
            dist = np.abs(centre - f)
            self._flanks.append(np.flatnonzero((dist >= max(150.0, 0.07 * f))
                                               & (dist <= max(300.0, 0.15 * f))))
        # Rows one tone owns: its window's main lobe (+/- 80 Hz at 25 ms) spreads it over
        # several narrow low channels, so the zone is at least +/- 160 Hz and two channels.
        hz = np.asarray(self.hz)
        near = np.abs(hz[:, None] - hz[None, :]) <= np.maximum(160.0, 0.1 * hz)[:, None]
        near |= np.abs(np.arange(len(rows))[:, None] - np.arange(len(rows))[None, :]) <= 2
        self._near = near  # [row, row]: whether the second lies in the first's zone
        # The channels just outside the band, beside its edge rows, and per column whether one
        # was louder than the edge row: a beep there whose neighbour outside was louder most of
        # the time is the skirt of a tone of another pitch (a 425 Hz dial or busy tone holds
        # the 454 Hz channel at the 520 Hz band's edge) and is not reported.
        edges = [(0, int(rows[0]) - 1), (len(rows) - 1, int(rows[-1]) + 1)]
        self._outside = [(i, ch) for i, ch in edges if 0 <= ch < n_mels]
        self._ring = self.max_cols + 64  # columns kept: more than a reported beep's longest
        self._beyond = np.zeros((len(self._outside), self._ring), bool)  # by column mod _ring
        self._beeps: list[_Beep] = []  # in progress, one per tone
        self._cands: list[_Cand] = []  # possible new beeps of a known tone
        self._prevs: list[_Prev] = []  # beeps ended within tail_s, one per tone

    # -- per-column features, vectorised over a chunk ------------------------------------------

    def features(self, cols: np.ndarray, hist: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For columns ``cols`` [n_mels, k] preceded by ``hist``: per in-band channel and
        column, its rise above the local floor and its stand above its neighbours (natural log
        units, ``[n_rows, k]`` each). Columns without a full floor span rise by ``-inf``."""
        k = cols.shape[1]
        both = np.concatenate([hist, cols], axis=1)[self.rows]
        h = hist.shape[1]
        floor = np.full((len(self.rows), k), np.inf, np.float32)
        for d in range(self._skip, self._skip + self.look + 1):
            src = np.arange(k) + h - d
            ok = src >= 0
            if ok.any():
                floor[:, ok] = np.minimum(floor[:, ok], both[:, src[ok]])
        x = cols[self.rows]
        rise = x - floor
        hood = cols[self._hood]  # [n_rows, width, k]
        stand = x - np.median(hood, axis=1)
        return rise, stand

    def sharpness(self, cols: np.ndarray) -> np.ndarray:
        """Per in-band channel and column (``[n_rows, k]``, natural log units): how far the
        tone's level (its channel or one beside it) stands above the median of its flanks."""
        lo = np.concatenate([cols[:1] * 0 - np.inf, cols[:-1]])  # channel below, -inf at 0
        hi = np.concatenate([cols[1:], cols[:1] * 0 - np.inf])
        zone = np.maximum(np.maximum(lo, cols), hi)[self.rows]
        return np.stack([zone[i] - np.median(cols[f], axis=0) for i, f in enumerate(self._flanks)])

    # -- streaming -------------------------------------------------------------------------------

    def push(self, first_col: int, cols: np.ndarray, ok: np.ndarray | None = None) -> list[Beep]:
        """Feed columns ``first_col ..`` (already-seen ones are skipped); return the beeps that
        ended (or reached ``max_s``), as ``(start_col, end_col, hz)`` with ``end_col``
        exclusive and ``hz`` the centre of the tone's mel channel. Invalid or skipped columns
        end every beep and restart the floor."""
        skip = max(0, self._next - first_col)
        if skip >= cols.shape[1]:
            return []
        cols = np.asarray(cols[:, skip:], np.float32)
        valid = np.ones(cols.shape[1], bool) if ok is None else np.asarray(ok, bool)[skip:]
        first_col += skip
        out: list[Beep] = []
        hist = self._hist
        if self._next >= 0 and first_col > self._next:  # columns were skipped: beeps end there
            self._break(out)
            hist = hist[:, :0]
        # Invalid columns split the chunk: neither the floor nor a beep reaches across them.
        bad = np.flatnonzero(~valid)
        edges = [0, *[int(b) for e in bad for b in (e, e + 1)], cols.shape[1]]
        for a, b in zip(edges[::2], edges[1::2]):
            if b > a:
                self._run(first_col + a, cols[:, a:b], hist, out)
                hist = np.concatenate([hist, cols[:, a:b]], axis=1)
            if b < cols.shape[1]:  # column b is invalid
                self._break(out)
                hist = hist[:, :0]
        keep = self.look + self._skip
        self._hist = hist[:, -keep:] if hist.shape[1] else hist
        self._next = first_col + cols.shape[1]
        return sorted(out)

    def _run(self, first_col: int, cols: np.ndarray, hist: np.ndarray, out: list[Beep]) -> None:
        rise, stand = self.features(cols, hist[:, -(self.look + self._skip):])
        sharp = self.sharpness(cols)
        fresh = (rise >= self.rise) & (stand >= self.tonal)
        again = (rise >= self.redip) & (stand >= self.tonal)
        levels = cols[self.rows]
        n_rows = len(self.rows)
        # A tone's onset is at its spectral peak: channels its window spreads it over (the
        # zone around the loudest) start nothing of their own.
        peaks = levels >= np.where(self._near[:, :, None], levels[None, :, :], -np.inf).max(axis=1)
        onsets = fresh.any(axis=0)
        for k in range(cols.shape[1]):
            if not (self._beeps or self._cands or self._prevs or onsets[k]):
                continue  # nothing in progress and no onset: the column changes nothing
            c = first_col + k
            lv = levels[:, k]
            for j, (i, ch) in enumerate(self._outside):
                self._beyond[j, c % self._ring] = cols[ch, k] > lv[i]
            self._step_cands(c, lv, rise[:, k], sharp[:, k], out)
            self._step_beeps(c, lv, rise[:, k], sharp[:, k], out)
            peak = peaks[:, k]
            busy = np.zeros(n_rows, bool)  # tones already in progress or pending
            for row in [b.row for b in self._beeps] + [cd.row for cd in self._cands]:
                busy[max(0, row - 1):row + 2] = True
            self._prevs = [p for p in self._prevs if c - p.end <= self.tail_cols]
            tails = np.zeros(n_rows, bool)
            for p in self._prevs:
                lo, hi = max(0, p.row - 1), min(n_rows, p.row + 2)
                tails[lo:hi] = True
                if p.long and c - p.end < self.refill_cols:
                    continue  # the field a long beep leaves may swell as the beep ends
                if not busy[p.row] and (again[lo:hi, k] & peak[lo:hi]).any():
                    # In the tail of a beep that ended: its own fluctuations rise from their
                    # notches, so only a rise that holds that beep's level again is a new beep.
                    self._cands.append(_Cand(c, p.row, p.level - self.back, self.confirm,
                                             self._zone(p.row, lv), float(sharp[p.row, k])))
                    busy[lo:hi] = True
            hits = np.flatnonzero(fresh[:, k] & peak & ~busy & ~tails)
            for row in hits[np.argsort(-lv[hits])]:
                if not busy[row]:
                    self._beeps.append(_Beep(c, int(row), [float(lv[row])], [float(sharp[row, k])]))
                    busy |= self._near[row]

    def _zone(self, row: int, lv: np.ndarray) -> float:
        """Level of the tone of ``row``: the loudest of its channel and the two beside it."""
        return float(lv[max(0, row - 1):row + 2].max())

    def _step_cands(self, c: int, lv: np.ndarray, rise: np.ndarray, sharp: np.ndarray,
                    out: list[Beep]) -> None:
        keep: list[_Cand] = []
        for cand in self._cands:
            level = self._zone(cand.row, lv)
            cand.levels.append(level)
            cand.sharp.append(float(sharp[cand.row]))
            cand.above = cand.above + 1 if level >= cand.need else 0
            if cand.above >= self.sustain:
                # The beep starts where its final climb does: a notch of the old tail may have
                # opened the candidate a little before the tone came back.
                low = [i for i, v in enumerate(cand.levels) if v < cand.need - self.redip]
                i = low[-1] if low else 0
                for old in [b for b in self._beeps if abs(b.row - cand.row) <= 1]:
                    self._close(old, out, end=cand.start + i)
                self._beeps.append(_Beep(cand.start + i, cand.row, cand.levels[i:], cand.sharp[i:]))
                continue
            lo, hi = max(0, cand.row - 1), cand.row + 2
            if float(rise[lo:hi].max()) >= self.redip and c - cand.start < cand.window:
                keep.append(cand)  # else it fell back, or never held the beep's level
        self._cands = keep

    def _step_beeps(self, c: int, lv: np.ndarray, rise: np.ndarray, sharp: np.ndarray,
                    out: list[Beep]) -> None:
        for beep in list(self._beeps):
            if beep.start + len(beep.levels) > c:
                continue  # started at this very column
            level = self._zone(beep.row, lv)
            beep.add(level, float(sharp[beep.row]))
            i = c - beep.start
            # The beep's level so far: the median, as the direct sound and the room's build-up
            # beat at its start (a first peak 10 dB over the steady level is common).
            beep.ref = beep.median()
            if (i < self.refill_max and level - beep.ref >= self.rise
                    and float(rise[max(0, beep.row - 1):beep.row + 2].max()) >= self.rise):
                # A louder tone at this pitch starts: a voice's harmonic was here first. (Not
                # late in a beep: where the direct sound and the room's field cancel, the
                # field left when a beep ends can be louder than the beep was.)
                self._close(beep, out, end=c)
                self._beeps.append(_Beep(c, beep.row, [level], [float(sharp[beep.row])]))
                continue
            if beep.long:
                if level < beep.ref - self.hold:
                    self._beeps.remove(beep)  # the continuous tone stopped; it was reported
                continue
            if level >= beep.ref - self.hold:
                beep.last = c
                if i + 1 >= self.max_cols:
                    n = len(beep.levels)
                    if self._lone(beep, n) and self._inside(beep, n):
                        out.append((beep.start, c + 1, self.hz[beep.row]))
                    beep.long = True
                elif self.attack + self.look + self._skip <= i < self.refill_max:
                    self._redip(c, beep, level)
                continue
            if c - beep.last > self.gap_cols:
                self._close(beep, out)

    def _redip(self, c: int, beep: _Beep, level: float) -> None:
        """Look for the beep's own tone starting again after a dip (T4 gaps filled by reverb):
        the floor span sank ``redip_db`` below the beep's typical level before it, and the
        level rose ``redip_db`` from there."""
        if any(abs(beep.row - cand.row) <= 1 for cand in self._cands):
            return
        i = c - beep.start
        span = beep.levels[i - self.look - self._skip:i - self._skip + 1]
        dip = min(span)
        # Past the attack: where the first reflections meet the direct sound, a beep's first
        # columns can stand well over the level it then holds.
        before = beep.levels[:i - self.look - self._skip]
        typical = _typical(before[self.attack:] if len(before) >= self.attack + 3 else before)
        if dip <= typical - self.redip and level - dip >= self.redip:
            need = float(np.median(before)) - self.refill
            self._cands.append(_Cand(c, beep.row, need, self.refill_cols, level, beep.sharp[-1]))

    def _lone(self, beep: _Beep, n: int) -> bool:
        """Whether the first ``n`` columns of a beep are a lone tone: sharp at its loud columns
        (its tail, smeared under other sounds, is not)."""
        levels, sharp = np.asarray(beep.levels[:n]), np.asarray(beep.sharp[:n])
        loud = levels >= _typical(beep.levels[:n]) - self.refill
        return float(np.median(sharp[loud])) >= self.sharp

    def _inside(self, beep: _Beep, n: int) -> bool:
        """Whether the tone of a beep's first ``n`` columns peaks in the band: at an edge row,
        the channel outside beside it was not the louder on most of them."""
        for j, (i, _) in enumerate(self._outside):
            if beep.row == i:
                cols = np.arange(beep.start, beep.start + n) % self._ring
                return bool(self._beyond[j, cols].mean() <= 0.5)
        return True

    def _break(self, out: list[Beep]) -> None:
        """Audio missing: beeps in progress end, pending ones are forgotten."""
        for beep in list(self._beeps):
            self._close(beep, out)
        self._cands = []

    def _close(self, beep: _Beep, out: list[Beep], end: int | None = None) -> None:
        self._beeps.remove(beep)
        if beep.long:
            return
        stop = beep.last + 1 if end is None else end
        n = stop - beep.start
        if n < self.min_cols or not self._lone(beep, n):
            return  # too short, or not a lone tone (a voice's harmonics, a formant)
        if self._inside(beep, n):  # its tail is followed either way, as the rest is
            out.append((beep.start, stop, self.hz[beep.row]))
        self._prevs = [p for p in self._prevs if abs(p.row - beep.row) > 1]
        self._prevs.append(_Prev(beep.row, _typical(beep.levels[:n]), stop, n >= self.refill_max))


class _Beep:
    """A beep in progress: start column, channel (row index into the band), level per column
    since the start, reference level (their median), last column within ``hold_db`` of it,
    and whether it was reported as a continuous tone."""

    __slots__ = ("start", "row", "levels", "sharp", "ref", "last", "long", "_sorted")

    def __init__(self, start: int, row: int, levels: list[float], sharp: list[float]) -> None:
        self.start, self.row, self.levels, self.sharp = start, row, levels, sharp
        self.ref = max(levels)
        self.last = start + len(levels) - 1
        self.long = False
        # The levels kept sorted as they come: the median each column costs no more than an
        # insertion (a continuous tone's levels grow for as long as it sounds).
        self._sorted = sorted(levels)

    def add(self, level: float, sharp: float) -> None:
        self.levels.append(level)
        self.sharp.append(sharp)
        bisect.insort(self._sorted, level)

    def median(self) -> float:
        """The median of the levels, as ``numpy.median`` gives it."""
        s, n = self._sorted, len(self._sorted)
        return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


class _Cand:
    """A possible new beep of a known tone, waiting to hold ``need`` for ``sustain_s`` within
    ``window`` columns of its start."""

    __slots__ = ("start", "row", "need", "window", "levels", "sharp", "above")

    def __init__(self, start: int, row: int, need: float, window: int, level: float,
                 sharp: float) -> None:
        self.start, self.row, self.need, self.window = start, row, need, window
        self.levels, self.sharp = [level], [sharp]
        self.above = int(level >= need)  # columns in a row at or above ``need``


class _Prev:
    """A beep that ended lately: its channel, typical level, end column, and whether it lasted
    ``refill_max_s`` or more."""

    __slots__ = ("row", "level", "end", "long")

    def __init__(self, row: int, level: float, end: int, long: bool) -> None:
        self.row, self.level, self.end, self.long = row, level, end, long


def _typical(levels: list[float]) -> float:
    """A beep's level: high in its levels (past the rise, ahead of the tail), yet not its
    single loudest column (a burst of speech on top)."""
    return float(np.percentile(levels, 75))
