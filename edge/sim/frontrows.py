"""Per-frame front-end stage rows of a simulated scenario: the driver's face and hands, people
in a room, as the real stages would measure them (:mod:`edge.front.face`, :mod:`edge.front.hand`,
:mod:`edge.front.person`). :mod:`edge.sim.frontsim` holds them per frame target in windows.

Measured on real footage through the real front ends (``python -m edge.sim.frontmeasure
/work/shared/realworld``; :mod:`edge.sim.frontmeasure`):

* face found on 100 % of frames of both face clips (yaw down to -49 degrees), 0 % on the empty
  room (no false faces);
* open-eye EAR median 0.249 (p5-p95 0.196-0.313) and 0.232 (0.191-0.270) for two subjects;
  left/right difference median 0.010-0.017; frame-to-frame jitter median 0.003 (30 fps) to 0.015
  (12 fps, head moving); a smile lowers EAR to 0.244 from 0.307 at rest (same man);
* blinks: EAR minimum 0.139-0.154 at 30 fps, below 0.2 for 0.13-0.17 s; at 12 fps the dips are
  sampled shallower (0.167-0.199);
* mouth_open at rest 0.012-0.035, smiling 0.209 (max 0.229);
* yaw frontal median +0.9 / +1.8 (jitter median 0.14 degrees per frame at 30 fps); glances
  -43 median, peaks -46 to -49, and the same subject swings to +29 unlabelled; pitch offset
  frontal +1.0 (p95 7.6) for one subject and +21.6 (18.9-24.7) for the other; roll -2.6 / +3.2;
  face_size 0.536 and 0.310, steady (p5-p95 within 0.03);
* person (home, 4 fps): with someone there score median 0.968 (p5 0.784, min 0.681), area
  0.256-0.583 (median 0.351), found on 100 % of frames away from the entry/exit; empty room: an
  object (the table base) scores 0.31-0.56 (median 0.455) at a fixed place (cx 0.56, cy 0.66),
  area 0.003-0.067, >= 0.5 on 27.7 % of frames in runs of 1-18 processed frames (median 4);
* gaze (the iris model on each eye): a man looking at the camera -0.106 across, +0.173 up,
  steady (jitter 0.006); a woman glancing aside follows her head as 0.164 sin(yaw), sd 0.170
  around it; shut eyes drop it 0.11 (:func:`_gaze` has the rest and what was chosen);
* VAD on real speech files: median chunk p 0.96-1.0, >= 0.5 on 62-91 % of chunks (the pauses);
  non-speech maxima: rain 0.309, dog 0.216, shutter 0.170, glass 0.065, robin 0.035.

Not measured (no real clip shows them), so chosen and said so: open-eye EAR below the two
subjects' (down to 0.16: narrow eyes, a camera above them), head pitch from a camera above the
eyes (down to -25 degrees), closed-eye EAR (0.07-0.17, the blink minima measured above and
the held real shut eye's 0.134-0.144 inside it rather than at its top; at most 0.65 of open;
drawn up to 0.15, eye networks trained again read that shut eye held 2-4 s at 0.4-0.9), yawns
(mouth_open 0.45-0.9), the face lost past |yaw| 55 degrees, looking down lowering EAR, and a
phone: at the ear, head roll/yaw toward it, noisier landmarks on that side and a hand beside
the face; in the hand, the head pitched down a little and a hand below the face
(:func:`hand_frames`; how often the hand stage finds a real hand is a guess too: no dev clip
shows one near a face).
"""

from __future__ import annotations

import numpy as np

from edge.sim.scenario import Scenario
from edge.sim.sound import sub_rng


def _gate(t: np.ndarray, a: float, b: float, width: float) -> np.ndarray:
    """:func:`edge.sim.timeline.gate` over an array of times."""
    w = max(width, 1e-6)
    u = np.minimum(np.clip((t - a) / w + 0.5, 0, 1), np.clip((b - t) / w + 0.5, 0, 1))
    return u * u * (3 - 2 * u)


