"""The home-monitoring scene: a living room seen by a wall camera, and what it hears.

This module owns what the home task looks and sounds like. :class:`HomeScene` draws a room
(furniture against the back wall, a window, a door, a TV, a smoke detector), people walking in
and out during ``person`` events and a pet, under room lights that switch and a TV that flickers.
It sounds speech babble, smoke (T3) and CO (T4) alarm patterns, breaking glass and dog barks, over
room tone, with unlabelled distractors: doorbells, TV music, appliance beeps, footsteps and doors.
"""

from __future__ import annotations

import cv2
import numpy as np

from edge.sim.draw import U8, Colour, mix, pick, shade
from edge.sim.figures import (PersonLook, Walk, draw_person, draw_pet, plan_walk,
                              random_person, random_pet)
from edge.sim.optics import Optics
from edge.sim.scenario import ALARM_CYCLES, Scenario
from edge.sim.sound import (F32, Atom, Bed, Drone, NoiseBed, PatternTone, SoundPlan, lowpass_fir,
                            sub_rng)
from edge.sim.timeline import random_intervals
from edge.sim.voices import (atom, bark, beeps, doorbell, glass, music_atoms, plan_speech,
                             random_voice, speech_atoms, thump)

T3 = ((0.0, 0.5), (1.0, 1.5), (2.0, 2.5))
"""Smoke alarm temporal-three: three 0.5 s beeps 0.5 s apart, then 1.5 s quiet (4 s cycle)."""
T3_CYCLE = ALARM_CYCLES["smoke_alarm"]
T4 = ((0.0, 0.1), (0.2, 0.3), (0.4, 0.5), (0.6, 0.7))
"""CO alarm temporal-four: four 0.1 s beeps 0.1 s apart, then 5 s quiet (5.7 s cycle)."""
T4_CYCLE = ALARM_CYCLES["co_alarm"]

_WALLS: tuple[Colour, ...] = ((200, 210, 220), (170, 190, 200), (210, 200, 180), (150, 170, 150),
                              (220, 220, 225))
_FLOORS: tuple[Colour, ...] = ((60, 90, 130), (80, 110, 150), (110, 110, 110), (50, 60, 80))


