"""Smooth functions of scenario time shared by the renderers.

This module owns the time-shaping rules: how a labelled state fades in and out around its
interval boundaries, how idle motion wanders, and how unlabelled distractor intervals are drawn.
All of it is stateless in ``t``, so any frame can be rendered alone.

Boundary convention: a state ramps over ``width`` seconds *centred* on its label boundary, so the
state is more than half present exactly while its label is true.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

Wander = tuple[tuple[float, float, float], ...]
"""Terms ``(amplitude, Hz, phase)`` of a sum of sines."""


def smoothstep(x: float) -> float:
    """0 below 0, 1 above 1, a smooth S in between."""
    x = min(1.0, max(0.0, x))
    return x * x * (3 - 2 * x)


def gate(t: float, start: float, end: float, width: float = 0.1) -> float:
    """How present a state of interval ``[start, end)`` is at ``t`` (0..1), ramped at edges."""
    if t < start - width or t > end + width:
        return 0.0
    w = max(width, 1e-6)
    return min(smoothstep((t - start) / w + 0.5), smoothstep((end - t) / w + 0.5))


def gate_any(t: float, spans: Sequence[tuple[float, float]], width: float = 0.1) -> float:
    """:func:`gate` of the nearest of several intervals."""
    return max((gate(t, a, b, width) for a, b in spans), default=0.0)


def wander_terms(rng: np.random.Generator, n: int, amplitude: float, lo_hz: float,
                 hi_hz: float) -> Wander:
    """``n`` random slow sines whose amplitudes sum to ``amplitude``."""
    w = rng.uniform(0.5, 1.0, n)
    w = amplitude * w / w.sum()
    return tuple((float(a), float(rng.uniform(lo_hz, hi_hz)), float(rng.uniform(0, 2 * math.pi)))
                 for a in w)


def wander(t: float, terms: Wander) -> float:
    """Value of a sum of sines at ``t``."""
    return sum(a * math.sin(2 * math.pi * hz * t + p) for a, hz, p in terms)


def random_intervals(rng: np.random.Generator, seconds: float, per_minute: float,
                     dur_lo: float, dur_hi: float) -> list[tuple[float, float]]:
    """Non-overlapping random intervals in ``[0, seconds)``, sorted (for distractors)."""
    out: list[tuple[float, float]] = []
    for _ in range(int(rng.poisson(per_minute * seconds / 60.0))):
        dur = float(rng.uniform(dur_lo, dur_hi))
        if dur >= seconds:
            continue
        a = float(rng.uniform(0, seconds - dur))
        if all(b0 >= a + dur or b1 <= a for b0, b1 in out):
            out.append((a, a + dur))
    return sorted(out)