def _wander(rng: np.random.Generator, t: np.ndarray, amp: float, lo: float, hi: float,
            n: int = 3) -> np.ndarray:
    """A sum of ``n`` slow sines with amplitudes summing to ``amp``."""
    w = rng.uniform(0.5, 1.0, n)
    w = amp * w / w.sum()
    out = np.zeros_like(t)
    for a in w:
        out += a * np.sin(2 * np.pi * rng.uniform(lo, hi) * t + rng.uniform(0, 2 * np.pi))
    return out


def _runs(rng: np.random.Generator, t: np.ndarray) -> np.ndarray:
    """Uniform-ish values in [0, 1] that change smoothly (0.3-2 Hz): thresholded, they make runs
    of frames, not single-frame flicker."""
    z = _wander(rng, t, 1.0, 0.3, 2.0, 4) / 0.55
    return np.asarray(0.5 * (1 + np.tanh(0.9 * z)))


# -- the driver's face -------------------------------------------------------------------------


def _spans(rng: np.random.Generator, seconds: float, per_min: float, lo: float, hi: float,
           busy: list[tuple[float, float]]) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    for _ in range(int(rng.poisson(per_min * seconds / 60.0))):
        d = float(rng.uniform(lo, hi))
        if d >= seconds:
            continue
        a = float(rng.uniform(0, seconds - d))
        if all(b1 + 0.3 <= a or b0 >= a + d + 0.3 for b0, b1 in busy + out):
            out.append((a, a + d))
    return out


