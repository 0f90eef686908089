"""The JSONL sink: one JSON document per line in a file, rotated by size.

Durability: each line reaches the kernel in one ``write`` on an ``O_APPEND`` descriptor; event
and health lines are fdatasync'ed one by one before ``send`` returns, prediction lines at most
``fsync_interval`` seconds later (and on close). A write or sync that fails is cut back to the
previous end of the file before the error is raised, so the worker's retry never doubles a line.

Torn lines: a half line can still happen, so :func:`repair_tail` cuts the file back to its last
newline whenever the sink opens it. Linux checks for a fatal signal between the pages of one
``write``, so a SIGKILL during a line that spans a page boundary of the page cache leaves part
of it; a power cut can leave a tail of zeros where the size was updated before the data.

Rotation happens *before* a line that would make the file larger than ``max_bytes``:
``file.jsonl`` becomes ``file.jsonl.1``, ``.1`` becomes ``.2`` ... and the one past ``backups``
is overwritten. A line longer than ``max_bytes`` is never split; it gets a file of its own.
Created files are mode 0600 and created folders 0700 (records describe people).
"""

from __future__ import annotations

import errno
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edge.files import sync_dir
from edge.sinks.config import JsonlSinkConfig
from edge.sinks.records import Record, encode_record, record_type
from edge.sinks.sink import Sink

log = logging.getLogger(__name__)

_DURABLE = ("event", "health")  # lines synced before send returns


def make_private_dirs(folder: Path) -> None:
    """Create ``folder`` and any missing parents with mode 0700; existing ones are left as
    they are (a shared /var/log keeps its mode)."""
    missing = []
    p = folder
    while not p.exists():
        missing.append(p)
        if p.parent == p:
            break
        p = p.parent
    for p in reversed(missing):
        try:
            os.mkdir(p, 0o700)
        except FileExistsError:
            pass


def repair_tail(fd: int, chunk: int = 65536) -> int:
    """Cut the file behind ``fd`` back to just after its last newline; return bytes removed."""
    size = os.fstat(fd).st_size
    if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
        return 0
    keep = 0
    pos = size
    while pos > 0:
        start = max(0, pos - chunk)
        i = os.pread(fd, pos - start, start).rfind(b"\n")
        if i >= 0:
            keep = start + i + 1
            break
        pos = start
    os.ftruncate(fd, keep)
    os.fsync(fd)
    return size - keep


def rotated_name(path: Path, i: int) -> Path:
    return path.with_name(f"{path.name}.{i}")


def rotate_files(path: Path, backups: int) -> None:
    """Shift ``path`` to ``path.1``, ``path.1`` to ``path.2`` ...; keep ``backups`` files."""
    if backups == 0:
        path.unlink(missing_ok=True)
        return
    for i in range(backups - 1, 0, -1):
        src = rotated_name(path, i)
        if src.exists():
            os.replace(src, rotated_name(path, i + 1))
    if path.exists():
        os.replace(path, rotated_name(path, 1))




def _datasync(fd: int) -> None:
    if hasattr(os, "fdatasync"):
        os.fdatasync(fd)
    else:  # pragma: no cover - not Linux
        os.fsync(fd)


class JsonlSink(Sink):
    """Appends records to ``config.path``; see the module docstring for the guarantees."""

    type_key = "jsonl"

    def __init__(
        self,
        name: str,
        config: JsonlSinkConfig,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(name, config)
        self.cfg = config
        self.path = Path(config.path).expanduser()
        self._monotonic = monotonic
        self._fd: int | None = None
        self._size = 0
        self._dirty = False  # prediction lines written since the last sync
        self._last_sync = 0.0
        self.lines = 0
        self.rotations = 0
        self.repaired_bytes = 0

    def open(self) -> None:
        if self._fd is not None:
            return
        make_private_dirs(self.path.parent)
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            cut = repair_tail(fd)
            size = os.fstat(fd).st_size
        except OSError:
            os.close(fd)
            raise
        if cut:
            self.repaired_bytes += cut
            log.warning("sink %s: cut a torn last line (%d bytes) from %s",
                        self.name, cut, self.path)
        self._fd = fd
        self._size = size
        self._last_sync = self._monotonic()

    def send(self, record: Record) -> None:
        line = encode_record(record) + b"\n"
        if self._fd is None:
            self.open()
        if self._size > 0 and self._size + len(line) > self.cfg.max_bytes:
            self._rotate()
        fd = self._fd
        assert fd is not None
        try:
            n = os.write(fd, line)
            if n != len(line):
                raise OSError(errno.ENOSPC, f"short write ({n} of {len(line)} bytes)")
            now = self._monotonic()
            if record_type(record) in _DURABLE or now - self._last_sync >= self.cfg.fsync_interval:
                _datasync(fd)
                self._dirty = False
                self._last_sync = now
            else:
                self._dirty = True
        except OSError:
            self._cut_back()
            raise
        self._size += n
        self.lines += 1

    def _cut_back(self) -> None:
        """Remove a partly written or unsynced line; on failure reopen (and repair) later."""
        fd = self._fd
        if fd is None:
            return
        try:
            os.ftruncate(fd, self._size)
        except OSError:
            self._close_fd()

    def _rotate(self) -> None:
        self._sync()
        self._close_fd()
        rotate_files(self.path, self.cfg.backups)
        sync_dir(self.path.parent)
        self.rotations += 1
        self.open()

    def _sync(self) -> None:
        if self._fd is not None and self._dirty:
            _datasync(self._fd)
            self._dirty = False
            self._last_sync = self._monotonic()

    def _close_fd(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)

    def flush(self) -> None:
        if self._dirty and self._monotonic() - self._last_sync >= self.cfg.fsync_interval:
            self._sync()

    def close(self, timeout_s: float) -> None:
        try:
            self._sync()
        finally:
            self._close_fd()

    def describe(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "bytes": self._size,
            "lines": self.lines,
            "rotations": self.rotations,
            "repaired_bytes": self.repaired_bytes,
        }


SINK = JsonlSink
