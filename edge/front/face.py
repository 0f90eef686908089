"""The face stage of the front-end cascade: detector, then face mesh tracked frame to frame.

:class:`FaceStage` is called once per new frame, in frame order. The detector (BlazeFace short
range) runs on the first frame, every ``detect_every`` frames and whenever tracking is lost;
between, the face mesh tracks: the next frame's ROI comes from this frame's landmarks (eye line
levelled, 1.5x, square, as mediapipe's face-mesh graph does), and the mesh's face-presence
logit says whether the face is still there. When it says no, the detector runs on the same
frame before absence is declared.

The detector sees the whole frame letterboxed into 128 x 128, so a 16:9 frame's height gets 72
of its pixels, and a face under about a quarter of the frame's height (a wide lens, a driver
seen from the mirror) is too few of them to be found, however many camera pixels it has: on the
dev clips made wider, a face at 0.16 of the height was found in 9 % of the frames, one at 0.18
in none. With ``zoom`` (the default), where the whole frame finds no face the detector looks
closer, one more run a detection: first around where the face was last seen, while that was
within :data:`ZOOM_RECENT` frames (as wide again on each side, at least half the short side),
else at the next of :func:`zoom_crops`' squares in turn (the short side's, then half of it,
overlapping by half), so a small face is found within that many detections and an empty seat
costs one detector run a frame more.

Each frame gives a :class:`FaceResult`: presence with a reason, box, and geometry (eye aspect
ratios, mouth opening, yaw/pitch/roll, and with ``gaze`` on where the irises sit between the
eye corners, :data:`EYE_CROP_SCALE`) that :meth:`FaceResult.vector` lays out in
:data:`FACE_FEATURES` order for the fusion model, and whether the eyes can be seen at all
(:func:`eye_contrast`, :func:`eyes_hidden`): behind dark lenses the mesh still puts eyes where
they should be and reads them open, so the pixels there are checked (for health, not as a
model input).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from edge.front.engines import FRONT_DIR, has_int8, open_front
from edge.front.geometry import (
    EYE_OUTER,
    LEFT_EYE_EAR,
    RIGHT_EYE_EAR,
    Roi,
    crop,
    eye_aspect_ratio,
    eye_roi,
    head_pose,
    iris_offset,
    mouth_open_ratio,
    roi_from_detection,
    roi_from_landmarks,
)
from edge.front.ssd import Detections, SsdDetector, to_value_range

#: Per-frame face features, in :meth:`FaceResult.vector` order. ``present`` is 1/0; the rest
#: are 0 when the face is absent. Units: ``face_size`` is box height / frame height; eye and
#: mouth values are ratios (eye aspect ratio about 0.25-0.35 open); angles are degrees;
#: ``cx``, ``cy`` the box centre normalized to the frame (where a hand is relative to it);
#: ``gaze_x``, ``gaze_y`` where the irises sit (:attr:`FaceResult.gaze_x`; 0 when the stage
#: does not read them).
FACE_FEATURES: tuple[str, ...] = (
    "present", "face_size", "eye_open_left", "eye_open_right", "mouth_open", "yaw", "pitch", "roll",
    "cx", "cy", "gaze_x", "gaze_y",
)
#: The gaze features, read only by a stage made with ``gaze=True`` (two iris-model runs a
#: frame, as much again as the face mesh).
GAZE_FEATURES: tuple[str, ...] = ("gaze_x", "gaze_y")
#: Squares the detector looks at where the whole frame finds no face, as shares of the frame's
#: short side (:func:`zoom_crops`).
ZOOM_LEVELS: tuple[float, ...] = (1.0, 0.5)
#: Frames after the face was last seen during which a closer look goes around where it was.
ZOOM_RECENT = 30


def zoom_crops(width: int, height: int,
               levels: Sequence[float] = ZOOM_LEVELS) -> list[tuple[int, int, int]]:
    """Square crops ``(x, y, side)`` of a ``width`` x ``height`` frame for the detector to look
    closer at: at each level squares of that share of the short side, overlapping by half (a
    face up to half a square's side lies wholly in one), level by level; none that would be the
    whole frame again (a square frame's first level)."""
    def starts(length: int, side: int) -> list[int]:
        if length <= side:
            return [0]
        n = math.ceil((length - side) / (side / 2)) + 1
        return sorted({int(round(v)) for v in np.linspace(0, length - side, n)})

    crops: list[tuple[int, int, int]] = []
    for level in levels:
        side = int(round(min(width, height) * level))
        if side < 16 or side >= max(width, height):
            continue
        crops += [(x, y, side) for y in starts(height, side) for x in starts(width, side)]
    return crops


#: The iris model's eye crop: this many times the eye's corner-to-corner distance on a side,
#: centred between the corners and levelled along them (mediapipe's iris graph crops so).
EYE_CROP_SCALE = 2.3

#: Past this head yaw (degrees) the eye turned away from the camera is measured from the one
#: facing it. The far eye is foreshortened and half behind the nose, and the mesh's lids on it
#: fall together while the head swings: at the onsets of driver-dev-head-turn's glances (yaw
#: -35 to -46) it measured 0.14 at 12 fps and 0.08-0.11 on two frames running at 6 fps, the
#: near eye 0.17-0.21, and at 6 fps the fusion model took them for closed eyes (a false
#: ``microsleep``). The near eye closes with it, so closing eyes still show.
FAR_EYE_YAW = 30.0

#: Bounds ``(spread, dark)`` under which a face's eyes are hidden (:func:`eyes_hidden`): the
#: eye region's brightness spread (10th to 90th percentile, nearest rank) and its median, each
#: over the cheek's brightness below the eye and as a median over the last second of frames
#: (:data:`HIDDEN_WINDOW_S`), both under either pair. Lids, lashes, iris and white make an eye's
#: spread: per frame 0.48-0.75 on alert-blink, 0.24-0.40 on head-turn's small turned face
#: (blinks included), 0.14-1.44 through eight cameras of docs/perception.md; a lens darkens and
#: flattens it (15 % transmission drawn over the same clips: medians 0.03-0.14 at 0.31-0.45 of
#: the cheek; 30 %: 0.06-0.29, alert-blink's bright eyes about 0.2 at 0.49). A region washed
#: flat by light is not dark (bright-flat head-turn 0.85-0.96); a dim camera's eyes are dark but
#: not flat (0.31-0.66 at 0.42 and more). The first pair is an eye barely showing, the second a
#: lens that passes a little of a bright eye. Over a second, no real eye came nearer the bounds
#: than 1.30 times (head-turn infrared-like).
HIDDEN_BOUNDS: tuple[tuple[float, float], ...] = ((0.18, 0.65), (0.30, 0.55))
#: The span of frames whose medians say whether the eyes are hidden (a turn that shows an eye
#: past the lens for a few frames does not end it); never fewer than 3 frames.
HIDDEN_WINDOW_S = 1.0
#: The cheek points under each eye whose brightness is the reference (mesh 425: the subject's
#: left cheek, 205: the right), below the rim of large sunglasses.
CHEEK: dict[tuple[int, ...], int] = {LEFT_EYE_EAR: 425, RIGHT_EYE_EAR: 205}

NO_FACE = "no face"
TOO_SMALL = "face too small"

_NAN = math.nan


@dataclass(frozen=True)
class FaceResult:
    """The face stage's result for one frame.

    Attributes
    ----------
    present
        A face big enough to measure is in view.
    reason
        Why not: ``""`` when present, ``"no face"``, ``"face too small"``.
    score
        Face-mesh presence probability when the mesh ran on a face, else the detector's best
        score (0 when nothing was found).
    box
        ``(x0, y0, x1, y1)`` normalized to the frame (landmarks' extent; may pass the frame's
        edges), or None when no face was found.
    detected
        The detector ran on this frame.
    eye_open_left, eye_open_right
        Eye aspect ratio of the subject's left eye (mesh 362, 385, 387, 263, 373, 380) and right
        eye (33, 160, 158, 133, 153, 144); NaN when absent.
    mouth_open
        Inner-lip gap (13-14) over mouth width (61-291); NaN when absent.
    yaw, pitch, roll
        Head pose in degrees (:func:`edge.front.geometry.head_pose`); NaN when absent.
    face_size
        Box height / frame height; NaN when no face was found (set for a face too small).
    eye_spread, eye_dark
        :func:`eye_contrast` of the eyes (the higher of the two eyes each, of the eye facing
        the camera past :data:`FAR_EYE_YAW`); NaN when absent or off the frame. Not model
        inputs: :func:`eyes_hidden` says from a second of them whether the eyes can be seen.
    gaze_x, gaze_y
        Where the iris centres sit (:func:`edge.front.geometry.iris_offset`): from the eye
        corners' midpoint in half the corner-to-corner distance, levelled along the corners; x
        positive toward the image's right (as yaw), y positive up (as pitch). The mean of both
        eyes (of the eye facing the camera past :data:`FAR_EYE_YAW`). It moves with the eyes in
        the head and, the cornea standing in front of the corners, with the head's own turn.
        NaN when absent or not read (a stage without ``gaze``).
    """

    present: bool
    reason: str
    score: float
    box: tuple[float, float, float, float] | None
    detected: bool
    eye_open_left: float = _NAN
    eye_open_right: float = _NAN
    mouth_open: float = _NAN
    yaw: float = _NAN
    pitch: float = _NAN
    roll: float = _NAN
    face_size: float = _NAN
    eye_spread: float = _NAN
    eye_dark: float = _NAN
    gaze_x: float = _NAN
    gaze_y: float = _NAN

    @property
    def cx(self) -> float:
        """Box centre, x normalized to the frame (NaN without a box)."""
        return _NAN if self.box is None else (self.box[0] + self.box[2]) / 2

    @property
    def cy(self) -> float:
        """Box centre, y normalized to the frame (NaN without a box)."""
        return _NAN if self.box is None else (self.box[1] + self.box[3]) / 2

    def vector(self) -> np.ndarray:
        """The features in :data:`FACE_FEATURES` order, float32, NaN replaced by 0.

        Returns
        -------
        np.ndarray
            ``[len(FACE_FEATURES)]`` float32.
        """
        v = np.array([float(self.present)] + [getattr(self, k) for k in FACE_FEATURES[1:]], np.float64)
        if not self.present:
            v[1:] = 0.0
        return np.nan_to_num(v, nan=0.0).astype(np.float32)


def _width_2d(pts: np.ndarray, eye: tuple[int, ...]) -> float:
    """An eye's corner-to-corner width in the image plane (pixels)."""
    return float(np.hypot(*(pts[eye[0], :2] - pts[eye[3], :2])))


def eyes_hidden(spread: Sequence[float], dark: Sequence[float]) -> bool:
    """Whether a face's eyes are hidden (dark lenses, a deep shadow), from a second of frames'
    :func:`eye_contrast` (:attr:`FaceResult.eye_spread`, :attr:`FaceResult.eye_dark`): both
    medians under a pair of :data:`HIDDEN_BOUNDS`. The mesh still puts eyes there and reads
    them open, so closed eyes cannot be seen. False with fewer than 3 frames measured."""
    s = np.asarray(spread, np.float64)
    d = np.asarray(dark, np.float64)
    known = ~(np.isnan(s) | np.isnan(d))
    if known.sum() < 3:
        return False
    ms, md = float(np.median(s[known])), float(np.median(d[known]))
    return any(ms < bs and md < bd for bs, bd in HIDDEN_BOUNDS)


def eye_contrast(gray: np.ndarray, pts: np.ndarray, eye: tuple[int, ...]) -> tuple[float, float]:
    """How much of an eye shows, from the pixels where the mesh puts it.

    The region is the eye's corner-to-corner width ``w`` wide (1.2 w) and 0.6 w high around
    its six points' centre; the reference, a square of 0.4 w on the cheek under it
    (:data:`CHEEK`). An eye, open or shut, has lids, lashes and (open) iris and white: its
    brightness spreads; a dark lens over it is flat and darker than the skin.

    Parameters
    ----------
    gray
        ``H x W`` luminance of the frame (any dtype).
    pts
        Mesh landmarks in frame pixels.
    eye
        :data:`LEFT_EYE_EAR` or :data:`RIGHT_EYE_EAR`.

    Returns
    -------
    tuple[float, float]
        ``(spread, dark)``: the region's 90th minus 10th brightness percentile, and its median,
        each over the cheek's median; NaN where a region falls off the frame or the cheek is
        black.
    """
    h, w_img = gray.shape[:2]
    p = np.asarray(pts, np.float64)[:, :2]
    width = _width_2d(p, eye)
    c = p[list(eye)].mean(axis=0)

    def region(cx: float, cy: float, rx: float, ry: float) -> np.ndarray:
        x0, x1 = int(round(cx - rx)), int(round(cx + rx)) + 1
        y0, y1 = int(round(cy - ry)), int(round(cy + ry)) + 1
        if width < 2 or x0 < 0 or y0 < 0 or x1 > w_img or y1 > h:
            return np.empty(0, np.float32)
        return gray[y0:y1, x0:x1].astype(np.float32).ravel()

    area = region(c[0], c[1], 0.6 * width, 0.3 * width)
    k = p[CHEEK[eye]]
    cheek = region(k[0], k[1], 0.2 * width, 0.2 * width)
    if area.size < 4 or cheek.size < 4:
        return _NAN, _NAN
    ref = float(_ranks(cheek, (0.5,))[0])
    if ref < 1.0:
        return _NAN, _NAN
    lo, med, hi = _ranks(area, (0.1, 0.5, 0.9))
    return float(hi - lo) / ref, float(med) / ref


def _ranks(values: np.ndarray, qs: tuple[float, ...]) -> np.ndarray:
    """Nearest-rank quantiles by partial sort (a third of ``np.percentile``'s cost here)."""
    k = [min(len(values) - 1, int(q * len(values))) for q in qs]
    return np.partition(values, k)[k]


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-100.0, min(100.0, x))))