def face_frames(sc: Scenario, t: np.ndarray, eye_glances: float = 0.0) -> np.ndarray:
    """``[len(t), 12]`` face vectors (:data:`edge.front.face.FACE_FEATURES`) at frame times ``t``.

    ``eye_glances``: the share of the ``distracted`` glances to the side or down that the eyes
    lead (:func:`_gaze`); 0 keeps every column but the gaze as it was without them.
    """
    look = sub_rng(sc.seed, "front-subject")
    rng = sub_rng(sc.seed, "front-face")
    n = len(t)
    ev = [(e.label, e.start, e.end, e.variant, i) for i, e in enumerate(sc.events)]
    video_busy = [(a, b) for lab, a, b, _, _ in ev if lab != "talking"]
    # An empty seat: a scene with nothing to see is sometimes nobody at all.
    if not video_busy and not any(lab == "talking" for lab, *_ in ev) and look.random() < 0.4:
        return np.zeros((n, 12), np.float32)
    # Per subject: baselines around the measured ones, and how noisy the landmarks are.
    # Open eyes from narrow (0.16: the dev subjects' 0.23-0.25 x 0.65) to wide; closed ones
    # at most 0.65 of open (a narrow eye closes lower too).
    ear0 = look.uniform(0.16, 0.32)
    ear_lr = look.normal(0, 0.008)
    ear_closed = min(look.uniform(0.07, 0.17), 0.65 * ear0)
    blink_depth = look.uniform(0.45, 0.65)  # blink minimum / open EAR (0.14-0.15 of 0.25-0.31)
    size0 = look.uniform(0.15, 0.6)
    # Pitch: the dev subjects' +1 and +22 (a camera at and below eye level), down to -25 for a
    # camera above the eyes (on the mirror or a pillar): chosen, no dev clip has one; alone it
    # is no phone in the hand, which pitches the head 8-20 degrees down from there.
    yaw0, pitch0, roll0 = look.normal(0, 4), look.uniform(-25, 24), look.normal(0, 4)
    mouth0 = look.uniform(0.005, 0.05)
    ear_sd, mouth_sd = look.uniform(0.003, 0.012), look.uniform(0.002, 0.01)
    yaw_sd, pitch_sd, roll_sd = look.uniform(0.15, 1.5), look.uniform(0.3, 1.8), look.uniform(0.1, 0.8)
    ear = ear0 + _wander(rng, t, look.uniform(0.004, 0.02), 0.05, 0.5)
    yaw = yaw0 + _wander(rng, t, look.uniform(1, 4), 0.05, 0.4)
    pitch = pitch0 + _wander(rng, t, look.uniform(1, 3), 0.05, 0.4)
    roll = roll0 + _wander(rng, t, look.uniform(0.5, 2), 0.05, 0.4)
    mouth = mouth0 + np.abs(_wander(rng, t, 0.01, 0.1, 0.6))
    size = size0 * (1 + _wander(rng, t, 0.02, 0.05, 0.3))
    noise_l = np.full(n, 1.0)
    noise_r = np.full(n, 1.0)
    closed = np.zeros(n)
    # Unlabelled behaviour: smiles (wide mouth, narrower eyes), road and mirror scans (|yaw| <=
    # 30 degrees, as the subject who swung to +29 unlabelled), squints in glare.
    for a, b in _spans(rng, sc.seconds, rng.uniform(0, 3), 1.0, 6.0, video_busy):
        g = _gate(t, a, b, 0.3)
        mouth = mouth + g * rng.uniform(0.12, 0.22)
        ear = ear * (1 - g * rng.uniform(0.05, 0.2))
    for a, b in _spans(rng, sc.seconds, rng.uniform(0, 5), 0.3, 1.2, video_busy):
        g = _gate(t, a, b, 0.25)
        yaw = yaw + g * rng.choice([-1, 1]) * rng.uniform(8, 30)
        pitch = pitch + g * rng.normal(0, 3)
    for a, b in _spans(rng, sc.seconds, rng.uniform(0, 1.5), 1.0, 4.0, video_busy):
        ear = ear * (1 - _gate(t, a, b, 0.3) * rng.uniform(0.1, 0.25))
    lost = np.zeros(n, bool)
    eye_yaw, eye_pitch = np.zeros(n), np.zeros(n)  # the eyes in the head, degrees (_gaze)
    for lab, a, b, variant, i in ev:
        r = sub_rng(sc.seed, "front-event", i)
        ge = sub_rng(sc.seed, "front-gaze-event", i, 1)  # the eyes' part: its own draws
        if lab == "eyes_closed":
            closed = np.maximum(closed, _gate(t, a, b, 0.1))
        elif lab == "yawning":
            g = _gate(t, a, b, min(1.0, 0.35 * (b - a)))
            mouth = mouth + g * r.uniform(0.45, 0.9)
            ear = ear * (1 - g * r.uniform(0.1, 0.3))
            pitch = pitch + g * r.uniform(3, 10)
        elif lab == "distracted":
            where = variant or ("left", "right", "down")[int(r.integers(3))]
            # so that the other columns keep their draws, whether the eyes lead is drawn apart
            eyes_lead = (eye_glances > 0
                         and sub_rng(sc.seed, "front-gaze-event", i).random() < eye_glances)
            g = _gate(t, a, b, r.uniform(0.2, 0.4))
            if where == "down":
                dp = r.uniform(20, 40)
                if eyes_lead:  # the eyes drop to the lap, the head a little: lids follow
                    pitch = pitch - g * ge.uniform(5, 15)
                    eye_pitch = eye_pitch - g * ge.uniform(20, 35)
                else:
                    pitch = pitch - g * dp
                    eye_pitch = eye_pitch - g * dp * ge.uniform(0, 0.3)
                ear = ear * (1 - g * 0.35 * dp / 40)  # eyelids look lower from above
            else:
                side = -1 if where == "left" else 1
                turn = r.uniform(35, 70)
                if eyes_lead:  # 40-65 degrees off the road, most of it by the eyes
                    yaw = yaw + g * side * ge.uniform(15, 30)
                    eye_yaw = eye_yaw + g * side * ge.uniform(25, 35)
                else:
                    yaw = yaw + g * side * turn
                pitch = pitch + g * r.normal(0, 4)
                ear = ear * (1 - g * 0.05)
                if b - a < 1.0 and r.random() < 0.5:
                    # After a short glance the head often swings back past the road to the
                    # other side (12-30 degrees, unlabelled: driver-dev-head-turn swings to
                    # +29 between glances to -45), so a window holding both is not a turn.
                    s0 = b + r.uniform(0.1, 0.4)
                    s1 = min([s0 + r.uniform(0.3, 0.8)] + [a2 - 0.3 for _, a2, *_ in ev if a2 > b])
                    if s1 > s0 + 0.2:
                        yaw = yaw - _gate(t, s0, s1, 0.2) * side * r.uniform(12, 30)
        elif lab == "phone":
            at_ear = (variant or ("ear", "hand")[int(r.integers(2))]) == "ear"
            g = _gate(t, a, b, 0.5)
            if at_ear:
                side = 1 if r.random() < 0.5 else -1
                roll = roll + g * side * r.uniform(4, 14)
                yaw = yaw + g * side * r.uniform(3, 12)
                occl = 1 + g * r.uniform(1, 4)
                if side > 0:
                    noise_l = noise_l * occl
                else:
                    noise_r = noise_r * occl
                mouth = mouth + g * r.uniform(0, 0.03)
            else:
                pitch = pitch - g * r.uniform(8, 20)
                ear = ear * (1 - g * r.uniform(0.05, 0.2))
                eye_pitch = eye_pitch - g * ge.uniform(10, 25)  # down at the screen
        elif lab == "talking":
            hz = r.uniform(3, 6)
            open_ = np.abs(np.sin(np.pi * hz * t + r.uniform(0, np.pi))) ** 0.6
            pauses = _runs(r, t) > r.uniform(0.7, 0.9)
            g = _gate(t, a, b, 0.1) * ~pauses
            mouth = mouth + g * open_ * r.uniform(0.1, 0.3)
            yaw = yaw + g * r.normal(0, 1.5, n)
    # Turning the head tilts it too, whatever turned it (driver-dev-head-turn: roll +5..+10
    # degrees at yaw -44 and at +28, +1..+4 frontal), so roll with a turn is not a phone's.
    roll = roll + sub_rng(sc.seed, "front-roll").uniform(-0.3, 0.3) * np.abs(yaw - yaw0)
    # Blinks every 1.5-6 s, 0.1-0.3 s long; they do not happen with the eyes already shut.
    blink = np.zeros(n)
    tb = float(rng.uniform(0.2, 3.0))
    while tb < sc.seconds + 1:
        d = float(rng.uniform(0.1, 0.3))
        blink = np.maximum(blink, np.clip(1 - np.abs(t - tb) / (d / 2), 0, 1))
        tb += float(rng.uniform(1.5, 6.0))
    ear = ear * (1 - blink * (1 - blink_depth))
    ear = ear * (1 - closed) + closed * ear_closed * (1 + 0.1 * rng.standard_normal(n))
    # The face is lost past about 55 degrees of yaw (the stage kept it to 49 on real footage).
    p_lost = np.clip((np.abs(yaw - yaw0) - 55) / 25, 0, 0.95)
    lost |= _runs(rng, t) < p_lost
    lost |= rng.random(n) < rng.uniform(0, 0.01)  # single-frame misses
    for a, b in _spans(rng, sc.seconds, 0.6 if rng.random() < 0.3 else 0, 1.0, 6.0, video_busy):
        lost |= (t >= a) & (t < b)  # out of view: leaning away, the camera covered
    out = np.zeros((n, 12), np.float64)
    out[:, 10:] = _gaze(sc, t, yaw - yaw0, pitch - pitch0, eye_yaw, eye_pitch,
                        np.maximum(closed, blink), size0)
    out[:, 0] = 1
    out[:, 1] = size * (1 - 0.15 * np.clip(-(pitch - pitch0) / 40, 0, 1)) + rng.normal(0, 0.002, n)
    out[:, 2] = ear + ear_lr / 2 + rng.normal(0, 1, n) * ear_sd * noise_l
    out[:, 3] = ear - ear_lr / 2 + rng.normal(0, 1, n) * ear_sd * noise_r
    out[:, 4] = mouth + rng.normal(0, 1, n) * mouth_sd * np.maximum(noise_l, noise_r)
    out[:, 5] = yaw + rng.normal(0, yaw_sd, n)
    out[:, 6] = pitch + rng.normal(0, pitch_sd, n)
    out[:, 7] = roll + rng.normal(0, roll_sd, n)
    # Where the face sits in the frame (the camera's mounting); a turn moves the box a little.
    place = sub_rng(sc.seed, "front-place")
    cx0, cy0 = place.uniform(0.3, 0.7), place.uniform(0.3, 0.55)
    out[:, 8] = cx0 + 0.5 * size * np.sin(np.radians(yaw - yaw0)) + place.normal(0, 0.002, n)
    out[:, 9] = cy0 - 0.5 * size * np.sin(np.radians(pitch - pitch0)) + place.normal(0, 0.002, n)
    out[:, 2:5] = np.clip(out[:, 2:5], 0.0, 1.5)
    out[lost] = 0.0
    return out.astype(np.float32)


