"""SSD detector decoding for the mediapipe front ends (face, palm, person detectors).

Owns the arithmetic around an SSD-style detector, from the facts its card carries
(``postprocess.anchors``, ``postprocess.decode``, ``postprocess.nms``, ``preprocess``):

* :func:`ssd_anchors` - anchor centres the way mediapipe's ``SsdAnchorsCalculator`` lays them
  out (layers of the same stride share one grid; each layer adds one anchor per aspect ratio
  plus one interpolated scale).
* :func:`decode` - raw regressors and logits to boxes, keypoints and scores in the detector's
  normalized input space (``TensorsToDetectionsCalculator`` semantics).
* :func:`nms` - weighted or plain non-maximum suppression (``NonMaxSuppressionCalculator``).
* :func:`letterbox` / :class:`Letterbox` - keep-aspect resize with a black border into the input
  tensor, and the mapping of normalized input coordinates back to the frame (and forth).
* :class:`SsdDetector` - the above around an :class:`~edge.runtime.base.Engine`: an RGB frame
  in, :class:`Detections` in normalized frame coordinates out.

Coordinates: every normalized coordinate is x / width, y / height of the image it refers to
(input tensor or frame). Boxes are ``(x0, y0, x1, y1)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from edge.front.card import FrontCard
from edge.runtime.base import Engine

# -- anchors ------------------------------------------------------------------------------------


def _layer_scale(min_scale: float, max_scale: float, index: int, num_layers: int) -> float:
    if num_layers == 1:
        return (min_scale + max_scale) / 2
    return min_scale + (max_scale - min_scale) * index / (num_layers - 1)


def ssd_anchors(anchors_cfg: dict[str, Any]) -> np.ndarray:
    """Anchors from a card's ``postprocess.anchors`` (mediapipe ``SsdAnchorsCalculator`` options).

    Parameters
    ----------
    anchors_cfg
        ``num_layers``, ``min_scale``, ``max_scale``, ``input_size_height``/``_width``,
        ``anchor_offset_x``/``_y``, ``strides``, ``aspect_ratios``,
        ``interpolated_scale_aspect_ratio``, ``fixed_anchor_size``; ``num_anchors`` (optional)
        is checked.

    Returns
    -------
    np.ndarray
        ``[N, 4]`` float32 ``(cx, cy, w, h)`` normalized to the input; with ``fixed_anchor_size``
        ``w = h = 1`` (the regressors then scale by the input size alone).
    """
    a = anchors_cfg
    strides: list[int] = list(a["strides"])
    num_layers = int(a.get("num_layers", len(strides)))
    ratios: list[float] = list(a.get("aspect_ratios", [1.0]))
    interp = float(a.get("interpolated_scale_aspect_ratio", 1.0))
    if a.get("reduce_boxes_in_lowest_layer"):
        raise ValueError("reduce_boxes_in_lowest_layer anchors are not supported")
    fixed = bool(a.get("fixed_anchor_size", False))
    in_h, in_w = int(a["input_size_height"]), int(a["input_size_width"])
    ox, oy = float(a.get("anchor_offset_x", 0.5)), float(a.get("anchor_offset_y", 0.5))
    lo, hi = float(a["min_scale"]), float(a["max_scale"])
    out: list[np.ndarray] = []
    i = 0
    while i < num_layers:
        sizes: list[tuple[float, float]] = []  # (w, h) of each anchor per cell
        j = i
        while j < num_layers and strides[j] == strides[i]:
            scale = _layer_scale(lo, hi, j, num_layers)
            for r in ratios:
                sizes.append((scale * math.sqrt(r), scale / math.sqrt(r)))
            if interp > 0:
                nxt = 1.0 if j == num_layers - 1 else _layer_scale(lo, hi, j + 1, num_layers)
                s = math.sqrt(scale * nxt)
                sizes.append((s * math.sqrt(interp), s / math.sqrt(interp)))
            j += 1
        gh, gw = math.ceil(in_h / strides[i]), math.ceil(in_w / strides[i])
        ys, xs = np.meshgrid((np.arange(gh) + oy) / gh, (np.arange(gw) + ox) / gw, indexing="ij")
        k = len(sizes)
        wh = np.ones((k, 2)) if fixed else np.array(sizes, float)
        grid = np.empty((gh, gw, k, 4))
        grid[..., 0] = xs[..., None]
        grid[..., 1] = ys[..., None]
        grid[..., 2:] = wh
        out.append(grid.reshape(-1, 4))
        i = j
    anchors = np.concatenate(out).astype(np.float32)
    if "num_anchors" in a and len(anchors) != int(a["num_anchors"]):
        raise ValueError(f"anchor settings give {len(anchors)} anchors, the card says {a['num_anchors']}")
    return anchors


# -- decode -------------------------------------------------------------------------------------


def decode(
    boxes_raw: np.ndarray, scores_raw: np.ndarray, anchors: np.ndarray, decode_cfg: dict[str, Any]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Raw detector outputs to boxes, keypoints and scores above ``min_score_thresh``.

    Parameters
    ----------
    boxes_raw
        ``[1, N, C]`` or ``[N, C]`` regressors: box ``(x, y, w, h)`` at ``box_coord_offset``,
        keypoints ``(x, y)`` from ``keypoint_coord_offset``, in input pixels relative to anchors.
    scores_raw
        ``[1, N, 1]``, ``[N, 1]`` or ``[N]`` logits (or probabilities without ``sigmoid_score``).
    anchors
        ``[N, 4]`` from :func:`ssd_anchors`.
    decode_cfg
        The card's ``postprocess.decode`` (mediapipe ``TensorsToDetectionsCalculator`` options).

    Returns
    -------
    tuple of np.ndarray
        ``boxes [K, 4]`` ``(x0, y0, x1, y1)``, ``keypoints [K, nk, 2]`` ``(x, y)``, both
        normalized in the (letterboxed) input; ``scores [K]``; sorted by descending score.
    """
    d = decode_cfg
    n = anchors.shape[0]
    raw = np.asarray(boxes_raw, np.float32).reshape(n, -1)
    logit = np.asarray(scores_raw, np.float32).reshape(n, -1)[:, 0]
    if d.get("box_format", "x_center,y_center,w,h") != "x_center,y_center,w,h":
        raise ValueError(f"box_format {d.get('box_format')!r} is not supported")
    if d.get("sigmoid_score", True):
        clip = float(d.get("score_clipping_thresh", 0.0) or 0.0)
        if clip > 0:
            logit = np.clip(logit, -clip, clip)
        scores = 1.0 / (1.0 + np.exp(-logit.astype(np.float64)))
    else:
        scores = logit.astype(np.float64)
    keep = np.flatnonzero(scores >= float(d.get("min_score_thresh", 0.0)))
    keep = keep[np.argsort(-scores[keep], kind="stable")]
    raw, anc, scores = raw[keep], anchors[keep].astype(np.float64), scores[keep]
    bo = int(d.get("box_coord_offset", 0))
    # reverse_output_order: the regressors are (x, y, w, h); otherwise (y, x, h, w)
    ix, iy, iw, ih = (0, 1, 2, 3) if d.get("reverse_output_order", True) else (1, 0, 3, 2)
    xs, ys = float(d["x_scale"]), float(d["y_scale"])
    ws, hs = float(d["w_scale"]), float(d["h_scale"])
    cx = raw[:, bo + ix] / xs * anc[:, 2] + anc[:, 0]
    cy = raw[:, bo + iy] / ys * anc[:, 3] + anc[:, 1]
    if d.get("apply_exponential_on_box_size"):
        w = np.exp(raw[:, bo + iw] / ws) * anc[:, 2]
        h = np.exp(raw[:, bo + ih] / hs) * anc[:, 3]
    else:
        w = raw[:, bo + iw] / ws * anc[:, 2]
        h = raw[:, bo + ih] / hs * anc[:, 3]
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    nk = int(d.get("num_keypoints", 0))
    per = int(d.get("num_values_per_keypoint", 2))
    ko = int(d.get("keypoint_coord_offset", 4))
    kp = raw[:, ko:ko + nk * per].reshape(-1, nk, per)[:, :, :2].astype(np.float64)
    if not d.get("reverse_output_order", True):
        kp = kp[:, :, ::-1]
    kx = kp[:, :, 0] / xs * anc[:, 2:3] + anc[:, 0:1]
    ky = kp[:, :, 1] / ys * anc[:, 3:4] + anc[:, 1:2]
    keypoints = np.stack([kx, ky], axis=2)
    return boxes.astype(np.float32), keypoints.astype(np.float32), scores.astype(np.float32)


