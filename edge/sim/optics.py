"""The simulated camera: exposure, lighting colour, glare, shake, IR mode and sensor noise.

This module owns what happens between a drawn scene and the pixels a camera delivers. A renderer
draws its scene in clean colours; :meth:`Optics.apply` turns that into a frame under the
scenario's conditions. Per-frame randomness (noise pattern, shake) is a function of the seed and
the frame time only, so a frame renders the same alone or in sequence.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
from numpy.typing import NDArray

from edge.sim.scenario import Conditions
from edge.sim.sound import sub_rng
from edge.sim.timeline import wander, wander_terms

U8 = NDArray[np.uint8]
F32I = NDArray[np.float32]

_BANK = 6  # noise tiles; with random offsets a viewer never sees a pattern repeat
_PAD = 8


class Optics:
    """A camera under given conditions, for frames of one size.

    Parameters
    ----------
    conditions
        Lighting, IR, noise and shake of the scenario.
    width, height
        Frame size in pixels.
    seed
        Seed of the camera's own randomness (tint, noise, shake).
    glare_at
        Where low sun glares in, as fractions of width and height.
    shake_scale
        How much the mount shakes at ``conditions.shake == 1`` (a car: 1, a wall mount: ~0.2).
    """

    def __init__(self, conditions: Conditions, width: int, height: int, seed: int,
                 glare_at: tuple[float, float] = (0.2, 0.2), shake_scale: float = 1.0) -> None:
        rng = sub_rng(seed, "optics")
        self.width, self.height, self.seed = width, height, seed
        self.ir = conditions.ir
        light = conditions.lighting
        if self.ir:
            # An IR camera brings its own illuminator: dark scenes stay visible, with fall-off.
            self.gain = float(rng.uniform(0.7, 1.0) if light == "dark" else rng.uniform(0.9, 1.1))
            tint = np.ones(1)
            vig_depth = float(rng.uniform(0.3, 0.55))
        else:
            self.gain = float({"dark": rng.uniform(0.25, 0.45), "normal": rng.uniform(0.8, 1.1),
                               "glare": rng.uniform(0.95, 1.15)}[light])
            warm = (0.8, 0.95, 1.15) if light == "dark" else (1.0, 1.0, 1.0)
            tint = np.array(warm) * rng.uniform(0.92, 1.08, 3)
            vig_depth = float(rng.uniform(0.05, 0.3))
        channels = 1 if self.ir else 3
        yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
        r2 = ((xx - width / 2) / (width / 2)) ** 2 + ((yy - height / 2) / (height / 2)) ** 2
        vignette = 1.0 - vig_depth * np.clip(r2 / 2.0, 0.0, 1.0)
        self._light = (vignette[..., None] * tint.astype(np.float32)[None, None, :]).astype(np.float32)
        self._glare: F32I | None = None
        self._offset = 0.0
        if light == "glare":
            gx, gy = glare_at[0] * width, glare_at[1] * height
            radius = float(rng.uniform(0.25, 0.5)) * max(width, height)
            blob = np.exp(-((xx - gx) ** 2 + (yy - gy) ** 2) / (2 * radius**2))
            self._glare = (float(rng.uniform(60, 150)) * blob)[..., None].astype(np.float32)
            self._offset = float(rng.uniform(10, 35))  # veiling glare lifts the blacks
        self.sigma = 1.0 + 10.0 * conditions.noise
        if light == "dark" and not self.ir:
            self.sigma *= 1.4  # high analogue gain amplifies read noise
        self._noise = sub_rng(seed, "noise-bank").standard_normal(
            (_BANK, height + _PAD, width + _PAD, channels)).astype(np.float32)
        amp = conditions.shake * shake_scale
        self._shake = (wander_terms(rng, 3, amp * 0.025 * width, 1.5, 12.0),
                       wander_terms(rng, 3, amp * 0.025 * height, 1.5, 12.0),
                       wander_terms(rng, 2, amp * 1.5, 0.5, 6.0))
        self._amp = amp
        # NIR: skin and fabrics reflect red-end light strongly, so weight R most.
        self._ir_weights = np.array([[0.15, 0.3, 0.55]], dtype=np.float32)

    def apply(self, img: U8, t_s: float, gain: float = 1.0, glare: float = 1.0) -> U8:
        """The frame the camera delivers of scene ``img`` (BGR uint8) at ``t_s``.

        ``gain`` is the scene's light level now (1 = its normal); ``glare`` scales the glare.
        Always returns ``H x W x 3`` BGR, grey in IR mode.
        """
        h, w = self.height, self.width
        if self._amp > 0.01:
            dx, dy = wander(t_s, self._shake[0]), wander(t_s, self._shake[1])
            m = np.array(cv2.getRotationMatrix2D((w / 2, h / 2), wander(t_s, self._shake[2]), 1.0))
            m[:, 2] += np.array([dx, dy])
            img = np.asarray(cv2.warpAffine(img, m, (w, h), borderMode=cv2.BORDER_REFLECT),
                             dtype=np.uint8)
        if self.ir:
            f = cv2.transform(img, self._ir_weights).astype(np.float32)[..., None]
        else:
            f = img.astype(np.float32)
        f *= self._light * np.float32(self.gain * gain)
        if self._glare is not None:
            f += self._glare * np.float32(glare)
        key = int(math.floor(t_s * 1000.0 + 0.5)) & 0xFFFFFFFF
        hsh = (key * 2654435761 + self.seed * 97 + 12345) & 0xFFFFFFFF
        dy0, dx0 = (hsh >> 8) % _PAD, (hsh >> 16) % _PAD
        noise = self._noise[hsh % _BANK, dy0 : dy0 + h, dx0 : dx0 + w]
        f += noise * np.float32(self.sigma / math.sqrt(max(self.gain * gain, 0.25))) + np.float32(self._offset)
        np.clip(f, 0, 255, out=f)
        out = f.astype(np.uint8)
        if self.ir:
            return np.asarray(cv2.cvtColor(out, cv2.COLOR_GRAY2BGR), dtype=np.uint8)
        return out