def _gaze(sc: Scenario, t: np.ndarray, head_yaw: np.ndarray, head_pitch: np.ndarray,
          eye_yaw: np.ndarray, eye_pitch: np.ndarray, shut: np.ndarray,
          size0: float) -> np.ndarray:
    """``[len(t), 2]`` gaze (:attr:`edge.front.face.FaceResult.gaze_x`, ``gaze_y``) from the
    head's turn from the road (degrees), the eyes' turn in the head (the events'; degrees), how
    shut the eyes are (0-1) and the face's size.

    Measured through the real face stage (``python -m edge.sim.frontmeasure``): alert-blink
    (face 0.54 of the frame, 30 fps) reads gaze_x -0.106 (p5-p95 -0.178 to -0.084), gaze_y
    +0.173 (0.142-0.199), frame-to-frame jitter median 0.006; head-turn (face 0.31, 12 fps, the
    head swinging -49 to +30 degrees) reads gaze_x -0.078 (-0.466 to 0.151) with jitter median
    0.111, following the head as 0.164 sin(yaw) with a residual sd of 0.170 (the eyes moving
    too), gaze_y 0.153 (0.041-0.286); shut eyes in blinks move gaze_y down 0.11 (alert-blink)
    and gaze_x 0.03-0.2. So: a person's offsets near those, a head term of 0.05-0.3 sin(turn),
    noise 0.01-0.08 scaled by the face's size (more for a small face), spread while shut.

    Chosen, as no dev clip shows the eyes turn alone: the eyes' gain, 0.6-0.9 sin(angle) across
    and 0.5-0.8 up and down (an eyeball's 12 mm radius against half an eye's 14-15 mm width),
    the eyes leading every head turn by 0-40 % of it, a fixation's wander of 1-3 degrees, and
    glances by the eyes alone to the mirror and the instruments (5-20 degrees across, 5-20
    down, 0.2-0.8 s, up to 6 a minute), unlabelled: a look that stays near the road.
    """
    gz = sub_rng(sc.seed, "front-gaze")
    n = len(t)
    gx0, gy0 = gz.normal(-0.08, 0.08), gz.uniform(0.05, 0.3)
    k_eye, k_eye_y = gz.uniform(0.6, 0.9), gz.uniform(0.5, 0.8)
    k_head, k_head_y = gz.uniform(0.05, 0.3), gz.uniform(-0.35, 0.05)
    sd = gz.uniform(0.01, 0.08) * float(np.clip(0.3 / max(size0, 1e-3), 0.5, 2.0))
    lead = gz.uniform(0.0, 0.4)
    ey = eye_yaw + lead * head_yaw + _wander(gz, t, gz.uniform(1, 3), 0.1, 1.0)
    ep = eye_pitch + lead * head_pitch + _wander(gz, t, gz.uniform(1, 3), 0.1, 1.0)
    for a, b in _spans(gz, sc.seconds, gz.uniform(0, 6), 0.2, 0.8, []):
        g = _gate(t, a, b, 0.1)
        if gz.random() < 0.5:
            ey = ey + g * gz.choice([-1, 1]) * gz.uniform(5, 20)
        else:
            ep = ep - g * gz.uniform(5, 20)
    gx = gx0 + k_eye * np.sin(np.radians(ey)) + k_head * np.sin(np.radians(head_yaw))
    gy = gy0 + k_eye_y * np.sin(np.radians(ep)) + k_head_y * np.sin(np.radians(head_pitch))
    gx = gx + shut * gz.normal(0, 0.15, n)
    gy = gy - shut * gz.uniform(0.05, 0.2)
    far = np.abs(head_yaw) > 30  # the near eye alone (edge.front.face.FAR_EYE_YAW)
    noise = sd * np.where(far, 1.4, 1.0)
    return np.column_stack([gx + gz.normal(0, 1, n) * noise, gy + gz.normal(0, 1, n) * noise])