# -- non-maximum suppression --------------------------------------------------------------------


def box_overlap(box: np.ndarray, boxes: np.ndarray, overlap_type: str = "intersection_over_union") -> np.ndarray:
    """Overlap of one ``(x0, y0, x1, y1)`` box with each of ``boxes [K, 4]``.

    Parameters
    ----------
    box, boxes
        One box and ``K`` boxes in the same coordinates.
    overlap_type
        ``intersection_over_union`` (default; ``jaccard`` is the same), ``modified_jaccard``
        (intersection over the area of ``box``) or ``intersection_over_min``.

    Returns
    -------
    np.ndarray
        ``[K]`` overlaps in [0, 1] (0 where an area is empty).
    """
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    ix0 = np.maximum(box[0], b[:, 0])
    iy0 = np.maximum(box[1], b[:, 1])
    ix1 = np.minimum(box[2], b[:, 2])
    iy1 = np.minimum(box[3], b[:, 3])
    inter = np.clip(ix1 - ix0, 0, None) * np.clip(iy1 - iy0, 0, None)
    a0 = max(0.0, float(box[2] - box[0])) * max(0.0, float(box[3] - box[1]))
    a1 = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    kind = overlap_type.lower()
    if kind in ("intersection_over_union", "jaccard"):
        denom = a0 + a1 - inter
    elif kind == "modified_jaccard":
        denom = np.full_like(a1, a0)
    elif kind == "intersection_over_min":
        denom = np.minimum(a0, a1)
    else:
        raise ValueError(f"overlap_type {overlap_type!r} is not supported")
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(denom > 0, inter / np.where(denom > 0, denom, 1.0), 0.0)
    return out


