"""Sources whose device produces timestamped items on one clock (a media stream, a simulator).

Video and audio items share the device clock (the stream's PTS), so both tracks go through one
:class:`ClockModel` and stay in sync by construction. An audio item is placed by its absolute
sample index ``n0`` (``PTS * sample_rate`` at the start of the track, then counted), so audio is
continuous even when PTS are rounded.

Items are paced to their device time when the source is a file or a simulation: the audio item
is due at its *end* (a microphone delivers a block once its last sample exists), a frame at its
PTS. On a :class:`FakeClock` pacing costs nothing, which makes replays run as fast as possible.
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass

import numpy as np

from edge.timebase.buffers import FrameRing, SampleRing
from edge.capture.base import Backoff, CaptureSource
from edge.timebase.clock import NS_PER_S, Clock, ClockModel
from edge.config import AVSourceConfig


@dataclass(frozen=True)
class VideoItem:
    """A decoded frame (BGR, ring-sized) at device time ``pts_ns``."""

    pts_ns: int
    image: np.ndarray


@dataclass(frozen=True)
class AudioItem:
    """Decoded samples ``[n, channels]`` starting at absolute sample ``n0``."""

    n0: int
    samples: np.ndarray
    valid: bool = True


Item = VideoItem | AudioItem


class ItemSource(CaptureSource):
    """Shell for devices that yield :class:`VideoItem` / :class:`AudioItem` on one clock."""

    def __init__(
        self, name: str, clock: Clock, cfg: AVSourceConfig, *, channels: int, paced: bool
    ) -> None:
        super().__init__(
            name,
            clock,
            backoff=Backoff(cfg.backoff_initial, cfg.backoff_max),
            stall_timeout_s=cfg.stall_timeout,
        )
        self.nominal_fps = cfg.fps
        self.sample_rate = sample_rate = cfg.sample_rate
        capacity = max(4, int(round(cfg.buffer_seconds * cfg.fps)))
        self.video = FrameRing(capacity, (cfg.height, cfg.width, 3))
        self.audio = SampleRing(int(cfg.audio_buffer_seconds * sample_rate), channels)
        model = ClockModel()
        self.video_clock = model
        self.audio_clock = model
        self.paced = paced
        self._ns_per_sample = NS_PER_S / sample_rate
        self._pace_origin: tuple[int, int] | None = None  # (device ns, host ns)
        # A reopened device restarts its timestamps; items are shifted by a whole number of
        # samples so that the device timeline (and the absolute sample index) runs on.
        self._shift_n = 0
        self._rebase = False
        self._last: tuple[int, int] | None = None  # (device ns, host ns) of the newest item

    @abstractmethod
    def next_item(self) -> Item | None:
        """The next decoded item, or None when none is ready yet (live stream)."""

    def device_due_ns(self, item: Item) -> int:
        """Device time at which ``item`` exists in full (frame PTS, end of an audio block)."""
        if isinstance(item, VideoItem):
            return item.pts_ns
        return int(round((item.n0 + len(item.samples)) * self._ns_per_sample))

    def pace_delay_ns(self, device_elapsed_ns: int) -> int:
        """Host time after the pace origin at which an item is due (files: the same)."""
        return device_elapsed_ns

    def restart_timeline(self) -> None:
        """The device's timestamps start over (a file loops, a stream is reopened)."""
        self._pace_origin = None
        self._rebase = self._last is not None

    def _shifted(self, item: Item) -> Item:
        if self._rebase and self._last is not None:
            # Continue where the last item ended, plus the host time that passed meanwhile.
            last_dev, last_host = self._last
            target = last_dev + max(0, self.clock.now_ns() - last_host)
            start = item.pts_ns if isinstance(item, VideoItem) else int(item.n0 * self._ns_per_sample)
            self._shift_n = int(np.ceil((target - start) / self._ns_per_sample))
            self._rebase = False
        if self._shift_n == 0:
            return item
        if isinstance(item, VideoItem):
            return VideoItem(item.pts_ns + int(round(self._shift_n * self._ns_per_sample)), item.image)
        return AudioItem(item.n0 + self._shift_n, item.samples, item.valid)

    def pump(self) -> bool:
        item = self.next_item()
        if item is None:
            return False
        item = self._shifted(item)
        device_ns = self.device_due_ns(item)
        if self.paced:
            now = self.clock.now_ns()
            if self._pace_origin is None:
                self._pace_origin = (device_ns, now)
            due = self._pace_origin[1] + self.pace_delay_ns(device_ns - self._pace_origin[0])
            if not self.clock.sleep_until(due, self._stop):
                return False
        self.write_item(item, self.clock.now_ns())
        return True

    def write_item(self, item: Item, host_ns: int) -> None:
        """Stamp ``item`` (arrived at ``host_ns``) through the clock model into its ring."""
        model = self.video_clock
        assert model is not None and self.video is not None and self.audio is not None
        device_ns = self.device_due_ns(item)
        model.observe(device_ns, host_ns)
        newest = device_ns if self._last is None else max(self._last[0], device_ns)
        self._last = (newest, host_ns)
        if isinstance(item, VideoItem):
            self.video.write(item.image, device_ns)
            self.frame_committed(host_ns)
        else:
            self.audio.write(item.samples, item.n0, valid=item.valid)
            self.stats.samples += len(item.samples)
            self.stats.gaps = self.audio.gap_events