def hand_frames(sc: Scenario, t: np.ndarray, face: np.ndarray) -> np.ndarray:
    """``[len(t), 6]`` hand vectors (:data:`edge.front.hand.HAND_FEATURES`) at the times the
    stage processes, beside the face rows of the same frames.

    Where a hand is, in face heights from the face centre: a phone at the ear holds it beside
    the face on the side the face stage sees occluded; a phone in the hand holds it below the
    face; unlabelled, hands touch the face, rub eyes or scratch a cheek (0.5-3 s), and
    for some camera mounts the hands on the wheel show at the bottom of the frame. A hand in
    the frame is found with a per-subject probability of 0.55-0.95: a guess (the real dev clips
    show no hands near a face); the confirmed false palms measured on them were none in 118
    frames of three driver clips (the detector alone fired on a V-neck in 17 of 38).
    """
    look = sub_rng(sc.seed, "front-hands")
    rng = sub_rng(sc.seed, "front-hand")
    n = len(t)
    p_det = look.uniform(0.55, 0.95)
    dx = np.full(n, np.nan)
    dy = np.full(n, np.nan)
    if look.random() < 0.35:  # hands on the wheel in view
        dx[:] = look.uniform(-1.5, 1.5) + rng.normal(0, 0.05, n)
        dy[:] = look.uniform(2.0, 3.5) + rng.normal(0, 0.05, n)
    for a, b in _spans(rng, sc.seconds, rng.uniform(0, 3), 0.5, 3.0, []):
        g = (t >= a) & (t < b)
        dx[g] = rng.uniform(-0.6, 0.6) + rng.normal(0, 0.05, int(g.sum()))
        dy[g] = rng.uniform(-0.3, 1.0) + rng.normal(0, 0.05, int(g.sum()))
    occluded = np.zeros(n, bool)
    for i, e in enumerate(sc.events):
        if e.label != "phone":
            continue
        r = sub_rng(sc.seed, "front-event", i)  # the draws face_frames makes for this phone
        at_ear = (e.variant or ("ear", "hand")[int(r.integers(2))]) == "ear"
        g = (t >= e.start + 0.3) & (t < e.end - 0.3)
        k = int(g.sum())
        if at_ear:
            side = 1 if r.random() < 0.5 else -1
            dx[g] = side * rng.uniform(0.5, 1.0) + rng.normal(0, 0.05, k)
            dy[g] = rng.uniform(-0.2, 0.5) + rng.normal(0, 0.05, k)
            occluded |= g
        else:
            dx[g] = rng.uniform(-0.8, 0.8) + rng.normal(0, 0.05, k)
            dy[g] = rng.uniform(1.3, 3.0) + rng.normal(0, 0.05, k)
    seen = face[:, 0] > 0.5
    fcx = np.where(seen, face[:, 8], np.median(face[seen, 8]) if seen.any() else 0.5)
    fcy = np.where(seen, face[:, 9], np.median(face[seen, 9]) if seen.any() else 0.45)
    fsz = np.where(seen, face[:, 1], np.median(face[seen, 1]) if seen.any() else 0.3)
    cx, cy = fcx + dx * fsz, fcy + dy * fsz
    inside = ~np.isnan(dx) & (cx > 0.02) & (cx < 0.98) & (cy > 0.02) & (cy < 0.98)
    found = inside & (rng.random(n) < p_det * np.where(occluded, 0.8, 1.0))
    false = ~found & (rng.random(n) < rng.uniform(0, 0.005))
    out = np.zeros((n, 6), np.float64)
    out[found, 3], out[found, 4] = cx[found], cy[found]
    out[false, 3], out[false, 4] = rng.uniform(0.05, 0.95, int(false.sum())), rng.uniform(0.3, 0.95, int(false.sum()))
    hit = found | false
    out[hit, 0] = 1
    out[hit, 1] = 1
    out[hit, 2] = rng.uniform(0.55, 0.95, int(hit.sum()))
    out[hit, 5] = fsz[hit] * rng.uniform(0.3, 0.5, int(hit.sum()))
    return out.astype(np.float32)


