"""Files and network streams with video and audio tracks, demuxed by PyAV and stamped by PTS.

Home cameras deliver their microphone inside the RTSP stream; recordings carry both tracks. One
demuxer reads both, so the two tracks share the stream's clock. Files are paced at their own
speed (or instantly on a :class:`FakeClock`, for replay); network streams arrive in real time.

A file's tracks are read by a demuxer each and merged by start time (frame PTS, an audio
block's first sample), the order a well-interleaved file stores them in: a container may store
seconds of one track before the other (a 16 s recording written frames first held 4.7 s of
video ahead of its sound), and in its own order the sound would arrive that late, be taken for
a device clock that jumped back, and the time model fitted to it would stop the clock.
"""

from __future__ import annotations

import heapq
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
    """Decodes a container into :class:`VideoItem` / :class:`AudioItem`, in demux order, or with
    ``by_time`` (files) by start time: frame PTS, an audio block's first sample.

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
        by_time: bool = False,
    ) -> None:
        av = _import_av()
        self.width, self.height = width, height
        self.sample_rate, self.channels = sample_rate, channels

        def container() -> Any:
            try:
                return av.open(url, timeout=(open_timeout_s, read_timeout_s))
            except (av.FFmpegError, OSError) as exc:
                raise DeviceError(f"cannot open {redact(url)}: {exc}") from None

        self._container = c = container()
        self._video = c.streams.video[0] if c.streams.video else None
        self._audio = c.streams.audio[0] if c.streams.audio else None
        if self._video is None and self._audio is None:
            c.close()
            raise DeviceError(f"{redact(url)} has neither a video nor an audio track")
        self._sound: Any = None  # the audio track's own demuxer (by_time, both tracks)
        if by_time and self._video is not None and self._audio is not None:
            try:
                self._sound = container()
            except DeviceError:
                c.close()
                raise
        rate = self._video.average_rate if self._video is not None else None
        self.fps: float | None = float(rate) if rate else None  # the stream's own, when it says
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
        if self._sound is not None:
            self._sound.close()

    def read(self) -> Item | None:
        """The next item; None at the end of the stream."""
        return next(self._iter, None)

    def _items(self) -> Iterator[Item]:
        if self._sound is None:
            yield from self._demux(self._container, [self._video, self._audio])
            return
        assert self._video is not None and self._audio is not None
        sound = self._sound.streams[self._audio.index]  # the same file: the same track numbers
        yield from heapq.merge(self._demux(self._container, [self._video, None]),
                               self._demux(self._sound, [None, sound]), key=self._start_ns)

    def _start_ns(self, item: Item) -> int:
        # Start times are the order a well-interleaved file stores its packets in, so such a
        # file is read as before. Keyed by the end of an audio block (when a live stream would
        # send it) the dev clips' scores moved by chance amounts: not taken (README, Time).
        if isinstance(item, VideoItem):
            return item.pts_ns
        return int(round(item.n0 * NS_PER_S / self.sample_rate))

    def _demux(self, container: Any, tracks: list[Any]) -> Iterator[Item]:
        """The items of ``tracks`` (``[video or None, audio or None]``) of ``container``."""
        video, audio = tracks
        for packet in container.demux(*[s for s in tracks if s is not None]):
            for frame in packet.decode():
                if packet.stream is video:
                    if frame.pts is None:
                        continue
                    img = frame.to_ndarray(format="bgr24", width=self.width, height=self.height)
                    yield VideoItem(int(round(frame.time * NS_PER_S)), img)
                else:
                    yield from self._audio_items(frame)
        if audio is not None:
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
        self._rate_checked = False

    def describe(self) -> str:
        return f"media {self.name!r} ({redact(self.cfg.url)})"

    def check(self) -> None:
        _import_av()
        if self.target == "file" and not os.path.isfile(self.cfg.url):
            raise DeviceMissing(f"{self.describe()}: no such file")
        if self.target == "file" and not self._rate_checked:
            self._rate_checked = True  # once: a looped file is opened again at every pass
            try:  # a file says its rate before it is opened: edge run prints the note at start
                self._tell(probe_fps(self.cfg.url, default=self.cfg.fps))
            except DeviceError:
                pass  # opening it reports why

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
                by_time=self.target == "file",
            )
        except DeviceError as exc:
            raise DeviceError(f"{self.describe()}: {exc}") from None
        if not self._rate_checked:  # a stream says its rate once open
            self._rate_checked = True
            self._tell(self._reader.fps)
        self.restart_timeline()

    def _tell(self, fps: float | None) -> None:
        """A note when the stream's frame rate is not the configured one: the frame ring is
        sized, and a window's frame tolerance set, from ``fps`` (a 30 fps clip declared 15 held
        half the seconds its ring was given, and the recorder lost frames it had counted on).
        A rate over 1000 (an RTSP clock rate, not a frame rate) says nothing."""
        if fps is None or fps > 1000 or abs(fps - self.cfg.fps) <= 0.1 * self.cfg.fps:
            return
        held = self.video.capacity if self.video is not None else 0
        note = (f"{self.describe()}: the stream runs at {fps:.3g} fps, the config says fps: "
                f"{self.cfg.fps:g}; its ring of {held} frames holds "
                f"{held / fps:.1f} s, not buffer_seconds: "
                f"{self.cfg.buffer_seconds:g}, and a window's frame tolerance is set for "
                f"{self.cfg.fps:g} fps (set fps: {fps:.3g})")
        self.notes.append(note)
        log.warning("%s", note)

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
