"""Person presence: mediapipe's BlazePose detector (``engines/front/person_detector.onnx``).

This module owns turning one camera frame into person features. The detector is an SSD whose
box is the person's *face* and whose four keypoints are the hip centre, a point at the
full-body radius, the shoulder centre and a point at the upper-body radius (mediapipe's
``pose_detection`` graph); decoding, NMS and the letterbox are :mod:`edge.front.ssd`'s. The body
box reported here is mediapipe's own pose region of interest: a square centred on the hip with
half-side the hip-to-``full_body_size_rotation`` distance (``AlignmentPointsRectsCalculator``),
clipped to the frame. Run it at a few frames per second (2-5 fps), not on every frame.

The detector sees the whole frame letterboxed into 224 x 224, and it finds a person by the head:
a room camera's person a third of the frame high has a head a few of those pixels across, and
is not found (home-dev-1 as a lens three times as wide sees it: 23 of 108 person frames). Where
the whole frame finds nobody, the stage (``zoom``) looks at one square of the frame's short
side (:data:`ZOOM_LEVELS`; three overlapping by at least half for 16:9), the one a person was
last found in while that is recent (:data:`ZOOM_RECENT`), else the next in turn; a person found
there must score :data:`ZOOM_MIN_SCORE`. Measured on every tenth frame of home-dev-1 with all
three squares looked at (at 0.5): three times as wide 105 of 108 found and none of its 32 empty
frames said person; as recorded and twice as wide, no frame changed. Squares of half the short
side said person on 31 of the 32 empty frames as recorded, so the stage looks no closer than
the short side.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge.errors import EngineError
from edge.front.card import FrontCard
from edge.front.engines import FRONT_DIR
from edge.front.face import zoom_crops
from edge.front.ssd import Detections, SsdDetector
from edge.runtime.base import Engine

PERSON_NAME = "person_detector"

PERSON_FEATURES: tuple[str, ...] = (
    "person_present",
    "person_count",
    "person_score",
    "person_area",
    "person_cx",
    "person_cy",
)
"""Names of :meth:`PersonResult.vector`'s entries, in order."""

#: Squares the detector looks at where the whole frame finds nobody, as shares of the frame's
#: short side (:func:`edge.front.face.zoom_crops`).
ZOOM_LEVELS: tuple[float, ...] = (1.0,)
#: Score a person found in a square must reach (or ``min_score``, if higher). Every fifth frame
#: of home-dev-1 that the whole frame found empty, the best of the three squares: a person a
#: third of the frame high 0.83 to 0.98 (tenth to ninetieth percentile), 154 of 155 at 0.7 or
#: more; the empty room blurred (Gaussian, sigma 2) 0.51-0.55, 26 of 27 frames over 0.5.
ZOOM_MIN_SCORE = 0.7
#: Processed frames after a person was last found in a square during which that square is
#: looked at first (2 s at 4 frames a second).
ZOOM_RECENT = 8


@dataclass(frozen=True)
class PersonResult:
    """People found in one frame.

    Attributes
    ----------
    present : bool
        At least one person at or above the stage's ``min_score``.
    count : int
        People kept (after NMS, at or above ``min_score``).
    score : float
        Best detection score (0.0 when none was kept).
    boxes : list of tuple
        Body boxes ``(x0, y0, x1, y1)`` normalized to the frame and clipped to it, best first.
    scores : list of float
        Score of each box.
    """

    present: bool
    count: int
    score: float
    boxes: list[tuple[float, float, float, float]] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)

    def vector(self) -> np.ndarray:
        """Features in :data:`PERSON_FEATURES` order, float32.

        Returns
        -------
        np.ndarray
            ``[present, count, best score, largest box area, its centre x, its centre y]``; area
            and centre are 0 when no one is present.
        """
        area = cx = cy = 0.0
        for x0, y0, x1, y1 in self.boxes:
            a = max(0.0, x1 - x0) * max(0.0, y1 - y0)
            if a > area:
                area, cx, cy = a, (x0 + x1) / 2, (y0 + y1) / 2
        return np.array([float(self.present), float(self.count), self.score, area, cx, cy],
                        dtype=np.float32)


NO_PERSON = PersonResult(False, 0, 0.0)


def body_boxes(det: Detections, frame_w: int, frame_h: int) -> list[tuple[float, float, float, float]]:
    """Body boxes from BlazePose keypoints, normalized to the frame and clipped to it.

    Parameters
    ----------
    det : Detections
        Detector output in normalized frame coordinates; keypoint 0 is the hip centre, keypoint
        1 lies at the full-body radius from it.
    frame_w, frame_h : int
        Frame size in pixels (the square is square in pixels, not in normalized units).

    Returns
    -------
    list of tuple
        One ``(x0, y0, x1, y1)`` per detection, in its order.
    """
    out: list[tuple[float, float, float, float]] = []
    for kp in det.keypoints:
        hx, hy = float(kp[0, 0]) * frame_w, float(kp[0, 1]) * frame_h
        ex, ey = float(kp[1, 0]) * frame_w, float(kp[1, 1]) * frame_h
        r = float(np.hypot(ex - hx, ey - hy))
        x0, x1 = (min(1.0, max(0.0, (hx + d) / frame_w)) for d in (-r, r))
        y0, y1 = (min(1.0, max(0.0, (hy + d) / frame_h)) for d in (-r, r))
        out.append((x0, y0, x1, y1))
    return out


