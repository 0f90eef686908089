"""The driver-monitoring scene: a driver at the wheel, filmed from the dashboard, in a car.

This module owns what the driver task looks and sounds like. :class:`DriverScene` turns a
scenario into behaviour over time (blinks, eyelid closures, yawns, head turns, a phone, speech
syllables that both move the mouth and are heard) and into engine, road and cabin sounds, with
distractors that carry no label: radio music, turn-signal clicks, road bumps and a passenger's
phone ringing.
"""

from __future__ import annotations

import bisect
from functools import partial

import cv2
import numpy as np

from edge.sim.draw import U8, pick, shade
from edge.sim.face import FaceState, Head, draw_face, random_look
from edge.sim.optics import Optics
from edge.sim.scenario import Scenario
from edge.sim.sound import (F32, Atom, Bed, Drone, NoiseBed, SoundPlan, bandpass_fir, lowpass_fir,
                            sub_rng)
from edge.sim.timeline import gate, gate_any, random_intervals, wander, wander_terms
from edge.sim.voices import (Syllable, atom, mouth_open, music_atoms, plan_speech, random_voice, ring,
                             speech_atoms, thump, ticks, yawn)

_INTERIORS = ((60, 60, 60), (90, 100, 110), (40, 45, 50), (120, 130, 140))


def _variant(scenario: Scenario, i: int, choices: tuple[str, ...]) -> str:
    given = scenario.events[i].variant
    return given if given is not None else choices[int(sub_rng(scenario.seed, "variant", i).integers(len(choices)))]


