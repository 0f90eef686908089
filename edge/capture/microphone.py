"""Microphones through sounddevice (PortAudio).

The PortAudio callback only copies the block into the :class:`SampleRing` at its absolute
sample index and records ``(sample index, arrival time)`` in a preallocated array; it allocates
nothing and never blocks. The shell thread feeds those pairs to the :class:`ClockModel`.

The device clock is the card's sample counter: it is what drifts (tens to hundreds of ppm) and it
never jumps. PortAudio's ``inputBufferAdcTime`` is on PortAudio's own clock (on ALSA it was seen
on the wall clock) and is often 0 on virtual devices, so it is not mixed into pipeline time.
An ``input_overflow`` marks the block that follows it as a gap.

PortAudio lists devices once, when it is initialised: a USB microphone plugged in later (or
unplugged and plugged back, often under a new index) is invisible until it is initialised again.
Every reconnect therefore re-initialises PortAudio when no other stream of this process is open
(re-initialising stops every open stream), and resolves the configured device again: by its
name, or for an index, by the name it had when it last opened.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from types import ModuleType
from typing import Any

import numpy as np

from edge.timebase.buffers import SampleRing
from edge.capture.base import Backoff, CaptureSource
from edge.timebase.clock import NS_PER_S, Clock, ClockModel
from edge.config import MicrophoneSourceConfig
from edge.errors import DeviceError, DeviceMissing

log = logging.getLogger(__name__)

_OBS = 1024  # pending (index, arrival) pairs the callback can hold between two pumps

# Guards PortAudio's (re-)initialisation against the opening and closing of streams, and the
# count of streams this process holds open.
_pa_lock = threading.Lock()
_open_streams = 0


def import_sounddevice() -> ModuleType:
    """Import sounddevice, or say which system package is missing."""
    try:
        import sounddevice
    except OSError as exc:  # raised when the PortAudio shared library is absent
        raise DeviceError(
            f"PortAudio is not available ({exc}); install libportaudio2 (Debian/Ubuntu)"
        ) from None
    return sounddevice


def refresh_devices(sd: ModuleType) -> bool:
    """Re-initialise PortAudio so that its device list is read anew; False (nothing done) while
    another stream of this process is open, since re-initialising would stop it."""
    with _pa_lock:
        if _open_streams:
            return False
        try:
            sd._terminate()
        finally:
            sd._initialize()
    return True


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
        self._opens = 0  # open attempts: the first uses the device list PortAudio starts with
        self._device_name: str | None = None  # what the device was called when it last opened

    def describe(self) -> str:
        dev = self.cfg.device if self.cfg.device is not None else "default input"
        return f"microphone {self.name!r} ({dev})"

    def check(self) -> None:
        """Fail fast when the device does not exist (:class:`DeviceMissing`)."""
        self._resolve(import_sounddevice())

    def _resolve(self, sd: ModuleType) -> int | str | None:
        """The device to open: the configured one, or for an index whose device changed since
        it last opened (re-plugged, renumbered), the device of that name."""
        dev = self.cfg.device
        try:
            info = sd.query_devices(dev, "input")
        except (ValueError, sd.PortAudioError) as exc:
            if self._device_name is None or not isinstance(dev, int):
                raise DeviceMissing(f"{self.describe()}: no such input device ({exc})") from None
            info = None
        if isinstance(dev, int) and self._device_name and (info is None
                                                            or info["name"] != self._device_name):
            try:
                info = sd.query_devices(self._device_name, "input")
            except (ValueError, sd.PortAudioError):
                raise DeviceMissing(
                    f"{self.describe()}: {self._device_name!r} is not connected"
                ) from None
            return int(info["index"])
        return dev

    def open(self) -> None:
        global _open_streams
        sd = import_sounddevice()
        self._opens += 1
        if self._opens > 1 and not refresh_devices(sd):
            log.debug("%s: other streams are open; PortAudio's device list is not re-read",
                      self.describe())
        device = self._resolve(sd)
        ring, model = self.audio, self.audio_clock
        assert ring is not None and model is not None
        if ring.start is not None and model.ready:
            # Continue the absolute index where the lost time puts it; the hole is a gap.
            expected = int(round(model.to_device(self.clock.now_ns()) / self._ns_per_sample))
            self._n = max(ring.end, expected)
            ring.mark_gap(self._n - ring.end)
        blocksize = max(1, int(round(self.cfg.block_seconds * self.cfg.sample_rate)))
        with _pa_lock:  # no re-initialisation between opening and counting the stream
            stream = None
            try:
                stream = sd.InputStream(
                    device=device,
                    channels=self.cfg.channels,
                    samplerate=self.cfg.sample_rate,
                    blocksize=blocksize,
                    dtype="float32",
                    callback=self._callback,
                )
                stream.start()
            except (ValueError, sd.PortAudioError) as exc:
                if stream is not None:
                    stream.close(ignore_errors=True)
                hint = ""
                if "sample rate" in str(exc).lower():  # PortAudio's paInvalidSampleRate
                    hint = (f"; the device does not record at {self.cfg.sample_rate} Hz itself: "
                            "open it through 'pulse' or 'default', which resample, or its "
                            "'plughw:' ALSA name")
                raise DeviceError(f"{self.describe()}: cannot open ({exc}){hint}") from None
            _open_streams += 1
        self._stream = stream
        try:
            # ALSA names end in the card's number, "(hw:1,0)", which a re-plug may change.
            name = str(sd.query_devices(stream.device, "input")["name"])
            self._device_name = re.sub(r"\s*\(hw:\d+,\d+\)$", "", name) or name
        except (ValueError, sd.PortAudioError):
            pass

    def close(self) -> None:
        global _open_streams
        stream, self._stream = self._stream, None
        if stream is not None:
            with _pa_lock:
                _open_streams -= 1
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
