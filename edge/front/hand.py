"""Hands: mediapipe's palm detector (``engines/front/palm_detector.onnx``).

This module owns turning one camera frame into hand features: whether a palm is in view and
where the *highest* one is (a hand raised to the ear or the face is above a hand on the
wheel or in the lap). The detector is an SSD on a 192 x 192 letterbox; decoding, NMS and the
letterbox are :mod:`edge.front.ssd`'s. On real footage the detector alone takes bare skin for
palms (a V-neck under a face scored up to 0.77 in driver-dev-head-turn), so each palm is
confirmed by the hand-landmark model's hand-presence output on mediapipe's hand ROI (rotated
so the wrist-to-middle-finger line points up, shifted half a box towards the fingers, 2.6
times the box), as mediapipe's hand graph does before it trusts a palm. Where a hand is relative to the face is computed when
a window's features are composed (:func:`edge.front.features.compose`), from this stage's and
the face stage's results of the same frame. Run it at a few frames per second (5 fps is
plenty for a phone held to the ear), not on every frame.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge.errors import EngineError
from edge.front.card import FrontCard
from edge.front.engines import FRONT_DIR, open_front
from edge.front.geometry import Roi, crop
from edge.front.ssd import SsdDetector, to_value_range
from edge.runtime.base import Engine

PALM_NAME = "palm_detector"
LANDMARK_NAME = "hand_landmarks"
ROI_SCALE, ROI_SHIFT = 2.6, -0.5  # mediapipe palm_detection_detection_to_roi

HAND_FEATURES: tuple[str, ...] = ("present", "count", "score", "cx", "cy", "size")
"""Names of :meth:`HandResult.vector`'s entries, in order: palms found, how many, the best
score, and the centre (normalized to the frame) and box height (share of the frame height) of
the highest palm. All 0 when none was found."""


@dataclass(frozen=True)
class HandResult:
    """Palms found in one frame.

    Attributes
    ----------
    present : bool
        At least one palm at or above the stage's ``min_score``.
    count : int
        Palms kept (after NMS, at or above ``min_score``).
    score : float
        Best detection score (0.0 when none was kept).
    boxes : list of tuple
        Palm boxes ``(x0, y0, x1, y1)`` normalized to the frame, highest first.
    """

    present: bool
    count: int
    score: float
    boxes: list[tuple[float, float, float, float]] = field(default_factory=list)

    def vector(self) -> np.ndarray:
        """The features in :data:`HAND_FEATURES` order, float32."""
        if not self.present or not self.boxes:
            return np.zeros(len(HAND_FEATURES), np.float32)
        x0, y0, x1, y1 = self.boxes[0]
        return np.array([1.0, float(self.count), self.score, (x0 + x1) / 2, (y0 + y1) / 2,
                         y1 - y0], np.float32)


NO_HAND = HandResult(False, 0, 0.0)


class HandStage:
    """The palm detector on BGR frames.

    Parameters
    ----------
    front_dir : str or Path
        Folder holding ``palm_detector.onnx`` and its card.
    min_score : float
        Detections below this score are dropped (mediapipe's hand graph uses 0.5).
    type_key : str
        Engine backend (``onnx`` or ``tensorrt``).
    options : dict, optional
        Engine options (``threads`` defaults to 1).
    max_hands : int
        Keep at most this many palms after NMS (each costs one landmark run).
    int8 : bool
        Load ``palm_detector.int8.onnx`` where ``edge front-ends build --int8`` wrote one.
    min_presence : float
        Hand-presence probability of the landmark model that confirms a palm; 0 keeps every
        palm unconfirmed (no landmark model run).
    """

    def __init__(
        self,
        front_dir: str | Path = FRONT_DIR,
        min_score: float = 0.5,
        type_key: str = "onnx",
        options: dict[str, Any] | None = None,
        max_hands: int = 2,
        int8: bool = False,
        min_presence: float = 0.5,
    ) -> None:
        if not 0.0 <= min_score <= 1.0:
            raise EngineError(f"hand min_score must be in [0, 1], got {min_score}")
        self.detector = SsdDetector.open(PALM_NAME, front_dir, type_key, options, int8)
        self.min_score = float(min_score)
        self.max_hands = int(max_hands)
        self.min_presence = float(min_presence)
        self.landmarks: Engine[FrontCard] | None = None
        if self.min_presence > 0:
            self.landmarks = open_front(LANDMARK_NAME, front_dir, type_key, options)
            lc = self.landmarks.card
            self.lm_input = next(iter(lc.inputs))
            self.lm_size = int(lc.preprocess["width"])
            self.lm_range: list[float] = list(lc.preprocess.get("value_range", [0.0, 1.0]))
        self.rejected = 0  # palms the landmark model did not confirm

    @property
    def engine(self) -> Engine[FrontCard]:
        """The detector's engine (for ``describe()`` and warmup)."""
        return self.detector.engine

    def process(self, frame_bgr: np.ndarray) -> HandResult:
        """Find palms in one ``H x W x 3`` uint8 BGR frame (any size; letterboxed)."""
        img = np.asarray(frame_bgr)
        if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
            raise ValueError(f"expected an HxWx3 uint8 BGR frame, got {img.dtype} {img.shape}")
        det = self.detector.detect(img, self.max_hands, bgr=True)
        keep = det.scores >= self.min_score
        if self.landmarks is not None:
            h, w = img.shape[:2]
            for i in np.flatnonzero(keep):
                if self.presence(img, det.boxes[i], det.keypoints[i], w, h) < self.min_presence:
                    keep[i] = False
                    self.rejected += 1
        if not keep.any():
            return NO_HAND
        boxes = np.clip(det.boxes[keep], -0.25, 1.25)
        order = np.argsort((boxes[:, 1] + boxes[:, 3]) / 2, kind="stable")  # highest first
        return HandResult(
            present=True,
            count=int(keep.sum()),
            score=float(det.scores[keep].max()),
            boxes=[tuple(float(v) for v in boxes[i]) for i in order],  # type: ignore[misc]
        )

    def presence(self, frame_bgr: np.ndarray, box: np.ndarray, kps: np.ndarray, w: int,
                 h: int) -> float:
        """The landmark model's hand-presence probability on one palm's hand ROI."""
        assert self.landmarks is not None
        px = np.array([w, h], np.float64)
        wrist, middle = np.asarray(kps[0], np.float64) * px, np.asarray(kps[2], np.float64) * px
        v = middle - wrist
        angle = float(np.arctan2(v[0], -v[1]))  # the crop's up is wrist -> middle finger
        b = np.asarray(box, np.float64) * np.concatenate([px, px])
        side = max(b[2] - b[0], b[3] - b[1])
        c = np.array([(b[0] + b[2]) / 2, (b[1] + b[3]) / 2])
        roi = Roi(float(c[0]), float(c[1]), side, angle)
        _, ey = roi.axes()
        c = c + ey * ROI_SHIFT * side
        roi = Roi(float(c[0]), float(c[1]), ROI_SCALE * side, angle)
        x = to_value_range(crop(frame_bgr, roi, self.lm_size, swap_rb=True), self.lm_range)[None]
        out = self.landmarks.infer({self.lm_input: x})
        return float(np.asarray(out["presence"]).reshape(-1)[0])