# -- people in a room --------------------------------------------------------------------------


def person_frames(sc: Scenario, t: np.ndarray) -> np.ndarray:
    """``[len(t), 6]`` person vectors (:data:`edge.front.person.PERSON_FEATURES`) at the times
    the stage processes (4 fps); the stage's ``min_score`` 0.5 applies."""
    cam = sub_rng(sc.seed, "front-room")
    rng = sub_rng(sc.seed, "front-person")
    n = len(t)
    boxes: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []  # score, area, cx, cy
    scale = cam.uniform(0.04, 0.55)  # how big a person is in this camera's view
    miss = cam.uniform(0, 0.08)
    for i, e in enumerate(sc.events):
        if e.label != "person":
            continue
        r = sub_rng(sc.seed, "front-walk", i)
        for k in range(1 + int(r.random() < 0.15)):
            a = e.start + (0 if k == 0 else r.uniform(0, 0.5) * (e.end - e.start))
            b = e.end - (0 if k == 0 else r.uniform(0, 0.3) * (e.end - a))
            ramp = r.uniform(0.2, 1.0)  # entering and leaving: part of the body in view
            inside = (t >= a) & (t < b)
            edge = np.minimum(np.clip((t - a) / ramp, 0, 1), np.clip((b - t) / ramp, 0, 1))
            score = 0.975 - np.abs(r.normal(0, 0.04, n)) - 0.25 * (1 - edge)
            score -= (r.random(n) < 0.05) * r.uniform(0.05, 0.3, n)  # odd poses
            score = np.where(inside & (r.random(n) >= miss), np.clip(score, 0, 0.99), 0.0)
            side = -1 if r.random() < 0.5 else 1
            x_in, x_stay = 0.5 + side * 0.55, r.uniform(0.2, 0.8)
            walk = np.clip((t - a) / r.uniform(1, 3), 0, 1) * np.clip((b - t) / r.uniform(1, 3), 0, 1)
            cx = x_in + (x_stay - x_in) * walk + _wander(r, t, 0.05, 0.05, 0.3)
            cy = r.uniform(0.35, 0.7) + _wander(r, t, 0.03, 0.05, 0.3)
            area = scale * r.uniform(0.6, 1.4) * (0.5 + 0.5 * edge) * (1 + _wander(r, t, 0.15, 0.05, 0.3))
            boxes.append((score, area, np.clip(cx, 0.02, 0.98), np.clip(cy, 0.05, 0.95)))
    # Things that look like a person to the detector: a fixed object in about half the rooms
    # (measured: score median 0.455, >= 0.5 on a quarter of frames, in runs), and rare sporadic
    # hits anywhere (a poster, a coat, the TV).
    if cam.random() < 0.5:
        mu, sd = cam.uniform(0.36, 0.5), cam.uniform(0.025, 0.06)
        z = _wander(rng, t, 1.0, 0.2, 1.5, 4) / 0.55
        score = np.clip(mu + sd * (0.8 * z + 0.6 * rng.standard_normal(n)), 0, 0.7)
        boxes.append((score, np.full(n, cam.uniform(0.003, 0.07)), np.full(n, cam.uniform(0.1, 0.9)),
                      np.full(n, cam.uniform(0.3, 0.8))))
    spor = rng.random(n) < cam.uniform(0, 0.02)
    boxes.append((np.where(spor, rng.uniform(0.5, 0.62, n), 0.0), rng.uniform(0.005, 0.1, n),
                  rng.uniform(0.1, 0.9, n), rng.uniform(0.2, 0.8, n)))
    out = np.zeros((n, 6), np.float32)
    for score, area, cx, cy in boxes:
        keep = score >= 0.5
        out[:, 1] += keep
        best = keep & (score > out[:, 2])
        out[best, 2] = score[best]
        big = keep & (area > out[:, 3])
        out[big, 3], out[big, 4], out[big, 5] = area[big], cx[big], cy[big]
    out[:, 0] = out[:, 1] > 0
    return out
