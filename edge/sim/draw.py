"""Anti-aliased, sub-pixel drawing primitives over OpenCV, in float coordinates.

This module owns how shapes reach pixels. At 96 px a face's eye is a few pixels wide, so shapes
are placed with 1/16-pixel precision (OpenCV's ``shift``) and anti-aliased; otherwise the eyelid
would jump a whole pixel at a time and small cues would flicker.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
from numpy.typing import NDArray

U8 = NDArray[np.uint8]
Colour = tuple[float, float, float]

_SHIFT = 4
_ONE = 1 << _SHIFT


def _p(x: float, y: float) -> tuple[int, int]:
    return int(round(x * _ONE)), int(round(y * _ONE))


def ellipse(img: U8, cx: float, cy: float, ax: float, ay: float, colour: Colour,
            angle: float = 0.0, thickness: int = -1, a0: float = 0.0, a1: float = 360.0) -> None:
    """A filled (``thickness=-1``) or outlined ellipse or arc; angles in degrees."""
    if ax <= 0.05 or ay <= 0.05:
        return
    cv2.ellipse(img, _p(cx, cy), _p(ax, ay), angle, a0, a1, colour, thickness, cv2.LINE_AA,
                _SHIFT)


def line(img: U8, x0: float, y0: float, x1: float, y1: float, colour: Colour,
         thickness: float = 1.0) -> None:
    """A line of (rounded) ``thickness`` pixels with round caps."""
    cv2.line(img, _p(x0, y0), _p(x1, y1), colour, max(1, int(round(thickness))), cv2.LINE_AA,
             _SHIFT)


def polygon(img: U8, points: Sequence[tuple[float, float]], colour: Colour) -> None:
    """A filled polygon."""
    pts = np.array([_p(x, y) for x, y in points], dtype=np.int32)
    cv2.fillPoly(img, [pts], colour, cv2.LINE_AA, _SHIFT)


def box(img: U8, cx: float, cy: float, w: float, h: float, angle: float, colour: Colour) -> None:
    """A filled rectangle of size ``w x h`` centred at ``(cx, cy)``, rotated ``angle`` degrees."""
    pts = cv2.boxPoints(((cx, cy), (w, h), angle))
    polygon(img, [(float(x), float(y)) for x, y in pts], colour)


def shade(colour: Colour, k: float) -> Colour:
    """``colour`` scaled by ``k`` (darker below 1), clipped to 0..255."""
    return (min(255.0, colour[0] * k), min(255.0, colour[1] * k), min(255.0, colour[2] * k))


def mix(a: Colour, b: Colour, k: float) -> Colour:
    """``a`` moved a fraction ``k`` towards ``b``."""
    return (a[0] + (b[0] - a[0]) * k, a[1] + (b[1] - a[1]) * k, a[2] + (b[2] - a[2]) * k)


def pick(rng: np.random.Generator, palette: Sequence[Colour], jitter: float = 0.1) -> Colour:
    """A colour from ``palette`` with brightness and hue jitter."""
    c = palette[int(rng.integers(len(palette)))]
    j = rng.uniform(1 - jitter, 1 + jitter, 3) * float(rng.uniform(1 - jitter, 1 + jitter))
    return (min(255.0, c[0] * j[0]), min(255.0, c[1] * j[1]), min(255.0, c[2] * j[2]))
