"""The flight recorder: on a rule's event, the synchronized pre-roll and post-roll of every stream,
written as one directory that ``edge replay`` (:mod:`edge.recorder.replay`) re-runs bit for bit.

The package re-exports its public names, so ``from edge.recorder import X`` is the way in:

* :mod:`edge.recorder.config`: :class:`RecorderConfig` (``recorder:`` in a config), the checks
  of it against a spine, and the manifest helpers (:class:`ModelInfo`, :func:`fit_of`);
* :mod:`edge.recorder.store`: :class:`RecordingStore`, the recordings folder (atomic writes,
  the quota) and the writer thread, and the names of the on-disk format;
* :mod:`edge.recorder.journal`: :class:`~edge.recorder.journal.TickJournal`, the history of
  ticks (no pixels) a recording starts from;
* :mod:`edge.recorder.core`: :class:`FlightRecorder`, called once per tick, which decides what
  to record and copies it from the rings.

Nothing here imports :mod:`edge.config`, :mod:`edge.join.spine` or :mod:`edge.service.run` at run time, so
``edge.config`` can import :class:`RecorderConfig` from this package.
"""

from edge.recorder.config import (
    ModelInfo,
    RecorderConfig,
    check_recorder,
    check_ring_capacity,
    fit_of,
    ring_seconds_needed,
)
from edge.recorder.core import FlightRecorder
from edge.recorder.store import FORMAT, MANIFEST, TMP_PREFIX, RecordingStore, write_private

__all__ = [
    "FORMAT",
    "MANIFEST",
    "TMP_PREFIX",
    "FlightRecorder",
    "ModelInfo",
    "RecorderConfig",
    "RecordingStore",
    "check_recorder",
    "check_ring_capacity",
    "fit_of",
    "ring_seconds_needed",
    "write_private",
]
