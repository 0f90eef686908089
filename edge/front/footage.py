"""Real footage for front-end INT8 builds: video files or folders of images, one clip each,
decoded to frames and split whole into calibration and held-out clips."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.errors import EdgeError

VIDEO_SUFFIXES = (".mkv", ".mp4", ".avi", ".mov", ".webm", ".m4v")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
#: The development set beside the repository (``../shared/realworld``), when present.
DEFAULT_FOOTAGE = Path(__file__).resolve().parents[3] / "shared" / "realworld"


@dataclass(frozen=True)
class Clip:
    """Frames of one video file or image folder (BGR uint8, evenly spaced over it)."""

    name: str
    path: Path
    frames: list[np.ndarray]


def find_clips(sources: Sequence[str | Path]) -> list[Path]:
    """Video files and image folders under ``sources``: a video file, a folder of images, a
    folder of videos, or a folder of such folders (one level down, like recording folders)."""
    out: list[Path] = []
    for src in sources:
        p = Path(src)
        if p.is_file():
            out.append(p)
            continue
        if not p.is_dir():
            raise EdgeError(f"{p}: no such video file or folder")
        videos = sorted(q for q in p.iterdir() if q.suffix.lower() in VIDEO_SUFFIXES and q.is_file())
        if videos:
            out.extend(videos)
        elif any(q.suffix.lower() in IMAGE_SUFFIXES for q in p.iterdir()):
            out.append(p)
        else:
            for sub in sorted(q for q in p.iterdir() if q.is_dir()):
                found = [q for q in sub.iterdir() if q.suffix.lower() in VIDEO_SUFFIXES]
                if found or any(q.suffix.lower() in IMAGE_SUFFIXES for q in sub.iterdir()):
                    out.extend(find_clips([sub]))
    return out


def read_clip(path: str | Path, max_frames: int = 240) -> Clip:
    """Up to ``max_frames`` frames, evenly spaced, of a video file or an image folder; a clip's
    name is its file stem, or its folder's name for ``video.*`` in a recording folder."""
    import cv2

    p = Path(path)
    frames: list[np.ndarray] = []
    if p.is_dir():
        for f in sorted(q for q in p.iterdir() if q.suffix.lower() in IMAGE_SUFFIXES):
            img = cv2.imread(str(f), cv2.IMREAD_COLOR)
            if img is not None:
                frames.append(img)
        name = p.name
    else:
        cap = cv2.VideoCapture(str(p))
        while True:
            ok, bgr = cap.read()
            if not ok:
                break
            frames.append(bgr)
        cap.release()
        name = p.parent.name if p.stem == "video" else p.stem
    if not frames:
        raise EdgeError(f"{p}: no frames could be decoded")
    if len(frames) > max_frames:
        idx = np.linspace(0, len(frames) - 1, max_frames).round().astype(int)
        frames = [frames[i] for i in idx]
    return Clip(name, p, frames)


def split_clips(clips: Sequence[Clip], check: Sequence[str] | None = None) -> tuple[list[Clip], list[Clip]]:
    """Calibration clips and held-out clips: ``check`` names the held-out ones; by default every
    second clip in name order (the 2nd, 4th, ...) is held out."""
    ordered = sorted(clips, key=lambda c: c.name)
    if check is None:
        held = {c.name for c in ordered[1::2]}
    else:
        held = set(check)
        unknown = held - {c.name for c in ordered}
        if unknown:
            raise EdgeError(f"--check {', '.join(sorted(unknown))}: no such clip "
                            f"(clips: {', '.join(c.name for c in ordered)})")
    calib = [c for c in ordered if c.name not in held]
    held_out = [c for c in ordered if c.name in held]
    if not calib or not held_out:
        raise EdgeError(f"need at least one calibration clip and one held-out clip, have "
                        f"{len(calib)} and {len(held_out)} ({', '.join(c.name for c in ordered)})")
    return calib, held_out
