"""People and pets for the home scene: looks, walking paths and articulated drawing.

This module owns how a figure moves and how it is drawn. A :class:`Walk` is a piecewise-linear
path on the floor with pauses, planned once per appearance, so the position, the gait phase and
the footstep instants at any time are closed-form. Figures are scaled by their depth on the
floor (further back is smaller), with limbs that swing with the gait phase.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from edge.sim.draw import U8, Colour, ellipse, line, pick, polygon, shade
from edge.sim.face import CLOTHES, HAIR, SKIN

STRIDE = 0.07  # floor distance (in widths) of one step


@dataclass(frozen=True)
class Walk:
    """A path ``(t, x, y)`` in relative image coordinates (feet), with cumulative distance."""

    times: tuple[float, ...]
    xs: tuple[float, ...]
    ys: tuple[float, ...]
    dist: tuple[float, ...]

    def at(self, t: float) -> tuple[float, float, float, float]:
        """Feet ``x, y``, gait phase (rad) and heading (-1 left, +1 right) at ``t``."""
        x = float(np.interp(t, self.times, self.xs))
        y = float(np.interp(t, self.times, self.ys))
        d = float(np.interp(t, self.times, self.dist))
        i = int(np.searchsorted(self.times, t, side="right")) - 1
        i = min(max(i, 0), len(self.times) - 2)
        dx = self.xs[i + 1] - self.xs[i]
        return x, y, math.pi * d / STRIDE, 1.0 if dx >= 0 else -1.0

    def moving(self, t: float) -> bool:
        """Whether the figure is walking (not pausing) at ``t``."""
        i = int(np.searchsorted(self.times, t, side="right")) - 1
        return 0 <= i < len(self.times) - 1 and self.dist[i + 1] > self.dist[i]

    def steps(self) -> list[float]:
        """Instants of footfalls (every half gait cycle while walking)."""
        out: list[float] = []
        for i in range(len(self.times) - 1):
            d0, d1, t0, t1 = self.dist[i], self.dist[i + 1], self.times[i], self.times[i + 1]
            k = math.floor(d0 / STRIDE) + 1
            while d1 > d0 and k * STRIDE < d1:
                out.append(t0 + (k * STRIDE - d0) / (d1 - d0) * (t1 - t0))
                k += 1
        return out


def plan_walk(rng: np.random.Generator, start: float, end: float, floor_y: float,
              entry_x: float, exit_x: float, speed: float) -> Walk:
    """Enter at ``entry_x`` at ``start``, wander and pause on the floor, leave at ``exit_x``.

    ``x`` beyond 0..1 is off screen; the path is timed to fill ``[start, end)`` exactly.
    """
    pts = [(entry_x, float(rng.uniform(floor_y + 0.05, 0.95)))]
    for _ in range(int(rng.integers(1, 4))):
        pts.append((float(rng.uniform(0.15, 0.85)), float(rng.uniform(floor_y + 0.08, 0.95))))
    pts.append((exit_x, float(rng.uniform(floor_y + 0.05, 0.95))))
    seg = [math.hypot(b[0] - a[0], b[1] - a[1]) for a, b in zip(pts, pts[1:])]
    dur = end - start
    walk_s = sum(seg) / speed
    if walk_s > dur:
        speed, walk_s = sum(seg) / dur, dur
    pauses = rng.dirichlet(np.ones(len(pts) - 2)) * (dur - walk_s)
    keys = [(start, pts[0][0], pts[0][1], 0.0)]
    t, d = start, 0.0
    for k, (p, length) in enumerate(zip(pts[1:], seg)):
        t, d = t + length / speed, d + length
        keys.append((t, p[0], p[1], d))
        if k < len(pauses):
            t += float(pauses[k])
            keys.append((t, p[0], p[1], d))
    keys[-1] = (end, *keys[-1][1:])
    times, xs, ys, dist = zip(*keys)
    return Walk(times, xs, ys, dist)


@dataclass(frozen=True)
class PersonLook:
    """One person's colours and build."""

    skin: Colour
    hair: Colour
    shirt: Colour
    pants: Colour
    height: float  # fraction of the frame height at the front of the floor
    build: float


def random_person(rng: np.random.Generator) -> PersonLook:
    """A random person."""
    return PersonLook(pick(rng, SKIN, 0.08), pick(rng, HAIR), pick(rng, CLOTHES),
                      pick(rng, CLOTHES[:3] + ((90, 70, 50),)), float(rng.uniform(0.55, 0.75)),
                      float(rng.uniform(0.85, 1.2)))


