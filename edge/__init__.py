"""edge: a streaming, real-time audio-visual perception pipeline for embedded devices."""

import os as _os

# OpenCV and its FFmpeg print their own warnings for every failed open or read; edge reports
# those faults itself (source state, last error, metrics), so their console noise is turned
# down unless the user asked for it.
_os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
_os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")

__version__ = "0.1.0"
