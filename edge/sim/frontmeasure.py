"""Measure the real front ends on real footage: the numbers :mod:`edge.sim.frontrows` is set from.

This module owns the measurement, not the simulator: it runs :class:`edge.front.face.FaceStage`
on the driver clips, :class:`edge.front.person.PersonStage` on a home clip (at 4 fps, as
serving runs it) and :class:`edge.front.vad.StreamingVad` on sound files, and prints per-feature
distributions. Labels are read only to split frames into "someone there" and "empty room"; no
simulator parameter is fitted to them automatically (they are the dev set).

Run::

    python -m edge.sim.frontmeasure /work/shared/realworld > measured.txt
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np


def _frames(path: Path, every_s: float | None = None) -> list[tuple[float, np.ndarray]]:
    import cv2

    cap = cv2.VideoCapture(str(path))
    fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
    out: list[tuple[float, np.ndarray]] = []
    k, last = 0, -1e9
    while True:
        ok, img = cap.read()
        if not ok:
            break
        t = k / fps
        if every_s is None or t - last >= 0.9 * every_s:
            out.append((t, img))
            last = t
        k += 1
    cap.release()
    return out


def _q(x: np.ndarray) -> str:
    if x.size == 0:
        return "n=0"
    p = np.percentile(x, [5, 25, 50, 75, 95])
    return (f"n={x.size} min {x.min():.3f} p5 {p[0]:.3f} p25 {p[1]:.3f} med {p[2]:.3f} "
            f"p75 {p[3]:.3f} p95 {p[4]:.3f} max {x.max():.3f}")


def face_table(clip: Path, front_dir: str) -> np.ndarray:
    """``[frames, 1 + 12]``: time and the face vector of every frame of one clip, gaze read."""
    from edge.front.face import FaceStage

    stage = FaceStage(front_dir, gaze=True)
    rows = [np.concatenate([[t], stage.process(img).vector()]) for t, img in _frames(clip)]
    return np.asarray(rows, np.float64)


def report_face(name: str, tab: np.ndarray) -> None:
    t, v = tab[:, 0], tab[:, 1:]
    present = v[:, 0] > 0
    print(f"## {name}: {len(t)} frames, face present {present.mean():.3f}")
    if not present.any():
        return
    p = v[present]
    ear = 0.5 * (p[:, 2] + p[:, 3])
    names = ("face_size", "eye_open_left", "eye_open_right", "mouth_open", "yaw", "pitch", "roll")
    for i, n in enumerate(names, start=1):
        print(f"  {n:15s} {_q(p[:, i])}")
    print(f"  {'ear_mean':15s} {_q(ear)}")
    print(f"  {'ear |L-R|':15s} {_q(np.abs(p[:, 2] - p[:, 3]))}")
    d = np.diff(ear)
    print(f"  {'ear jitter':15s} frame-to-frame |d| {_q(np.abs(d))}")
    for i, n in ((4, "mouth"), (5, "yaw"), (6, "pitch"), (7, "roll")):
        print(f"  {n + ' jitter':15s} |d| {_q(np.abs(np.diff(p[:, i])))}")
    yaw, mouth = p[:, 5], p[:, 4]
    for label, sel in (("frontal |yaw|<15", np.abs(yaw) < 15), ("glance |yaw|>=30", np.abs(yaw) >= 30),
                       ("mouth<0.1 (rest)", mouth < 0.1), ("mouth>=0.15 (smile)", mouth >= 0.15)):
        if sel.sum() >= 3:
            print(f"  [{label}] n={int(sel.sum())}: yaw med {np.median(yaw[sel]):.1f} "
                  f"pitch med {np.median(p[sel, 6]):.1f} (p5 {np.percentile(p[sel, 6], 5):.1f} "
                  f"p95 {np.percentile(p[sel, 6], 95):.1f}) roll med {np.median(p[sel, 7]):.1f} "
                  f"EAR med {np.median(ear[sel]):.3f} mouth med {np.median(mouth[sel]):.3f}")
    # blinks: runs below 0.2 mean EAR
    low = ear < 0.2
    runs, k = [], 0
    while k < len(low):
        if low[k]:
            j = k
            while j < len(low) and low[j]:
                j += 1
            dt = float(np.median(np.diff(t))) if len(t) > 1 else 0.0
            runs.append((float(t[present][k]), (j - k) * dt, float(ear[k:j].min())))
            k = j
        else:
            k += 1
    print("  dips (EAR<0.2): " + ", ".join(f"t={a:.2f}s {d:.2f}s min {m:.3f}" for a, d, m in runs))
    report_gaze(p, ear)


def report_gaze(p: np.ndarray, ear: np.ndarray) -> None:
    """Gaze (columns 10, 11) of the frames with a face: spread, jitter, its share that follows
    the head's yaw and pitch (least squares), and what a blink does to it."""
    gx, gy, yaw, pitch = p[:, 10], p[:, 11], p[:, 5], p[:, 6]
    open_ = ear >= 0.2
    for n, g in (("gaze_x", gx), ("gaze_y", gy)):
        print(f"  {n:15s} (eyes open) {_q(g[open_])}")
        print(f"  {n + ' jitter':15s} |d| (both frames open) "
              f"{_q(np.abs(np.diff(g))[open_[1:] & open_[:-1]])}")
    for n, g, a in (("gaze_x~yaw", gx, yaw), ("gaze_y~pitch", gy, pitch)):
        if open_.sum() >= 10 and np.ptp(a[open_]) > 10:
            slope, icpt = np.polyfit(np.sin(np.radians(a[open_])), g[open_], 1)
            res = g[open_] - (slope * np.sin(np.radians(a[open_])) + icpt)
            print(f"  {n:15s} g = {slope:.3f} sin(angle) + {icpt:.3f}, residual sd "
                  f"{res.std():.3f}, |residual| p95 {np.percentile(np.abs(res), 95):.3f}")
    if (~open_).any() and open_.any():
        print(f"  [EAR<0.2] n={int((~open_).sum())}: gaze_x med {np.median(gx[~open_]):.3f} "
              f"(open {np.median(gx[open_]):.3f}), gaze_y med {np.median(gy[~open_]):.3f} "
              f"(open {np.median(gy[open_]):.3f})")