class PersonStage:
    """The person detector on BGR frames.

    Parameters
    ----------
    front_dir : str or Path
        Folder holding ``person_detector.onnx`` and its card.
    min_score : float
        Detections below this score are dropped (the card's decoder keeps down to its own
        ``min_score_thresh``; 0.5 is mediapipe's pose graph's default).
    type_key : str
        Engine backend (``onnx`` or ``tensorrt``).
    options : dict, optional
        Engine options (``threads`` defaults to 1).
    max_people : int
        Keep at most this many detections after NMS.
    int8 : bool
        Load ``person_detector.int8.onnx`` where ``edge front-ends build --int8`` wrote one
        (none when it was over its accuracy budget); FP32 otherwise.
    zoom : bool
        Where the whole frame finds nobody, look at one square of the frame (the module
        docstring): one more detector run on such a frame, so small persons are found.
    """

    def __init__(
        self,
        front_dir: str | Path = FRONT_DIR,
        min_score: float = 0.5,
        type_key: str = "onnx",
        options: dict[str, Any] | None = None,
        max_people: int = 8,
        int8: bool = False,
        zoom: bool = True,
    ) -> None:
        if not 0.0 <= min_score <= 1.0:
            raise EngineError(f"person min_score must be in [0, 1], got {min_score}")
        self.detector = SsdDetector.open(PERSON_NAME, front_dir, type_key, options, int8)
        self.min_score = float(min_score)
        self.max_people = int(max_people)
        self.frames = 0  # frames processed, for health
        self.zoom = bool(zoom)
        self._crops: dict[tuple[int, int], list[tuple[int, int, int]]] = {}
        # (frame, frame size, square) where a person was last found in a square
        self._found: tuple[int, tuple[int, int], int] | None = None
        self._next_crop = 0

    @property
    def engine(self) -> Engine[FrontCard]:
        """The detector's engine (for ``describe()`` and warmup)."""
        return self.detector.engine

    def process(self, frame_bgr: np.ndarray) -> PersonResult:
        """Find people in one frame.

        Parameters
        ----------
        frame_bgr : np.ndarray
            ``H x W x 3`` uint8 BGR (OpenCV's order), any size; it is letterboxed to the
            model's input.

        Returns
        -------
        PersonResult
            Who is there, boxes normalized to the frame.
        """
        img = np.asarray(frame_bgr)
        if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
            raise ValueError(f"expected an HxWx3 uint8 BGR frame, got {img.dtype} {img.shape}")
        rgb = np.ascontiguousarray(img[:, :, ::-1])
        h, w = img.shape[:2]
        det = self._detect(rgb)
        self.frames += 1
        if det is None:
            return NO_PERSON
        return PersonResult(
            present=True,
            count=len(det),
            score=float(det.scores[0]),
            boxes=body_boxes(det, w, h),
            scores=[float(s) for s in det.scores],
        )

    def _detect(self, rgb: np.ndarray) -> Detections | None:
        """The detections in normalized frame coordinates: from the whole frame at or above
        ``min_score``, else (``zoom``) from one square of it at or above the higher of
        ``min_score`` and :data:`ZOOM_MIN_SCORE`; None when neither finds anyone."""
        det = self._kept(self.detector.detect(rgb, self.max_people))
        if det is not None or not self.zoom:
            return det
        h, w = rgb.shape[:2]
        crops = self._crops.get((w, h))
        if crops is None:
            crops = self._crops[(w, h)] = zoom_crops(w, h, ZOOM_LEVELS)
        if not crops:
            return None
        if (self._found is not None and self._found[1] == (w, h)
                and self.frames - self._found[0] <= ZOOM_RECENT):
            k = self._found[2]
        else:
            k = self._next_crop % len(crops)
            self._next_crop = k + 1
        x, y, side = crops[k]
        det = self._kept(self.detector.detect(
            np.ascontiguousarray(rgb[y:y + side, x:x + side]), self.max_people),
            max(self.min_score, ZOOM_MIN_SCORE))
        if det is None:
            return None
        self._found = (self.frames, (w, h), k)
        size = np.array([side / w, side / h], np.float32)
        at = np.array([x / w, y / h], np.float32)
        return Detections(det.boxes * np.tile(size, 2) + np.tile(at, 2),
                          det.keypoints * size + at, det.scores)

    def _kept(self, det: Detections, min_score: float | None = None) -> Detections | None:
        keep = det.scores >= (self.min_score if min_score is None else min_score)
        if not keep.any():
            return None
        return Detections(det.boxes[keep], det.keypoints[keep], det.scores[keep])
