"""The simulator's sound library: speech babble, yawns, barks, glass, bells, music, thumps.

This module owns what each simulated sound is made of. Each maker takes its own generator and a
length and returns a float64 buffer with a peak near 1; the caller places it as an
:class:`~edge.sim.sound.Atom` at a level. Speech is planned as syllables first
(:func:`plan_speech`), so the driver's mouth can move with the same syllables that are heard.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

import numpy as np

from edge.sim.sound import F64, Atom, decaying_partials, edges, shaped_noise, sub_rng, voiced

Maker = Callable[[np.random.Generator, int, int], F64]
"""``maker(rng, n, sample_rate)``: a sound of ``n`` samples with a peak near 1."""

# Formants (Hz) of a, e, i, o, u, ae for an adult voice, and how open the mouth is for each.
VOWELS = ((730, 1090, 2440), (530, 1840, 2480), (270, 2290, 3010), (570, 840, 2410),
          (300, 870, 2240), (660, 1720, 2410))
OPENNESS = (1.0, 0.65, 0.35, 0.75, 0.4, 0.85)


def atom(sample_rate: int, start_s: float, seconds: float, level: float, seed: int,
         key: tuple[int | str, ...], maker: Maker) -> Atom:
    """Place ``maker``'s sound at ``start_s``; it renders from sub-seed ``(seed, *key)``."""
    n = max(1, int(round(seconds * sample_rate)))
    return Atom(int(round(start_s * sample_rate)), n,
                partial(_render, maker, seed, key, n, sample_rate, level))


def _render(maker: Maker, seed: int, key: tuple[int | str, ...], n: int, sr: int,
            level: float) -> F64:
    out = np.zeros(n)
    x = maker(sub_rng(seed, *key), n, sr)[:n]
    out[: len(x)] = level * x
    return out


# -- speech ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Voice:
    """A speaker: pitch, vocal-tract size, breathiness."""

    f0: float
    formant_scale: float
    breath: float


def random_voice(rng: np.random.Generator) -> Voice:
    """A man's, woman's or child's voice with some spread."""
    kind = int(rng.choice(3, p=[0.45, 0.45, 0.1]))
    f0 = float(rng.uniform(*((85, 150), (160, 250), (240, 320))[kind]))
    scale = float(rng.uniform(*((0.88, 1.0), (1.0, 1.12), (1.12, 1.25))[kind]))
    return Voice(f0, scale, float(rng.uniform(0.05, 0.5)))


@dataclass(frozen=True)
class Syllable:
    """One consonant-vowel syllable at absolute time ``onset`` (s)."""

    onset: float
    dur: float
    cons: int  # 0 none, 1 fricative, 2 plosive
    cons_s: float
    f0a: float
    f0b: float
    vowel: int
    stress: float


def plan_speech(rng: np.random.Generator, voice: Voice, t0: float, t1: float) -> list[Syllable]:
    """Phrases of syllables with short pauses filling ``[t0, t1)``, declining in pitch."""
    out: list[Syllable] = []
    t = t0 + float(rng.uniform(0.0, 0.1))
    while t1 - t >= 0.15:
        p0, p_end = t, min(t + float(rng.uniform(0.6, 2.5)), t1 - 0.02)
        base = voice.f0 * float(rng.uniform(0.95, 1.1))
        while p_end - t >= 0.1:
            dur = min(float(rng.uniform(0.12, 0.3)), p_end - t)
            cons = int(rng.choice(3, p=[0.35, 0.35, 0.3]))
            cons_s = (0.0, float(rng.uniform(0.04, 0.08)), 0.02)[cons]
            stressed = rng.random() < 0.3
            f0 = base * (1.1 - 0.25 * (t - p0) / (p_end - p0)) * float(rng.normal(1.0, 0.04))
            f0 *= 1.15 if stressed else 1.0
            out.append(Syllable(t, dur, cons, min(cons_s, 0.4 * dur), f0,
                                f0 * float(rng.uniform(0.88, 1.05)), int(rng.integers(6)),
                                1.0 if stressed else float(rng.uniform(0.55, 0.85))))
            t += dur + float(rng.uniform(0.0, 0.04))
        t = p_end + float(rng.uniform(0.15, 0.6))
    return out


