"""The media file of a recording: one Matroska container, a video track and a PCM audio track.

The file is written as ``video.mkv.part`` and renamed to ``video.mkv`` only once its encoders are
flushed and the container is closed, so a file named ``video.mkv`` is always complete.

Video timestamps are milliseconds (Matroska's own resolution) and may be uneven: each frame keeps
the time it was captured at. Audio is 16-bit PCM at the source's rate, stamped by sample index.

Codecs, measured on a 2-core x86 development machine at 640x480, 15 fps, one encoder thread,
on 10 s of real footage (shared/realworld/home-dev-1) with camera-like noise added: MJPEG at quantiser 2, 4:2:2, costs 9 % of a core and 2.4 GB/h at
38.3 dB PSNR against the BGR input (lossless FFV1 in 4:2:0 gets 38.2 dB, its chroma subsampling
is the loss); FFV1 in 4:2:0 costs 18 % and 9 GB/h; bit-exact FFV1 (BGR) 31 % and 25 GB/h.
MJPEG is the default (near-lossless, cheapest to write and to decode again for training, in every
FFmpeg build); ``ffv1`` keeps the frames bit for bit when that is worth the cost.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from edge.errors import ConfigError, DeviceError

MS = Fraction(1, 1000)

#: encoder name -> (pixel format, encoder options)
CODECS: dict[str, tuple[str, dict[str, str]]] = {
    # Constant quantiser 2 (ffmpeg's -q:v 2): near-lossless, every frame a JPEG.
    "mjpeg": ("yuvj422p", {"qmin": "2", "qmax": "2"}),
    # Lossless, bit-exact BGR; a keyframe every 15 frames so a cut file loses little.
    "ffv1": ("bgr0", {"level": "3", "coder": "0", "context": "0", "g": "15", "slicecrc": "1"}),
}

_LAYOUTS = {1: "mono", 2: "stereo", 3: "2.1", 4: "quad", 5: "5.0", 6: "5.1", 7: "6.1", 8: "7.1"}


@dataclass(frozen=True)
class VideoTrack:
    """Shape of the video track."""

    width: int
    height: int
    fps: float
    codec: str = "mjpeg"


@dataclass(frozen=True)
class AudioTrack:
    """Shape of the audio track."""

    sample_rate: int
    channels: int


def check_tracks(video: VideoTrack | None, audio: AudioTrack | None) -> None:
    """Refuse track shapes the encoders cannot take, before any device is opened."""
    if video is not None:
        if video.codec not in CODECS:
            raise ConfigError(f"unknown video codec {video.codec!r} (known: {', '.join(CODECS)})")
        if video.codec == "mjpeg" and (video.width % 2 or video.height % 2):
            raise ConfigError(
                f"MJPEG needs an even frame size, the source gives {video.width}x{video.height}"
                " (use --codec ffv1)"
            )
    if audio is not None and audio.channels not in _LAYOUTS:
        raise ConfigError(f"edge record writes 1 to 8 audio channels, not {audio.channels}")


def _import_av() -> Any:
    try:
        import av
    except ImportError as exc:
        raise DeviceError(f"PyAV is not installed ({exc}); pip install av") from None
    return av


class MediaWriter:
    """Encodes frames and samples into ``path + '.part'``; :meth:`close` renames it to ``path``.

    Parameters
    ----------
    path:
        The final file name (``video.mkv``).
    video, audio:
        The tracks to write (at least one).
    """

    def __init__(self, path: str | Path, video: VideoTrack | None, audio: AudioTrack | None) -> None:
        if video is None and audio is None:
            raise ValueError("a recording needs a video or an audio track")
        check_tracks(video, audio)
        av = _import_av()
        self._av = av
        self.path = Path(path)
        self.part = self.path.with_name(self.path.name + ".part")
        self.video_track, self.audio_track = video, audio
        self.frames = 0
        self.samples = 0
        self._closed = False
        try:
            self._box = av.open(str(self.part), "w", format="matroska")
        except (av.FFmpegError, OSError) as exc:
            raise DeviceError(f"cannot write {self.part}: {exc}") from None
        self._v: Any = None
        self._a: Any = None
        if video is not None:
            pix_fmt, options = CODECS[video.codec]
            v = self._box.add_stream(video.codec, rate=Fraction(video.fps).limit_denominator(1001))
            v.width, v.height, v.pix_fmt = video.width, video.height, pix_fmt
            v.options = dict(options)
            v.thread_count = 1  # the capture threads and the model need the other cores
            v.codec_context.time_base = MS
            v.time_base = MS
            self._v = v
        if audio is not None:
            a = self._box.add_stream("pcm_s16le", rate=audio.sample_rate)
            a.layout = _LAYOUTS[audio.channels]
            a.time_base = Fraction(1, audio.sample_rate)
            self._a = a
            self._layout = _LAYOUTS[audio.channels]

    def write_frame(self, image: np.ndarray, pts_ms: int) -> None:
        """Encode one BGR frame at ``pts_ms`` milliseconds (strictly increasing)."""
        frame = self._av.VideoFrame.from_ndarray(image, format="bgr24")
        frame.pts, frame.time_base = int(pts_ms), MS
        self._box.mux(self._v.encode(frame))
        self.frames += 1

    def write_audio(self, samples: np.ndarray, f0: int) -> None:
        """Encode float samples ``[n, channels]`` in [-1, 1] starting at file sample ``f0``."""
        assert self.audio_track is not None
        if len(samples) == 0:
            return
        pcm = np.clip(np.rint(samples * 32767.0), -32768, 32767).astype(np.int16)
        frame = self._av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout=self._layout)
        frame.sample_rate = self.audio_track.sample_rate
        frame.pts, frame.time_base = int(f0), Fraction(1, self.audio_track.sample_rate)
        self._box.mux(self._a.encode(frame))
        self.samples += len(samples)

    @property
    def closed(self) -> bool:
        """True once the container is closed."""
        return self._closed

    def size_bytes(self) -> int:
        """Bytes written so far."""
        for target in (self.part, self.path):
            try:
                return os.path.getsize(target)
            except OSError:
                continue
        return 0

    def close(self, rename: bool = True) -> None:
        """Flush the encoders and close the container (idempotent); with ``rename``, the file
        becomes :attr:`path`, else it stays at :attr:`part` (an interrupted recording)."""
        if self._closed:
            return
        self._closed = True
        try:
            for stream in (self._v, self._a):
                if stream is not None:
                    self._box.mux(stream.encode(None))
        finally:
            self._box.close()
        if rename:
            os.replace(self.part, self.path)

    def abort(self) -> None:
        """Close and delete the file (nothing worth keeping was written)."""
        if not self._closed:
            self._closed = True
            self._box.close()
        self.part.unlink(missing_ok=True)
