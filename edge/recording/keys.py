"""Keys while recording: digits 1..N toggle class N of the task on and off, ``q`` stops.

:class:`LabelToggles` is the pure part (key, file time in, spans out): turning a class on ends
the classes it cannot overlap (``edge.sim.scenario.EXCLUSIVE``: one mouth cannot yawn and talk),
and the spans become ``labels.json`` events at the end. :class:`Keyboard` is the terminal shell:
only when stdin is a terminal, in cbreak mode (keys without Enter, no echo), restored on exit.
"""

from __future__ import annotations

import os
import select
import sys
from types import TracebackType
from typing import Any, TextIO

from edge.recording.label import add_span
from edge.recording.sheet import mmss
from edge.sim.scenario import CLASSES, EXCLUSIVE


class LabelToggles:
    """Which classes are on and the spans so far, driven by key presses at file times."""

    def __init__(self, task: str) -> None:
        self.classes = CLASSES[task]
        self.groups = EXCLUSIVE.get(task, ())
        self.active: dict[str, float] = {}
        self.spans: list[tuple[str, float, float]] = []

    def key_map(self) -> str:
        """One line: which key marks which class."""
        keys = ", ".join(f"{i + 1} {c}" for i, c in enumerate(self.classes[:9]))
        return f"keys: {keys} (press again to end it); q stops"

    def press(self, key: str, t_s: float) -> str | None:
        """Toggle the class of digit ``key`` at file time ``t_s``; what changed, or None."""
        if not (len(key) == 1 and key.isdigit() and 1 <= int(key) <= min(9, len(self.classes))):
            return None
        cls = self.classes[int(key) - 1]
        if cls in self.active:
            start = self.active.pop(cls)
            self.spans.append((cls, start, t_s))
            return f"{cls} off at {mmss(t_s)} ({t_s - start:.1f} s)"
        ended = []
        for group in self.groups:
            if cls in group:
                for other in sorted(group - {cls}):
                    if other in self.active:
                        self.spans.append((other, self.active.pop(other), t_s))
                        ended.append(other)
        self.active[cls] = t_s
        note = f" (ends {', '.join(ended)})" if ended else ""
        return f"{cls} on at {mmss(t_s)}{note}"

    def events(self, end_s: float) -> list[dict[str, Any]]:
        """The spans as ``labels.json`` events, open ones ended at ``end_s``, within the file."""
        spans = self.spans + [(c, s, end_s) for c, s in self.active.items()]
        events: list[dict[str, Any]] = []
        for cls, start, end in spans:
            start, end = round(max(0.0, start), 2), round(min(end_s, end), 2)
            if end > start:
                events = add_span(events, (cls, start, end))
        return sorted(events, key=lambda e: (e["start"], e["label"]))


class Keyboard:
    """Single key presses from a terminal, without blocking; disabled when not a terminal."""

    def __init__(self, stream: TextIO | None = None) -> None:
        stream = sys.stdin if stream is None else stream
        try:
            self.fd: int | None = stream.fileno() if stream.isatty() else None
        except (AttributeError, OSError, ValueError):
            self.fd = None
        self._saved: Any = None

    @property
    def enabled(self) -> bool:
        return self.fd is not None

    def __enter__(self) -> "Keyboard":
        if self.fd is not None:
            import termios
            import tty

            self._saved = termios.tcgetattr(self.fd)
            tty.setcbreak(self.fd)
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self.fd is not None and self._saved is not None:
            import termios

            termios.tcsetattr(self.fd, termios.TCSADRAIN, self._saved)
            self._saved = None

    def read(self) -> str:
        """Keys pressed since the last call ('' when none or disabled)."""
        if self.fd is None:
            return ""
        ready, _, _ = select.select([self.fd], [], [], 0)
        if not ready:
            return ""
        try:
            return os.read(self.fd, 64).decode("utf-8", errors="ignore")
        except OSError:
            return ""
