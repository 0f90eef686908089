"""The cards ``edge train`` starts from: a model's I/O contract, classes and preprocessing,
before training fills in metrics, thresholds and provenance. Pixel models (``make_card``) read
frames and log-mel; front models (``make_front_card``) read the front ends' features
(:class:`~edge.front.features.FrontSpec`) and log-mel."""

from __future__ import annotations

from typing import TYPE_CHECKING

from edge.errors import ConfigError
from edge.features.frames import VideoSpec
from edge.features.logmel import LogMelSpec
from edge.runtime.card import ClassInfo, ModelCard, TensorInfo
from edge.sim.scenario import CLASSES

if TYPE_CHECKING:
    from edge.front.features import FrontSpec

DESCRIPTIONS = {
    "eyes_closed": ("eyes closed (blink excluded by duration rules downstream)", "video"),
    "yawning": ("mouth wide open in a yawn", "both"),
    "distracted": ("head turned away from the road", "video"),
    "phone": ("a phone held to the ear or in the hand", "video"),
    "talking": ("the driver is speaking", "both"),
    "person": ("a person is in view", "video"),
    "speech": ("someone is speaking", "audio"),
    "smoke_alarm": ("smoke alarm T3 pattern sounding", "audio"),
    "co_alarm": ("CO alarm T4 pattern sounding", "audio"),
    "glass_break": ("glass breaking", "audio"),
    "dog_bark": ("a dog barking", "audio"),
}


# Per task: model input side (pixels) and seconds of audio per window. Eyelids need more
# pixels than a person in a room; a CO alarm's T4 cycle (four beeps, then 5 s of silence) needs
# 6 s of audio to always hold one group of beeps.
TASK_SHAPES = {"driver": (96, 2.0), "home": (64, 6.0)}


def make_card(task: str, name: str) -> ModelCard:
    """The card of a reference model (I/O contract and preprocessing), before metrics."""
    classes = CLASSES[task]
    side, audio_seconds = TASK_SHAPES.get(task, (64, 2.0))
    vspec = VideoSpec(
        height=side, width=side, channels=1, colour="gray", mean=(0.45,), std=(0.25,),
        resize="block-area",
    )
    mspec = LogMelSpec()
    seconds, frames = 2.0, 8
    n_cols = mspec.n_frames(int(round(audio_seconds * mspec.sample_rate)))
    return ModelCard(
        name=name,
        task=task,
        classes=[
            ClassInfo(name=c, description=DESCRIPTIONS[c][0], modality=DESCRIPTIONS[c][1])
            for c in classes
        ],
        window={"seconds": seconds, "frames": frames, "audio_seconds": audio_seconds},
        video=vspec.to_dict(),
        audio=mspec.to_dict(),
        inputs={
            "video": TensorInfo(shape=["B", frames, 1, side, side], description="frames, TCHW"),
            "video_mask": TensorInfo(shape=["B", frames], description="1 where a frame is real"),
            "audio": TensorInfo(shape=["B", 1, mspec.n_mels, n_cols], description="log-mel"),
            "audio_mask": TensorInfo(shape=["B", n_cols], description="1 where a column is real"),
        },
        outputs={"logits": TensorInfo(shape=["B", len(classes)], description="sigmoid logits")},
        notes=(
            "Trained on edge's simulator only. It demonstrates the pipeline; it is not a "
            "safety-rated detector. Train on your own recordings for real use."
        ),
    )


#: Per class, for models over front-end features: (description, modality). ``speech.p`` is an
#: audio feature (it joins the audio side), so an audio class hears the VAD too. A phone shows
#: as a hand beside or below the face (the hand stage) with the head pose and the audio.
FRONT_DESCRIPTIONS = {
    **DESCRIPTIONS,
    "eyes_closed": ("eyes closed: both eye aspect ratios low (a blink is a short dip; duration "
                    "rules downstream)", "video"),
    "distracted": ("head turned away from the road (yaw/pitch, or the face lost after a turn)",
                   "video"),
    "phone": ("a phone at the ear or in the hand: a hand beside or below the face, head pose, "
              "sound", "both"),
    "person": ("a person is in view (person detector over several frames)", "video"),
}


def _driver_notes(spec: FrontSpec) -> str:
    """What a driver card's notes say of its front ends, from the sections ``spec`` turns on."""
    text = ("How often the hand stage finds a real hand near a face is simulated, not measured "
            "(no real clip showed one). ")
    eb = spec.eye_baseline
    if eb is not None:
        text += ("Eye openness is scaled to the driver's own (front.eye_baseline) from eyes of "
                 f"{eb.floor:g} and more looking ahead; "
                 + (f"eyes that never reach it read as closing for {eb.narrow_after} windows "
                    "looking ahead, then as narrow open eyes. " if eb.narrow_after else
                    "eyes narrower than that still read as closing. "))
    whole = [f"{k} (front.road_{k})" for k, on in (("pitch", spec.road_pitch),
                                                  ("roll", spec.road_roll)) if on is not None]
    if spec.road_yaw is not None:
        text += ("Yaw is measured from the driver's own straight-ahead, the median of his yaw "
                 "when his head rests there, past 2 degrees (front.road_yaw)"
                 + (", and " + " and ".join(whole) + " likewise, whole" if whole else "") + ". ")
    elif whole:
        text += (" and ".join(whole).capitalize() + (" are" if len(whole) > 1 else " is")
                 + " measured from the driver's own, the median while his head rests, taken off "
                 "whole. ")
    return text


def make_front_card(task: str, name: str, frames: int = 8, gaze: bool = False) -> ModelCard:
    """The card of a fusion model over front-end features (I/O contract), before metrics;
    ``frames`` targets per window (the serving config's ``window.frames`` must match);
    ``gaze``: the driver's model reads gaze too (:meth:`FrontSpec.default`)."""
    from edge.front.features import FrontSpec

    classes = CLASSES[task]
    _, audio_seconds = TASK_SHAPES.get(task, (64, 2.0))
    spec = FrontSpec.default(task, gaze)
    mspec = LogMelSpec()
    seconds = 2.0
    if not 2 <= frames <= 64:
        raise ConfigError(f"--frames: frame targets per window must be 2..64, not {frames}")
    n_cols = mspec.n_frames(int(round(audio_seconds * mspec.sample_rate)))
    nf = len(spec.features)
    return ModelCard(
        name=name,
        task=task,
        classes=[ClassInfo(name=c, description=FRONT_DESCRIPTIONS[c][0],
                           modality=FRONT_DESCRIPTIONS[c][1]) for c in classes],
        window={"seconds": seconds, "frames": frames, "audio_seconds": audio_seconds},
        video={},
        audio=mspec.to_dict(),
        front=spec.to_dict(),
        inputs={
            "front": TensorInfo(shape=["B", frames, nf], description="per-frame front-end "
                                "features in front.features order (stage units)"),
            "front_mask": TensorInfo(shape=["B", frames],
                                     description="1 where a target has a frame"),
            "audio": TensorInfo(shape=["B", 1, mspec.n_mels, n_cols], description="log-mel"),
            "audio_mask": TensorInfo(shape=["B", n_cols], description="1 where a column is real"),
        },
        outputs={"logits": TensorInfo(shape=["B", len(classes)], description="sigmoid logits")},
        notes=(
            "Trained on feature-level simulation (edge.sim.frontsim: the front ends' outputs "
            "with noise measured on real footage) and real sounds; not on real labelled video. "
            "It demonstrates the pipeline; it is not a safety-rated detector. "
            + (_driver_notes(spec) if task == "driver" else "")
            + "Judge it on real recordings."
        ),
    )
