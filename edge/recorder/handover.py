"""The daemon's flight recorder, replaced on a reload without losing a recording.

A reload that changes ``recorder:`` hands :class:`RecorderSlot` the recorder it builds (or None:
no recorder any more). The running recorder finishes a recording in progress first, post-roll
and all, and starts no new one, while its tick history is kept as long as the longer of the two
pre-rolls needs. At the first tick with no recording in progress the new one takes over, with
that history, so its pre-roll reaches back before the reload: in the same ``out_dir`` it takes
the writer and the folder over too (nothing is closed or rescanned); in another the old writer
ends on its own after what it was given, and the new folder was made and measured when the
reload was checked (a folder that cannot be used, or that a replaced writer still writes in,
rejects the reload).
While no recorder runs, the slot keeps a tick history of its own (:meth:`RecorderSlot.keep_history`,
as long as the rings allow: :func:`standby_journal`), so a recorder a reload adds has its
pre-roll from before the reload too; a recorder a reload removes leaves its history to it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from edge.errors import ConfigError
from edge.timebase.clock import NS_PER_S

if TYPE_CHECKING:
    from edge.config import Config
    from edge.decisions.decide import Event
    from edge.join.align import Window
    from edge.recorder.config import RecorderConfig
    from edge.recorder.core import FlightRecorder
    from edge.recorder.journal import TickJournal
    from edge.service.run import Prediction, Runner


def recorder_for(config: RecorderConfig | None, runner: Runner,
                 slot: RecorderSlot | None = None) -> FlightRecorder | None:
    """The recorder ``config`` asks for over ``runner``'s spine (None: none or disabled), not
    started, to take over in ``slot``; its folder, unless it is the running recorder's, is made
    and measured now. A ring too short for its pre-roll, a folder it cannot use, or one a
    replaced recorder's writer still writes in, is a :class:`~edge.errors.ConfigError` (its
    rules are checked against the decisions that will run, by ``Runner.prepare_reload``)."""
    if config is None or not config.enabled:
        return None
    from edge.recorder.checks import check_ring_capacity
    from edge.recorder.core import FlightRecorder

    check_ring_capacity(config, runner.spine)
    running = slot.current if slot is not None else None
    if slot is not None and slot.writing_in(config.out_dir):
        raise ConfigError(f"recorder.out_dir: a replaced recorder is still writing its last "
                          f"recording in {config.out_dir}; reload again in a moment")
    # the loaded model as hashed when the running recorder started, not the file now
    new = FlightRecorder.for_runner(config, runner,
                                    model=running.model if running is not None else None)
    if running is None or running.config.out_dir != config.out_dir:
        try:
            new.prepare()
        except OSError as exc:
            raise ConfigError(f"recorder.out_dir: cannot use {config.out_dir}: "
                              f"{exc.strerror or exc}") from None
    return new


def standby_journal(runner: Runner) -> TickJournal:
    """A tick history over ``runner``'s spine that reaches back as far as its shortest ring holds
    (no recorder's pre-roll can reach further: :func:`~edge.recorder.checks.check_ring_capacity`),
    for :meth:`RecorderSlot.keep_history`."""
    from edge.recorder.checks import ring_seconds
    from edge.recorder.journal import TickJournal

    held = [s for src in runner.spine.sources.values() for _, s in ring_seconds(src)]
    return TickJournal(runner.spine, runner.featurizers, min(held, default=0.0),
                       cascade=runner.cascade, eye_scalers=runner.eye_scalers)


class RecorderSlot:
    """The recorder that runs (:attr:`current`), and the one waiting to take over."""

    def __init__(self, current: FlightRecorder | None) -> None:
        self.current = current
        self._standby: TickJournal | None = None  # the history kept while no recorder runs
        self._standby_s = 0.0  # how far back it reaches
        self._next: FlightRecorder | None = None
        self._pending = False  # a successor (or None) is waiting
        self._closing: list[FlightRecorder] = []  # replaced, their writers still writing
        self._late: list[dict[str, Any]] = []  # records of a successor that never took over

    @property
    def pending(self) -> bool:
        """Whether a reload's recorder is waiting to take over."""
        return self._pending

    @property
    def closing(self) -> bool:
        """Whether a replaced recorder's writer is still writing what it was given."""
        return any(not r.writer_done() for r in self._closing)

    def writing_in(self, out_dir: str) -> bool:
        """Whether a replaced recorder's writer is still writing in ``out_dir``."""
        return any(r.config.out_dir == out_dir and not r.writer_done() for r in self._closing)

    def keep_history(self, journal: TickJournal) -> None:
        """Keep ``journal`` (:func:`standby_journal`) going tick by tick whenever no recorder
        runs, from now on: a recorder a reload adds takes it over, so its first recordings'
        pre-roll reaches back before the reload; one a reload removes hands its history back
        to it. Without it a recorder a reload adds records from the tick it takes over."""
        self._standby_s = journal.pre_ns / NS_PER_S
        self._standby = journal if self.current is None else None

    def set_config_text(self, text: str, settings: Config | None = None) -> None:
        """The config the recordings started from now on keep (the running and the waiting
        recorder's): ``text`` as written and ``settings``, the config that runs, with every
        setting written out (:meth:`FlightRecorder.use_config`)."""
        for r in (self.current, self._next):
            if r is not None:
                r.use_config(text, settings)

    def replace(self, new: FlightRecorder | None) -> None:
        """Take ``new`` over at the first tick with no recording in progress (see the module
        docstring); a later call before that replaces it (it never started: nothing to close,
        but what making its folder did, such as recordings over its quota deleted, is said)."""
        if self._next is not None:
            self._late += self._next.drain()
        self._next, self._pending = new, True
        if self.current is not None:
            self.current.finishing = True
            if new is not None:  # the history it will take: as long as the new pre-roll needs
                self.current.journal.retime(max(self.current.config.pre_roll,
                                                new.config.pre_roll))

    def on_tick(self, now_ns: int, windows: Sequence[Window], predictions: Sequence[Prediction],
                events: Sequence[tuple[str, Event]]) -> list[dict[str, Any]]:
        """One tick: the recorder that runs records it; a waiting one keeps it in its history,
        or takes over first when nothing is being recorded. Returns the records to publish."""
        out, self._late = self._late, []
        for old in list(self._closing):  # what their writers saved since
            done = old.writer_done()
            out += old.drain()
            if done:
                self._closing.remove(old)
        if self._pending and (self.current is None or not self.current.recording):
            out += self._take_over()
        if self.current is not None:
            out += self.current.on_tick(now_ns, windows, predictions, events)
        elif self._standby is not None:
            self._standby.record(now_ns, windows, predictions, events)
        return out

    def _take_over(self) -> list[dict[str, Any]]:
        old, new = self.current, self._next
        out: list[dict[str, Any]] = []
        if old is None and new is not None and self._standby is not None:
            new.take_journal(self._standby)  # the history kept while none ran
            self._standby = None
        elif old is not None and new is None and self._standby_s > 0:
            self._standby = old.journal  # kept on for the next recorder a reload adds
            self._standby.retime(self._standby_s)
        if old is not None and new is not None and new.config.out_dir == old.config.out_dir:
            new.adopt(old)  # its writer, folder and history: nothing closes
        elif old is not None:
            if new is not None:
                new.take_history(old)
            out = old.close(timeout_s=0.0)  # nothing in progress: its writer ends when done
            self._closing.append(old)
        self.current, self._next, self._pending = new, None, False
        return out

    def stats(self) -> dict[str, Any] | None:
        """The running recorder's state for ``/healthz`` (None: none), with ``successor``
        (``waiting``, or ``none`` for a recorder a reload removed) while one waits."""
        current, pending = self.current, self._pending  # read once: the tick thread swaps them
        if current is None:
            return None
        out = dict(current.stats())
        if pending:
            out["successor"] = "waiting" if self._next is not None else "none"
        return out

    def close(self, timeout_s: float = 2.0) -> list[dict[str, Any]]:
        """At shutdown: close the running recorder (a recording in progress is saved, marked
        truncated) and wait, within ``timeout_s`` in all, for replaced recorders' writers;
        returns their last records. A successor that never started has nothing to close."""
        deadline = time.monotonic() + timeout_s
        out, self._late = self._late, []
        if self._next is not None:
            out += self._next.drain()
        if self.current is not None:
            out += self.current.close(timeout_s=timeout_s)
        while self.closing and time.monotonic() < deadline:
            time.sleep(0.01)
        for old in self._closing:
            out += old.drain()
        self._closing = []
        return out
