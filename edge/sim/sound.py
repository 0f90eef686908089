"""Sound building blocks of the simulator: exact, seekable and block-size independent.

This module owns how simulated audio is made and mixed. Every sample is a pure function of the
scenario seed and its *absolute* sample index, so a stream read in 20 ms blocks equals one read
in 1 s blocks, and any window can be rendered without rendering what came before:

* a **bed** is a continuous sound ``bed(n0, n)``: coloured noise is white noise generated per
  fixed chunk from its own sub-seed and FIR-filtered over the chunk boundaries (exact, because
  the filter sees the same white samples whatever the block); drones take their phase from a
  closed-form integral of their frequency, never from running state;
* an **atom** is a finite sound (a syllable, a bark, a bell) rendered whole from its own sub-seed
  and placed at its start sample;
* a :class:`SoundPlan` sums the beds and the atoms over any range, caching fixed pages so that a
  live source reading small blocks pays for each page once.
"""

from __future__ import annotations

import bisect
import zlib
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

F64 = NDArray[np.float64]
F32 = NDArray[np.float32]

_CHUNK = 4096  # white-noise chunk: one sub-seed per chunk of samples


def sub_rng(seed: int, *parts: int | str) -> np.random.Generator:
    """A generator that depends only on ``seed`` and ``parts`` (strings are hashed stably)."""
    key = [seed] + [zlib.crc32(p.encode()) if isinstance(p, str) else p & 0xFFFFFFFF
                    for p in parts]
    return np.random.default_rng(np.random.SeedSequence(key))


def lowpass_fir(cutoff_hz: float, sample_rate: int, taps: int = 129) -> F64:
    """Windowed-sinc low-pass FIR with unit DC gain."""
    fc = min(cutoff_hz, 0.49 * sample_rate) / sample_rate
    k = np.arange(taps) - (taps - 1) / 2
    h = 2 * fc * np.sinc(2 * fc * k) * np.hamming(taps)
    return np.asarray(h / h.sum(), dtype=np.float64)


def bandpass_fir(lo_hz: float, hi_hz: float, sample_rate: int, taps: int = 129) -> F64:
    """Windowed-sinc band-pass FIR (difference of two low-passes)."""
    return lowpass_fir(hi_hz, sample_rate, taps) - lowpass_fir(lo_hz, sample_rate, taps)


class Bed(Protocol):
    """A continuous sound: samples ``[n0, n0 + n)`` as float64."""

    def __call__(self, n0: int, n: int) -> F64: ...


@dataclass(frozen=True)
class NoiseBed:
    """White noise through ``fir``, its level wobbling slowly (a sum of slow sines)."""

    seed: int
    name: str
    fir: F64
    level: float
    sample_rate: int
    wobble: tuple[tuple[float, float, float], ...] = ()  # (depth, Hz, phase) per slow sine

    def __call__(self, n0: int, n: int) -> F64:
        taps = len(self.fir)
        a, b = n0 - (taps - 1), n0 + n
        c0, c1 = a // _CHUNK, -(-b // _CHUNK)
        white = np.concatenate([
            sub_rng(self.seed, self.name, c + (1 << 20)).standard_normal(_CHUNK)
            for c in range(c0, c1)
        ])
        seg = white[a - c0 * _CHUNK : b - c0 * _CHUNK]
        out = np.convolve(seg, self.fir, mode="valid") * self.level
        if self.wobble:
            t = np.arange(n0, n0 + n) / self.sample_rate
            gain = np.ones(n)
            for depth, hz, phase in self.wobble:
                gain += depth * np.sin(2 * np.pi * hz * t + phase)
            out *= np.clip(gain, 0.0, None)
        return out


