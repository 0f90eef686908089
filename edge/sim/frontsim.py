"""Feature-level simulation: a scenario as the rows the real front ends would give serving.

This module owns turning a labelled :class:`~edge.sim.scenario.Scenario` into what a fusion
model over front ends reads (:mod:`edge.front.features`): per frame target, the face stage's or
person stage's vector and ``speech.p``, laid out by :func:`edge.front.features.compose` in
:meth:`FrontSpec.default(task) <edge.front.features.FrontSpec.default>` order, plus the window's
audio. No pixels are drawn: simulator pixels did not transfer to real footage.

* **Face** (driver): per subject (per scenario) baselines drawn around what the real face stage
  measured, so a model learns relative changes, not one person's numbers; events move them.
  Narrow eyes are scaled window by window as serving scales them, when the card asks
  (:mod:`edge.front.eyebase`).
* **Person** (home): detections of the people in ``person`` events at the stage's 4 fps, held
  between processed frames as the cascade does, and the empty-room false positives measured
  (a fixed object scoring about 0.45 with runs above 0.5), so one frame is never enough.
* **Audio**: the simulator's renderer (:class:`edge.sim.render.Simulator`) makes the bed and
  the synthetic sounds; real sounds (:class:`edge.sim.frontaudio.SoundBank`) voice a share of the speech, glass and
  dog events (a real sound's label is re-cut to where it is within 40 dB of its peak, as the
  dev set's labels are) and add unlabelled negatives (rain, a robin, a camera shutter) at
  random SNRs. ``speech.p`` is not simulated: the real silero VAD
  (:class:`edge.front.vad.StreamingVad`) runs on the mixed audio, and each target takes the
  highest chunk probability within half a target spacing, as :class:`edge.front.cascade.Cascade`.

The per-frame stage rows (face, hand, person) and what they were measured against on real
footage are in :mod:`edge.sim.frontrows`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from edge.errors import ConfigError
from edge.front.features import FrontSpec, compose
from edge.sim.frontaudio import SR, SoundBank, mix_audio, speech_at, vad_chunks
from edge.sim.frontrows import face_frames, hand_frames, person_frames
from edge.sim.scenario import Event, Scenario, random_scenario, with_extra_events
from edge.sim.sound import sub_rng

if TYPE_CHECKING:
    from edge.evaluate.perturb import FrontChange


# -- windows -------------------------------------------------------------------------------------


#: Per task, the camera rates (frames per second) a simulated scenario draws from by default.
CAMERA_FPS: dict[str, tuple[float, ...]] = {"driver": (15.0, 30.0), "home": (10.0, 15.0, 25.0)}


def check_camera_fps(fps: tuple[float, ...]) -> None:
    """``--fps``: distinct camera rates of 1-120 frames a second (empty: the task's own)."""
    if any(not 1.0 <= f <= 120.0 for f in fps) or len(set(fps)) != len(fps):
        raise ConfigError(f"--fps: distinct camera rates of 1-120 frames a second, not "
                          f"{' '.join(f'{f:g}' for f in fps)}")


def check_eye_glances(share: float, task: str) -> None:
    """``--eye-glances``: a share of 0-1, of a driver's glances."""
    if not 0.0 <= share <= 1.0:
        raise ConfigError(f"--eye-glances: a share of the glances away, 0-1, not {share:g}")
    if share and task != "driver":
        raise ConfigError(f"--eye-glances: the driver's glances; task {task!r} has none")


@dataclass(frozen=True)
class Layout:
    """How serving cuts windows for the model: its card's window and the stages' rates."""

    seconds: float = 2.0  # video span of a window
    frames: int = 8  # frame targets in it
    audio_seconds: float = 2.0
    hop_s: float = 0.25  # windows every hop; a window's label is the last hop's
    person_rate: float = 4.0  # frames per second the person stage processes
    hand_rate: float = 4.0  # frames per second the hand stage processes
    # The camera rates a scenario draws from (frames per second); empty: the task's own,
    # CAMERA_FPS (edge train --fps widens them: a 6 fps camera's blink is one frame shut)
    camera_fps: tuple[float, ...] = ()
    # The share of the driver's glances away that the eyes lead (edge.sim.frontrows.face_frames;
    # edge train / edge eval --eye-glances): 0 leaves them to the head
    eye_glances: float = 0.0


@dataclass(frozen=True)
class FrontWindows:
    """Every window of one simulated scenario, as the model's inputs and labels."""

    front: np.ndarray  # [n, T, F] float32
    front_mask: np.ndarray  # [n, T] float32
    audio: np.ndarray  # [n, 1, M, C] float32
    audio_mask: np.ndarray  # [n, C] float32
    labels: np.ndarray  # [n, classes] float32: fraction of the last hop each class covers
    t_end: np.ndarray  # [n] s


class _Held:
    """A stage result as compose reads it."""

    __slots__ = ("v",)

    def __init__(self, v: np.ndarray) -> None:
        self.v = v

    def vector(self) -> np.ndarray:
        return self.v


def simulate_windows(sc: Scenario, spec: FrontSpec, mel: object, layout: Layout,
                     bank: SoundBank, vad: object,
                     change: FrontChange | None = None) -> FrontWindows:
    """The windows of ``sc`` ending every ``layout.hop_s`` from the first hop on.

    ``mel`` is the card's :class:`edge.features.logmel.LogMelSpec`; ``vad`` a
    :class:`edge.front.vad.StreamingVad` (reset here). Deterministic in the scenario's seed.
    ``change(front, mask)`` (:func:`edge.evaluate.perturb.front_change`) alters each window's
    front-end features before the driver's baselines, as ``edge eval --perturb`` does serving.
    """
    from edge.features.logmel import LogMelSpec, log_mel
    from edge.sim.scenario import label_fraction

    assert isinstance(mel, LogMelSpec)
    rng = sub_rng(sc.seed, "front-frames")
    audio, labels_sc = mix_audio(sc, bank)
    chunks = vad_chunks(audio, vad)
    fps = float(rng.choice(list(layout.camera_fps or CAMERA_FPS[sc.task])))
    t_frames = np.arange(int(sc.seconds * fps) + 1) / fps
    def at_rate(rate: float) -> tuple[np.ndarray, np.ndarray]:
        """Frames a stage at ``rate`` processes, and per frame the one whose result it holds."""
        keep, last = [], -1e9
        for k, tf in enumerate(t_frames):  # the cascade's rate rule: within 90 % of a period
            if tf - last >= 0.9 / rate:
                keep.append(k)
                last = tf
        proc = np.asarray(keep)
        return proc, np.searchsorted(proc, np.arange(len(t_frames)), side="right") - 1

    hands = None
    if sc.task == "driver":
        rows = face_frames(labels_sc, t_frames, layout.eye_glances)
        held = np.arange(len(t_frames))
        if "hand" in spec.stages:
            hproc, hheld = at_rate(layout.hand_rate)
            hrows = hand_frames(labels_sc, t_frames[hproc], rows[hproc])
            hands = (hrows, hheld)
    else:
        proc, held = at_rate(layout.person_rate)
        rows = person_frames(labels_sc, t_frames[proc])
    dropped = rng.random(len(t_frames)) < rng.uniform(0, 0.02)  # frames the camera lost
    n_audio = int(round(layout.audio_seconds * SR))
    pad = np.zeros(n_audio, np.float32)
    cols = log_mel(np.concatenate([pad, audio]), mel)
    n_cols = mel.n_frames(n_audio)
    step = layout.seconds / layout.frames
    out: list[tuple[object, ...]] = []
    k_end = int(round(sc.seconds / layout.hop_s + 1e-6))
    eyes = spec.eye_scaler() if sc.task == "driver" else None  # as serving, window by window
    # From the first hop on, as serving ticks: a run's first windows hold a few frames (targets
    # before the first frame masked, as the aligner masks them) and a little audio.
    for k in range(1, k_end + 1):
        t_end = k * layout.hop_s
        targets = t_end - layout.seconds + step * np.arange(1, layout.frames + 1)
        idx = np.clip(np.round(targets * fps).astype(int), 0, len(t_frames) - 1)
        valid = ~dropped[idx] & (targets >= -0.75 / fps)
        res = [_Held(rows[held[i]]) if held[i] >= 0 else None for i in idx]
        hres = None if hands is None else [
            _Held(hands[0][hands[1][i]]) if hands[1][i] >= 0 else None for i in idx]
        driver = sc.task == "driver"
        front, fmask = compose(spec, valid, face=res if driver else None,
                               person=None if driver else res,
                               speech=speech_at(chunks, targets, step / 2), hand=hres)
        if change is not None:
            front = change(front, fmask)
        if eyes is not None:
            front = eyes(front, fmask)
        n0 = int(round(t_end * SR)) - n_audio
        c0 = (n0 + n_audio) // mel.hop_length
        a = cols[:, c0: c0 + n_cols]
        amask = (n0 + np.arange(n_cols) * mel.hop_length >= 0).astype(np.float32)
        if not amask.any():
            a = np.zeros_like(a)
        y = label_fraction(labels_sc, t_end - layout.hop_s, t_end)
        out.append((front, fmask, a[None], amask, y, np.float64(t_end)))
    c = list(zip(*out))
    return FrontWindows(np.stack(c[0]), np.stack(c[1]), np.stack(c[2]).astype(np.float32),
                        np.stack(c[3]), np.stack(c[4]), np.asarray(c[5], np.float64))


def random_front_scenario(task: str, seconds: float, rng: np.random.Generator,
                          extra_rates: dict[str, float] | None = None) -> Scenario:
    """:func:`~edge.sim.scenario.random_scenario`, and now and then a scene with no events at
    all (an empty seat, an empty house: the front ends' absence without any class);
    ``extra_rates`` adds events per minute of some classes where they fit."""
    sc = random_scenario(task, seconds, rng)  # type: ignore[arg-type]
    if rng.random() < 0.06:
        sc = sc.model_copy(update={"events": ()})
    elif task == "driver" and rng.random() < 0.3:
        sc = with_glances(sc, rng)
    if extra_rates and sc.events:
        sc = with_extra_events(sc, extra_rates, rng)
    return sc


def with_glances(sc: Scenario, rng: np.random.Generator) -> Scenario:
    """``sc`` with a run of short glances away (0.3-0.8 s, 1-2.5 s apart), each labelled
    ``distracted`` on its own: a driver checking a mirror or a passenger is distracted only
    while looking, so a window holding a glance is not distracted once the head is back. The
    random timelines' distractions last 1-6 s; real glances are shorter (driver-dev-head-turn:
    about 0.5 s every 1.9 s)."""
    n = int(rng.integers(3, 8))
    t = float(rng.uniform(0.0, max(0.0, sc.seconds - 10.0)))
    glances: list[Event] = []
    for _ in range(n):
        dur = float(rng.uniform(0.3, 0.8))
        if t + dur > sc.seconds:
            break
        glances.append(Event(label="distracted", start=round(t, 3), end=round(t + dur, 3),
                             variant=("left", "right")[int(rng.integers(2))]))
        t += dur + float(rng.uniform(1.0, 2.5))
    if not glances:
        return sc
    lo, hi = glances[0].start, glances[-1].end
    kept = tuple(e for e in sc.events if e.label != "distracted" or e.end <= lo or e.start >= hi)
    return sc.model_copy(update={"events": tuple(sorted(kept + tuple(glances),
                                                          key=lambda e: (e.start, e.label)))})