def _syllable(syl: Syllable, voice: Voice, rng: np.random.Generator, n: int, sr: int) -> F64:
    out = np.zeros(n)
    c = int(syl.cons_s * sr)
    m = n - c
    formants = [(f * voice.formant_scale, bw * voice.formant_scale)
                for f, bw in zip(VOWELS[syl.vowel], (90.0, 110.0, 170.0))]
    env = edges(m, sr, 0.015, 0.05)
    v = voiced(m, sr, syl.f0a, syl.f0b, formants, tilt=1.0 + 0.5 * voice.breath)
    out[c:] = env * (v + 0.25 * voice.breath * shaped_noise(rng, m, sr, 400, 4000))
    if syl.cons == 1 and c > 0:
        out[:c] += 0.25 * shaped_noise(rng, c, sr, 2500, 7500) * edges(c, sr, 0.01, 0.01)
    elif syl.cons == 2 and c > 0:
        burst = np.exp(-np.arange(c) / (0.006 * sr))
        out[:c] += 0.5 * shaped_noise(rng, c, sr, 800, 5000) * burst
    return out * syl.stress


def speech_atoms(syllables: Sequence[Syllable], voice: Voice, sample_rate: int, level: float,
                 seed: int, key: tuple[int | str, ...]) -> list[Atom]:
    """One atom per syllable, each from its own sub-seed."""
    return [atom(sample_rate, s.onset, s.dur, level, seed, (*key, i),
                 partial(_as_maker, s, voice)) for i, s in enumerate(syllables)]


def _as_maker(syl: Syllable, voice: Voice, rng: np.random.Generator, n: int, sr: int) -> F64:
    return _syllable(syl, voice, rng, n, sr)


def mouth_open(syllables: Sequence[Syllable], onsets: Sequence[float], t: float) -> float:
    """How open the mouth is (0..1) at ``t`` while saying ``syllables`` (sorted by onset)."""
    i = bisect.bisect_right(onsets, t) - 1
    if i < 0:
        return 0.0
    s = syllables[i]
    u = (t - s.onset - s.cons_s) / max(s.dur - s.cons_s, 1e-3)
    if not 0.0 <= u < 1.0:
        return 0.0
    return OPENNESS[s.vowel] * s.stress * math.sin(math.pi * u) ** 0.6


# -- other sounds ------------------------------------------------------------------------


def _bell(x: F64, lo: float, hi: float) -> F64:
    """A raised-cosine bump over ``lo <= x < hi`` (x in 0..1)."""
    u = np.clip((x - lo) / (hi - lo), 0.0, 1.0)
    return np.asarray(0.5 - 0.5 * np.cos(2 * np.pi * u), dtype=np.float64)


def _normalise(x: F64) -> F64:
    return x / (np.max(np.abs(x)) + 1e-12)


def yawn(voice: Voice, rng: np.random.Generator, n: int, sr: int) -> F64:
    """An inhaled breath, then a breathy falling 'aaah' turning to 'oh'."""
    u = np.arange(n) / max(n, 1)
    breath = shaped_noise(rng, n, sr, 300, 2500) * (0.5 * _bell(u, 0.0, 0.45) + 0.3 * _bell(u, 0.3, 1.0))
    s = voice.formant_scale
    aa = voiced(n, sr, 1.25 * voice.f0, 0.7 * voice.f0, [(730 * s, 150), (1090 * s, 180), (2440 * s, 250)])
    oh = voiced(n, sr, 1.25 * voice.f0, 0.7 * voice.f0, [(570 * s, 150), (840 * s, 180), (2410 * s, 250)])
    vox = (aa * (1 - u) + oh * u) * _bell(u, 0.3, 0.97)
    return _normalise(breath + vox)


def ring(rng: np.random.Generator, n: int, sr: int) -> F64:
    """A phone ringtone: a short repeated melody of square-ish notes."""
    notes = rng.choice([784.0, 880.0, 988.0, 1175.0, 1319.0, 1568.0], size=int(rng.integers(3, 7)))
    note_s, gap_s = float(rng.uniform(0.08, 0.15)), float(rng.uniform(0.3, 0.8))
    out = np.zeros(n)
    m = int(note_s * sr)
    t = np.arange(m) / sr
    env = edges(m, sr, 0.005, 0.02)
    pos = 0
    while pos < n:
        for f in notes:
            seg = sum(np.sin(2 * np.pi * k * f * t) / k for k in (1, 3, 5) if k * f < 0.45 * sr)
            take = min(m, n - pos)
            if take <= 0:
                break
            out[pos : pos + take] = (env * seg)[:take]
            pos += m
        pos += int(gap_s * sr)
    return _normalise(out)


