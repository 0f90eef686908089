"""Files and network streams with video and audio tracks, demuxed by PyAV and stamped by PTS.

Home cameras deliver their microphone inside the RTSP stream; recordings carry both tracks. One
demuxer reads both, so the two tracks share the stream's clock. Files are paced at their own
speed (or instantly on a :class:`FakeClock`, for replay); network streams arrive in real time.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from edge.capture.base import EndOfStream
from edge.capture.camera import classify, redact
from edge.capture.items import AudioItem, Item, ItemSource, VideoItem
from edge.timebase.clock import NS_PER_S, Clock
from edge.config import MediaSourceConfig
from edge.errors import DeviceError, DeviceMissing

log = logging.getLogger(__name__)


def _import_av() -> Any:
    try:
        import av
    except ImportError as exc:
        raise DeviceError(f"PyAV is not installed ({exc}); pip install av") from None
    return av


def probe_fps(path: str | Path, default: float = 30.0) -> float:
    """The average frame rate of a file's first video track (``default`` when unknown)."""
    av = _import_av()
    try:
        with av.open(str(path)) as c:
            rate = c.streams.video[0].average_rate if c.streams.video else None
    except (av.FFmpegError, OSError) as exc:
        raise DeviceError(f"cannot open {path}: {exc}") from None
    return float(rate) if rate else default


class MediaReader:
    """Decodes a container into :class:`VideoItem` / :class:`AudioItem`, in demux order.

    Frames are converted to BGR at ``width`` x ``height``; audio is resampled to float32 at
    ``sample_rate`` with ``channels`` channels. Audio sample indices follow the PTS of the first
    audio frame and are then counted; a PTS jump of more than 50 ms becomes a gap.
    """

    def __init__(
        self,
        url: str,
        width: int,
        height: int,
        sample_rate: int,
        channels: int,
        open_timeout_s: float = 5.0,
        read_timeout_s: float = 5.0,
    ) -> None:
        av = _import_av()
        self.width, self.height = width, height
        self.sample_rate, self.channels = sample_rate, channels
        try:
            self._container = av.open(url, timeout=(open_timeout_s, read_timeout_s))
        except (av.FFmpegError, OSError) as exc:
            raise DeviceError(f"cannot open {redact(url)}: {exc}") from None
        c = self._container
        self._video = c.streams.video[0] if c.streams.video else None
        self._audio = c.streams.audio[0] if c.streams.audio else None
        if self._video is None and self._audio is None:
            c.close()
            raise DeviceError(f"{redact(url)} has neither a video nor an audio track")
        if self._video is not None:
            # Slice threads only: frame threading returns a frame once the next threads' frames
            # are in, which held each frame back 2 frame intervals on 2 cores (more on more) and
            # aged every window's newest frame by as much (tests/test_media_sync.py).
            self._video.thread_type = "SLICE"
        layout = "mono" if channels == 1 else "stereo" if channels == 2 else f"{channels}c"
        self._resampler = av.AudioResampler(format="flt", layout=layout, rate=sample_rate)
        self._next_n: int | None = None
        self._iter = self._items()

    def close(self) -> None:
        self._container.close()

    def read(self) -> Item | None:
        """The next item; None at the end of the stream."""
        return next(self._iter, None)

    def _items(self) -> Iterator[Item]:
        streams = [s for s in (self._video, self._audio) if s is not None]
        for packet in self._container.demux(*streams):
            for frame in packet.decode():
                if packet.stream is self._video:
                    if frame.pts is None:
                        continue
                    img = frame.to_ndarray(format="bgr24", width=self.width, height=self.height)
                    yield VideoItem(int(round(frame.time * NS_PER_S)), img)
                else:
                    yield from self._audio_items(frame)
        if self._audio is not None:
            yield from self._audio_items(None)  # flush the resampler

    def _audio_items(self, frame: Any) -> Iterator[AudioItem]:
        start_s = frame.time if frame is not None and frame.pts is not None else None
        for out in self._resampler.resample(frame):
            data = out.to_ndarray().reshape(-1, self.channels).astype(np.float32, copy=False)
            if self._next_n is None:
                self._next_n = int(round((start_s or 0.0) * self.sample_rate))
            elif start_s is not None:
                by_pts = int(round(start_s * self.sample_rate))
                if by_pts - self._next_n > 0.05 * self.sample_rate:
                    self._next_n = by_pts  # a hole in the stream: the ring marks the gap
            n0 = self._next_n
            self._next_n = n0 + len(data)
            start_s = None  # later outputs of one input frame follow on contiguously
            yield AudioItem(n0, data)


class MediaSource(ItemSource):
    """A media file or network stream feeding a frame ring and a sample ring."""

    kind = "media"

    def __init__(self, name: str, cfg: MediaSourceConfig, clock: Clock) -> None:
        self.cfg = cfg
        self.target = classify(cfg.url)
        super().__init__(name, clock, cfg, channels=cfg.channels, paced=self.target == "file")
        self._reader: MediaReader | None = None

    def describe(self) -> str:
        return f"media {self.name!r} ({redact(self.cfg.url)})"

    def check(self) -> None:
        _import_av()
        if self.target == "file" and not os.path.isfile(self.cfg.url):
            raise DeviceMissing(f"{self.describe()}: no such file")

    def open(self) -> None:
        self.check()
        try:
            self._reader = MediaReader(
                self.cfg.url,
                self.cfg.width,
                self.cfg.height,
                self.cfg.sample_rate,
                self.cfg.channels,
                open_timeout_s=self.cfg.open_timeout,
                read_timeout_s=self.cfg.stall_timeout,
            )
        except DeviceError as exc:
            raise DeviceError(f"{self.describe()}: {exc}") from None
        self.restart_timeline()

    def close(self) -> None:
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.close()

    def next_item(self) -> Item | None:
        if self._reader is None:
            raise DeviceError(f"{self.describe()}: not open")
        item = self._reader.read()
        if item is not None:
            return item
        if self.target != "file":
            raise DeviceError(f"{self.describe()}: stream ended")
        if not self.cfg.loop:
            raise EndOfStream()
        self.close()
        self.open()
        return None
