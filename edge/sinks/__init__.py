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

* :mod:`edge.sinks.records`: the record types and :func:`~edge.sinks.records.encode_record`;
* :mod:`edge.sinks.config`: the config models of every sink type;
* :mod:`edge.sinks.sink`: the :class:`~edge.sinks.sink.Sink` interface, the exceptions of
  ``send`` and the registry (:func:`~edge.sinks.sink.build_sink`);
* :mod:`edge.sinks.record_queue`: :class:`~edge.sinks.record_queue.RecordQueue` and its
  :class:`~edge.sinks.record_queue.DropPolicy`;
* :mod:`edge.sinks.worker`: :class:`~edge.sinks.worker.SinkWorker`, the thread that feeds one sink;
* :mod:`edge.sinks.sinkset`: :class:`~edge.sinks.sinkset.SinkSet`, the workers of a ``sinks:``
  mapping.

The package itself imports nothing: ``edge.config`` reads ``SinkConfig`` from
:mod:`edge.sinks.config`, and that must not load the workers. Import each name from its module.
"""
