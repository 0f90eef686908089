"""Pure geometry of the landmark cascade: rotated square ROIs, crops, and face measures.

* :class:`Roi` - a rotated square region of a frame (pixels), the crop a landmark model sees;
  built from a detection (:func:`roi_from_detection`) or from the previous frame's landmarks
  (:func:`roi_from_landmarks`), the way mediapipe's face and hand graphs do it: a box, a
  rotation that makes a keypoint pair level (the eye line for faces), scaled (1.5 for faces) and
  made square on its long side.
* :func:`crop` - the ROI warped into a model input; :meth:`Roi.to_frame` maps crop
  coordinates back.
* Face measures on the 468-point mesh: :func:`eye_aspect_ratio` (6-point EAR),
  :func:`mouth_open_ratio`, :func:`head_pose` (yaw, pitch, roll from the mesh's 3-D points);
  :func:`eye_roi` and :func:`iris_offset`, the eye crop the iris model reads and where in it
  the iris sits.

Frame coordinates are continuous pixels: pixel ``(i, j)`` covers ``[i, i+1] x [j, j+1]``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# Face-mesh indices (subject's left / right; the subject's right eye is on the image's left).
# 6-point EAR (Soukupova & Cech): p1, p4 the corners, (p2, p6) and (p3, p5) upper/lower lid pairs.
RIGHT_EYE_EAR = (33, 160, 158, 133, 153, 144)
LEFT_EYE_EAR = (362, 385, 387, 263, 373, 380)
# mouth: inner-lip midpoints (upper 13, lower 14), outer corners (61 right, 291 left)
MOUTH_INNER = (13, 14)
MOUTH_CORNERS = (61, 291)
# head pose: outer eye corners (right 33, left 263), outer mouth corners, nose tip 1
EYE_OUTER = (33, 263)
NOSE_TIP = 1


@dataclass(frozen=True)
class Roi:
    """A rotated square region of a frame.

    Attributes
    ----------
    cx, cy
        Centre in frame pixels.
    side
        Side length in frame pixels.
    angle
        Rotation in radians of the crop's x axis in the image (y down): positive is clockwise
        on screen. The crop is upright when this angle undoes the keypoints' tilt.
    """

    cx: float
    cy: float
    side: float
    angle: float

    def axes(self) -> tuple[np.ndarray, np.ndarray]:
        """Unit vectors of the crop's x and y axes in the frame."""
        c, s = math.cos(self.angle), math.sin(self.angle)
        return np.array([c, s]), np.array([-s, c])

    def to_frame(self, pts: np.ndarray, size: int) -> np.ndarray:
        """Points ``[..., 2+]`` in a ``size x size`` crop to frame pixels.

        Parameters
        ----------
        pts
            ``(x, y[, z])`` in crop pixels; a third column (depth in crop pixels) is scaled to
            frame pixels.
        size
            Crop side in pixels.

        Returns
        -------
        np.ndarray
            The same shape, in frame pixels.
        """
        p = np.asarray(pts, np.float64)
        k = self.side / size
        ex, ey = self.axes()
        u, v = (p[..., 0] - size / 2) * k, (p[..., 1] - size / 2) * k
        out = p.copy()
        out[..., 0] = self.cx + u * ex[0] + v * ey[0]
        out[..., 1] = self.cy + u * ex[1] + v * ey[1]
        if p.shape[-1] > 2:
            out[..., 2] = p[..., 2] * k
        return out

    def to_crop(self, pts: np.ndarray, size: int) -> np.ndarray:
        """Frame pixels ``[..., 2]`` to crop pixels (the inverse of :meth:`to_frame`)."""
        p = np.asarray(pts, np.float64)
        k = size / self.side
        ex, ey = self.axes()
        dx, dy = p[..., 0] - self.cx, p[..., 1] - self.cy
        return np.stack([(dx * ex[0] + dy * ex[1]) * k + size / 2, (dx * ey[0] + dy * ey[1]) * k + size / 2],
                        axis=-1)

    def crop_matrix(self, size: int) -> np.ndarray:
        """2x3 affine from crop pixel indices to frame pixel indices (``cv2.WARP_INVERSE_MAP``)."""
        k = self.side / size
        ex, ey = self.axes()
        a = np.column_stack([ex * k, ey * k])
        # pixel index i sits at continuous coordinate i + 0.5 in both images
        t = np.array([self.cx, self.cy]) + a @ np.array([0.5 - size / 2, 0.5 - size / 2]) - 0.5
        return np.column_stack([a, t])


