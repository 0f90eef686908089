"""A driver's face as seen by a dashboard camera: looks, pose, eyelids, mouth, phone in hand.

This module owns how a face is drawn from a :class:`FaceLook` (who) and a :class:`FaceState`
(what they do now). Facial features sit on an ellipsoid and are rotated by the head's yaw and
pitch, then projected orthographically, so a turned head shows its features shifted, squeezed
and partly hidden, and more hair. It draws with :mod:`edge.sim.draw` only; lighting and noise
are the camera's business (:mod:`edge.sim.optics`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from edge.sim.draw import U8, Colour, box, ellipse, line, mix, pick, shade
from edge.sim.timeline import smoothstep

SKIN: tuple[Colour, ...] = ((45, 60, 95), (60, 90, 140), (80, 120, 175), (110, 150, 205),
                            (140, 180, 230), (160, 195, 240))
HAIR: tuple[Colour, ...] = ((20, 20, 25), (30, 50, 80), (90, 160, 200), (150, 150, 150),
                            (30, 60, 140))
IRIS: tuple[Colour, ...] = ((30, 50, 80), (140, 100, 60), (80, 110, 60), (25, 30, 40))
CLOTHES: tuple[Colour, ...] = ((40, 40, 40), (160, 60, 30), (40, 40, 150), (60, 130, 60),
                               (200, 200, 200), (90, 60, 40), (30, 140, 200), (120, 40, 120))


@dataclass(frozen=True)
class FaceLook:
    """Who is driving: colours, proportions, hair and eyewear."""

    skin: Colour
    hair: Colour
    hair_style: int  # 0 short, 1 long, 2 bald, 3 cap
    cap: Colour
    iris: Colour
    eye_sep: float  # half the angle between the eyes (rad)
    eye_size: float
    eye_open: float
    mouth_w: float
    lips: Colour
    beard: bool
    eyewear: str  # none, glasses, sunglasses
    frame: Colour
    shirt: Colour


def random_look(rng: np.random.Generator, eyewear: str | None) -> FaceLook:
    """A random face; ``eyewear`` ``None`` draws one too."""
    skin = pick(rng, SKIN, 0.08)
    wear = eyewear or str(rng.choice(["none", "glasses", "sunglasses"], p=[0.55, 0.3, 0.15]))
    return FaceLook(
        skin=skin, hair=pick(rng, HAIR), hair_style=int(rng.choice(4, p=[0.45, 0.25, 0.15, 0.15])),
        cap=pick(rng, CLOTHES), iris=pick(rng, IRIS), eye_sep=float(rng.uniform(0.36, 0.46)),
        eye_size=float(rng.uniform(0.85, 1.15)), eye_open=float(rng.uniform(0.8, 1.05)),
        mouth_w=float(rng.uniform(0.85, 1.15)), lips=mix(shade(skin, 0.8), (90, 80, 170), 0.3),
        beard=bool(rng.random() < 0.2), eyewear=wear, frame=pick(rng, HAIR[:2] + CLOTHES[:3]),
        shirt=pick(rng, CLOTHES),
    )


@dataclass(frozen=True)
class FaceState:
    """What the face does at one instant; angles in radians, amounts 0..1."""

    yaw: float = 0.0  # > 0 turns the face towards image right
    pitch: float = 0.0  # > 0 looks down
    eye_open: float = 1.0
    mouth: float = 0.0  # talking articulation
    yawn: float = 0.0
    phone: float = 0.0  # 0 out of view, 1 in place
    phone_side: int = 1  # -1 image left, +1 image right
    phone_at_ear: bool = True


@dataclass(frozen=True)
class Head:
    """Where the head is in the image: centre and half-width/half-height in pixels."""

    cx: float
    cy: float
    fw: float
    fh: float

    def project(self, theta: float, phi: float, st: FaceState) -> tuple[float, float, float]:
        """Image point and facing (z, > 0 towards the camera) of surface point (theta, phi)."""
        a, e = theta + st.yaw, phi - st.pitch
        return (self.cx + self.fw * math.sin(a) * math.cos(e), self.cy - self.fh * math.sin(e),
                math.cos(a) * math.cos(e))


def draw_face(img: U8, look: FaceLook, st: FaceState, hd: Head) -> None:
    """Draw the head, face and (if raised) the phone onto ``img`` in place."""
    fw, fh = hd.fw, hd.fh
    skin = look.skin
    hair = skin if look.hair_style == 2 else (look.cap if look.hair_style == 3 else look.hair)
    if look.hair_style == 1:
        ellipse(img, hd.cx, hd.cy + 0.35 * fh, 1.18 * fw, 1.2 * fh, look.hair)
    ears = [(s, *hd.project(s * 1.45, 0.0, st)) for s in (-1, 1)]
    for _, x, y, fac in ears:
        if fac <= 0.05:
            ellipse(img, x, y, 0.14 * fw, 0.26 * fh, shade(skin, 0.9))
    ellipse(img, hd.cx, hd.cy, fw, fh, hair)
    if look.hair_style in (0, 3):  # short hair and caps stop at the ears; long hair frames the face
        ellipse(img, hd.cx, hd.cy + 0.1 * fh, fw, 0.9 * fh, skin, a0=0, a1=180)
    sy, sp = math.sin(st.yaw), math.sin(st.pitch)
    fx, fy = hd.cx + 0.42 * fw * sy, hd.cy + 0.12 * fh + 0.3 * fh * sp
    ellipse(img, fx, fy, fw * (0.86 - 0.2 * abs(sy)), 0.9 * fh, skin)
    if look.hair_style == 3:  # cap visor over the forehead
        ellipse(img, fx, fy - 0.62 * fh, 0.9 * fw, 0.16 * fh, shade(look.cap, 0.7))
    for _, x, y, fac in ears:
        if fac > 0.05:
            ellipse(img, x, y, 0.14 * fw * (1 - fac), 0.26 * fh, shade(skin, 0.9))
    if look.beard:
        ellipse(img, fx, fy + 0.4 * fh, 0.7 * fw * (1 - 0.3 * abs(sy)), 0.5 * fh,
                mix(skin, look.hair, 0.6), a0=0, a1=180)
    _eyes(img, look, st, hd)
    bx, by, _ = hd.project(0.0, 0.08, st)
    tx, ty, fac = hd.project(0.0, -0.14, st)
    if fac > 0.0:
        tx += 0.2 * fw * sy
        line(img, bx, by, tx, ty, shade(skin, 0.78), max(1.0, 0.06 * fw))
        ellipse(img, tx, ty, 0.12 * fw, 0.04 * fh, shade(skin, 0.65))
    _mouth(img, look, st, hd)
    if st.phone > 0:
        _phone(img, look, st, hd)


def _eyes(img: U8, look: FaceLook, st: FaceState, hd: Head) -> None:
    fw, fh = hd.fw, hd.fh
    lash: Colour = (30, 30, 35)
    lenses: list[tuple[float, float, float, float]] = []
    for s in (-1, 1):
        x, y, fac = hd.project(s * look.eye_sep, 0.12, st)
        if fac <= 0.2:
            continue
        bx0, by0, _ = hd.project(s * (look.eye_sep + 0.16), 0.3 + 0.06 * st.yawn, st)
        bx1, by1, _ = hd.project(s * (look.eye_sep - 0.14), 0.3 + 0.06 * st.yawn, st)
        line(img, bx0, by0, bx1, by1, shade(look.hair, 0.8), max(1.0, 0.08 * fw))
        ex = 0.2 * fw * look.eye_size * fac
        ey = 0.1 * fh * look.eye_size * math.cos(0.12 - st.pitch)
        o = max(0.0, min(1.0, st.eye_open))
        ellipse(img, x, y, ex * 1.05, ey * 1.1, shade(look.skin, 0.85))  # lid and socket shade
        if o > 0.12:
            ellipse(img, x, y, ex, ey * o, (235, 235, 235))
            gx = x + 0.35 * ex * math.sin(st.yaw)
            r = 0.55 * ey
            ellipse(img, gx, y, r * fac, min(r, ey * o), look.iris)
            ellipse(img, gx, y, 0.45 * r * fac, min(0.45 * r, ey * o), (15, 15, 20))
            ellipse(img, x, y, ex, ey * o, lash, thickness=1, a0=180, a1=360)
        else:
            ellipse(img, x, y - 0.2 * ey, ex, 0.5 * ey, lash, thickness=1, a0=10, a1=170)
        lenses.append((x, y, ex * 1.45, ey * 2.1))
    if look.eyewear == "none" or not lenses:
        return
    if look.eyewear == "sunglasses":
        # Tinted, not opaque: the NIR/visible leak keeps the eyelids faintly visible.
        over = img.copy()
        for x, y, ax, ay in lenses:
            ellipse(over, x, y, ax, ay, (25, 25, 25))
        cv2.addWeighted(over, 0.72, img, 0.28, 0.0, dst=img)
    t = max(1.0, 0.07 * fw)
    for x, y, ax, ay in lenses:
        ellipse(img, x, y, ax, ay, look.frame, thickness=int(round(t)))
    if len(lenses) == 2:
        (x0, y0, a0, _), (x1, y1, a1, _) = lenses
        line(img, x0 + a0, y0, x1 - a1, y1, look.frame, t)


def _mouth(img: U8, look: FaceLook, st: FaceState, hd: Head) -> None:
    x, y, fac = hd.project(0.0, -0.45, st)
    if fac <= 0.1:
        return
    fw, fh = hd.fw, hd.fh
    mw = 0.3 * fw * look.mouth_w * fac * (1 - 0.25 * st.yawn)
    open_h = fh * (0.015 + 0.1 * st.mouth + 0.32 * st.yawn)
    ellipse(img, x, y, mw, 0.045 * fh + open_h / 2, look.lips)
    if open_h > 0.03 * fh:
        ellipse(img, x, y, mw * 0.8, open_h / 2, (25, 20, 45))
        if st.mouth > 0.3 and st.yawn < 0.3:
            ellipse(img, x, y - open_h * 0.3, mw * 0.6, open_h * 0.18, (220, 225, 230))


def _phone(img: U8, look: FaceLook, st: FaceState, hd: Head) -> None:
    fw, fh, s = hd.fw, hd.fh, st.phone_side
    k = smoothstep(st.phone)
    bottom = img.shape[0] + 0.8 * fh
    if st.phone_at_ear:
        tx, ty = hd.cx + s * 0.92 * fw, hd.cy + 0.05 * fh
        px, py = tx + s * 0.5 * fw * (1 - k), bottom + (ty - bottom) * k
        line(img, px + s * 0.9 * fw, py + 2.5 * fh, px + s * 0.1 * fw, py + 0.45 * fh,
             look.shirt, 0.45 * fw)
        box(img, px, py, 0.34 * fw, 0.68 * fh, -12.0 * s, (35, 35, 40))
        ellipse(img, px + s * 0.08 * fw, py + 0.22 * fh, 0.25 * fw, 0.32 * fh, look.skin)
    else:
        tx, ty = hd.cx + s * 0.3 * fw, hd.cy + 1.4 * fh
        px, py = tx, bottom + (ty - bottom) * k
        for side in (-1, 1):
            line(img, px + side * 1.0 * fw, py + 2.0 * fh, px + side * 0.35 * fw, py + 0.15 * fh,
                 look.shirt, 0.4 * fw)
        box(img, px, py, 0.75 * fw, 0.42 * fh, 10.0 * s, (50, 50, 60))
        for side in (-1, 1):
            ellipse(img, px + side * 0.35 * fw, py + 0.1 * fh, 0.17 * fw, 0.24 * fh, look.skin)