def person_table(clip: Path, front_dir: str, every_s: float = 0.25) -> np.ndarray:
    """``[frames, 1 + 6]``: time and the person vector at ``1 / every_s`` fps (score floor 0.3,
    so near-misses under serving's 0.5 show too), from the whole frame (no closer look: the
    detector's own near-misses, as the tables were measured)."""
    from edge.front.person import PersonStage

    stage = PersonStage(front_dir, min_score=0.3, zoom=False)
    rows = [np.concatenate([[t], stage.process(img).vector()]) for t, img in _frames(clip, every_s)]
    return np.asarray(rows, np.float64)


def report_person(tab: np.ndarray, labels: dict[str, Any]) -> None:
    t, v = tab[:, 0], tab[:, 1:]
    spans = [(float(e["start"]), float(e["end"])) for e in labels["events"] if e["label"] == "person"]
    there = np.array([any(a <= x < b for a, b in spans) for x in t])
    # the +-0.5 s label edges are uncertain: leave them out of both sides
    edge = np.array([any(abs(x - a) < 0.75 or abs(x - b) < 0.75 for a, b in spans) for x in t])
    for name, sel in (("person there", there & ~edge), ("empty room", ~there & ~edge)):
        s = v[sel]
        print(f"## {name}: {int(sel.sum())} frames")
        print(f"  score>=0.5 {np.mean(s[:, 2] >= 0.5):.3f}  any>=0.3 {np.mean(s[:, 0] > 0):.3f}")
        for i, n in enumerate(("count", "score", "area", "cx", "cy"), start=1):
            pos = s[:, 0] > 0
            print(f"  {n:6s} (when found) {_q(s[pos, i])}")
        hit = (s[:, 2] >= 0.5).astype(int)
        if hit.size > 1:
            runs = np.diff(np.flatnonzero(np.diff(np.concatenate([[0], hit, [0]]))))[::2]
            print(f"  runs of >=0.5 frames: {_q(runs.astype(float))}")


def vad_probs(path: Path, front_dir: str) -> np.ndarray:
    """Chunk probabilities of one 16 kHz sound file."""
    from edge.front.vad import StreamingVad
    from edge.sim.frontaudio import read_sound

    vad = StreamingVad(front_dir)
    return np.array([p for _, p in vad.push(read_sound(path), 0)], np.float32)


def main(root: str, front_dir: str = "engines/front") -> None:
    base = Path(root)
    for d in sorted(base.glob("driver-dev-*")):
        report_face(d.name, face_table(d / "video.mkv", front_dir))
    home = base / "home-dev-1"
    if home.is_dir():
        report_person(person_table(home / "video.mkv", front_dir),
                      json.loads((home / "labels.json").read_text()))
    for f in sorted((base / "sounds").glob("*.flac")):
        p = vad_probs(f, front_dir)
        print(f"## vad {f.name}: {_q(p)}  share>=0.5 {np.mean(p >= 0.5):.3f}")


if __name__ == "__main__":
    main(*sys.argv[1:])