def line_angle(p0: np.ndarray, p1: np.ndarray) -> float:
    """Angle (radians, y down) of the line from ``p0`` to ``p1`` in frame pixels."""
    return math.atan2(float(p1[1] - p0[1]), float(p1[0] - p0[0]))


def roi_from_detection(box_px: np.ndarray, kp0: np.ndarray, kp1: np.ndarray, scale: float = 1.5) -> Roi:
    """The ROI of a detection: box centre, rotation levelling ``kp0 -> kp1``, square of
    ``scale`` times the box's long side (mediapipe's detection-to-ROI for faces and palms
    without shift).

    Parameters
    ----------
    box_px
        ``(x0, y0, x1, y1)`` in frame pixels.
    kp0, kp1
        The rotation keypoints in frame pixels (face: right eye, then left eye).
    scale
        The card's ``landmark_roi.scale``.

    Returns
    -------
    Roi
        The region.
    """
    b = np.asarray(box_px, np.float64)
    side = scale * max(float(b[2] - b[0]), float(b[3] - b[1]))
    return Roi(float(b[0] + b[2]) / 2, float(b[1] + b[3]) / 2, side, line_angle(kp0, kp1))


def roi_from_landmarks(pts_px: np.ndarray, i0: int, i1: int, scale: float = 1.5) -> Roi:
    """The next frame's ROI from this frame's landmarks: rotation levelling landmarks
    ``i0 -> i1``, the landmarks' extent along the rotated axes, square of ``scale`` times its
    long side, centred on it.

    Mediapipe takes the axis-aligned extent; along the rotated axes the square stays tight
    when the head rolls.

    Parameters
    ----------
    pts_px
        ``[N, 2+]`` landmarks in frame pixels.
    i0, i1
        Indices of the rotation pair (face: 33 and 263, the outer eye corners).
    scale
        Enlargement of the square.

    Returns
    -------
    Roi
        The region.
    """
    p = np.asarray(pts_px, np.float64)[:, :2]
    angle = line_angle(p[i0], p[i1])
    c, s = math.cos(angle), math.sin(angle)
    u = p[:, 0] * c + p[:, 1] * s
    v = -p[:, 0] * s + p[:, 1] * c
    um, vm = (u.min() + u.max()) / 2, (v.min() + v.max()) / 2
    side = scale * max(float(u.max() - u.min()), float(v.max() - v.min()))
    return Roi(float(um * c - vm * s), float(um * s + vm * c), side, angle)


def eye_roi(pts_px: np.ndarray, i0: int, i1: int, scale: float) -> Roi:
    """The crop of one eye for the iris model: centred between its corners ``i0`` and ``i1``
    (mesh indices, the one on the image's left first), levelled along them, square, ``scale``
    times the corner-to-corner distance (in the image plane) on a side."""
    p = np.asarray(pts_px, np.float64)[:, :2]
    a, b = p[i0], p[i1]
    c = (a + b) / 2
    side = scale * float(np.hypot(*(b - a)))
    return Roi(float(c[0]), float(c[1]), side, line_angle(a, b))


def iris_offset(iris_xy: np.ndarray, size: int, scale: float) -> tuple[float, float]:
    """Where the iris centre sits in an :func:`eye_roi` crop of ``size`` pixels: ``(x, y)``
    from the corners' midpoint in half the corner-to-corner distance, x positive toward the
    crop's right (the image's, as head yaw turns), y positive up (as head pitch turns)."""
    half = size / (2.0 * scale)
    return (float(iris_xy[0]) - size / 2) / half, (size / 2 - float(iris_xy[1])) / half


def crop(image: np.ndarray, roi: Roi, size: int, swap_rb: bool = False) -> np.ndarray:
    """The ROI of ``image`` as a ``size x size`` uint8 image (bilinear, border replicated, as
    mediapipe's landmark graphs crop).

    Parameters
    ----------
    image
        ``H x W x 3`` uint8.
    roi
        The region in frame pixels.
    size
        Output side.
    swap_rb
        Swap the first and last channels of the (small) result: BGR frame, RGB model.

    Returns
    -------
    np.ndarray
        ``size x size x 3`` uint8.
    """
    import cv2

    out = cv2.warpAffine(image, roi.crop_matrix(size), (size, size),
                         flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE)
    return np.ascontiguousarray(out[:, :, ::-1]) if swap_rb else out