@dataclass(frozen=True)
class Drone:
    """A harmonic tone whose frequency wanders: ``f(t) = f0 (1 + sum a sin(w t + p))``.

    The phase is the closed-form integral of ``f``, so no state carries between blocks.
    """

    f0: float
    harmonics: tuple[float, ...]  # amplitude of harmonic 1, 2, ...
    sample_rate: int
    wander: tuple[tuple[float, float, float], ...] = ()  # (a, Hz, phase)
    start: int = 0
    end: int = 1 << 62

    def __call__(self, n0: int, n: int) -> F64:
        lo, hi = max(n0, self.start), min(n0 + n, self.end)
        out = np.zeros(n)
        if hi <= lo:
            return out
        t = np.arange(lo, hi) / self.sample_rate
        phase = t.copy()
        for a, hz, p in self.wander:
            w = 2 * np.pi * hz
            phase -= a / w * np.cos(w * t + p)
        phase *= 2 * np.pi * self.f0
        seg = out[lo - n0 : hi - n0]
        for k, amp in enumerate(self.harmonics, start=1):
            if amp and k * self.f0 * 1.1 < 0.45 * self.sample_rate:
                seg += amp * np.sin(k * phase)
        return out


@dataclass(frozen=True)
class PatternTone:
    """A beeping tone: on during ``pattern`` (s, within each ``cycle`` s) between two samples.

    Alarm patterns (T3, T4) are this; the tone is a sine or a band-limited square wave.
    """

    start: int
    end: int
    pattern: tuple[tuple[float, float], ...]
    cycle: float
    freq: float
    level: float
    sample_rate: int
    square: bool = False
    ramp_s: float = 0.004  # keeps beep edges from clicking

    def __call__(self, n0: int, n: int) -> F64:
        lo, hi = max(n0, self.start), min(n0 + n, self.end)
        out = np.zeros(n)
        if hi <= lo:
            return out
        t = (np.arange(lo, hi) - self.start) / self.sample_rate
        u = np.mod(t, self.cycle)
        gate = np.zeros_like(t)
        for a, b in self.pattern:
            gate = np.maximum(gate, np.clip(np.minimum(u - a, b - u) / self.ramp_s, 0.0, 1.0))
        wave = np.zeros_like(t)
        ks = range(1, 40, 2) if self.square else (1,)
        for k in ks:
            if k * self.freq < 0.45 * self.sample_rate:
                wave += np.sin(2 * np.pi * k * self.freq * t) / k
        out[lo - n0 : hi - n0] = self.level * gate * wave
        return out


@dataclass(frozen=True)
class Atom:
    """A finite sound that starts at sample ``start``; ``make()`` renders all of it."""

    start: int
    length: int
    make: Callable[[], F64] = field(compare=False)


