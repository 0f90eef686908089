"""``front_ends:`` in a config: which front-end stages run, at which rate, and on what.

Config types only: nothing here imports the stages or a runtime (edge.config reads this).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FaceConfig(_Model):
    """The face stage: detector every ``detect_every`` processed frames, landmarks between."""

    rate: float | None = Field(
        None, gt=0, le=240,
        description="Most frames per second it processes, by frame time (unset: every frame).",
    )
    detect_every: int = Field(
        10, ge=1, description="Run the face detector on every Nth processed frame; the landmark "
        "model tracks the face between (and the detector runs again when it loses it)."
    )
    min_face: float = Field(
        0.06, gt=0, lt=1, description="Smallest face (box height / frame height) that counts; a "
        "smaller one is reported absent ('face too small')."
    )
    zoom: bool = Field(
        True, description="Where the whole frame finds no face, the detector looks closer (around "
        "where the face was, else at the next of the frame's squares in turn): faces under about "
        "a quarter of the frame's height are found. One detector run a detection more."
    )
    mask_absent: bool = Field(
        True, description="Frames without a face are masked for the fusion model: an absent "
        "face is never read as closed eyes."
    )
    absent_degraded: float = Field(
        2.0, gt=0, description="Seconds without a face after which health reports the camera "
        "degraded ('face absent 12.0 s')."
    )
    hidden_degraded: float = Field(
        3.0, gt=0, description="Seconds a face in view has its eyes hidden (dark lenses, a "
        "shadow over them) after which health reports the camera degraded ('eyes hidden 3.0 s'): "
        "closed eyes cannot be seen then. Judged on the last second of face frames (3 at least)."
    )
    new_driver_after: float | None = Field(
        20.0, gt=0, description="Seconds without a face after which a model's driver baselines "
        "(the eyes scaled to the driver's own, yaw, pitch and roll measured from his "
        "straight-ahead) start again, as at a stream's start: the seat was left, and the next "
        "face may be another driver's, with narrower eyes or sitting elsewhere. null: one "
        "baseline for the stream's whole life."
    )
    gaze: bool = Field(
        False, description="Also read where the irises sit (the iris model on each eye: about as "
        "much again as the face mesh). Turned on for a model that reads gaze (face.gaze_x, "
        "face.gaze_y); a stage without it reports none."
    )


class PersonConfig(_Model):
    """The person detector: a few frames a second are enough to say whether anyone is there."""

    rate: float | None = Field(4.0, gt=0, le=240, description="Most frames per second it processes.")
    min_score: float = Field(0.5, gt=0, lt=1, description="Detection score that counts as a person.")
    zoom: bool = Field(
        True, description="Where the whole frame finds nobody, the detector looks at one of the "
        "frame's squares of its short side (where a person was last found, else the next in "
        "turn): persons down to about a third of the frame's height are found. One detector run "
        "more on such a frame."
    )


class HandConfig(_Model):
    """Hands: the palm detector, each palm confirmed by the hand-landmark model; a few frames a
    second show a hand held to the ear."""

    rate: float | None = Field(4.0, gt=0, le=240, description="Most frames per second it processes.")
    min_score: float = Field(0.5, gt=0, lt=1, description="Palm detection score that counts.")
    min_presence: float = Field(
        0.5, ge=0, lt=1, description="Hand-presence probability (hand-landmark model) that "
        "confirms a palm; 0: every palm counts unconfirmed (the detector alone takes bare skin "
        "for palms)."
    )


class VadConfig(_Model):
    """Speech activity on audio chunks as they arrive (32 ms at 16 kHz), state carried."""

    threshold: float = Field(0.5, gt=0, lt=1, description="Probability that starts speech.")
    neg_threshold: float = Field(
        0.35, gt=0, lt=1, description="Probability below which speech ends (hysteresis)."
    )


class FrontEndsConfig(_Model):
    """Pretrained front ends (engines/front, made by ``edge front-ends import``) that run on new
    frames and audio before the fusion model, each stage at its own rate."""

    dir: str = Field("engines/front", description="Folder of the front-end ONNX files and cards "
                     "(relative: to the first of paths.roots, like the model).")
    engine: Literal["onnx", "tensorrt"] = Field("onnx", description="Backend of the front ends.")
    threads: int = Field(1, ge=1, le=64, description="Intra-op threads of each front end.")
    int8: bool = Field(
        False, description="Run each front end's INT8 build (NAME.int8.onnx, written by `edge "
        "front-ends build --int8` only for models within their accuracy gate); FP32 for the others."
    )
    workers: bool = Field(
        True, description="Live runs (edge run): each frame stage runs in its own thread as "
        "frames arrive, and a tick only collects its results (waiting at most a quarter hop, "
        "up to 0.1 s, for the frames published by then). Off: the stages run inside the tick. "
        "Replays, edge eval and training always run them inside the tick (deterministic)."
    )
    face: FaceConfig | None = Field(None, description="Face detection, landmarks and geometry.")
    person: PersonConfig | None = Field(None, description="Person detection.")
    hand: HandConfig | None = Field(None, description="Hand (palm) detection.")
    vad: VadConfig | None = Field(None, description="Speech activity detection.")
