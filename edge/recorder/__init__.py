"""The flight recorder: on a rule's event, the synchronized pre-roll and post-roll of every stream,
written as one directory that ``edge replay`` (:mod:`edge.recorder.replay`) re-runs bit for bit.

* :mod:`edge.recorder.config`: :class:`~edge.recorder.config.RecorderConfig` (``recorder:`` in a
  config) and the manifest helpers (:class:`~edge.recorder.config.ModelInfo`,
  :func:`~edge.recorder.config.fit_of`);
* :mod:`edge.recorder.checks`: the recorder's config checked against a running spine;
* :mod:`edge.recorder.store`: :class:`~edge.recorder.store.RecordingStore`, the recordings folder
  (atomic writes, the quota) and the writer thread, and the names of the on-disk format;
* :mod:`edge.recorder.journal`: :class:`~edge.recorder.journal.TickJournal`, the history of
  ticks (no pixels) a recording starts from;
* :mod:`edge.recorder.core`: :class:`~edge.recorder.core.FlightRecorder`, called once per tick,
  which decides what to record and copies it from the rings;
* :mod:`edge.recorder.handover`: :class:`~edge.recorder.handover.RecorderSlot`, the daemon's
  recorder, replaced on a reload without cutting a recording;
* :mod:`edge.recorder.replay`: ``edge replay``, a recording re-run through the serving code.

The package itself imports nothing: ``edge.config`` reads ``RecorderConfig`` from
:mod:`edge.recorder.config`, and that must not load the recorder. Import each name from its module.
"""
