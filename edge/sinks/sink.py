"""The sink interface: the :class:`Sink` base class, the exceptions its ``send`` raises,
and the registry (:data:`SINKS`, :func:`build_sink`) that a config's ``type`` selects from.

A sink turns records into something outside the process: a file, an MQTT broker, an HTTP
endpoint. Sink modules are imported only when a config uses them.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, ClassVar

from edge.errors import ConfigError
from edge.sinks.config import AnySinkConfig
from edge.sinks.records import Record


class RecordDropped(Exception):
    """Raised by ``send`` for a record the sink will not deliver now by design (a prediction
    while the broker is away): counted as a drop of its kind, not retried."""


class RecordRejected(Exception):
    """Raised by ``send`` for a record that can never be delivered (the receiver refuses the
    record itself): counted as rejected, not retried."""


class SinkUnavailable(Exception):
    """Raised by ``send`` when the destination is away; the worker retries the record."""


class Sink(ABC):
    """One destination. Only its worker thread calls ``open``, ``send``, ``flush`` and ``close``.

    ``send`` returns once the record is delivered (or handed to a client library that owns
    its delivery from then on) and raises on failure; the worker retries the same record.
    """

    type_key: ClassVar[str] = ""

    def __init__(self, name: str, config: Any) -> None:
        self.name = name
        self.config = config
        self._wake: Callable[[], None] = lambda: None

    def bind_wakeup(self, wake: Callable[[], None]) -> None:
        """Let the sink cut the worker's retry wait short when it becomes ready again."""
        self._wake = wake

    def open(self) -> None:
        """Acquire resources (files, connections); may raise, and is then retried."""

    @abstractmethod
    def send(self, record: Record) -> None:
        """Deliver one record, or raise."""

    def flush(self) -> None:
        """Called when the queue runs empty: make buffered output durable."""

    def close(self, timeout_s: float) -> None:
        """Release resources, delivering what is buffered within ``timeout_s``."""

    def announce(self, streams: list[str], classes: list[str], rules: list[str]) -> None:
        """The streams, model classes and rules the pipeline produces, at start and after each
        reload; for sinks that describe them up front. Unlike the methods above it is called
        from the pipeline's thread (an implementation guards its own state)."""

    def secrets(self) -> tuple[str, ...]:
        """Strings that must never appear in ``last_error``."""
        return ()

    def describe(self) -> dict[str, Any]:
        """Sink-specific counters and state, for stats."""
        return {}


# type key -> module that defines the sink class as ``SINK``
SINKS = {
    "jsonl": "edge.sinks.jsonl",
    "mqtt": "edge.sinks.mqtt",
    "webhook": "edge.sinks.webhook",
}


def build_sink(name: str, config: AnySinkConfig) -> Sink:
    """The sink registered under ``config.type``, constructed (secrets resolved, nothing
    opened yet); its module is imported only now."""
    module_name = SINKS.get(config.type)
    if module_name is None:
        raise ConfigError(f"sinks.{name}.type: unknown sink type {config.type!r}")
    module = importlib.import_module(module_name)
    sink_cls: type[Sink] = module.SINK
    return sink_cls(name, config)
