"""The recordings folder and the flight recorder's writer thread.

:class:`RecordingStore` is the writer thread's side of the recorder: it writes each recording
into ``out_dir/.tmp-NAME/``, writes ``manifest.json`` last and renames the folder to
``out_dir/NAME``, so no half-written recording is ever visible under its final name; it keeps the
folder under the disk quota by deleting the oldest recordings. The core
(:mod:`edge.recorder.core`) hands it jobs (:class:`_Begin`, :class:`_Chunk`, :class:`_Finish`)
through a bounded queue that :func:`_writer_loop` drains. Every file goes through
:func:`write_private` (owner-only, flushed to disk). The names of the on-disk format
(:data:`FORMAT`, :data:`MANIFEST`, :data:`SETTINGS`, :data:`TMP_PREFIX`) live here too.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import queue
import shutil
import threading
import time
import wave
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import numpy as np

from edge.files import sync_dir

log = logging.getLogger("edge.recorder")  # the package's logger, as before the split

#: Version 2: a face row of the front ends may carry the eye measures as a sixth element
#: (``[eye_spread, eye_dark]``); version 1 recordings read the same without them.
#: Version 3: a tick may carry ``restore``, the front ends' results and state and the eye
#: baselines' samples a replay starts from; earlier recordings replay without them.
#: Version 4: beside the config as written, :data:`SETTINGS`, the config that ran with every
#: setting written out (a later edge's defaults may differ); earlier recordings replay with the
#: settings their config file gives and today's defaults, less those known to be newer.
FORMAT = "edge-recording/4"
#: What :func:`edge.recorder.replay` reads.
READS = ("edge-recording/1", "edge-recording/2", "edge-recording/3", FORMAT)
#: The formats whose ticks carry ``restore`` (version 3 on).
RESTORES = ("edge-recording/3", FORMAT)
TMP_PREFIX = ".tmp-"
MANIFEST = "manifest.json"
SETTINGS = "config-settings.yaml"


def write_private(path: Path, data: bytes) -> None:
    """Write a new file readable by its owner only (0600) and flush it to disk.

    Every file of a recording goes through here (tests replace it to simulate a full disk).
    """
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)


def _mkdir_private(path: Path) -> None:
    path.mkdir(mode=0o700)
    os.chmod(path, 0o700)  # mkdir's mode is filtered by the umask; the recorder's must not be

def _npz(**arrays: Any) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)  # uncompressed: exact, fast, and of predictable size
    return buf.getvalue()


def _wav(samples: np.ndarray, sample_rate: int) -> bytes:
    """16-bit PCM for listening; the float32 samples in the .npz are what a replay uses."""
    pcm = (np.clip(samples, -1.0, 1.0) * 32767.0).round().astype("<i2")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(samples.shape[1])
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(pcm.tobytes())
    return buf.getvalue()


# -- jobs from the core to the writer thread -------------------------------------------------


@dataclass
class _Begin:
    rec_id: int
    name: str
    config_text: str
    settings_text: str


@dataclass
class _Chunk:
    rec_id: int
    # source dir -> (frames [n,H,W,C] uint8, device t_ns, ring seq, pipeline t_ns at copy time)
    video: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]
    audio: dict[str, tuple[int, np.ndarray, np.ndarray]]  # source dir -> (n0, samples, mask)
    ticks: list[str]
    predictions: list[str]
    events: list[str]


@dataclass
class _Finish:
    rec_id: int
    manifest: dict[str, Any]
    audio_rates: dict[str, int]


_Job = Union[_Begin, _Chunk, _Finish]


class _QuotaExceeded(Exception):
    pass


@dataclass
class _Open:
    """A recording the writer has under ``.tmp-NAME``."""

    name: str
    tmp: Path
    bytes: int = 0
    chunks: int = 0
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    audio: dict[str, list[tuple[int, np.ndarray, np.ndarray]]] = field(default_factory=dict)
    ticks: list[str] = field(default_factory=list)
    predictions: list[str] = field(default_factory=list)
    events: list[str] = field(default_factory=list)


class RecordingStore:
    """The recordings folder: atomic writes, the quota, and what went wrong.

    ``handle`` runs on the writer thread only; the counters, ``last_error``, the records and the
    set of recordings the core abandoned are shared with the tick and status threads.
    """

    def __init__(self, out_dir: Path, quota_bytes: int, max_recordings: int) -> None:
        self.out_dir = out_dir
        self.quota_bytes = quota_bytes
        self.max_recordings = max_recordings
        self._open: dict[int, _Open] = {}
        self._existing: list[tuple[str, int]] = []  # complete recordings (name, bytes), oldest first
        # Guards the counters below, _abandoned and _records (read by stats() from any thread).
        self._lock = threading.Lock()
        self._abandoned: set[int] = set()
        self._records: deque[dict[str, Any]] = deque(maxlen=256)
        self.saved = 0
        self.abandoned = 0
        self.deleted = 0
        self.last_error: str | None = None
        self.last_recording: str | None = None
        self.failed_last = False
        self.write_s: float | None = None

    # -- shared with the core --------------------------------------------------------------
    def abandon(self, rec_id: int, reason: str) -> None:
        """The core gave up on a recording (queue full); the writer removes its folder."""
        with self._lock:
            if rec_id in self._abandoned:
                return
            self._abandoned.add(rec_id)
        self._report_failure(rec_id, reason)

    def is_abandoned(self, rec_id: int) -> bool:
        with self._lock:
            return rec_id in self._abandoned

    def drain_records(self) -> list[dict[str, Any]]:
        with self._lock:
            out = list(self._records)
            self._records.clear()
            return out

    def snapshot(self) -> dict[str, Any]:
        """Counters and the last error, consistently."""
        with self._lock:
            return {
                "failed_last": self.failed_last, "saved": self.saved, "abandoned": self.abandoned,
                "deleted": self.deleted, "last_error": self.last_error,
                "last_recording": self.last_recording, "write_s": self.write_s,
                "disk_bytes": sum(b for _, b in self._existing),
            }

    def _report_failure(self, rec_id: int, reason: str, name: str | None = None) -> None:
        with self._lock:
            self.abandoned += 1
            self.last_error = reason
            self.failed_last = True
            self._records.append({"type": "recorder", "event": "abandoned", "recording": name, "reason": reason})
        log.warning("flight recorder: recording abandoned: %s", reason)

    # -- writer side (prepare runs before the thread starts) ---------------------------------
    def prepare(self) -> None:
        """Create the folder, remove leftovers of a crash, and measure what is there."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.out_dir, 0o700)
        for entry in sorted(self.out_dir.iterdir()):
            if entry.name.startswith(TMP_PREFIX) and entry.is_dir():
                log.warning("flight recorder: removing %s, left by an interrupted recording", entry)
                shutil.rmtree(entry, ignore_errors=True)
            elif entry.is_dir() and (entry / MANIFEST).is_file():
                self._existing.append((entry.name, _tree_bytes(entry)))
        self._existing.sort()
        try:
            self._make_room(None, 0)
        except _QuotaExceeded:
            pass
        self._trim_count()

    def reap(self) -> None:
        """Remove the folders of recordings that the core abandoned."""
        with self._lock:
            gone = [i for i in self._open if i in self._abandoned]
        for rec_id in gone:
            shutil.rmtree(self._open.pop(rec_id).tmp, ignore_errors=True)

    def handle(self, job: _Job) -> None:
        if self.is_abandoned(job.rec_id):
            self.reap()
            return
        rec = self._open.get(job.rec_id)
        try:
            if isinstance(job, _Begin):
                self._begin(job)
            elif rec is not None and isinstance(job, _Chunk):
                self._chunk(rec, job)
            elif rec is not None and isinstance(job, _Finish):
                self._finish(job.rec_id, rec, job)
        except Exception as exc:  # a failing recorder is reported, never fatal
            if isinstance(exc, OSError):
                reason = f"{exc.strerror or exc} ({type(exc).__name__}, errno {exc.errno})"
            elif isinstance(exc, _QuotaExceeded):
                reason = str(exc)
            else:
                log.exception("flight recorder: writer failed")
                reason = f"{type(exc).__name__}: {exc}"
            rec = self._open.pop(job.rec_id, None)
            name = rec.name if rec is not None else getattr(job, "name", None)
            if rec is not None:
                shutil.rmtree(rec.tmp, ignore_errors=True)
            with self._lock:
                self._abandoned.add(job.rec_id)
            self._report_failure(job.rec_id, f"{name}: {reason}", name)

    def _begin(self, job: _Begin) -> None:
        name = job.name
        k = 2
        while (self.out_dir / name).exists() or (self.out_dir / (TMP_PREFIX + name)).exists():
            name, k = f"{job.name}-{k}", k + 1
        tmp = self.out_dir / (TMP_PREFIX + name)
        rec = _Open(name, tmp)
        self._open[job.rec_id] = rec
        _mkdir_private(tmp)
        for sub in ("video", "audio"):
            _mkdir_private(tmp / sub)
        self._put(rec, "config.yaml", job.config_text.encode())
        self._put(rec, SETTINGS, job.settings_text.encode())

    def _chunk(self, rec: _Open, job: _Chunk) -> None:
        for src, (frames, t_ns, seq, pipe_ns) in job.video.items():
            if not (rec.tmp / "video" / src).is_dir():
                _mkdir_private(rec.tmp / "video" / src)
            if len(frames):
                self._put(rec, f"video/{src}/{rec.chunks:06d}.npz",
                          _npz(frames=frames, t_ns=t_ns, seq=seq, pipeline_ns=pipe_ns))
        rec.chunks += 1
        for src, part in job.audio.items():
            rec.audio.setdefault(src, []).append(part)
        rec.ticks += job.ticks
        rec.predictions += job.predictions
        rec.events += job.events

    def _finish(self, rec_id: int, rec: _Open, job: _Finish) -> None:
        t0 = time.perf_counter()
        audio_meta: dict[str, Any] = {}
        for src, parts in rec.audio.items():
            n0 = parts[0][0] if parts else 0
            samples = np.concatenate([p[1] for p in parts]) if parts else np.zeros((0, 1), np.float32)
            mask = np.concatenate([p[2] for p in parts]) if parts else np.zeros(0, bool)
            self._put(rec, f"audio/{src}.npz", _npz(samples=samples, mask=mask, n0=np.int64(n0)))
            self._put(rec, f"audio/{src}.wav", _wav(np.where(mask[:, None], samples, 0), job.audio_rates[src]))
            audio_meta[src] = {"n0": int(n0), "samples": int(len(samples))}
        for fname, lines in (("ticks.jsonl", rec.ticks), ("predictions.jsonl", rec.predictions),
                             ("events.jsonl", rec.events)):
            self._put(rec, fname, "".join(line + "\n" for line in lines).encode())
        manifest = dict(job.manifest)
        manifest["name"] = rec.name
        manifest["audio_files"] = audio_meta
        manifest["files"] = dict(sorted(rec.files.items()))
        manifest["bytes"] = rec.bytes
        self._put(rec, MANIFEST, (json.dumps(manifest, indent=2) + "\n").encode())  # last: complete
        sync_dir(rec.tmp)
        final = self.out_dir / rec.name
        os.rename(rec.tmp, final)
        sync_dir(self.out_dir)
        del self._open[rec_id]
        with self._lock:
            self._existing.append((rec.name, rec.bytes))
            self.saved += 1
            self.failed_last = False
            self.last_recording = str(final)
            self.write_s = time.perf_counter() - t0
            self._records.append({"type": "recorder", "event": "saved", "recording": rec.name,
                                  "path": str(final), "bytes": rec.bytes})
        log.info("flight recorder: saved %s (%.1f MiB)", final, rec.bytes / 2**20)
        self._trim_count()

    def _put(self, rec: _Open, rel: str, data: bytes) -> None:
        self._make_room(rec, len(data))
        write_private(rec.tmp / rel, data)
        rec.bytes += len(data)
        rec.files[rel] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}

    def _make_room(self, rec: _Open | None, more: int) -> None:
        """Delete the oldest recordings until ``more`` bytes fit; raise if they never can."""
        current = (rec.bytes if rec is not None else 0) + more
        while self._existing and sum(b for _, b in self._existing) + current > self.quota_bytes:
            self._delete_oldest("quota")
        if current > self.quota_bytes:
            raise _QuotaExceeded(
                f"the recording outgrew the quota of {self.quota_bytes / 2**20:g} MiB on its own"
            )

    def _trim_count(self) -> None:
        while len(self._existing) > self.max_recordings:
            self._delete_oldest("max_recordings")

    def _delete_oldest(self, why: str) -> None:
        with self._lock:
            name, size = self._existing.pop(0)
            self.deleted += 1
            self._records.append({"type": "recorder", "event": "deleted", "recording": name, "reason": why})
        # Rename first, so a crash mid-delete leaves a .tmp- folder (cleaned at start), never a
        # recording with files missing under its final name.
        doomed = self.out_dir / f"{TMP_PREFIX}deleted-{name}"
        try:
            os.rename(self.out_dir / name, doomed)
        except OSError:
            return
        shutil.rmtree(doomed, ignore_errors=True)
        log.info("flight recorder: deleted %s (%s)", name, why)


def _tree_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _writer_loop(jobs: queue.Queue[_Job | None], store: RecordingStore) -> None:
    """The writer thread: jobs in order until the ``None`` sentinel."""
    while True:
        try:
            job = jobs.get(timeout=0.2)
        except queue.Empty:
            store.reap()
            continue
        if job is None:
            store.reap()
            return
        store.handle(job)