class SoundPlan:
    """Beds plus atoms, rendered over any sample range, with a small page cache."""

    def __init__(self, beds: Sequence[Bed], atoms: Sequence[Atom], page: int = 8192) -> None:
        self.beds = list(beds)
        self.atoms = sorted(atoms, key=lambda a: a.start)
        self._starts = [a.start for a in self.atoms]
        self._max_len = max((a.length for a in self.atoms), default=0)
        self._page = page
        # Rendered atoms and pages, oldest first; only the simulator's thread touches them.
        self._atom_cache: OrderedDict[int, F64] = OrderedDict()
        self._page_cache: OrderedDict[int, F32] = OrderedDict()

    def render(self, n0: int, n: int) -> F32:
        """Samples ``[n0, n0 + n)``, float32 mono, clipped to [-1, 1]."""
        if n0 < 0 or n < 0:
            raise ValueError(f"sample range must be non-negative, got n0={n0}, n={n}")
        out = np.empty(n, dtype=np.float32)
        p = self._page
        for k in range(n0 // p, -(-(n0 + n) // p)):
            page = self._page_at(k)
            lo, hi = max(n0, k * p), min(n0 + n, (k + 1) * p)
            out[lo - n0 : hi - n0] = page[lo - k * p : hi - k * p]
        return out

    def _page_at(self, k: int) -> F32:
        hit = self._page_cache.get(k)
        if hit is None:
            hit = self._mix(k * self._page, self._page)
            self._page_cache[k] = hit
            if len(self._page_cache) > 16:
                self._page_cache.popitem(last=False)
        return hit

    def _mix(self, n0: int, n: int) -> F32:
        acc = np.zeros(n)
        for bed in self.beds:
            acc += bed(n0, n)
        first = bisect.bisect_left(self._starts, n0 - self._max_len)
        last = bisect.bisect_left(self._starts, n0 + n)
        for i in range(first, last):
            atom = self.atoms[i]
            lo, hi = max(n0, atom.start), min(n0 + n, atom.start + atom.length)
            if hi > lo:
                acc[lo - n0 : hi - n0] += self._atom(i)[lo - atom.start : hi - atom.start]
        return np.clip(acc, -1.0, 1.0).astype(np.float32)

    def _atom(self, i: int) -> F64:
        hit = self._atom_cache.get(i)
        if hit is None:
            hit = self.atoms[i].make()
            self._atom_cache[i] = hit
            if len(self._atom_cache) > 256:
                self._atom_cache.popitem(last=False)
        return hit


# -- finite sounds ---------------------------------------------------------------------


def edges(n: int, sample_rate: int, attack_s: float, release_s: float) -> F64:
    """A gain of 1 with raised-cosine fade-in and fade-out."""
    g = np.ones(n)
    a = min(int(attack_s * sample_rate), n // 2)
    r = min(int(release_s * sample_rate), n // 2)
    if a > 0:
        g[:a] = 0.5 - 0.5 * np.cos(np.linspace(0, np.pi, a))
    if r > 0:
        g[n - r :] *= 0.5 + 0.5 * np.cos(np.linspace(0, np.pi, r))
    return g


def shaped_noise(rng: np.random.Generator, n: int, sample_rate: int, lo_hz: float,
                 hi_hz: float) -> F64:
    """White noise band-limited to ``[lo_hz, hi_hz]`` in the frequency domain, unit RMS."""
    spec = np.fft.rfft(rng.standard_normal(max(n, 2)))
    f = np.fft.rfftfreq(max(n, 2), 1 / sample_rate)
    spec *= (f >= lo_hz) & (f <= min(hi_hz, 0.48 * sample_rate))
    x = np.fft.irfft(spec, max(n, 2))[:n]
    return np.asarray(x / (np.sqrt(np.mean(x**2)) + 1e-12), dtype=np.float64)


def decaying_partials(n: int, sample_rate: int, freqs: Sequence[float] | F64,
                      amps: Sequence[float] | F64, decays_s: Sequence[float] | F64) -> F64:
    """Struck-object ringing: exponentially decaying sines (bells, glass, chimes)."""
    t = np.arange(n) / sample_rate
    out = np.zeros(n)
    for f, a, d in zip(freqs, amps, decays_s):
        if f < 0.45 * sample_rate:
            out += a * np.exp(-t / d) * np.sin(2 * np.pi * f * t)
    return out


def voiced(n: int, sample_rate: int, f0a: float, f0b: float,
           formants: Sequence[tuple[float, float]], tilt: float = 1.0,
           max_hz: float = 5000.0) -> F64:
    """A voiced sound by additive synthesis: harmonics of a gliding ``f0`` under formant peaks.

    ``formants`` are ``(centre Hz, bandwidth Hz)``. Additive synthesis has no filter state, so a
    syllable renders the same wherever a block boundary falls. Unit peak before envelopes.
    """
    if n <= 0:
        return np.zeros(0)
    t = np.arange(n) / sample_rate
    dur = n / sample_rate
    phase = 2 * np.pi * (f0a * t + 0.5 * (f0b - f0a) / dur * t * t)
    f0m = 0.5 * (f0a + f0b)
    top = min(max_hz, 0.45 * sample_rate) / max(f0a, f0b)
    out = np.zeros(n)
    for k in range(1, int(top) + 1):
        fk = k * f0m
        amp = sum(1.0 / (1.0 + ((fk - fc) / (0.5 * bw)) ** 2) / (1 + j)
                  for j, (fc, bw) in enumerate(formants))
        out += (amp + 0.02) / k**tilt * np.sin(k * phase)
    return out / (np.max(np.abs(out)) + 1e-12)
