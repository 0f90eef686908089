"""Model input features: the one definition used by training, calibration and serving.

This module owns the numbers a model sees. Audio becomes a log-mel spectrogram
(:func:`log_mel`, parameters in :class:`LogMelSpec`); frames are prepared by
:mod:`edge.features.frames`. Both specs are read from the model card, so a model is always fed the way it was trained. :class:`StreamingLogMel` is the
serving front end: it computes each spectrogram column once as audio arrives and gives a window
its columns from a cache; it equals :func:`log_mel` on the same samples.

Log-mel conventions (pinned by the golden tests against librosa):

* audio is mono float in [-1, 1] at ``sample_rate``; integer PCM is refused, not guessed at;
* no centre padding: column ``k`` of a signal covers samples ``[k*hop, k*hop + n_fft)``, so ``N``
  samples give ``1 + (N - n_fft) // hop`` columns and a trailing remainder shorter than a hop
  step is unused (2 s at 16 kHz: 197 columns, the last 128 samples unused);
* a periodic Hann window of ``win_length`` centred in ``n_fft`` (librosa's ``pad_center``);
* power ``|STFT|^2``, Slaney mel scale with Slaney area normalisation (librosa's
  ``htk=False, norm='slaney'``), then the natural ``log(mel + log_offset)``;
* arithmetic in float64, result float32 ``[n_mels, frames]``, so x86 training and ARM serving
  agree far below the 1e-3 parity budget.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import as_strided

from edge.runtime.card import spec_from_dict

_BATCH_COLUMNS = 64  # StreamingLogMel computes columns once this many are pending (or on read)

# -- audio ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class LogMelSpec:
    """Log-mel parameters (the ``audio`` section of a model card).

    Parameters
    ----------
    sample_rate, n_fft, win_length, hop_length:
        In samples; defaults are 16 kHz, a 32 ms FFT, a 25 ms window and a 10 ms hop.
    n_mels, fmin, fmax:
        Mel bands between ``fmin`` and ``fmax`` Hz; ``fmax=None`` means ``sample_rate / 2``.
    log_offset:
        Added before the log so that silence maps to ``log(log_offset)``, not ``-inf``.
    window:
        Only ``'hann'`` (periodic) is defined.
    """

    sample_rate: int = 16000
    n_fft: int = 512
    win_length: int = 400
    hop_length: int = 160
    n_mels: int = 64
    fmin: float = 50.0
    fmax: float | None = 7600.0
    log_offset: float = 1e-6
    window: str = "hann"

    def __post_init__(self) -> None:
        if not 0 < self.hop_length <= self.win_length <= self.n_fft:
            raise ValueError("need 0 < hop_length <= win_length <= n_fft")
        if not 0 <= self.fmin < self.f_max <= self.sample_rate / 2:
            raise ValueError("need 0 <= fmin < fmax <= sample_rate / 2")
        if self.n_mels < 1 or self.log_offset <= 0:
            raise ValueError("need n_mels >= 1 and log_offset > 0")
        if self.window != "hann":
            raise ValueError(f"window {self.window!r} is not defined; only 'hann'")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "audio") -> LogMelSpec:
        """Build from a model card section; unknown keys raise :class:`EngineError`."""
        return spec_from_dict(cls, data, where)

    def to_dict(self) -> dict[str, Any]:
        """The card section that :meth:`from_dict` reads back."""
        return dataclasses.asdict(self)

    @property
    def f_max(self) -> float:
        """Upper band edge in Hz, ``fmax`` resolved."""
        return float(self.sample_rate) / 2 if self.fmax is None else float(self.fmax)

    def n_frames(self, n_samples: int) -> int:
        """Columns that ``n_samples`` samples give (no centre padding)."""
        return 0 if n_samples < self.n_fft else 1 + (n_samples - self.n_fft) // self.hop_length

    def snap(self, n0: int) -> int:
        """The hop-aligned sample index nearest ``n0``: a window starting there is all cached."""
        return (n0 + self.hop_length // 2) // self.hop_length * self.hop_length  # ties go up


def _hz_to_mel(f: np.ndarray) -> np.ndarray:
    # Slaney: linear below 1 kHz (200/3 Hz per mel), logarithmic above (27 mels per 6.4x).
    lin = f / (200.0 / 3)
    log = 15.0 + np.log(np.maximum(f, 1e-10) / 1000.0) / (np.log(6.4) / 27.0)
    return np.where(f >= 1000.0, log, lin)


def _mel_to_hz(m: np.ndarray) -> np.ndarray:
    lin = m * (200.0 / 3)
    log = 1000.0 * np.exp((np.log(6.4) / 27.0) * (m - 15.0))
    return np.where(m >= 15.0, log, lin)


def band_rows(spec: LogMelSpec, lo_hz: float) -> np.ndarray:
    """The mel channels whose centre lies at or above ``lo_hz`` (ValueError: none)."""
    rows = np.flatnonzero(mel_centres(spec) >= lo_hz)
    if not len(rows):
        raise ValueError(f"no mel channel from {lo_hz:g} Hz")
    return rows


def band_db(cols: np.ndarray) -> np.ndarray:
    """The summed power of log-mel rows ``cols`` (``[rows, T]``) per column, in dB."""
    return np.asarray(10.0 / np.log(10.0) * np.log(np.exp(cols.astype(np.float64)).sum(axis=0)))


@functools.lru_cache(maxsize=16)
def mel_filterbank(spec: LogMelSpec) -> np.ndarray:
    """Slaney mel filterbank, float64 ``[n_mels, n_fft // 2 + 1]`` (read-only, cached).

    Equals ``librosa.filters.mel(sr, n_fft, n_mels, fmin, fmax, htk=False, norm='slaney')``:
    triangles between consecutive mel-spaced edges, each scaled to unit area in Hz.
    """
    lo, hi = _hz_to_mel(np.array([spec.fmin, spec.f_max]))
    edges = _mel_to_hz(np.linspace(lo, hi, spec.n_mels + 2))
    freqs = np.fft.rfftfreq(spec.n_fft, 1.0 / spec.sample_rate)
    ramps = edges[:, None] - freqs[None, :]
    width = np.diff(edges)
    lower = -ramps[:-2] / width[:-1, None]
    upper = ramps[2:] / width[1:, None]
    fb = np.maximum(0.0, np.minimum(lower, upper))
    fb *= (2.0 / (edges[2:] - edges[:-2]))[:, None]
    fb.setflags(write=False)
    return fb


def mel_centres(spec: LogMelSpec) -> np.ndarray:
    """The centre (Hz) of each mel channel: its filter's weighted mean frequency."""
    fb = mel_filterbank(spec)
    freqs = np.linspace(0.0, spec.sample_rate / 2, fb.shape[1])
    return np.asarray((fb * freqs).sum(1) / np.maximum(fb.sum(1), 1e-12))


@functools.lru_cache(maxsize=16)
def _window(win_length: int) -> np.ndarray:
    w = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(win_length) / win_length)  # periodic Hann
    w.setflags(write=False)
    return w