class HomeScene:
    """Frames and sound of a home scenario.

    Parameters
    ----------
    scenario
        A ``task: home`` scenario.
    width, height
        Frame size in pixels.
    sample_rate
        Audio sample rate in Hz.
    """

    def __init__(self, scenario: Scenario, width: int, height: int, sample_rate: int) -> None:
        if scenario.task != "home":
            raise ValueError(f"HomeScene renders home scenarios, not {scenario.task}")
        self.scenario, self.width, self.height = scenario, width, height
        cond, seed = scenario.conditions, scenario.seed
        self._look_seed = cond.look_seed if cond.look_seed is not None else seed
        room = sub_rng(self._look_seed, "room")
        self.floor_y = float(room.uniform(0.5, 0.62))
        self.background = self._draw_room(room)

        d = cond.distractors
        dist = sub_rng(seed, "home-distractors")
        self.tv_on = random_intervals(dist, scenario.seconds, 1.2 * d, 5, 30)
        self._tv_shots = dist.uniform(0, 1, (64, 3))
        self.pet_walks = [(random_pet(sub_rng(self._look_seed, "pet")),
                           self._walk(dist, a, b, 0.12)) for a, b in
                          random_intervals(dist, scenario.seconds, 1.0 * d, 3, 15)]
        self._switches = sorted(float(x) for x in dist.uniform(0, scenario.seconds,
                                                               int(dist.poisson(0.8 * d * scenario.seconds / 60))))
        self._lights_on = bool(dist.random() < (0.3 if cond.lighting == "dark" else 0.8))
        self.people: list[tuple[PersonLook, Walk, bool]] = []
        for i, ev in enumerate(scenario.events):
            if ev.label == "person":
                r = sub_rng(seed, "event", i)
                via_door = bool(r.random() < 0.4)
                self.people.append((random_person(sub_rng(self._look_seed, "person", i)),
                                    self._walk(r, ev.start, ev.end, 0.25, via_door), via_door))
        self.optics = Optics(cond, width, height, seed, glare_at=(self._window[0] / width, 0.3),
                             shake_scale=0.15)
        self.plan = self._sound_plan(sample_rate)

    def _walk(self, rng: np.random.Generator, a: float, b: float, speed: float,
              via_door: bool = False) -> Walk:
        door = self._door_x / self.width
        side = -0.08 if rng.random() < 0.5 else 1.08
        entry = door if via_door else side
        exit_x = door if via_door and rng.random() < 0.5 else (-0.08 if rng.random() < 0.5 else 1.08)
        return plan_walk(rng, a, b, self.floor_y, entry, exit_x, speed)

    # -- video ---------------------------------------------------------------------------

    def light(self, t_s: float) -> float:
        """Room light level at ``t_s`` relative to the camera's exposure (switches toggle it)."""
        on = self._lights_on ^ (sum(1 for s in self._switches if s <= t_s) % 2 == 1)
        cond = self.scenario.conditions
        if cond.lighting == "dark":
            level = 2.6 if on else 1.0  # a lamp in a dark room
        else:
            level = 1.0 if on else 0.55  # daylight alone
        # An IR camera lights the room itself; a lamp changes its picture much less.
        return 1.0 + 0.12 * (level - 1.0) if cond.ir else level

    def frame(self, t_s: float) -> U8:
        """The camera frame at ``t_s``: ``height x width x 3`` BGR uint8."""
        img = self.background.copy()
        x0, y0, x1, y1 = self._tv
        tv = next(((a, b) for a, b in self.tv_on if a <= t_s < b), None)
        flicker = 0.0
        if tv is not None:
            shot = self._tv_shots[int((t_s - tv[0]) / 2.5) % len(self._tv_shots)]
            flicker = 0.6 + 0.4 * abs(np.sin(7.0 * t_s + 10 * shot[0]))
            cv2.rectangle(img, (x0, y0), (x1, y1), tuple(float(255 * c * flicker) for c in shot), -1)
            bx = x0 + int((x1 - x0) * ((t_s * 0.3 + shot[1]) % 1.0) * 0.6)
            cv2.rectangle(img, (bx, y0 + (y1 - y0) // 3), (bx + (x1 - x0) // 3, y1), (240, 240, 240), -1)
        if any(ev.label in ("smoke_alarm", "co_alarm") and ev.start <= t_s < ev.end
               for ev in self.scenario.events) and (t_s % 1.0) < 0.5:
            cv2.circle(img, self._led, max(1, self.width // 80), (40, 40, 255), -1)
        for pet, walk in self.pet_walks:
            if walk.times[0] <= t_s < walk.times[-1]:
                x, y, phase, heading = walk.at(t_s)
                draw_pet(img, pet, x, y, phase if walk.moving(t_s) else 0.0, heading, self.floor_y)
        for person, walk, _ in self.people:
            if walk.times[0] <= t_s < walk.times[-1]:
                x, y, phase, _h = walk.at(t_s)
                draw_person(img, person, x, y, phase, 1.0 if walk.moving(t_s) else 0.0, self.floor_y)
        return self.optics.apply(img, t_s, self.light(t_s) + 0.08 * flicker)

    def _draw_room(self, rng: np.random.Generator) -> U8:
        w, h = self.width, self.height
        fy = int(self.floor_y * h)
        wall, floor = pick(rng, _WALLS), pick(rng, _FLOORS)
        img = np.empty((h, w, 3), np.uint8)
        img[:fy] = np.array(wall, np.uint8)
        img[fy:] = np.array(floor, np.uint8)
        k = 1
        while fy + k * k * h // 60 < h:  # floor boards, closer together far away
            cv2.line(img, (0, fy + k * k * h // 60), (w, fy + k * k * h // 60), shade(floor, 0.8), 1)
            k += 1
        cv2.line(img, (0, fy), (w, fy), shade(wall, 0.6), max(1, h // 60))
        slots = list(rng.permutation(5))  # five places along the back wall
        sx = [int(w * (0.1 + 0.18 * s + rng.uniform(-0.03, 0.03))) for s in slots]
        wx = sx[0]
        self._window = (wx, int(0.12 * h), wx + int(0.22 * w), int(0.42 * h))
        cv2.rectangle(img, self._window[:2], self._window[2:], (235, 215, 190), -1)
        cv2.rectangle(img, self._window[:2], self._window[2:], (240, 240, 240), max(1, w // 80))
        self._door_x = sx[1] + int(0.06 * w)
        cv2.rectangle(img, (sx[1], fy - int(0.42 * h)), (sx[1] + int(0.13 * w), fy), pick(rng, _FLOORS), -1)
        cv2.circle(img, (sx[1] + int(0.11 * w), fy - int(0.2 * h)), max(1, w // 100), (60, 160, 200), -1)
        sofa = pick(rng, ((60, 60, 140), (120, 90, 60), (90, 90, 90), (60, 120, 60)))
        cv2.rectangle(img, (sx[2], fy - int(0.14 * h)), (sx[2] + int(0.25 * w), fy + int(0.02 * h)), sofa, -1)
        cv2.rectangle(img, (sx[2], fy - int(0.06 * h)), (sx[2] + int(0.25 * w), fy + int(0.02 * h)),
                      shade(sofa, 1.2), -1)
        tx = sx[3]
        cv2.rectangle(img, (tx, fy - int(0.07 * h)), (tx + int(0.16 * w), fy), shade(floor, 0.7), -1)
        self._tv = (tx + int(0.01 * w), fy - int(0.2 * h), tx + int(0.15 * w), fy - int(0.08 * h))
        cv2.rectangle(img, self._tv[:2], self._tv[2:], (20, 20, 20), -1)
        lx = sx[4]
        cv2.line(img, (lx, fy), (lx, fy - int(0.3 * h)), (50, 50, 50), max(1, w // 100))
        cv2.ellipse(img, (lx, fy - int(0.3 * h)), (int(0.04 * w), int(0.03 * h)), 0, 180, 360,
                    mix(wall, (200, 240, 255), 0.6), -1)
        cv2.rectangle(img, (int(w * rng.uniform(0.3, 0.6)), int(0.15 * h)),
                      (int(w * rng.uniform(0.65, 0.8)), int(0.3 * h)), pick(rng, _FLOORS), max(1, w // 60))
        self._led = (int(w * rng.uniform(0.3, 0.7)), int(0.03 * h))
        cv2.circle(img, self._led, max(2, w // 40), (235, 235, 235), -1)
        return img

    # -- audio ---------------------------------------------------------------------------

    def audio(self, n0: int, n: int) -> F32:
        """Samples ``[n0, n0 + n)`` of the room microphone, float32 mono."""
        return self.plan.render(n0, n)

    def _sound_plan(self, sr: int) -> SoundPlan:
        sc, seed = self.scenario, self.scenario.seed
        noise, d = sc.conditions.noise, sc.conditions.distractors
        ra = sub_rng(seed, "home-audio")
        beds: list[Bed] = [
            NoiseBed(seed, "room", lowpass_fir(float(ra.uniform(200, 500)), sr), 0.01 + 0.08 * noise,
                     sr, tuple((0.2, float(ra.uniform(0.02, 0.2)), float(ra.uniform(0, 6))) for _ in range(2))),
            NoiseBed(seed, "mic", np.ones(1), 0.001 + 0.004 * noise, sr),
        ]
        if ra.random() < 0.5:  # mains hum from an appliance
            hum = 0.002 + 0.01 * noise
            beds.append(Drone(50.0 if ra.random() < 0.5 else 60.0, (hum, 0.6 * hum, 0.3 * hum), sr))
        atoms: list[Atom] = []
        for i, ev in enumerate(sc.events):
            r = sub_rng(seed, "event-sound", i)
            a, b = int(round(ev.start * sr)), int(round(ev.end * sr))
            level = float(r.uniform(0.12, 0.35))
            if ev.label == "speech":
                voice = random_voice(sub_rng(self._look_seed, "voice", i))
                syl = plan_speech(r, voice, ev.start, ev.end)
                atoms += speech_atoms(syl, voice, sr, float(r.uniform(0.08, 0.3)), seed, ("speech", i))
            elif ev.label == "smoke_alarm":
                square = (ev.variant or ("tone", "square")[int(r.integers(2))]) == "square"
                freq = 520.0 if square else float(r.uniform(2950, 3300))
                beds.append(PatternTone(a, b, T3, T3_CYCLE, freq, level, sr, square))
            elif ev.label == "co_alarm":
                beds.append(PatternTone(a, b, T4, T4_CYCLE, float(r.uniform(2950, 3450)), level, sr))
            elif ev.label == "glass_break":
                atoms.append(atom(sr, ev.start, ev.end - ev.start, float(r.uniform(0.25, 0.6)), seed,
                                  ("glass", i), glass))
            elif ev.label == "dog_bark":
                t, k = ev.start + float(r.uniform(0, 0.05)), 0
                while t < ev.end - 0.08:
                    dur = min(float(r.uniform(0.12, 0.25)), ev.end - t)
                    atoms.append(atom(sr, t, dur, level * float(r.uniform(0.7, 1.0)), seed,
                                      ("bark", i, k), bark))
                    t, k = t + dur + float(r.uniform(0.15, 0.6)), k + 1
        for j, (_, walk, door) in enumerate(self.people):
            step = 0.02 + 0.05 * float(ra.random())
            atoms += [atom(sr, t, 0.1, step, seed, ("step", j, k), thump)
                      for k, t in enumerate(walk.steps())]
            if door:
                atoms.append(atom(sr, walk.times[0], 0.25, 0.15, seed, ("door", j), thump))
        rd = sub_rng(seed, "home-distractor-sounds")
        for j, (a0, b0) in enumerate(self.tv_on):
            atoms += music_atoms(rd, a0, b0, sr, float(rd.uniform(0.02, 0.07)), seed, ("tv", j))
        for j in range(int(rd.poisson(1.0 * d * sc.seconds / 60))):
            atoms.append(atom(sr, float(rd.uniform(0, sc.seconds)), 1.6, float(rd.uniform(0.1, 0.3)),
                              seed, ("doorbell", j), doorbell))
        for j in range(int(rd.poisson(0.6 * d * sc.seconds / 60))):
            atoms.append(atom(sr, float(rd.uniform(0, sc.seconds)), float(rd.uniform(0.6, 2.0)),
                              float(rd.uniform(0.08, 0.2)), seed, ("beeps", j), beeps))
        return SoundPlan(beds, atoms)
