"""Output sinks: JSONL files, MQTT (Home Assistant discovery) and webhooks, each fed by its own
worker thread and bounded queue so that no output ever holds up the pipeline.

Wiring::

    sinks = SinkSet(config.sinks)      # dict[str, SinkConfig]; raises ConfigError early
    sinks.announce(streams, classes, rules)  # what MQTT discovery publishes at connect
    sinks.start()
    sinks.publish({"type": "event", ...})   # from the inference thread; never blocks
    sinks.stats()                      # per sink: state, counters, queue depth, last error
    sinks.apply(sinks.prepare(new.sinks))   # SIGHUP: build and check, then switch
    sinks.stop(timeout_s=1.5)          # flushes what it can in time

Sink modules (and their dependencies, such as paho-mqtt) are imported only when a config
uses them.

The package re-exports its public names, so ``from edge.sinks import X`` is the way in:

* :mod:`edge.sinks.records`: the record types and :func:`encode_record`;
* :mod:`edge.sinks.config`: the config models of every sink type;
* :mod:`edge.sinks.sink`: the :class:`Sink` interface, the exceptions of ``send`` and the
  registry (:func:`build_sink`);
* :mod:`edge.sinks.record_queue`: :class:`RecordQueue` and its :class:`DropPolicy`;
* :mod:`edge.sinks.worker`: :class:`SinkWorker`, the thread that feeds one sink;
* :mod:`edge.sinks.sinkset`: :class:`SinkSet`, the workers of a ``sinks:`` mapping.
"""

from edge.sinks.config import (
    JsonlSinkConfig,
    MqttSinkConfig,
    MqttTlsConfig,
    SinkConfig,
    WebhookSinkConfig,
)
from edge.sinks.record_queue import DropPolicy, RecordQueue
from edge.sinks.sink import RecordDropped, RecordRejected, Sink, SinkUnavailable, build_sink
from edge.sinks.sinkset import SinkSet
from edge.sinks.worker import SinkWorker

__all__ = [
    "DropPolicy",
    "JsonlSinkConfig",
    "MqttSinkConfig",
    "MqttTlsConfig",
    "RecordDropped",
    "RecordQueue",
    "RecordRejected",
    "Sink",
    "SinkConfig",
    "SinkSet",
    "SinkUnavailable",
    "SinkWorker",
    "WebhookSinkConfig",
    "build_sink",
]