def bark(rng: np.random.Generator, n: int, sr: int) -> F64:
    """One bark: a harsh, fast-decaying harmonic yelp with noise."""
    peak = float(rng.uniform(350, 750))
    s = float(rng.uniform(0.8, 1.25))
    v = voiced(n, sr, 0.95 * peak, 0.6 * peak, [(1000 * s, 400), (2200 * s, 600), (3500 * s, 800)], 0.7)
    t = np.arange(n) / sr
    rough = 1 + 0.5 * np.sin(2 * np.pi * float(rng.uniform(25, 45)) * t)
    env = edges(n, sr, 0.008, 0.03) * np.exp(-t / float(rng.uniform(0.06, 0.12)))
    return _normalise(env * rough * (v + 0.5 * shaped_noise(rng, n, sr, 400, 5000)))


def glass(rng: np.random.Generator, n: int, sr: int) -> F64:
    """Breaking glass: a broadband impact, ringing high partials, then falling shards."""
    t = np.arange(n) / sr
    # The impact is broadband, low-mids included: a hiss alone (a sibilant) is not glass.
    out = 1.5 * shaped_noise(rng, n, sr, 300, 8000) * np.exp(-t / 0.03)
    k = 14
    out += decaying_partials(n, sr, rng.uniform(2000, 7500, k), rng.uniform(0.1, 0.35, k),
                             rng.uniform(0.05, 0.5, k))
    for _ in range(int(rng.poisson(6 * n / sr)) + 1):
        a = int(rng.uniform(0.05, 0.95) * n)
        m = n - a
        out[a:] += decaying_partials(m, sr, rng.uniform(2500, 7000, 3), rng.uniform(0.05, 0.15, 3),
                                     rng.uniform(0.02, 0.1, 3))
    return _normalise(out)


def doorbell(rng: np.random.Generator, n: int, sr: int) -> F64:
    """Ding-dong: two struck bells a falling third apart."""
    f1 = float(rng.uniform(600, 720))
    out = np.zeros(n)
    for f, start in ((f1, 0.0), (f1 * 0.8, float(rng.uniform(0.45, 0.7)))):
        a = int(start * sr)
        if a < n:
            out[a:] += decaying_partials(n - a, sr, (f, 2.76 * f, 5.4 * f), (1.0, 0.4, 0.2),
                                         (0.8, 0.3, 0.15))
    return _normalise(out)


def thump(rng: np.random.Generator, n: int, sr: int) -> F64:
    """A footstep, door or road-bump thud: a low decaying sine and a dull click."""
    t = np.arange(n) / sr
    f = float(rng.uniform(50, 130))
    body = np.sin(2 * np.pi * f * t) * np.exp(-t / float(rng.uniform(0.02, 0.06)))
    click = 0.3 * shaped_noise(rng, n, sr, 100, 1500) * np.exp(-t / 0.008)
    return _normalise(body + click)


def ticks(rng: np.random.Generator, n: int, sr: int) -> F64:
    """A turn signal: tick-tock relay clicks at about 1.5 Hz."""
    period = float(rng.uniform(0.33, 0.42))
    m = int(0.03 * sr)
    t = np.arange(m) / sr
    click = np.exp(-t / 0.004) * (np.sin(2 * np.pi * 2200 * t) + 0.5 * shaped_noise(rng, m, sr, 1000, 6000))
    out = np.zeros(n)
    for j, a in enumerate(range(0, n - m, int(period * sr))):
        out[a : a + m] += click * (1.0 if j % 2 == 0 else 0.6)
    return _normalise(out)


def beeps(rng: np.random.Generator, n: int, sr: int) -> F64:
    """An appliance (microwave, oven) beeping a few times: a near miss for alarm patterns."""
    f = float(rng.uniform(1800, 2600))
    on, off = float(rng.uniform(0.1, 0.3)), float(rng.uniform(0.1, 0.4))
    t = np.arange(n) / sr
    gate = (np.mod(t, on + off) < on).astype(np.float64)
    return gate * np.sin(2 * np.pi * f * t) * edges(n, sr, 0.005, 0.005)