class FaceStage:
    """Face detection and face-mesh tracking over a stream of frames.

    Parameters
    ----------
    front_dir
        Folder of the front-end models and cards (``face_detector``, ``face_landmarks``).
    detect_every
        Run the detector at least every this many frames (1: every frame); it also runs on the
        first frame and whenever tracking is lost.
    min_face
        Faces whose box height is below this share of the frame height are reported absent
        (``"face too small"``).
    type_key
        Engine backend (``onnx``, ``tensorrt``).
    options
        Engine options (default: one intra-op thread).
    int8
        Load each model's INT8 build (``NAME.int8.onnx``) where ``edge front-ends build --int8``
        wrote one (it writes none for a model over its accuracy budget); FP32 otherwise.
    gaze
        Also read where the irises sit (:attr:`FaceResult.gaze_x`, ``gaze_y``): the iris model
        (``iris_landmarks``) on a crop of each eye that counts.
    zoom
        Where the whole frame finds no face, the detector looks closer (the module docstring):
        one more detector run a detection, so faces too small for the letterboxed frame are
        found.

    Attributes
    ----------
    on_mesh_input
        Called with ``(roi, tensor)`` for every face-mesh input the stage makes (None: not
        called); ``edge front-ends build --int8`` takes its calibration crops from here.
    landmarks
        The last processed frame's mesh landmarks ``[468, 3]`` in frame pixels (None when the
        mesh found no face; set for a face too small): for drawing over the frame.
    """

    def __init__(
        self,
        front_dir: str | Path = FRONT_DIR,
        detect_every: int = 10,
        min_face: float = 0.06,
        type_key: str = "onnx",
        options: dict[str, Any] | None = None,
        int8: bool = False,
        gaze: bool = False,
        zoom: bool = True,
    ) -> None:
        if detect_every < 1:
            raise ValueError(f"detect_every must be >= 1, not {detect_every}")
        self.detect_every = int(detect_every)
        self.min_face = float(min_face)
        self.zoom = bool(zoom)
        self._crops: dict[tuple[int, int], list[tuple[int, int, int]]] = {}
        self.on_mesh_input: Callable[[Roi, np.ndarray], None] | None = None
        det_engine = open_front("face_detector", front_dir, type_key, options,
                                int8=int8 and has_int8("face_detector", front_dir, type_key))
        self.detector = SsdDetector(det_engine)
        roi_cfg: dict[str, Any] = dict(det_engine.card.postprocess.get("landmark_roi", {}))
        k0, k1 = roi_cfg.get("rotation_keypoints", [0, 1])[:2]
        self.rotation_keypoints = (int(k0), int(k1))
        self.roi_scale = float(roi_cfg.get("scale", 1.5))
        self.mesh = open_front("face_landmarks", front_dir, type_key, options,
                               int8=int8 and has_int8("face_landmarks", front_dir, type_key))
        card = self.mesh.card
        self.mesh_input = next(iter(card.inputs))
        self.mesh_size = int(card.preprocess["width"])
        self.mesh_range: list[float] = list(card.preprocess.get("value_range", [0.0, 1.0]))
        self.presence_threshold = float(card.postprocess.get("presence", {}).get("threshold", 0.5))
        self.num_landmarks = int(card.postprocess.get("num_landmarks", 468))
        self.iris: Any = None
        if gaze:
            self.iris = open_front("iris_landmarks", front_dir, type_key, options,
                                   int8=int8 and has_int8("iris_landmarks", front_dir, type_key))
            pre = self.iris.card.preprocess
            self.iris_input = next(iter(self.iris.card.inputs))
            self.iris_size = int(pre["width"])
            self.iris_range: list[float] = list(pre.get("value_range", [0.0, 1.0]))
            # the model reads the eye whose corners the card calls left; the other is flipped
            flipped = pre.get("eye_corner_landmarks", {}).get("right", [362, 263])
            self.iris_flipped = (tuple(int(i) for i in flipped)
                                 if pre.get("flip_right_eye", True) else None)
        self.reset()

    def reset(self) -> None:
        """Forget the track: the next frame runs the detector."""
        self._roi: Roi | None = None
        self._since_detect = 0
        self.landmarks: np.ndarray | None = None
        self._frames = 0  # frames processed
        self._seen: tuple[int, tuple[float, float, float, float]] | None = None  # frame, box px
        self._next_crop = 0

    # -- steps --------------------------------------------------------------------------------
    def _looks(self, w: int, h: int) -> Iterator[tuple[int, int, int]]:
        """Where one detection looks, in order, until it finds a face: the whole frame
        (``side`` 0), then with ``zoom`` around the face last seen (while recent), else the next
        of :func:`zoom_crops`' squares in turn."""
        yield 0, 0, 0
        if not self.zoom:
            return
        short = min(w, h)
        if self._seen is not None and self._frames - self._seen[0] <= ZOOM_RECENT:
            x0, y0, x1, y1 = self._seen[1]
            side = int(min(short, max(short / 2, 3 * max(x1 - x0, y1 - y0))))
            if 16 <= side < max(w, h):
                cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
                x = int(round(min(max(cx - side / 2, 0), w - side)))
                y = int(round(min(max(cy - side / 2, 0), h - side)))
                yield x, y, side
                return
        crops = self._crops.get((w, h))
        if crops is None:
            crops = self._crops[(w, h)] = zoom_crops(w, h)
        if crops:
            k = self._next_crop % len(crops)
            self._next_crop = k + 1
            yield crops[k]

    def _detect(self, frame_bgr: np.ndarray) -> tuple[Roi | None, float]:
        """The ROI of the biggest face the detector finds (or None) and its score: in the whole
        frame, else (``zoom``) in a closer look (:meth:`_looks`)."""
        h, w = frame_bgr.shape[:2]
        self._since_detect = 0
        for x, y, side in self._looks(w, h):
            img = (frame_bgr if side == 0
                   else np.ascontiguousarray(frame_bgr[y:y + side, x:x + side]))
            dets: Detections = self.detector.detect(img, bgr=True)
            if len(dets):
                break
        else:
            return None, 0.0
        ih, iw = img.shape[:2]
        scale = np.array([iw, ih, iw, ih], np.float64)
        areas = (dets.boxes[:, 2] - dets.boxes[:, 0]) * (dets.boxes[:, 3] - dets.boxes[:, 1])
        i = int(np.argmax(areas))  # the driver is the nearest face
        box = dets.boxes[i] * scale + np.array([x, y, x, y], np.float64)
        kp = dets.keypoints[i].astype(np.float64) * np.array([iw, ih]) + np.array([x, y])
        i0, i1 = self.rotation_keypoints
        return roi_from_detection(box, kp[i0], kp[i1], self.roi_scale), float(dets.scores[i])

    def _landmarks(self, frame_bgr: np.ndarray, roi: Roi) -> tuple[np.ndarray, float]:
        """Mesh landmarks ``[468, 3]`` in frame pixels and the presence probability."""
        img = crop(frame_bgr, roi, self.mesh_size, swap_rb=True)
        x = to_value_range(img, self.mesh_range)[None]
        if self.on_mesh_input is not None:
            self.on_mesh_input(roi, x)
        out = self.mesh.infer({self.mesh_input: x})
        pts = np.asarray(out["landmarks"], np.float64).reshape(self.num_landmarks, 3)
        presence = _sigmoid(float(np.asarray(out["face_flag"]).ravel()[0]))
        return roi.to_frame(pts, self.mesh_size), presence

    # -- per frame ----------------------------------------------------------------------------
    def process(self, frame_bgr: np.ndarray) -> FaceResult:
        """Run the stage on the next frame (call once per new frame, in frame order).

        Parameters
        ----------
        frame_bgr
            ``H x W x 3`` uint8 BGR (OpenCV), any size.

        Returns
        -------
        FaceResult
            This frame's result.
        """
        if frame_bgr.ndim != 3 or frame_bgr.shape[2] != 3 or frame_bgr.dtype != np.uint8:
            raise ValueError(f"expected an HxWx3 uint8 BGR frame, got {frame_bgr.dtype} {frame_bgr.shape}")
        h, w = frame_bgr.shape[:2]
        detected = False
        det_score = 0.0
        roi = self._roi
        self._since_detect += 1
        self._frames += 1
        if roi is None or self._since_detect >= self.detect_every:
            detected = True
            found, det_score = self._detect(frame_bgr)
            # a scheduled detection that misses keeps the track: the mesh's presence decides
            roi = found or roi
        self.landmarks = None
        if roi is None:
            return self._lost(NO_FACE, det_score, detected)
        pts, presence = self._landmarks(frame_bgr, roi)
        if presence < self.presence_threshold and not detected:
            detected = True
            found, det_score = self._detect(frame_bgr)
            if found is None:
                return self._lost(NO_FACE, det_score, detected)
            pts, presence = self._landmarks(frame_bgr, found)
        if presence < self.presence_threshold:
            return self._lost(NO_FACE, max(det_score, presence), detected)
        self._roi = roi_from_landmarks(pts, EYE_OUTER[0], EYE_OUTER[1], self.roi_scale)
        self.landmarks = pts
        x0, y0 = pts[:, 0].min() / w, pts[:, 1].min() / h
        x1, y1 = pts[:, 0].max() / w, pts[:, 1].max() / h
        box = (float(x0), float(y0), float(x1), float(y1))
        self._seen = (self._frames, (x0 * w, y0 * h, x1 * w, y1 * h))
        size = float(y1 - y0)
        if size < self.min_face:
            return FaceResult(False, TOO_SMALL, presence, box, detected, face_size=size)
        yaw, pitch, roll = head_pose(pts)
        left, right = eye_aspect_ratio(pts, LEFT_EYE_EAR), eye_aspect_ratio(pts, RIGHT_EYE_EAR)
        eyes: tuple[tuple[int, ...], ...] = (LEFT_EYE_EAR, RIGHT_EYE_EAR)
        if abs(yaw) > FAR_EYE_YAW:  # the far eye is the narrower one in the image
            if _width_2d(pts, LEFT_EYE_EAR) < _width_2d(pts, RIGHT_EYE_EAR):
                left, eyes = right, (RIGHT_EYE_EAR,)
            else:
                right, eyes = left, (LEFT_EYE_EAR,)
        spread, dark = self._eyes_shown(frame_bgr, pts, eyes)
        gx, gy = self._gaze(frame_bgr, pts, eyes) if self.iris is not None else (_NAN, _NAN)
        return FaceResult(
            True, "", presence, box, detected,
            eye_open_left=left, eye_open_right=right,
            mouth_open=mouth_open_ratio(pts),
            yaw=yaw, pitch=pitch, roll=roll, face_size=size,
            eye_spread=spread, eye_dark=dark, gaze_x=gx, gaze_y=gy,
        )

    def _gaze(self, frame_bgr: np.ndarray, pts: np.ndarray,
              eyes: tuple[tuple[int, ...], ...]) -> tuple[float, float]:
        """The mean :func:`~edge.front.geometry.iris_offset` of the eyes that count."""
        size = self.iris_size
        got = []
        for eye in eyes:
            corners = (eye[0], eye[3])
            img = crop(frame_bgr, eye_roi(pts, *corners, EYE_CROP_SCALE), size, swap_rb=True)
            flip = corners == self.iris_flipped
            if flip:
                img = img[:, ::-1]
            x = to_value_range(np.ascontiguousarray(img), self.iris_range)[None]
            iris = np.asarray(self.iris.infer({self.iris_input: x})["iris"], np.float64)
            cx, cy = iris.reshape(-1, 3)[0, :2]
            got.append(iris_offset(np.array([size - cx if flip else cx, cy]), size,
                                   EYE_CROP_SCALE))
        gx, gy = np.mean(np.asarray(got), axis=0)
        return float(gx), float(gy)

    @staticmethod
    def _eyes_shown(frame_bgr: np.ndarray, pts: np.ndarray,
                    eyes: tuple[tuple[int, ...], ...]) -> tuple[float, float]:
        """:func:`eye_contrast` of the eyes that count, the higher of each (NaN if unknown):
        both must look hidden for the face's eyes to be."""
        import cv2

        # the mesh's extent and a margin: the regions may pass the landmarks a little
        pad = int(np.ceil(0.4 * max(_width_2d(pts, eye) for eye in eyes)))
        x0, y0 = np.floor(pts[:, :2].min(axis=0)).astype(int) - pad
        x1, y1 = np.ceil(pts[:, :2].max(axis=0)).astype(int) + 1 + pad
        h, w = frame_bgr.shape[:2]
        x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
        if x1 - x0 < 4 or y1 - y0 < 4:
            return _NAN, _NAN
        gray = cv2.cvtColor(np.ascontiguousarray(frame_bgr[y0:y1, x0:x1]), cv2.COLOR_BGR2GRAY)
        local = np.asarray(pts, np.float64)[:, :2] - (x0, y0)
        got = [eye_contrast(gray, local, eye) for eye in eyes]
        spread = [s for s, _ in got if not math.isnan(s)]
        dark = [d for _, d in got if not math.isnan(d)]
        if len(spread) < len(eyes):
            return _NAN, _NAN
        return max(spread), max(dark)

    def _lost(self, reason: str, score: float, detected: bool) -> FaceResult:
        self._roi = None
        return FaceResult(False, reason, score, None, detected)
