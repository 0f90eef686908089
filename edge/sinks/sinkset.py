"""The sinks of a config: :class:`SinkSet` builds a worker per entry of a ``sinks:``
mapping, starts them, fans every record out to them, reconfigures them on reload (prepared,
then applied) and stops them against one deadline.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from edge.errors import ConfigError
from edge.sinks.config import AnySinkConfig
from edge.sinks.records import Record
from edge.sinks.sink import build_sink
from edge.sinks.worker import SinkWorker, StateCallback


def check_files(
    configs: Mapping[str, AnySinkConfig], taken: Mapping[str, str] | None = None
) -> None:
    """Raise :class:`ConfigError` when two writers would append to one file: two JSONL sinks,
    or a JSONL sink and a file in ``taken`` (what -> path, e.g. ``{"--jsonl": path}``).

    Two writers of one file interleave their lines, rotate it under each other and write
    every record twice.
    """
    seen: dict[str, str] = {os.path.realpath(p): what for what, p in (taken or {}).items()}
    for name, cfg in configs.items():
        if cfg.type != "jsonl":
            continue
        real = os.path.realpath(os.path.expanduser(cfg.path))
        other = seen.get(real)
        if other is not None:
            raise ConfigError(
                f"sinks.{name}.path: {cfg.path} is also written by {other}; one writer per "
                "file (drop one of them)"
            )
        seen[real] = f"sinks.{name}"


@dataclass(frozen=True)
class SinkReload:
    """A new ``sinks:`` mapping prepared by :meth:`SinkSet.prepare` (every new sink built,
    nothing started or stopped), applied by :meth:`SinkSet.apply`."""

    configs: dict[str, AnySinkConfig]
    keep: dict[str, SinkWorker]
    fresh: dict[str, SinkWorker]
    base: dict[str, SinkWorker]  # the workers it was prepared against


class SinkSet:
    """The workers of a ``sinks:`` mapping; fans each record out to the sinks that take it.

    Every sink is constructed (secrets resolved, config problems raised as
    :class:`ConfigError`) before any is started. ``taken`` names files written by something
    else (``{"--jsonl": path}``): a JSONL sink of the same file is a config error, now and on
    every reload.
    """

    def __init__(
        self,
        configs: Mapping[str, AnySinkConfig],
        on_state: StateCallback | None = None,
        taken: Mapping[str, str] | None = None,
    ) -> None:
        self._on_state = on_state
        self._taken = dict(taken or {})
        # _lock guards _workers, _started and _names against reconfigure() running beside
        # publish()/stats()/announce().
        self._lock = threading.Lock()
        check_files(configs, self._taken)
        self._workers: dict[str, SinkWorker] = self._build(configs)
        self._started = False
        self._names: tuple[list[str], list[str], list[str]] | None = None

    def _build(self, configs: Mapping[str, AnySinkConfig]) -> dict[str, SinkWorker]:
        workers = {}
        for name, cfg in configs.items():
            if not re.match(r"^[A-Za-z0-9_.-]+$", name):
                raise ConfigError(f"sinks.{name}: a sink name is letters, digits, _ . -")
            workers[name] = SinkWorker(build_sink(name, cfg), cfg, self._on_state)
        return workers

    def announce(
        self, streams: Sequence[str], classes: Sequence[str], rules: Sequence[str]
    ) -> None:
        """Tell every sink, and every sink a reload adds later, the streams, model classes and
        rules the pipeline produces (the MQTT sink publishes their discovery configs)."""
        names = (list(streams), list(classes), list(rules))
        with self._lock:
            self._names = names
            workers = list(self._workers.values())
        for w in workers:
            w.sink.announce(*names)

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
        """Apply a new ``sinks:`` mapping (SIGHUP): :meth:`prepare`, then :meth:`apply`.
        A config error raises before anything is changed."""
        self.apply(self.prepare(configs), timeout_s)

    def prepare(self, configs: Mapping[str, AnySinkConfig]) -> SinkReload:
        """Check a new ``sinks:`` mapping and build the sinks it adds or changes, changing
        nothing that runs (a reload rejected later leaves the sinks as they were); raises
        :class:`ConfigError`."""
        check_files(configs, self._taken)
        with self._lock:
            old = self._workers
        keep = {n: w for n, w in old.items() if n in configs and configs[n] == w.config}
        fresh = self._build({n: c for n, c in configs.items() if n not in keep})
        return SinkReload(dict(configs), keep, fresh, old)

    def apply(self, plan: SinkReload, timeout_s: float = 1.5) -> None:
        """Switch to a prepared mapping: unchanged sinks keep running with their queues,
        changed and removed ones are stopped (flushed within ``timeout_s``), new ones started."""
        with self._lock:
            old = self._workers
            if old is not plan.base:
                raise RuntimeError("the sinks changed since this reload was prepared")
            names = self._names
            if names is not None:  # before they start: an MQTT sink announces them on connect
                for w in plan.fresh.values():
                    w.sink.announce(*names)
            # Records go to the new workers' queues at once; they start only after the old
            # ones closed, so two writers never share a file or a client id.
            keep, fresh = plan.keep, plan.fresh
            self._workers = {n: keep[n] if n in keep else fresh[n] for n in plan.configs}
            # a sink whose config changed hands what it had not sent to its successor
            _stop_all([w for n, w in old.items() if n not in keep], timeout_s, fresh)
            if self._started:
                for w in fresh.values():
                    w.start()

    def stats(self) -> dict[str, dict[str, Any]]:
        """Per sink: state, counters, queue depth, last error (for /healthz and metrics)."""
        return {n: w.stats() for n, w in self._workers.items()}


def _stop_all(workers: list[SinkWorker], timeout_s: float,
              successors: Mapping[str, SinkWorker] | None = None) -> bool:
    """Stop ``workers`` against one deadline; one with a successor of its name hands it what
    it could not send."""
    deadline = time.monotonic() + timeout_s
    for w in workers:
        w.request_stop(deadline, (successors or {}).get(w.name))
    return all([w.join(deadline) for w in workers])