def music_atoms(rng: np.random.Generator, t0: float, t1: float, sample_rate: int, level: float,
                seed: int, key: tuple[int | str, ...]) -> list[Atom]:
    """Radio/TV music over ``[t0, t1)``: one atom per chord, with bass and hi-hat ticks."""
    beat = 60.0 / float(rng.uniform(80, 130))
    root = int(rng.integers(48, 60))
    steps = [int(x) for x in rng.choice([0, 2, 5, 7, 9], size=4)]
    out: list[Atom] = []
    t, i = t0, 0
    while t < t1 - 0.1:
        dur = min(beat * float(rng.choice([2, 4])), t1 - t)
        midi = root + steps[i % len(steps)]
        out.append(atom(sample_rate, t, dur, level, seed, (*key, i),
                        partial(_chord, midi, beat)))
        t, i = t + dur, i + 1
    return out


def drums(rng: np.random.Generator, n: int, sr: int) -> F64:
    """A song's drum kit, bars of 4 beats at 80-160 bpm: hi-hats (5-8 kHz noise and metallic
    partials) on eighths, a kick on 1 and 3, a snare (noise over 200 Hz and a 150-250 Hz body)
    on 2 and 4, a crash cymbal (noise and 20-40 partials over 2.5 kHz, ringing 0.6-2 s) on some
    downbeats, often under chords. A glass model took crashes and hats for glass."""
    beat = 60.0 / float(rng.uniform(80, 160))
    out = np.zeros(n)
    hats, snare = rng.random() < 0.85, rng.random() < 0.85
    crash_p = float(rng.uniform(0.3, 0.9))
    hat_decay = float(rng.uniform(0.02, 0.08))

    def put(t: float, x: F64) -> None:
        a = int(t * sr)
        take = min(len(x), n - a)
        if take > 0:
            out[a : a + take] += x[:take]

    def hit(seconds: float) -> tuple[int, F64]:
        m = min(int(seconds * sr), n)
        return m, np.arange(m) / sr

    t, i = float(rng.uniform(0.0, 0.3)), 0
    while t < n / sr:
        if hats:
            m, u = hit(0.3)
            x = shaped_noise(rng, m, sr, 5000, 8000) + decaying_partials(
                m, sr, rng.uniform(5000, 7500, 4), rng.uniform(0.2, 0.5, 4), np.full(4, 0.05))
            put(t, 0.35 * x * np.exp(-u / hat_decay))
        if i % 4 == 0:
            m, u = hit(0.4)
            f = 50 + 100 * np.exp(-u / 0.03)
            put(t, np.sin(2 * np.pi * np.cumsum(f) / sr) * np.exp(-u / 0.15))
        if snare and i % 4 == 2:
            m, u = hit(0.5)
            body = np.sin(2 * np.pi * rng.uniform(150, 250) * u)
            x = 0.8 * shaped_noise(rng, m, sr, 200, 8000) + body
            put(t, 0.8 * x * np.exp(-u / float(rng.uniform(0.05, 0.15))))
        if i % 8 == 0 and rng.random() < crash_p:
            m, u = hit(3.0)
            k = int(rng.integers(20, 41))
            decay = float(rng.uniform(0.6, 2.0))
            x = shaped_noise(rng, m, sr, float(rng.uniform(1000, 3000)), 8000)
            x *= np.exp(-u / (decay / 2))
            x += decaying_partials(m, sr, rng.uniform(2500, 7500, k), rng.uniform(0.05, 0.2, k),
                                   rng.uniform(0.3, 1.0, k) * decay)
            put(t, 0.8 * x * edges(m, sr, 0.001, 0.05))
        t, i = t + beat / 2, i + 1
    if rng.random() < 0.7:  # the song's chords
        root = int(rng.integers(48, 60))
        m = int(4 * beat * sr)
        for a in range(0, n, m):
            midi = root + int(rng.choice([0, 2, 5, 7, 9]))
            take = min(m, n - a)
            out[a : a + take] += 0.5 * _chord(midi, beat, rng, m, sr)[:take]
    return _normalise(out)


def _chord(midi: int, beat: float, rng: np.random.Generator, n: int, sr: int) -> F64:
    third = 4 if rng.random() < 0.6 else 3
    freqs = [440.0 * 2 ** ((midi + d - 69) / 12) for d in (0, third, 7, -12)]
    out = np.zeros(n)
    for f in freqs:
        out += decaying_partials(n, sr, [k * f for k in range(1, 6)], [0.5 / k for k in range(1, 6)],
                                 [0.6 / k for k in range(1, 6)])
    m = int(0.02 * sr)
    for a in range(0, n - m, int(beat * sr / 2)):
        out[a : a + m] += 0.3 * shaped_noise(rng, m, sr, 6000, 8000) * np.exp(-np.arange(m) / (0.004 * sr))
    return _normalise(out * edges(n, sr, 0.005, 0.05))