# -- face measures ------------------------------------------------------------------------------


def eye_aspect_ratio(pts: np.ndarray, idx: tuple[int, int, int, int, int, int]) -> float:
    """Six-point eye aspect ratio ``(|p2-p6| + |p3-p5|) / (2 |p1-p4|)``.

    With the mesh's depth (3 columns) the distances are 3-D, so the eye's width does not
    foreshorten when the head turns (in the image plane alone a 45 degree yaw inflates the far
    eye's ratio by about 1.5x); for a frontal face both read the same.

    Parameters
    ----------
    pts
        ``[N, 2]`` or ``[N, 3]`` landmarks (frame pixels, depth in the same scale).
    idx
        ``(p1, p2, p3, p4, p5, p6)``: corners p1, p4; upper lid p2, p3; lower lid p6, p5
        (:data:`RIGHT_EYE_EAR`, :data:`LEFT_EYE_EAR`).

    Returns
    -------
    float
        About 0.25-0.35 open, under 0.15 closed; NaN when the corners coincide.
    """
    p = np.asarray(pts, np.float64)[:, :3]
    p1, p2, p3, p4, p5, p6 = (p[i] for i in idx)
    width = float(np.linalg.norm(p1 - p4))
    if width <= 1e-9:
        return math.nan
    return float(np.linalg.norm(p2 - p6) + np.linalg.norm(p3 - p5)) / (2.0 * width)


def mouth_open_ratio(pts: np.ndarray) -> float:
    """Inner-lip gap (13 to 14) over mouth width (61 to 291), in the image plane; NaN when the
    corners coincide."""
    p = np.asarray(pts, np.float64)[:, :2]
    width = float(np.linalg.norm(p[MOUTH_CORNERS[0]] - p[MOUTH_CORNERS[1]]))
    if width <= 1e-9:
        return math.nan
    return float(np.linalg.norm(p[MOUTH_INNER[0]] - p[MOUTH_INNER[1]])) / width


def head_pose(pts: np.ndarray) -> tuple[float, float, float]:
    """Yaw, pitch and roll in degrees from the mesh's 3-D landmarks (weak perspective).

    The face's own axes are built from the landmarks: x from the right to the left outer eye
    corner (33 -> 263), y from the eyes' midpoint down to the mouth corners' midpoint (61, 291)
    made orthogonal to x, and the normal ``z = x cross y`` (pointing into the head; the mesh's
    depth grows away from the camera). The angles decompose that rotation against the
    camera's axes (x right, y down, z away) as roll about z, after yaw about y, after pitch
    about x:

    * yaw: positive when the face turns toward the image's right (the subject's left);
    * pitch: positive when the face turns up;
    * roll: positive when the eye line turns clockwise on screen.

    The eye-mouth plane of a real face is not quite vertical, so a frontal face reads a few
    degrees of pitch (no calibration is applied).

    Parameters
    ----------
    pts
        ``[468, 3]`` landmarks in frame pixels (depth in the same scale, as
        :meth:`Roi.to_frame` gives them).

    Returns
    -------
    tuple of float
        ``(yaw, pitch, roll)`` in degrees.
    """
    p = np.asarray(pts, np.float64)[:, :3]
    x = p[EYE_OUTER[1]] - p[EYE_OUTER[0]]
    down = (p[MOUTH_CORNERS[0]] + p[MOUTH_CORNERS[1]]) / 2 - (p[EYE_OUTER[0]] + p[EYE_OUTER[1]]) / 2
    nx = float(np.linalg.norm(x))
    if nx <= 1e-9:
        return math.nan, math.nan, math.nan
    x /= nx
    y = down - x * float(down @ x)
    ny = float(np.linalg.norm(y))
    if ny <= 1e-9:
        return math.nan, math.nan, math.nan
    y /= ny
    z = np.cross(x, y)
    # r = [x y z] = Rz(roll) @ Ry(-yaw) @ Rx(-pitch) in the camera's axes (y down, z away)
    r = np.column_stack([x, y, z])
    yaw = -math.degrees(math.asin(max(-1.0, min(1.0, -float(r[2, 0])))))
    pitch = -math.degrees(math.atan2(float(r[2, 1]), float(r[2, 2])))
    roll = math.degrees(math.atan2(float(r[1, 0]), float(r[0, 0])))
    return yaw, pitch, roll