def nms(
    boxes: np.ndarray,
    keypoints: np.ndarray,
    scores: np.ndarray,
    nms_cfg: dict[str, Any],
    max_detections: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Non-maximum suppression with a card's ``postprocess.nms`` settings.

    ``algorithm: weighted`` (mediapipe's face/palm/pose graphs): the best remaining detection and
    every remaining one overlapping it by more than ``min_suppression_threshold`` are merged
    into one, box and keypoints averaged with the scores as weights; the merged detection keeps
    the best score. ``default``: the overlapping ones are dropped.

    Parameters
    ----------
    boxes, keypoints, scores
        As returned by :func:`decode` (any order).
    nms_cfg
        ``min_suppression_threshold``, ``overlap_type``, ``algorithm``; optionally
        ``min_score_threshold`` and ``max_num_detections``.
    max_detections
        Keep at most this many (overrides ``max_num_detections``; None or <= 0: all).

    Returns
    -------
    tuple of np.ndarray
        ``boxes [M, 4]``, ``keypoints [M, nk, 2]``, ``scores [M]``, by descending score.
    """
    thr = float(nms_cfg.get("min_suppression_threshold", 0.3))
    kind = str(nms_cfg.get("overlap_type", "intersection_over_union"))
    weighted = str(nms_cfg.get("algorithm", "default")).lower() == "weighted"
    limit = max_detections if max_detections is not None else int(nms_cfg.get("max_num_detections", -1))
    min_score = float(nms_cfg.get("min_score_threshold", -math.inf))
    s = np.asarray(scores, np.float64).ravel()
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    k = np.asarray(keypoints, np.float64)
    k = k.reshape(len(s), k.shape[-2] if k.ndim == 3 else 0, 2)
    order = np.argsort(-s, kind="stable")
    order = order[s[order] >= min_score]
    ob: list[np.ndarray] = []
    ok: list[np.ndarray] = []
    os_: list[float] = []
    while order.size and (limit is None or limit <= 0 or len(os_) < limit):
        top = order[0]
        ov = box_overlap(b[top], b[order], kind)
        group = ov > thr
        group[0] = True
        members = order[group]
        if weighted:
            w = s[members] / s[members].sum()
            ob.append((b[members] * w[:, None]).sum(0))
            ok.append((k[members] * w[:, None, None]).sum(0))
        else:
            ob.append(b[top])
            ok.append(k[top])
        os_.append(float(s[top]))
        order = order[~group]
    nk = k.shape[1]
    return (np.array(ob, np.float32).reshape(-1, 4), np.array(ok, np.float32).reshape(-1, nk, 2),
            np.array(os_, np.float32))


# -- letterbox ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Letterbox:
    """Where a frame sits inside a letterboxed input tensor.

    The frame (``frame_w`` x ``frame_h`` pixels) was resized to ``new_w`` x ``new_h`` and placed
    at ``(left, top)`` in an ``in_w`` x ``in_h`` input, the rest black.
    """

    frame_w: int
    frame_h: int
    in_w: int
    in_h: int
    new_w: int
    new_h: int
    left: int
    top: int

    @classmethod
    def fit(cls, frame_w: int, frame_h: int, in_w: int, in_h: int) -> Letterbox:
        """The placement of a ``frame_w x frame_h`` frame, aspect kept and centred.

        Parameters
        ----------
        frame_w, frame_h
            Frame size in pixels.
        in_w, in_h
            Input tensor size in pixels.

        Returns
        -------
        Letterbox
            The placement.
        """
        s = min(in_w / frame_w, in_h / frame_h)
        nw, nh = max(1, round(frame_w * s)), max(1, round(frame_h * s))
        return cls(frame_w, frame_h, in_w, in_h, nw, nh, (in_w - nw) // 2, (in_h - nh) // 2)

    def to_frame(self, xy: np.ndarray) -> np.ndarray:
        """Normalized input coordinates ``[..., 2]`` (x, y) to normalized frame coordinates."""
        p = np.asarray(xy, np.float64)
        x = (p[..., 0] * self.in_w - self.left) / self.new_w
        y = (p[..., 1] * self.in_h - self.top) / self.new_h
        return np.stack([x, y], axis=-1)

    def to_input(self, xy: np.ndarray) -> np.ndarray:
        """Normalized frame coordinates ``[..., 2]`` to normalized input coordinates."""
        p = np.asarray(xy, np.float64)
        x = (p[..., 0] * self.new_w + self.left) / self.in_w
        y = (p[..., 1] * self.new_h + self.top) / self.in_h
        return np.stack([x, y], axis=-1)

    def boxes_to_frame(self, boxes: np.ndarray) -> np.ndarray:
        """Normalized input boxes ``[K, 4]`` (x0, y0, x1, y1) to normalized frame boxes."""
        b = np.asarray(boxes, np.float64).reshape(-1, 2, 2)
        return self.to_frame(b).reshape(-1, 4)


def to_value_range(img: np.ndarray, value_range: tuple[float, float] | list[float]) -> np.ndarray:
    """uint8 pixels 0..255 to float32 in ``value_range`` (``[lo, hi]``, linear)."""
    lo, hi = float(value_range[0]), float(value_range[1])
    return (img.astype(np.float32) * np.float32((hi - lo) / 255.0) + np.float32(lo)).astype(np.float32)


def letterbox(
    rgb: np.ndarray,
    width: int,
    height: int,
    value_range: tuple[float, float] | list[float] = (0.0, 1.0),
    swap_rb: bool = False,
) -> tuple[np.ndarray, Letterbox]:
    """Keep-aspect resize (bilinear) of an RGB uint8 frame into a zero-bordered input tensor.

    Parameters
    ----------
    rgb
        ``H x W x 3`` uint8 RGB frame.
    width, height
        The model's input size.
    value_range
        The card's ``preprocess.value_range``; the border is black (pixel 0, so ``lo`` in that
        range), as mediapipe's CPU ``ImageToTensorCalculator`` pads the image before scaling.
    swap_rb
        The frame is BGR (OpenCV): swap channels after the resize, on the small image.

    Returns
    -------
    tuple
        ``[1, height, width, 3]`` float32 tensor and its :class:`Letterbox`.
    """
    import cv2

    h, w = rgb.shape[:2]
    lb = Letterbox.fit(w, h, width, height)
    out = np.full((height, width, 3), float(value_range[0]), np.float32)
    small = cv2.resize(rgb, (lb.new_w, lb.new_h), interpolation=cv2.INTER_LINEAR)
    if swap_rb:
        small = small[:, :, ::-1]
    out[lb.top:lb.top + lb.new_h, lb.left:lb.left + lb.new_w] = to_value_range(small, value_range)
    return out[None], lb


# -- a detector around an engine ----------------------------------------------------------------


@dataclass(frozen=True)
class Detections:
    """Detections in normalized frame coordinates, best first.

    Attributes
    ----------
    boxes
        ``[M, 4]`` float32 ``(x0, y0, x1, y1)``.
    keypoints
        ``[M, nk, 2]`` float32 ``(x, y)`` in the card's ``postprocess.keypoints`` order.
    scores
        ``[M]`` float32 in [0, 1].
    """

    boxes: np.ndarray
    keypoints: np.ndarray
    scores: np.ndarray

    def __len__(self) -> int:
        return int(self.scores.shape[0])


class SsdDetector:
    """An SSD front end (face, palm or person detector) with its card's pre/post-processing.

    Parameters
    ----------
    engine
        From :func:`edge.front.engines.open_front`; its card must carry ``preprocess``
        (``width``, ``height``, ``value_range``) and ``postprocess`` (``anchors``, ``decode``,
        ``nms``), and outputs named ``boxes`` and ``scores``.
    """

    @classmethod
    def open(cls, name: str, front_dir: Any, type_key: str = "onnx",
             options: dict[str, Any] | None = None, int8: bool = False) -> "SsdDetector":
        """The detector ``name`` of ``front_dir`` (its INT8 build with ``int8`` where one was
        written); its card must ask for RGB input."""
        from edge.errors import EngineError
        from edge.front.engines import has_int8, open_front

        engine = open_front(name, front_dir, type_key, options,
                            int8=int8 and has_int8(name, front_dir, type_key))
        color = str(engine.card.preprocess.get("color", "RGB")).upper()
        if color != "RGB":
            raise EngineError(f"{name}: card asks for {color} input; only RGB is handled")
        return cls(engine)

    def __init__(self, engine: Engine[FrontCard]) -> None:
        self.engine = engine
        card = engine.card
        self.input_name = next(iter(card.inputs))
        self.width = int(card.preprocess["width"])
        self.height = int(card.preprocess["height"])
        self.value_range: list[float] = list(card.preprocess.get("value_range", [0.0, 1.0]))
        self.anchors = ssd_anchors(card.postprocess["anchors"])
        self.decode_cfg: dict[str, Any] = dict(card.postprocess["decode"])
        self.nms_cfg: dict[str, Any] = dict(card.postprocess.get("nms", {}))

    def detect(self, rgb: np.ndarray, max_detections: int | None = None, bgr: bool = False) -> Detections:
        """Detect in one uint8 frame.

        Parameters
        ----------
        rgb
            ``H x W x 3`` uint8 RGB (or BGR with ``bgr=True``).
        max_detections
            Keep at most this many after NMS (None: all).
        bgr
            The frame is OpenCV BGR; channels are swapped after the downscale (cheaper).

        Returns
        -------
        Detections
            In normalized frame coordinates (may extend past [0, 1] near the edges).
        """
        x, lb = letterbox(rgb, self.width, self.height, self.value_range, swap_rb=bgr)
        out = self.engine.infer({self.input_name: x})
        boxes, kps, scores = decode(out["boxes"], out["scores"], self.anchors, self.decode_cfg)
        boxes, kps, scores = nms(boxes, kps, scores, self.nms_cfg, max_detections)
        return Detections(lb.boxes_to_frame(boxes).astype(np.float32),
                          lb.to_frame(kps).astype(np.float32), scores)
