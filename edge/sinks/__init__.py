"""Output sinks: JSONL files, MQTT (Home Assistant discovery) and webhooks, each fed by its own
worker thread and bounded queue so that no output ever holds up the pipeline.

Wiring::

    sinks = SinkSet(config.sinks)      # dict[str, SinkConfig]; raises ConfigError early
    sinks.start()
    sinks.publish({"type": "event", ...})   # from the inference thread; never blocks
    sinks.stats()                      # per sink: state, counters, queue depth, last error
    sinks.stop(timeout_s=1.5)          # flushes what it can in time

Sink modules (and their dependencies, such as paho-mqtt) are imported only when a config
uses them.
"""

from edge.sinks.base import (
    DropPolicy,
    JsonlSinkConfig,
    MqttSinkConfig,
    MqttTlsConfig,
    RecordDropped,
    RecordQueue,
    RecordRejected,
    Sink,
    SinkConfig,
    SinkSet,
    SinkUnavailable,
    SinkWorker,
    WebhookSinkConfig,
    build_sink,
)

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