def _mono(audio: np.ndarray) -> np.ndarray:
    x = np.asarray(audio)
    if x.ndim == 2 and x.shape[1] == 1:
        x = x[:, 0]
    if x.ndim != 1:
        raise ValueError(f"audio must be mono [n] or [n, 1], got shape {x.shape}; downmix first")
    if x.dtype.kind != "f":  # np.issubdtype costs more than a whole column here
        raise TypeError(f"audio must be float in [-1, 1], got {x.dtype}; scale PCM first")
    return x


def _frames(x: np.ndarray, spec: LogMelSpec, count: int) -> np.ndarray:
    """View ``[count, win_length]`` of the windowed part of each column (no copy).

    The Hann window is zero outside the centred ``win_length`` samples, and a shift inside the
    FFT length changes only the phase, so ``rfft(frame * w, n=n_fft)`` over the centred part has
    the power spectrum of the zero-padded ``n_fft`` frame at less work.
    """
    off = (spec.n_fft - spec.win_length) // 2
    span = x[off : off + (count - 1) * spec.hop_length + spec.win_length]
    step = span.strides[0]
    return as_strided(span, (count, spec.win_length), (step * spec.hop_length, step),
                      writeable=False)


def _log_mel_frames(frames: np.ndarray, spec: LogMelSpec) -> np.ndarray:
    """float32 ``[n_mels, len(frames)]`` from a ``[frames, win_length]`` view."""
    stft = np.fft.rfft(frames * _window(spec.win_length), n=spec.n_fft, axis=-1)
    power = stft.real**2 + stft.imag**2
    mel = mel_filterbank(spec) @ power.T
    return np.log(mel + spec.log_offset).astype(np.float32)


def log_mel(audio: np.ndarray, spec: LogMelSpec) -> np.ndarray:
    """Log-mel spectrogram of mono audio, float32 ``[n_mels, spec.n_frames(len(audio))]``.

    Parameters
    ----------
    audio:
        Float samples in [-1, 1], shape ``[n]`` or ``[n, 1]``.
    spec:
        The model card's log-mel parameters.

    Returns
    -------
    numpy.ndarray
        ``log(mel(|STFT|^2) + log_offset)``; column ``k`` covers samples
        ``[k*hop, k*hop + n_fft)``. Fewer than ``n_fft`` samples give zero columns.
    """
    x = _mono(audio)
    count = spec.n_frames(len(x))
    if count == 0:
        return np.empty((spec.n_mels, 0), np.float32)
    return _log_mel_frames(_frames(x, spec, count), spec)


