"""The daemon's flight recorder, replaced on a reload without losing a recording.

A reload that changes ``recorder:`` hands :class:`RecorderSlot` the recorder it builds (or None:
no recorder any more). The running recorder finishes a recording in progress first, post-roll
and all; from the reload on the new one keeps every tick in its history, so it has its pre-roll
when it takes over. Once the running one has no recording in progress it is closed, and once
its writer has written everything it was given (the new one may write to the same folder and
clears leftovers there when it starts) the new one starts. Until then a rule the new recorder
names starts nothing; nothing the old one recorded is cut short or lost.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from edge.decisions.decide import Event
    from edge.join.align import Window
    from edge.recorder.config import RecorderConfig
    from edge.recorder.core import FlightRecorder
    from edge.service.run import Prediction, Runner


def recorder_for(config: RecorderConfig | None, runner: Runner) -> FlightRecorder | None:
    """The recorder ``config`` asks for over ``runner``'s spine (None: none or disabled), not
    started; a ring too short for its pre-roll is a :class:`~edge.errors.ConfigError` (its
    rules are checked against the decisions that will run, by ``Runner.prepare_reload``)."""
    if config is None or not config.enabled:
        return None
    from edge.recorder.checks import check_ring_capacity
    from edge.recorder.core import FlightRecorder

    check_ring_capacity(config, runner.spine)
    return FlightRecorder.for_runner(config, runner)


class RecorderSlot:
    """The recorder that runs (:attr:`current`), and the one waiting to take over."""

    def __init__(self, current: FlightRecorder | None) -> None:
        self.current = current
        self._next: FlightRecorder | None = None
        self._pending = False  # a successor (or None) is waiting
        self._closing: FlightRecorder | None = None  # closed, its writer still writing

    @property
    def closing(self) -> bool:
        """Whether a replaced recorder's writer is still writing what it was given."""
        return self._closing is not None and not self._closing.writer_done()

    @property
    def pending(self) -> bool:
        """Whether a reload's recorder is waiting to take over."""
        return self._pending

    def set_config_text(self, text: str) -> None:
        """The config the recordings started from now on keep (the running and the waiting
        recorder's)."""
        for r in (self.current, self._next):
            if r is not None:
                r.config_text = text

    def replace(self, new: FlightRecorder | None) -> None:
        """Take ``new`` over as soon as no recording would be cut (see the module docstring);
        a later call before that replaces it (it never started: there is nothing to close)."""
        self._next, self._pending = new, True

    def on_tick(self, now_ns: int, windows: Sequence[Window], predictions: Sequence[Prediction],
                events: Sequence[tuple[str, Event]]) -> list[dict[str, Any]]:
        """One tick: the recorder that runs records it; a waiting one keeps it in its history,
        and takes over when it can. Returns the recorder records to publish."""
        if not self._pending:
            return [] if self.current is None else self.current.on_tick(now_ns, windows,
                                                                        predictions, events)
        out: list[dict[str, Any]] = []
        old = self.current
        if old is not None and old.recording:  # it finishes what it records
            out += old.on_tick(now_ns, windows, predictions, events)
        if old is not None and not old.recording:
            out += old.close(timeout_s=0.0)  # nothing in progress: the writer ends when done
            self._closing, self.current = old, None
        if self.current is None and not self.closing:
            if self._closing is not None:
                out += self._closing.drain()  # what its writer saved since
                self._closing = None
            new, self._next, self._pending = self._next, None, False
            self.current = new
            if new is not None:  # it takes this very tick: a rule starting now is recorded
                new.start()
                out += new.on_tick(now_ns, windows, predictions, events)
        elif self._next is not None:
            self._next.observe(now_ns, windows, predictions, events)
        return out

    def stats(self) -> dict[str, Any] | None:
        """The running recorder's state for ``/healthz`` (None: none), with ``successor``
        ``waiting`` while a reload's recorder waits to take over."""
        if self.current is None and not self._pending:
            return None
        out = dict(self.current.stats()) if self.current is not None else {
            "recorder_state": "handover", "recording": None}
        if self._pending:
            out["successor"] = "waiting" if self._next is not None else "none"
        return out

    def close(self, timeout_s: float = 2.0) -> list[dict[str, Any]]:
        """At shutdown: wait (up to ``timeout_s``) for a closed recorder's writer, then close
        the running one (a recording in progress is saved, marked truncated); returns their
        last records. A successor that never started has nothing to close."""
        deadline = time.monotonic() + timeout_s
        out: list[dict[str, Any]] = []
        if self._closing is not None:
            while self.closing and time.monotonic() < deadline:
                time.sleep(0.01)
            out += self._closing.drain()
            self._closing = None
        if self.current is not None:
            out += self.current.close(timeout_s=max(0.0, deadline - time.monotonic()))
        return out
