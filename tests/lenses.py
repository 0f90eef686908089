"""Dark lenses drawn over real faces, where the face mesh puts the eyes: sunglasses for tests,
since no dev clip shows a driver wearing them (``edge.front.face.eyes_hidden``)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np

from edge.front.geometry import LEFT_EYE_EAR, RIGHT_EYE_EAR


def draw_dark_lenses(frame_bgr: np.ndarray, pts: np.ndarray, transmission: float = 0.15,
                     tint: float = 30.0, rim: float = 0.0) -> np.ndarray:
    """``frame_bgr`` with a lens over each eye: an ellipse 1.9 eye widths wide and 1.4 high,
    centred a tenth of a width above the eye and turned with it, passing ``transmission`` of
    the light behind it over a grey ``tint``, and a reflection brightening it from below
    (0-20 grey levels). Category 3 sunglasses pass 8-18 %; clear glasses about 90 %. ``rim``:
    a dark frame around each lens, this share of an eye's width thick (0: none)."""
    import cv2

    img = frame_bgr.astype(np.float32)
    mask = np.zeros(img.shape[:2], np.float32)
    rims = np.zeros(img.shape[:2], np.float32)
    for eye in (LEFT_EYE_EAR, RIGHT_EYE_EAR):
        p = np.asarray(pts, np.float64)[list(eye), :2]
        c = p.mean(axis=0)
        d = p[0] - p[3]
        w = float(np.hypot(d[0], d[1]))
        angle = float(np.degrees(np.arctan2(d[1], d[0])))
        angle = angle - 180.0 if angle > 90 else angle + 180.0 if angle < -90 else angle
        centre = (int(round(c[0])), int(round(c[1] - 0.1 * w)))
        axes = (int(round(0.95 * w)), int(round(0.7 * w)))
        cv2.ellipse(mask, centre, axes, angle, 0, 360, 1.0, -1)
        if rim > 0:
            cv2.ellipse(rims, centre, axes, angle, 0, 360, 1.0, max(1, int(round(rim * w))))
    glare = np.linspace(0.0, 20.0, img.shape[0], dtype=np.float32)[:, None, None]
    lens = transmission * img + (1.0 - transmission) * tint + glare
    m = mask[..., None]
    out = img * (1.0 - m) + lens * m
    r = rims[..., None]
    out = out * (1.0 - r) + 25.0 * r
    return np.clip(out, 0, 255).astype(np.uint8)


def lensed_recording(src: Path, out: Path, transmission: float = 0.15, tint: float = 30.0,
                     rim: float = 0.0) -> None:
    """The recording folder ``src`` as ``out``: every frame with a face gets dark lenses
    (:func:`draw_dark_lenses`, where the face stage finds the eyes on the frame as recorded),
    the sound and labels copied."""
    import cv2

    from edge.front.face import FaceStage

    out.mkdir(parents=True)
    stage = FaceStage()
    cap = cv2.VideoCapture(str(src / "video.mkv"))
    fps = float(cap.get(cv2.CAP_PROP_FPS))
    enc: subprocess.Popen[bytes] | None = None
    try:
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            if enc is None:
                h, w = frame.shape[:2]
                enc = subprocess.Popen(
                    ["ffmpeg", "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "bgr24",
                     "-s", f"{w}x{h}", "-r", f"{fps:g}", "-i", "-", "-i", str(src / "video.mkv"),
                     "-map", "0:v", "-map", "1:a", "-c:v", "libx264", "-crf", "18", "-preset",
                     "veryfast", "-pix_fmt", "yuv420p", "-c:a", "copy", str(out / "video.mkv")],
                    stdin=subprocess.PIPE)
            if stage.process(frame).present and stage.landmarks is not None:
                frame = draw_dark_lenses(frame, stage.landmarks, transmission, tint, rim)
            assert enc.stdin is not None
            enc.stdin.write(frame.tobytes())
    finally:
        cap.release()
        if enc is not None and enc.stdin is not None:
            enc.stdin.close()
            enc.wait()
    if enc is None or enc.returncode != 0:
        raise RuntimeError(f"could not write {out / 'video.mkv'} (ffmpeg)")
    shutil.copy(src / "labels.json", out / "labels.json")
