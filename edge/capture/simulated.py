"""A generated test stream: a moving bar with a frame counter and a tone, on a drifting clock.

It needs no device and no file, so a newcomer sees the spine work anywhere. Its device clock runs
``skew_ppm`` fast or slow against the host and items arrive with random delivery jitter, which
exercises the clock model like a real card would. Content is a pure function of the device time
(:func:`pattern_frame`, :func:`pattern_tone`), so any window can be checked against what was sent.
"""

from __future__ import annotations

import cv2
import numpy as np

from edge.capture.items import AudioItem, Item, ItemSource, VideoItem
from edge.timebase.clock import NS_PER_S, Clock
from edge.config import SyntheticSourceConfig


def pattern_frame(index: int, t_s: float, width: int, height: int, out: np.ndarray | None = None) -> np.ndarray:
    """Frame ``index``: a bar sweeping once a second and the index as text (BGR)."""
    img = np.zeros((height, width, 3), np.uint8) if out is None else out
    img[:] = (40, 40, 40)
    x = int((t_s % 1.0) * width)
    cv2.rectangle(img, (x, 0), (min(width - 1, x + max(2, width // 40)), height - 1), (255, 255, 255), -1)
    cv2.putText(img, f"{index}", (8, height // 2), cv2.FONT_HERSHEY_SIMPLEX, 1.0, (0, 200, 255), 2)
    return img


def pattern_tone(n0: int, n: int, sample_rate: int, freq_hz: float) -> np.ndarray:
    """Samples ``[n0, n0 + n)`` of a 0.5-amplitude sine, float32."""
    k = np.arange(n0, n0 + n, dtype=np.float64)
    return (0.5 * np.sin(2 * np.pi * freq_hz * k / sample_rate)).astype(np.float32)


class SyntheticSource(ItemSource):
    """The generated stream as a capture source."""

    kind = "synthetic"

    def __init__(self, name: str, cfg: SyntheticSourceConfig, clock: Clock) -> None:
        self.cfg = cfg
        super().__init__(name, clock, cfg, channels=1, paced=True)
        self._block = max(1, int(round(cfg.block_seconds * cfg.sample_rate)))
        self._rng = np.random.default_rng(cfg.seed)
        self._frame = 0
        self._n = 0

    def describe(self) -> str:
        return f"synthetic {self.name!r}"

    def open(self) -> None:
        self.restart_timeline()

    def close(self) -> None:
        pass

    def next_item(self) -> Item:
        cfg = self.cfg
        frame_due = self._frame * NS_PER_S / cfg.fps
        audio_due = (self._n + self._block) * NS_PER_S / cfg.sample_rate
        if frame_due <= audio_due:
            img = pattern_frame(self._frame, frame_due / NS_PER_S, cfg.width, cfg.height)
            item: Item = VideoItem(int(round(frame_due)), img)
            self._frame += 1
        else:
            item = AudioItem(self._n, pattern_tone(self._n, self._block, cfg.sample_rate, cfg.tone_hz))
            self._n += self._block
        return item

    def pace_delay_ns(self, device_elapsed_ns: int) -> int:
        """Host time that ``device_elapsed_ns`` of device time takes, plus delivery jitter.

        The device clock runs ``1 + skew`` times as fast as the host's.
        """
        host = device_elapsed_ns / (1.0 + self.cfg.skew_ppm * 1e-6)
        jitter = self._rng.exponential(self.cfg.jitter_ms * 1e6) if self.cfg.jitter_ms > 0 else 0.0
        return int(host + jitter)