def depth_scale(y: float, floor_y: float) -> float:
    """Size factor of a figure whose feet are at relative ``y`` (1 at the frame bottom)."""
    return 0.45 + 0.55 * (y - floor_y) / max(1e-3, 1 - floor_y)


def draw_person(img: U8, look: PersonLook, x: float, y: float, phase: float, swing: float,
                floor_y: float) -> None:
    """A walking (``swing`` 1) or standing (0) person with feet at relative ``(x, y)``."""
    H, W = img.shape[:2]
    h = look.height * H * depth_scale(y, floor_y)
    fx, fy = x * W, y * H
    hip, sh = fy - 0.48 * h, fy - 0.8 * h
    tw = 0.11 * h * look.build
    a = 0.4 * swing * math.sin(phase)
    for sgn, col in ((1, shade(look.pants, 0.8)), (-1, look.pants)):  # back leg, then front leg
        kx, ky = fx + sgn * 0.24 * h * math.sin(a) * 0.6, hip + 0.24 * h
        line(img, fx + sgn * 0.3 * tw, hip, kx, ky, col, 0.07 * h)
        line(img, kx, ky, kx + sgn * 0.24 * h * math.sin(1.3 * a), fy - 0.01 * h, col, 0.065 * h)
    arm = 0.05 * h
    line(img, fx + tw * 0.9, sh + 0.02 * h, fx + tw + 0.3 * h * math.sin(-a * 0.8), sh + 0.3 * h,
         shade(look.shirt, 0.8), arm)
    polygon(img, [(fx - tw, sh), (fx + tw, sh), (fx + 0.85 * tw, hip + 0.03 * h),
                  (fx - 0.85 * tw, hip + 0.03 * h)], look.shirt)
    ellipse(img, fx, sh - 0.07 * h, 0.045 * h, 0.06 * h, shade(look.skin, 0.85))  # neck
    ellipse(img, fx, sh - 0.12 * h, 0.065 * h, 0.075 * h, look.skin)
    ellipse(img, fx, sh - 0.14 * h, 0.068 * h, 0.07 * h, look.hair, a0=180, a1=360)
    line(img, fx - tw * 0.9, sh + 0.02 * h, fx - tw + 0.3 * h * math.sin(a * 0.8), sh + 0.3 * h,
         look.shirt, arm)


@dataclass(frozen=True)
class PetLook:
    """A dog or a cat."""

    colour: Colour
    size: float  # body length as a fraction of the frame height at the front
    cat: bool


def random_pet(rng: np.random.Generator) -> PetLook:
    """A random pet."""
    return PetLook(pick(rng, ((30, 30, 30), (60, 90, 140), (200, 200, 210), (40, 70, 110))),
                   float(rng.uniform(0.12, 0.22)), bool(rng.random() < 0.4))


def draw_pet(img: U8, look: PetLook, x: float, y: float, phase: float, heading: float,
             floor_y: float) -> None:
    """A pet walking on the floor with feet at relative ``(x, y)``."""
    H, W = img.shape[:2]
    L = look.size * H * depth_scale(y, floor_y)
    fx, fy, s = x * W, y * H, heading
    body_y = fy - 0.32 * L
    c, dark = look.colour, shade(look.colour, 0.75)
    for k, off in enumerate((-0.32, -0.22, 0.22, 0.32)):
        sw = 0.12 * L * math.sin(phase + k * math.pi / 2)
        line(img, fx + off * L, body_y, fx + off * L + sw, fy, dark if k % 2 else c, 0.06 * L)
    line(img, fx - s * 0.45 * L, body_y, fx - s * 0.65 * L, body_y - (0.3 if look.cat else 0.15) * L, c, 0.05 * L)
    ellipse(img, fx, body_y, 0.45 * L, 0.16 * L, c)
    hx, hy = fx + s * 0.5 * L, body_y - 0.18 * L
    ellipse(img, hx, hy, 0.14 * L, 0.12 * L, c)
    if look.cat:
        for e in (-0.07, 0.07):
            polygon(img, [(hx + e * L - 0.04 * L, hy - 0.06 * L), (hx + e * L + 0.04 * L, hy - 0.06 * L),
                          (hx + e * L, hy - 0.18 * L)], c)
    else:
        ellipse(img, hx + s * 0.12 * L, hy + 0.03 * L, 0.08 * L, 0.05 * L, dark)  # muzzle
        ellipse(img, hx - s * 0.05 * L, hy, 0.04 * L, 0.09 * L, dark)  # ear