class DriverScene:
    """Frames and sound of a driver scenario.

    Parameters
    ----------
    scenario
        A ``task: driver`` scenario.
    width, height
        Frame size in pixels.
    sample_rate
        Audio sample rate in Hz.
    """

    def __init__(self, scenario: Scenario, width: int, height: int, sample_rate: int) -> None:
        if scenario.task != "driver":
            raise ValueError(f"DriverScene renders driver scenarios, not {scenario.task}")
        self.scenario, self.width, self.height = scenario, width, height
        cond, seed = scenario.conditions, scenario.seed
        look = sub_rng(cond.look_seed if cond.look_seed is not None else seed, "driver-look")
        self.look = random_look(look, cond.eyewear)
        self.voice = random_voice(look)
        fw = min(width, height) * float(look.uniform(0.22, 0.28))
        self.head = Head(width * (0.5 + float(look.uniform(-0.07, 0.07))),
                         height * (0.42 + float(look.uniform(-0.04, 0.04))), fw,
                         fw * float(look.uniform(1.2, 1.32)))
        self._window_side = 1 if look.random() < 0.5 else -1
        self.background = self._draw_background(look)

        beh = sub_rng(seed, "driver-behaviour")
        self._sway = (wander_terms(beh, 3, 0.12, 0.05, 0.4), wander_terms(beh, 3, 0.07, 0.05, 0.4))
        self._light = wander_terms(beh, 3, 1.2, 0.08, 0.8)
        self._glare_wobble = wander_terms(beh, 2, 0.3, 0.1, 1.0)
        self._scenery = (float(beh.uniform(0.6, 2.0)), beh.uniform(0, 1, 3))
        self._closed: list[tuple[float, float]] = []
        self._yawns: list[tuple[float, float]] = []
        self._away: list[tuple[float, float, float, float]] = []
        self._phones: list[tuple[float, float, int, bool]] = []
        self._talk: list[tuple[int, list[Syllable]]] = []  # (event index, its syllables)
        for i, ev in enumerate(scenario.events):
            r = sub_rng(seed, "event", i)
            if ev.label == "eyes_closed":
                self._closed.append((ev.start, ev.end))
            elif ev.label == "yawning":
                self._yawns.append((ev.start, ev.end))
            elif ev.label == "distracted":
                where = _variant(scenario, i, ("left", "right", "down"))
                turn = float(r.uniform(0.6, 1.0))
                self._away.append((ev.start, ev.end, {"left": -turn, "right": turn}.get(where, 0.0),
                                   float(r.uniform(0.45, 0.7)) if where == "down" else 0.0))
            elif ev.label == "phone":
                self._phones.append((ev.start, ev.end, 1 if r.random() < 0.5 else -1,
                                     _variant(scenario, i, ("ear", "hand")) == "ear"))
            elif ev.label == "talking":
                self._talk.append((i, plan_speech(r, self.voice, ev.start, ev.end)))
        self._syllables = sorted((s for _, syl in self._talk for s in syl), key=lambda s: s.onset)
        self._onsets = [s.onset for s in self._syllables]
        self._blinks: list[float] = []
        t = float(beh.uniform(0.2, 3.0))
        while t < scenario.seconds + 1.0:
            self._blinks.append(t)
            t += float(beh.uniform(1.5, 6.0))
        self._blink_s = float(beh.uniform(0.12, 0.25))
        self.optics = Optics(cond, width, height, seed,
                             glare_at=(0.5 + 0.42 * self._window_side, 0.2))
        self.plan = self._sound_plan(sample_rate)

    # -- video ---------------------------------------------------------------------------

    def state(self, t_s: float) -> FaceState:
        """What the driver's face does at ``t_s``."""
        yaw = wander(t_s, self._sway[0])
        pitch = wander(t_s, self._sway[1])
        for a, b, y, p in self._away:
            g = gate(t_s, a, b, 0.3)
            yaw, pitch = yaw + g * y, pitch + g * p
        phone, side, at_ear = 0.0, 1, True
        for a, b, s, ear in self._phones:
            g = gate(t_s, a, b, 0.5)
            if g > phone:
                phone, side, at_ear = g, s, ear
        if not at_ear:
            pitch += 0.15 * phone  # glancing at a phone held low
        yawn_amt = max((gate(t_s, a, b, min(1.0, 0.35 * (b - a))) for a, b in self._yawns), default=0.0)
        i = bisect.bisect_right(self._blinks, t_s + self._blink_s / 2) - 1
        blink = 0.0
        if i >= 0:
            blink = max(0.0, 1.0 - abs(t_s - self._blinks[i]) / (self._blink_s / 2))
        eye_open = self.look.eye_open * (1 - gate_any(t_s, self._closed, 0.1)) * (1 - blink)
        return FaceState(yaw=yaw, pitch=pitch, eye_open=eye_open * (1 - 0.5 * yawn_amt),
                         mouth=mouth_open(self._syllables, self._onsets, t_s), yawn=yawn_amt,
                         phone=phone, phone_side=side, phone_at_ear=at_ear)

    def frame(self, t_s: float) -> U8:
        """The camera frame at ``t_s``: ``height x width x 3`` BGR uint8."""
        img = self.background.copy()
        self._draw_scenery(img, t_s)
        draw_face(img, self.look, self.state(t_s), self.head)
        shadow = float(np.clip(wander(t_s, self._light), 0.0, 1.0))
        # By day, trees and bridges shade the cabin; by night, street lamps light it in passing.
        gain = 1 + 0.6 * shadow if self.scenario.conditions.lighting == "dark" else 1 - 0.35 * shadow
        return self.optics.apply(img, t_s, gain, 0.75 + wander(t_s, self._glare_wobble))

    def _draw_background(self, rng: np.random.Generator) -> U8:
        w, h, hd = self.width, self.height, self.head
        inner = pick(rng, _INTERIORS)
        img = np.empty((h, w, 3), np.uint8)
        img[:] = np.array(inner, np.uint8)
        img[: int(0.08 * h)] = np.array(shade(inner, 1.3), np.uint8)  # headliner
        x0, x1 = (int(0.68 * w), w) if self._window_side > 0 else (0, int(0.32 * w))
        self._win = (x0, int(0.08 * h), x1, int(0.52 * h))
        cv2.rectangle(img, self._win[:2], (x1 - 1, self._win[3]), pick(rng, ((210, 200, 180), (200, 190, 170))), -1)
        px = x0 if self._window_side > 0 else x1 - 1
        cv2.line(img, (px, 0), (px, h), shade(inner, 0.6), max(2, w // 30))  # B-pillar
        seat = pick(rng, _INTERIORS, 0.2)
        fw, fh = hd.fw, hd.fh
        cv2.rectangle(img, (int(hd.cx - 0.8 * fw), int(hd.cy - 1.1 * fh)),
                      (int(hd.cx + 0.8 * fw), int(hd.cy + 0.6 * fh)), shade(seat, 0.9), -1)
        cv2.rectangle(img, (int(hd.cx - 1.6 * fw), int(hd.cy + 0.7 * fh)), (int(hd.cx + 1.6 * fw), h), seat, -1)
        neck = shade(self.look.skin, 0.8)
        cv2.rectangle(img, (int(hd.cx - 0.42 * fw), int(hd.cy + 0.5 * fh)),
                      (int(hd.cx + 0.42 * fw), int(hd.cy + 1.45 * fh)), neck, -1)
        shirt = self.look.shirt
        cv2.ellipse(img, (int(hd.cx), int(hd.cy + 2.3 * fh)), (int(2.0 * fw), int(1.0 * fh)), 0, 180, 360, shirt, -1)
        cv2.rectangle(img, (int(hd.cx - 2.0 * fw), int(hd.cy + 2.3 * fh)), (int(hd.cx + 2.0 * fw), h), shirt, -1)
        s = self._window_side
        cv2.line(img, (int(hd.cx + s * 1.5 * fw), int(hd.cy + 1.4 * fh)), (int(hd.cx - s * 1.3 * fw), h),
                 (45, 45, 50), max(2, int(0.25 * fw)))  # seat belt
        return img

    def _draw_scenery(self, img: U8, t_s: float) -> None:
        """Trees and poles passing in the side window: motion that means nothing."""
        x0, y0, x1, y1 = self._win
        span = x1 - x0
        speed, offsets = self._scenery
        for k, off in enumerate(offsets):
            bx = x0 + int(((off + speed * t_s * (1 + 0.3 * k)) % 1.0) * (span + 10)) - 5
            a, b = max(x0, bx), min(x1, bx + max(2, span // 8))
            if b > a:
                cv2.rectangle(img, (a, y0), (b - 1, y1), (40 + 20 * k, 70, 50), -1)

    # -- audio ---------------------------------------------------------------------------

    def audio(self, n0: int, n: int) -> F32:
        """Samples ``[n0, n0 + n)`` of the cabin microphone, float32 mono."""
        return self.plan.render(n0, n)

    def _sound_plan(self, sr: int) -> SoundPlan:
        sc, seed = self.scenario, self.scenario.seed
        noise, d = sc.conditions.noise, sc.conditions.distractors
        ra = sub_rng(seed, "driver-audio")
        eng = 0.006 + 0.03 * noise
        beds: list[Bed] = [
            Drone(float(ra.uniform(25, 45)), tuple(eng * x for x in (1, 0.7, 0.5, 0.35, 0.25, 0.15, 0.1)),
                  sr, wander_terms(ra, 3, 0.12, 0.02, 0.2)),
            NoiseBed(seed, "road", lowpass_fir(float(ra.uniform(350, 700)), sr), 0.02 + 0.2 * noise,
                     sr, wander_terms(ra, 2, 0.3, 0.05, 0.5)),
            NoiseBed(seed, "wind", bandpass_fir(300, 2500, sr), 0.004 + 0.03 * noise, sr,
                     wander_terms(ra, 2, 0.4, 0.05, 0.3)),
            NoiseBed(seed, "mic", np.ones(1), 0.001 + 0.004 * noise, sr),
        ]
        atoms: list[Atom] = []
        talk_level = float(ra.uniform(0.2, 0.35))
        for i, syl in self._talk:
            atoms += speech_atoms(syl, self.voice, sr, talk_level, seed, ("talk", i))
        for i, ev in enumerate(sc.events):
            r = sub_rng(seed, "event-sound", i)
            if ev.label == "yawning":
                atoms.append(atom(sr, ev.start, ev.end - ev.start, float(r.uniform(0.15, 0.3)), seed,
                                  ("yawn", i), partial(yawn, self.voice)))
            elif ev.label == "phone" and r.random() < 0.5:
                atoms.append(atom(sr, ev.start, min(2.5, 0.6 * (ev.end - ev.start)),
                                  float(r.uniform(0.1, 0.25)), seed, ("ring", i), ring))
        rd = sub_rng(seed, "driver-distractors")
        for j, (a, b) in enumerate(random_intervals(rd, sc.seconds, 1.0 * d, 4, 20)):
            atoms += music_atoms(rd, a, b, sr, float(rd.uniform(0.03, 0.08)), seed, ("radio", j))
        for j, (a, b) in enumerate(random_intervals(rd, sc.seconds, 1.5 * d, 2, 6)):
            atoms.append(atom(sr, a, b - a, 0.08, seed, ("ticks", j), ticks))
        for j, (a, b) in enumerate(random_intervals(rd, sc.seconds, 0.4 * d, 1, 3)):
            atoms.append(atom(sr, a, b - a, float(rd.uniform(0.05, 0.12)), seed, ("other-ring", j), ring))
        for j in range(int(rd.poisson(6 * d * sc.seconds / 60))):
            atoms.append(atom(sr, float(rd.uniform(0, sc.seconds)), 0.15, float(rd.uniform(0.08, 0.25)),
                              seed, ("bump", j), thump))
        return SoundPlan(beds, atoms)
