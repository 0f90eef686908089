"""edge: a streaming, real-time audio-visual perception pipeline for embedded devices.

The packages follow the pipeline: :mod:`edge.capture` (sources) -> :mod:`edge.timebase` (time
and rings) -> :mod:`edge.join` (aligned windows) -> :mod:`edge.front` (front ends) ->
:mod:`edge.features` -> :mod:`edge.runtime` (engines) -> :mod:`edge.decisions` -> outputs
(:mod:`edge.sinks`, :mod:`edge.recorder`, :mod:`edge.status`) -> :mod:`edge.service` (the
daemon). Beside it: :mod:`edge.sim`, :mod:`edge.train`, :mod:`edge.export`, :mod:`edge.evaluate`
and :mod:`edge.recording`. Shared by all: :mod:`edge.config` (whose types import none of the
machinery they configure), :mod:`edge.cli`, :mod:`edge.errors`, :mod:`edge.paths`,
:mod:`edge.files` and :mod:`edge.jsonout`.
"""

import os as _os

# OpenCV and its FFmpeg print their own warnings for every failed open or read; edge reports
# those faults itself (source state, last error, metrics), so their console noise is turned
# down unless the user asked for it.
_os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
_os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")

__version__ = "0.1.0"
