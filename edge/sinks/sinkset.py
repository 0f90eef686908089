"""The sinks of a config: :class:`SinkSet` builds a worker per entry of a ``sinks:``
mapping, starts them, fans every record out to them, reconfigures them on reload and stops
them against one deadline.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Mapping
from typing import Any

from edge.errors import ConfigError
from edge.sinks.config import AnySinkConfig
from edge.sinks.records import Record
from edge.sinks.sink import build_sink
from edge.sinks.worker import SinkWorker, StateCallback


class SinkSet:
    """The workers of a ``sinks:`` mapping; fans each record out to the sinks that take it.

    Every sink is constructed (secrets resolved, config problems raised as
    :class:`ConfigError`) before any is started.
    """

    def __init__(
        self,
        configs: Mapping[str, AnySinkConfig],
        on_state: StateCallback | None = None,
    ) -> None:
        self._on_state = on_state
        # _lock guards _workers against reconfigure() running beside publish()/stats().
        self._lock = threading.Lock()
        self._workers: dict[str, SinkWorker] = self._build(configs)
        self._started = False

    def _build(self, configs: Mapping[str, AnySinkConfig]) -> dict[str, SinkWorker]:
        workers = {}
        for name, cfg in configs.items():
            if not re.match(r"^[A-Za-z0-9_.-]+$", name):
                raise ConfigError(f"sinks.{name}: a sink name is letters, digits, _ . -")
            workers[name] = SinkWorker(build_sink(name, cfg), cfg, self._on_state)
        return workers

    @property
    def names(self) -> list[str]:
        return list(self._workers)

    def workers(self) -> list[SinkWorker]:
        """The running workers (for a supervisor)."""
        return list(self._workers.values())

    def start(self) -> None:
        with self._lock:
            self._started = True
            for w in self._workers.values():
                w.start()

    def publish(self, record: Record) -> None:
        """Hand ``record`` to every sink that takes its type; never blocks on a sink."""
        for w in self._workers.values():  # a dict read; reconfigure swaps the dict whole
            w.publish(record)

    def stop(self, timeout_s: float = 1.5) -> bool:
        """Stop all sinks against one deadline; True when every worker finished in time."""
        with self._lock:
            self._started = False
            return _stop_all(list(self._workers.values()), timeout_s)

    def reconfigure(self, configs: Mapping[str, AnySinkConfig], timeout_s: float = 1.5) -> None:
        """Apply a new ``sinks:`` mapping (SIGHUP): unchanged sinks keep running with their
        queues, changed and removed ones are stopped (flushed within ``timeout_s``), new ones
        started. A config error raises before anything is changed."""
        with self._lock:
            old = self._workers
            keep = {n: w for n, w in old.items() if n in configs and configs[n] == w.config}
            fresh = self._build({n: c for n, c in configs.items() if n not in keep})
            # Records go to the new workers' queues at once; they start only after the old
            # ones closed, so two writers never share a file or a client id.
            self._workers = {n: keep[n] if n in keep else fresh[n] for n in configs}
            _stop_all([w for n, w in old.items() if n not in keep], timeout_s)
            if self._started:
                for w in fresh.values():
                    w.start()

    def stats(self) -> dict[str, dict[str, Any]]:
        """Per sink: state, counters, queue depth, last error (for /healthz and metrics)."""
        return {n: w.stats() for n, w in self._workers.items()}


def _stop_all(workers: list[SinkWorker], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    for w in workers:
        w.request_stop(deadline)
    return all([w.join(deadline) for w in workers])
