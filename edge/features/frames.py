"""Frame preprocessing: the one definition of how camera frames become model input tensors.

Parameters come from the model card (:class:`VideoSpec`), so a model is fed the way it was
trained; training, calibration and serving all call :func:`preprocess_frames`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from edge.runtime.card import spec_from_dict

# ITU-R BT.601 luma, the weights of cv2.COLOR_BGR2GRAY, in BGR order.
_LUMA_BGR = (0.114, 0.587, 0.299)


@dataclass(frozen=True)
class VideoSpec:
    """Frame preprocessing (the ``video`` section of a model card).

    Parameters
    ----------
    height, width:
        Model input size; frames are area-resized to it (aspect ratio not kept).
    channels, colour:
        ``3`` with ``'rgb'`` or ``1`` with ``'gray'`` (BT.601 luma).
    mean, std:
        Per output channel (or one value for all), applied to pixels scaled to [0, 1]:
        ``(x / 255 - mean) / std``.
    layout:
        ``'TCHW'`` (the reference models' ``video`` input) or ``'THWC'``.
    resize:
        ``'area'``: one ``cv2.INTER_AREA`` resize of the colour frame, then the colour
        conversion (exact, and slow for ratios that are not whole numbers: 0.8 ms for
        640x480 -> 96x96 on one core). ``'block-area'``: grey first when the model takes grey
        (OpenCV's BT.601, rounded to uint8), then the mean of whole pixel blocks by the largest
        factors that divide the frame (OpenCV's fast integer path), then ``INTER_AREA`` on that
        small image; 0.16 ms for the same frame, at most a few grey levels from ``'area'``.
    """

    height: int = 112
    width: int = 112
    channels: int = 3
    colour: str = "rgb"
    mean: tuple[float, ...] = (0.0,)
    std: tuple[float, ...] = (1.0,)
    layout: str = "TCHW"
    resize: str = "area"

    def __post_init__(self) -> None:
        want = {"rgb": 3, "gray": 1}
        if want.get(self.colour) != self.channels:
            raise ValueError(f"colour {self.colour!r} with channels={self.channels}; "
                             "use 'rgb' with 3 or 'gray' with 1")
        if self.height < 1 or self.width < 1:
            raise ValueError("height and width must be >= 1")
        for name in ("mean", "std"):
            v = getattr(self, name)
            if not isinstance(v, tuple):  # a scalar from YAML
                object.__setattr__(self, name, (float(v),))
            if len(getattr(self, name)) not in (1, self.channels):
                raise ValueError(f"{name} needs 1 or {self.channels} values")
        if any(s <= 0 for s in self.std):
            raise ValueError("std must be > 0")
        if self.layout not in ("TCHW", "THWC"):
            raise ValueError(f"layout {self.layout!r}: use 'TCHW' or 'THWC'")
        if self.resize not in ("area", "block-area"):
            raise ValueError(f"resize {self.resize!r}: use 'area' or 'block-area'")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "video") -> VideoSpec:
        """Build from a model card section; unknown keys raise :class:`EngineError`."""
        return spec_from_dict(cls, data, where)

    def to_dict(self) -> dict[str, Any]:
        """The card section that :meth:`from_dict` reads back (tuples as lists)."""
        d = dataclasses.asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    def shape(self, frames: int) -> tuple[int, int, int, int]:
        """Output shape for ``frames`` frames in this layout."""
        c, h, w = self.channels, self.height, self.width
        return (frames, c, h, w) if self.layout == "TCHW" else (frames, h, w, c)


def block_factor(size: int, target: int) -> int:
    """The largest whole factor ``k`` that divides ``size`` with ``size / k >= target``."""
    k = max(1, size // target)
    while size % k:
        k -= 1
    return k


def _area(frames: np.ndarray, h: int, w: int) -> np.ndarray:
    """``INTER_AREA`` of uint8 ``[T, H, W, C]`` frames to ``[T, h, w, C]``.

    Downscaling averages whole input rows into output rows and H/h rows per frame line up
    exactly, so the frames stacked into one tall image resize exactly as one by one (tested)
    and twice as fast: OpenCV parallelises the big image.
    """
    t, h_in, w_in, c_in = frames.shape
    small = np.empty((t, h, w, c_in), np.uint8)
    if h <= h_in and w <= w_in:
        src = np.ascontiguousarray(frames).reshape(t * h_in, w_in, c_in)
        pairs = [(src, small.reshape(t * h, w, c_in))]
    else:  # upscaling interpolates, which would blend neighbouring frames
        pairs = list(zip(frames, small))
    for a, b in pairs:
        if c_in == 1:  # cv2 drops a singleton channel axis, so resize 2-D views
            a, b = a[..., 0], b[..., 0]
        cv2.resize(a, (w, len(b)), dst=b, interpolation=cv2.INTER_AREA)
    return small


def _block_area(frames: np.ndarray | Sequence[np.ndarray], spec: VideoSpec) -> np.ndarray:
    """The ``'block-area'`` resize: grey first (when the model takes grey), whole blocks, area.

    ``frames`` are ``[H, W, C]`` each; colour frames are converted to grey one by one into one
    tall image, so they are never stacked at full size in colour.
    """
    t, (h_in, w_in, c_in) = len(frames), frames[0].shape
    if c_in == 3 and spec.channels == 1:
        grey = np.empty((t, h_in, w_in, 1), np.uint8)
        for f, g in zip(frames, grey):
            cv2.cvtColor(f, cv2.COLOR_BGR2GRAY, dst=g[..., 0])
        x = grey
    else:
        x = frames if isinstance(frames, np.ndarray) else np.stack(frames)
    ky, kx = block_factor(h_in, spec.height), block_factor(w_in, spec.width)
    if ky > 1 or kx > 1:  # whole factors: OpenCV's exact, fast block mean
        x = _area(x, h_in // ky, w_in // kx)
    if x.shape[1:3] != (spec.height, spec.width):
        x = _area(x, spec.height, spec.width)
    return x


def _checked(frames: np.ndarray | Sequence[np.ndarray]) -> np.ndarray | list[np.ndarray]:
    """Frames as a uint8 ``[T, H, W, C]`` array or a list of ``[H, W, C]`` frames, C 1 or 3."""
    if isinstance(frames, np.ndarray):
        if frames.dtype != np.uint8 or frames.ndim not in (3, 4):
            raise ValueError(
                f"frames must be uint8 [T, H, W(, C)], got {frames.dtype} {frames.shape}"
            )
        x = frames if frames.ndim == 4 else frames[..., None]
        channels = x.shape[3]
        checked: np.ndarray | list[np.ndarray] = x
    else:
        xs = [f if f.ndim == 3 else f[..., None] for f in frames]  # grey [H, W] frames too
        if not xs or any(f.dtype != np.uint8 or f.ndim != 3 or f.shape != xs[0].shape for f in xs):
            raise ValueError("frames must be one or more uint8 [H, W(, C)] frames of one shape")
        channels = xs[0].shape[2]
        checked = xs
    if channels not in (1, 3):
        raise ValueError(f"frames must have 1 (gray) or 3 (BGR) channels, got {channels}")
    return checked


def preprocess_frames(
    frames: np.ndarray | Sequence[np.ndarray], spec: VideoSpec, out: np.ndarray | None = None
) -> np.ndarray:
    """BGR uint8 frames to the model's float32 video tensor.

    Resize first (``spec.resize``, one rounding to uint8 per step), then colour and
    normalisation in float32 in one pass per output channel: converting colour on the small
    image is cheaper and rounds once.

    Parameters
    ----------
    frames:
        uint8 ``[T, H, W, 3]`` BGR (OpenCV's order) or ``[T, H, W]`` / ``[T, H, W, 1]`` gray,
        or a sequence of T such frames (a ``'block-area'`` grey model then never stacks them
        at full size).
    spec:
        The model card's video parameters.
    out:
        Optional preallocated float32 array of ``spec.shape(T)`` to fill.

    Returns
    -------
    numpy.ndarray
        float32 ``[T, C, h, w]`` (or ``[T, h, w, C]`` for layout ``'THWC'``).
    """
    seq = _checked(frames)
    if spec.resize == "block-area":
        x = _block_area(seq, spec)
    else:
        x = seq if isinstance(seq, np.ndarray) else np.stack(seq)
        if x.shape[1:3] != (spec.height, spec.width):
            x = _area(x, spec.height, spec.width)
    t, c_in = x.shape[0], x.shape[3]
    if out is None:
        out = np.empty(spec.shape(t), np.float32)
    elif out.shape != spec.shape(t) or out.dtype != np.float32:
        raise ValueError(f"out must be float32 {spec.shape(t)}, got {out.dtype} {out.shape}")
    planes = out if spec.layout == "TCHW" else out.transpose(0, 3, 1, 2)
    for c in range(spec.channels):
        mean = spec.mean[c if len(spec.mean) > 1 else 0]
        std = spec.std[c if len(spec.std) > 1 else 0]
        scale, bias = 1.0 / (255.0 * std), -mean / std
        if c_in == 1:
            weights: tuple[float, ...] = (1.0,)  # gray in: gray out, or gray copied to R, G, B
        elif spec.channels == 1:
            weights = _LUMA_BGR
        else:
            weights = tuple(1.0 if k == 2 - c else 0.0 for k in range(3))  # BGR -> RGB
        terms = [(k, wk * scale) for k, wk in enumerate(weights) if wk]
        dst = planes[:, c]
        # dtype given: NumPy 1.x would pick float16 for uint8 times a float32 scalar.
        np.multiply(x[..., terms[0][0]], terms[0][1], out=dst, dtype=np.float32)
        for k, wk in terms[1:]:
            dst += np.multiply(x[..., k], wk, dtype=np.float32)
        dst += np.float32(bias)
    return out
