"""The recording folder: what may be written into it, and its files besides the media.

A folder is a recording for ``edge train/eval --recordings`` once it holds a media file and
``labels.json``. ``edge record`` refuses a folder that already holds one (unless forced, and even
then never deletes a media file it did not write), writes ``timestamps.npz`` and ``labels.json``
to temporary names and renames them, and writes ``labels.json`` last.

``timestamps.npz`` (the device times behind the file's times; ``t0_ns`` is the pipeline time
of file time zero):

* per frame: ``frame_seq`` (ring sequence number), ``frame_device_ns``, ``frame_pipeline_ns``,
  ``frame_pts_ms`` (its time in the file);
* per audio block read from the ring: ``audio_device_n0`` / ``audio_device_n`` (absolute sample
  index and count on the card's counter), ``audio_file_f0`` / ``audio_file_n`` (where it went in
  the file and how many samples it became after drift correction), ``audio_pipeline_ns``;
* ``audio_gaps`` rows ``(device n0, file f0, samples, kind)``: 0 invalid in the ring (silence
  written), 1 clock jumped ahead (silence written), 2 clock jumped back (samples left out);
* once a second per clock model: ``clock_fit_ns`` (when), ``clock_fit_kind`` (0 video, 1 audio),
  ``clock_fit_origin_ns`` and ``clock_fit_offset_skew`` (the fit
  ``pipeline = device + offset + skew * (device - origin)``);
* ``meta``: a JSON string (stream, sources, codec, start time, stop reason, counters).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge.errors import ConfigError

VIDEO_NAME = "video.mkv"
RECORDING_NAMES = (VIDEO_NAME, "labels.json", "timestamps.npz", "sheet.png")


def check_folder(out: Path, force: bool) -> None:
    """Refuse a folder that holds a recording (unless ``force``: then remove that recording)."""
    from edge.train.data import MEDIA_SUFFIXES

    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out}: exists and is not a folder")
    if not out.is_dir():
        return
    ours = [out / n for n in RECORDING_NAMES] + sorted(out.glob("sheet-*.png"))
    media = sorted(p.name for p in out.iterdir() if p.suffix.lower() in MEDIA_SUFFIXES)
    found = sorted({p.name for p in ours if p.exists()} | set(media))
    if not found:
        return
    if not force:
        raise ConfigError(f"{out}: already holds a recording ({', '.join(found)}); "
                          "use --force to replace it")
    others = [m for m in media if m != VIDEO_NAME]
    if others:  # another video would be read instead of ours: never delete what we did not write
        raise ConfigError(f"{out}: holds other media ({', '.join(others)}); record into another folder")
    for p in ours:
        p.unlink(missing_ok=True)


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path`` and rename it: all or nothing."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o644)  # as an ordinary file would be, not mkstemp's 0600
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_sidecar(path: Path, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> None:
    """``timestamps.npz``: the arrays and ``meta`` as a JSON string (loads without pickle)."""
    payload: dict[str, Any] = {"meta": np.asarray(json.dumps(meta)), **arrays}
    with tempfile.TemporaryFile() as buf:
        np.savez(buf, **payload)
        buf.seek(0)
        write_atomic(path, buf.read())


def valid_events(task: str, seconds: float, events: list[dict[str, Any]],
                 say: Callable[[str], None]) -> list[dict[str, Any]]:
    """``events`` without those the task's rules refuse (each one said)."""
    from edge.sim.scenario import Event, check_events

    bad = {i for i, _ in check_events(task, seconds, tuple(
        Event(label=e["label"], start=e["start"], end=e["end"]) for e in events))}
    for i in sorted(bad):
        say(f"left out {events[i]['label']} {events[i]['start']}-{events[i]['end']} s "
            "(it overlaps a class it cannot)")
    return [e for i, e in enumerate(events) if i not in bad]


def write_labels(path: Path, task: str, seconds: float, events: list[dict[str, Any]],
                 **extra: Any) -> None:
    """``labels.json`` in the form ``edge train/eval --recordings`` and ``edge label`` read."""
    labels = {"task": task, "seconds": seconds, "events": events, **extra}
    write_atomic(path, (json.dumps(labels, indent=1) + "\n").encode())


@dataclass
class RecordResult:
    """What was written."""

    folder: Path
    task: str
    seconds: float
    frames: int
    lost_frames: int
    camera_drops: int
    audio_seconds: float
    gap_events: int
    gap_seconds: float
    resyncs: int
    stopped_by: str
    size_bytes: int
    tracks: str
    events: list[dict[str, Any]] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def format_result(r: RecordResult) -> str:
    """The summary ``edge record`` prints."""
    lines = [f"wrote {r.folder}: {r.seconds:g} s, {r.size_bytes / 1e6:.1f} MB ({r.tracks})"]
    if r.tracks.startswith("video"):
        lines.append(f"  video: {r.frames} frames, {r.lost_frames} lost before they were read, "
                     f"{r.camera_drops} dropped by the camera")
    if "audio " in r.tracks:
        lines.append(f"  audio: {r.audio_seconds:g} s, {r.gap_events} gaps ({r.gap_seconds:.2f} s "
                     f"of silence), {r.resyncs} clock resyncs")
    lines += [f"  stopped by {r.stopped_by}; labels.json: task {r.task}, {len(r.events)} events",
              "  files: " + ", ".join(p.name for p in r.files)]
    lines += [f"  {n}" for n in r.notes]
    lines.append(f"  label it: edge label {r.folder} --add CLASS START END; "
                 f"score it: edge eval --config CONFIG --recordings {r.folder}")
    return "\n".join(lines)