def frame_mask(sample_mask: np.ndarray, spec: LogMelSpec) -> np.ndarray:
    """Per-column validity ``[frames]``: a column is valid only if all its samples are."""
    m = np.asarray(sample_mask, dtype=bool)
    if m.all():  # the common case, at a tenth of the cost
        return np.ones(spec.n_frames(len(m)), bool)
    bad = np.concatenate(([0], np.cumsum(~m)))
    starts = np.arange(spec.n_frames(len(sample_mask))) * spec.hop_length
    return np.asarray(bad[starts + spec.n_fft] == bad[starts])


class StreamingLogMel:
    """Log-mel columns computed once as audio arrives, cached in a ring, read per window.

    Columns are numbered in absolute sample time: column ``k`` covers samples
    ``[k*hop, k*hop + n_fft)``. A window ``[n0, n0 + n)`` with ``n0`` a multiple of the hop is
    served from the cache and equals ``log_mel`` of those samples. Samples never pushed (a jump
    in the absolute index) count as zeros marked invalid, which is what
    :class:`edge.timebase.buffers.SampleRing` returns for a gap, so cache and batch still agree there.

    Not thread-safe: one owner (the scheduler of a stream) pushes and reads.

    Parameters
    ----------
    spec:
        The model card's log-mel parameters.
    capacity_frames:
        Columns kept; at least one window's worth (197 for 2 s) plus the hops a window trails.
    """

    def __init__(self, spec: LogMelSpec, capacity_frames: int) -> None:
        if capacity_frames < 1:
            raise ValueError("capacity_frames must be >= 1")
        self.spec = spec
        self.capacity = capacity_frames
        self._ring = np.zeros((spec.n_mels, capacity_frames), np.float32)
        self._ring_col = np.full(capacity_frames, -1, np.int64)  # column held by each slot
        self._ring_ok = np.zeros(capacity_frames, bool)
        self._silence = np.float32(np.log(spec.log_offset))  # the value of an all-zero column
        self._next_col: int | None = None  # first column not computed yet
        self._tail = np.zeros(0, np.float64)  # samples from _next_col * hop to end
        self._tail_ok = np.zeros(0, bool)
        self._chunks: list[np.ndarray] = []  # pushed after the tail, not yet computed
        self._ok_chunks: list[np.ndarray] = []
        self._pending = 0  # samples in tail and chunks
        self.end = 0  # one past the newest pushed sample
        #: columns computed from pushed audio; recomputed from a window's own samples
        self.computed_columns = 0
        self.recomputed_columns = 0
        #: samples that arrived twice (trimmed) or never (treated as invalid zeros)
        self.overlap_samples = 0
        self.gap_samples = 0

    def push(self, block: np.ndarray, n0: int, valid: np.ndarray | bool = True) -> None:
        """Add samples ``[n0, n0 + len(block))``.

        Parameters
        ----------
        block:
            Mono float samples, ``[n]`` or ``[n, 1]``.
        n0:
            Absolute index of ``block[0]``. Samples before :attr:`end` are trimmed (counted in
            ``overlap_samples``); a jump past it is a gap of invalid zeros (``gap_samples``).
        valid:
            Per-sample validity ``[n]``, or one flag for the whole block. Invalid samples are
            taken as zeros (what :meth:`edge.timebase.buffers.SampleRing.read` gives for them).
        """
        x = _mono(block)
        # Invalid samples count as zeros, as SampleRing.read returns them.
        if isinstance(valid, (bool, np.bool_)):  # the common case, kept cheap
            ok = np.full(len(x), bool(valid))
            x = x if valid else np.zeros(len(x))
        else:
            ok = np.asarray(valid, dtype=bool)
            if ok.shape != x.shape:
                raise ValueError(f"valid has shape {ok.shape}, block {x.shape}")
            x = x if ok.all() else np.where(ok, x, 0.0)
        hop = self.spec.hop_length
        if self._next_col is None:
            # Start on the column grid; the samples before n0 were never pushed: invalid zeros.
            self._next_col = n0 // hop
            lead = n0 - self._next_col * hop
            self._tail, self._tail_ok = np.zeros(lead), np.zeros(lead, bool)
            self.end = n0
        if n0 < self.end:
            cut = min(self.end - n0, len(x))
            self.overlap_samples += cut
            x, ok, n0 = x[cut:], ok[cut:], n0 + cut
        if n0 > self.end:
            gap = n0 - self.end
            self.gap_samples += gap
            # n_fft zeros complete every column that holds pre-gap samples; columns lying
            # wholly inside a longer gap are not computed but stored as invalid silence.
            fill = min(gap, self.spec.n_fft)
            self._append(np.zeros(fill), np.zeros(fill, bool))
            if gap > fill:
                self._compute()
                first = self._next_col
                self._next_col = max(first, -(-(n0 - self.spec.n_fft + 1) // hop))
                self._store(np.arange(max(first, self._next_col - self.capacity), self._next_col),
                            self._silence, False)
                lead = n0 - self._next_col * hop
                self._tail, self._tail_ok = np.zeros(lead), np.zeros(lead, bool)
                self._pending = lead
            self.end = n0
        if len(x):
            self._append(x, ok)

    def _append(self, x: np.ndarray, ok: np.ndarray) -> None:
        # Columns are computed in batches: per-call overhead, not arithmetic, dominates the
        # cost of one column, and a mic callback block holds only one or two.
        self._chunks.append(x)
        self._ok_chunks.append(ok)
        self.end += len(x)
        self._pending += len(x)
        if self.spec.n_frames(self._pending) >= _BATCH_COLUMNS:
            self._compute()

    def _compute(self) -> None:
        """Compute every column the pushed samples complete."""
        if not self._chunks or self._next_col is None:
            return
        self._tail = np.concatenate((self._tail, *self._chunks))
        self._tail_ok = np.concatenate((self._tail_ok, *self._ok_chunks))
        self._chunks, self._ok_chunks = [], []
        spec, hop = self.spec, self.spec.hop_length
        count = spec.n_frames(len(self._tail))
        if count > self.capacity:  # the first ones would be overwritten before anyone read them
            drop = count - self.capacity
            self._tail, self._tail_ok = self._tail[drop * hop :], self._tail_ok[drop * hop :]
            self._next_col += drop
            count = self.capacity
        if count:
            self._store(
                self._next_col + np.arange(count),
                _log_mel_frames(_frames(self._tail, spec, count), spec),
                frame_mask(self._tail_ok[: (count - 1) * hop + spec.n_fft], spec),
            )
            self._tail, self._tail_ok = self._tail[count * hop :], self._tail_ok[count * hop :]
            self._next_col += count
            self.computed_columns += count
        self._pending = len(self._tail)

    def _store(self, cols: np.ndarray, values: np.ndarray | np.float32, ok: Any) -> None:
        slots = cols % self.capacity
        self._ring[:, slots] = values
        self._ring_col[slots] = cols
        self._ring_ok[slots] = ok

    def columns(
        self,
        n0: int,
        n: int,
        audio: np.ndarray | None = None,
        audio_mask: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Log-mel columns of samples ``[n0, n0 + n)`` and their validity.

        Parameters
        ----------
        n0, n:
            The window's absolute sample range; ``n0`` should be a multiple of the hop
            (:meth:`LogMelSpec.snap`).
        audio, audio_mask:
            Optionally the window's own samples ``[n]`` and their validity. When given, a
            misaligned ``n0`` and columns missing from the cache (not pushed yet, or evicted)
            are computed from them (counted in ``recomputed_columns``); without them a
            misaligned ``n0`` raises ``ValueError`` and missing columns read as invalid
            silence, ``log(log_offset)``.

        Returns
        -------
        tuple of numpy.ndarray
            float32 ``[n_mels, frames]`` and bool ``[frames]``, ``frames = spec.n_frames(n)``.
        """
        self._compute()
        spec, hop = self.spec, self.spec.hop_length
        count = spec.n_frames(n)
        x = None if audio is None else _mono(audio)
        if x is not None and len(x) != n:
            raise ValueError(f"audio has {len(x)} samples, the window {n}")
        mask = np.ones(n, bool) if audio_mask is None else np.asarray(audio_mask, bool)
        if n0 % hop:
            if x is None:
                raise ValueError(f"n0={n0} is not a multiple of hop {hop}; pass the audio")
            self.recomputed_columns += count
            return log_mel(x, spec), frame_mask(mask, spec)
        cols = n0 // hop + np.arange(count)
        slots = cols % self.capacity
        have = self._ring_col[slots] == cols
        out = self._ring[:, slots]  # fancy indexing: a fresh contiguous copy
        ok = self._ring_ok[slots] & have
        missing = np.flatnonzero(~have)
        if len(missing) and x is not None:
            out[:, missing] = _log_mel_frames(_frames(x, spec, count)[missing], spec)
            ok[missing] = frame_mask(mask, spec)[missing]
            self.recomputed_columns += len(missing)
        elif len(missing):
            out[:, missing] = self._silence
        return out, ok


__all__ = [
    "LogMelSpec",
    "StreamingLogMel",
    "frame_mask",
    "log_mel",
    "mel_filterbank",
]
