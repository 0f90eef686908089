"""Supervision of the worker threads: a capture or sink thread that died is started again.

Device faults never reach here: sources reconnect with capped backoff and sinks retry inside
their own threads. What a supervisor catches is a thread that ended anyway (an exception that
is not an ``Exception``, a bug). It is restarted, at most ``max_restarts`` times per
``window_s`` per worker (so a crash loop cannot spin), each restart reported as a health
record; past the limit the worker stays down, reported ``lost``. The process itself never exits
for this: systemd's watchdog is for a stuck pipeline, not a dead device.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from edge.timebase.clock import NS_PER_S

log = logging.getLogger(__name__)


@dataclass
class _Worker:
    name: str
    kind: str  # "source" or "sink"
    alive: Callable[[], bool]
    should_run: Callable[[], bool]
    restart: Callable[[], None]
    restarts: deque[int] = field(default_factory=deque)
    given_up: bool = False


class Supervisor:
    """Checks its workers at every tick (:meth:`check`); returns health records."""

    def __init__(self, max_restarts: int = 5, window_s: float = 60.0) -> None:
        self.max_restarts = max_restarts
        self.window_ns = int(window_s * NS_PER_S)
        self._workers: list[_Worker] = []
        self._sinkset: Any = None  # a SinkSet: its workers are looked up at each check
        self._sink_cache: dict[Any, _Worker] = {}  # SinkWorker -> its entry (by identity)
        self.total_restarts = 0

    def watch(self, name: str, kind: str, alive: Callable[[], bool],
              should_run: Callable[[], bool], restart: Callable[[], None]) -> None:
        self._workers.append(_Worker(name, kind, alive, should_run, restart))

    def watch_sources(self, sources: Iterable[Any]) -> None:
        """Capture sources: alive while their thread runs; they should while not stopped or
        finished (a file at its end)."""
        from edge.capture.base import SourceState

        done = (SourceState.STOPPED, SourceState.FINISHED, SourceState.IDLE)

        def alive(src: Any) -> Callable[[], bool]:
            return lambda: src._thread is not None and src._thread.is_alive()

        def should_run(src: Any) -> Callable[[], bool]:
            return lambda: src._thread is not None and src.state not in done

        for src in sources:
            self.watch(src.name, "source", alive(src), should_run(src), src.start)

    def watch_sinks(self, sinks: Any) -> None:
        """Sink workers of a :class:`~edge.sinks.sinkset.SinkSet` (looked up at each check: a reload
        may replace them)."""
        self._sinkset = sinks

    def _sink_workers(self) -> list[_Worker]:
        if self._sinkset is None:
            return []
        self._sink_cache = {
            sw: self._sink_cache.get(sw) or _Worker(
                sw.name, "sink", _attr(sw, "thread_alive"), _attr(sw, "should_run"), sw.start)
            for sw in self._sinkset.workers()
        }
        return list(self._sink_cache.values())

    def check(self, now_ns: int) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for w in self._workers + self._sink_workers():
            if w.given_up or w.alive() or not w.should_run():
                continue
            while w.restarts and w.restarts[0] < now_ns - self.window_ns:
                w.restarts.popleft()
            if len(w.restarts) >= self.max_restarts:
                w.given_up = True
                log.error("%s %s: its thread died %d times in %.0f s; left stopped", w.kind,
                          w.name, len(w.restarts), self.window_ns / NS_PER_S)
                out.append({"type": "health", "source": w.name, "state": "lost", "t_ns": now_ns,
                            "reasons": [f"{w.kind} thread died {len(w.restarts) + 1} times; "
                                        "not restarted again"]})
                continue
            w.restarts.append(now_ns)
            self.total_restarts += 1
            log.warning("%s %s: its thread died; restarting it", w.kind, w.name)
            w.restart()
            out.append({"type": "health", "source": w.name, "state": "degraded", "t_ns": now_ns,
                        "reasons": [f"{w.kind} thread died; restarted ({len(w.restarts)} in "
                                    f"{self.window_ns / NS_PER_S:.0f} s)"]})
        return out

    def snapshot(self) -> dict[str, Any]:
        return {
            "restarts": self.total_restarts,
            "given_up": [w.name for w in self._workers + list(self._sink_cache.values())
                         if w.given_up],
        }


def _attr(obj: Any, name: str) -> Callable[[], bool]:
    return lambda: bool(getattr(obj, name))
