"""Microphones through sounddevice (PortAudio).

The PortAudio callback only copies the block into the :class:`SampleRing` at its absolute
sample index and records ``(sample index, arrival time)`` in a preallocated array; it allocates
nothing and never blocks. The shell thread feeds those pairs to the :class:`ClockModel`.

The device clock is the card's sample counter: it is what drifts (tens to hundreds of ppm) and it
never jumps. PortAudio's ``inputBufferAdcTime`` is on PortAudio's own clock (on ALSA it was seen
on the wall clock) and is often 0 on virtual devices, so it is not mixed into pipeline time.
An ``input_overflow`` marks the block that follows it as a gap.
"""

from __future__ import annotations

import threading
import time
from types import ModuleType
from typing import Any

import numpy as np

from edge.buffers import SampleRing
from edge.capture.base import Backoff, CaptureSource
from edge.clock import NS_PER_S, Clock, ClockModel
from edge.config import MicrophoneSourceConfig
from edge.errors import DeviceError

_OBS = 1024  # pending (index, arrival) pairs the callback can hold between two pumps


def import_sounddevice() -> ModuleType:
    """Import sounddevice, or say which system package is missing."""
    try:
        import sounddevice
    except OSError as exc:  # raised when the PortAudio shared library is absent
        raise DeviceError(
            f"PortAudio is not available ({exc}); install libportaudio2 (Debian/Ubuntu)"
        ) from None
    return sounddevice


class MicrophoneSource(CaptureSource):
    """One PortAudio input stream feeding a :class:`SampleRing`."""

    kind = "microphone"

    def __init__(self, name: str, cfg: MicrophoneSourceConfig, clock: Clock) -> None:
        super().__init__(
            name,
            clock,
            backoff=Backoff(cfg.backoff_initial, cfg.backoff_max),
            stall_timeout_s=cfg.stall_timeout,
        )
        self.cfg = cfg
        self.sample_rate = cfg.sample_rate
        self.audio = SampleRing(int(cfg.buffer_seconds * cfg.sample_rate), cfg.channels)
        self.audio_clock = ClockModel()
        self._ns_per_sample = NS_PER_S / cfg.sample_rate
        self._stream: Any = None
        self._n = 0  # absolute index of the next sample; written by the callback only
        self._obs = np.zeros((_OBS, 2), dtype=np.int64)
        self._obs_written = 0  # callback's count; the pump reads up to it
        self._obs_read = 0
        self._overflows = 0
        self._data = threading.Event()

    def describe(self) -> str:
        dev = self.cfg.device if self.cfg.device is not None else "default input"
        return f"microphone {self.name!r} ({dev})"

    def check(self) -> None:
        """Fail fast when the device does not exist."""
        sd = import_sounddevice()
        try:
            sd.query_devices(self.cfg.device, "input")
        except (ValueError, sd.PortAudioError) as exc:
            raise DeviceError(f"{self.describe()}: no such input device ({exc})") from None

    def open(self) -> None:
        sd = import_sounddevice()
        self.check()
        ring, model = self.audio, self.audio_clock
        assert ring is not None and model is not None
        if ring.start is not None and model.ready:
            # Continue the absolute index where the lost time puts it; the hole is a gap.
            expected = int(round(model.to_device(self.clock.now_ns()) / self._ns_per_sample))
            self._n = max(ring.end, expected)
            ring.mark_gap(self._n - ring.end)
        blocksize = max(1, int(round(self.cfg.block_seconds * self.cfg.sample_rate)))
        try:
            stream = sd.InputStream(
                device=self.cfg.device,
                channels=self.cfg.channels,
                samplerate=self.cfg.sample_rate,
                blocksize=blocksize,
                dtype="float32",
                callback=self._callback,
            )
            stream.start()
        except (ValueError, sd.PortAudioError) as exc:
            raise DeviceError(f"{self.describe()}: cannot open ({exc})") from None
        self._stream = stream

    def close(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            try:
                stream.abort(ignore_errors=True)
                stream.close(ignore_errors=True)
            except Exception:  # a dead device may fail even to close; it is gone either way
                pass

    def _callback(self, indata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        # Real-time thread: copy and hand off only.
        n0 = self._n
        overflow = bool(status.input_overflow)
        assert self.audio is not None
        self.audio.write(indata, n0, valid=not overflow)
        self._n = n0 + frames
        i = self._obs_written % _OBS
        self._obs[i, 0] = n0 + frames
        self._obs[i, 1] = time.monotonic_ns()
        self._obs_written += 1
        if overflow:
            self._overflows += 1
        self._data.set()

    def pump(self) -> bool:
        if self._stream is None:
            raise DeviceError(f"{self.describe()}: not open")
        got = self._data.wait(0.1)
        self._data.clear()
        written = self._obs_written
        model = self.audio_clock
        assert model is not None
        if written - self._obs_read > _OBS:  # the pump fell far behind: keep the newest
            self._obs_read = written - _OBS
        while self._obs_read < written:
            n_end, host = self._obs[self._obs_read % _OBS]
            model.observe(int(round(int(n_end) * self._ns_per_sample)), int(host))
            self._obs_read += 1
        self.stats.samples = self._n
        self.stats.overflows = self._overflows
        assert self.audio is not None
        self.stats.gaps = self.audio.gap_events
        if not self._stream.active:
            raise DeviceError(f"{self.describe()}: stream stopped")
        return got
