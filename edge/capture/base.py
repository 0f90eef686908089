"""Lifecycle, reconnects and statistics shared by every capture source.

A source is a thin thread shell around a device: ``open`` / ``pump`` / ``close`` are the only
device-specific parts. The shell owns the lifecycle (explicit states), reconnects with capped
exponential backoff, and stall detection (no data for ``stall_timeout`` means reconnect even if
the device claims to be fine). A fault never leaves the thread: it is logged, counted and retried.
"""

from __future__ import annotations

import enum
import logging
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from edge.timebase.buffers import FrameRing, SampleRing
from edge.timebase.clock import NS_PER_S, Clock, ClockModel
from edge.errors import DeviceError

log = logging.getLogger(__name__)


class SourceState(str, enum.Enum):
    """Where a source is in its lifecycle."""

    IDLE = "idle"
    CONNECTING = "connecting"
    RUNNING = "running"
    RECONNECTING = "reconnecting"
    FINISHED = "finished"  # a file that reached its end
    STOPPED = "stopped"


class StallError(DeviceError):
    """The device stopped delivering data while claiming to be open."""


class EndOfStream(Exception):
    """A file source reached its end (not an error)."""


@dataclass(frozen=True)
class Backoff:
    """Capped exponential reconnect delays: ``initial * 2**attempt``, at most ``maximum``."""

    initial_s: float = 0.25
    maximum_s: float = 5.0

    def delay_s(self, attempt: int) -> float:
        # The exponent is capped: a device gone for hours must not overflow the float.
        return float(min(self.maximum_s, self.initial_s * (2.0 ** min(max(0, attempt), 60))))


class RateMeter:
    """Events per second over a sliding window of event times (pipeline ns)."""

    def __init__(self, window_s: float = 2.0, capacity: int = 4096) -> None:
        self._t = np.zeros(capacity, dtype=np.int64)
        self._n = 0
        self._window_ns = int(window_s * NS_PER_S)

    def add(self, t_ns: int) -> None:
        self._t[self._n % self._t.size] = t_ns
        self._n += 1

    def rate(self, now_ns: int) -> float:
        k = min(self._n, self._t.size)
        if k == 0:
            return 0.0
        recent = self._t[:k] if self._n <= self._t.size else self._t
        inside = recent[recent > now_ns - self._window_ns]
        if inside.size < 2:
            return 0.0
        span = now_ns - int(inside.min())
        return float((inside.size - 1) / (span / NS_PER_S)) if span > 0 else 0.0


@dataclass
class SourceStats:
    """Counters of one source; written by its thread, read by anyone (plain ints/floats)."""

    frames: int = 0
    samples: int = 0
    drops: int = 0
    gaps: int = 0
    overflows: int = 0
    reconnects: int = 0
    errors: int = 0
    last_error: str | None = None
    last_data_ns: int | None = None


class CaptureSource(ABC):
    """A capture thread shell. Subclasses implement :meth:`open`, :meth:`pump`, :meth:`close`.

    ``video`` / ``audio`` are the rings the source writes (either may be None), and
    ``video_clock`` / ``audio_clock`` the clock models that map its device times.
    """

    kind = "source"

    def __init__(
        self,
        name: str,
        clock: Clock,
        *,
        backoff: Backoff | None = None,
        stall_timeout_s: float = 2.0,
    ) -> None:
        self.name = name
        self.clock = clock
        self.backoff = backoff or Backoff()
        self.stall_timeout_ns = int(stall_timeout_s * NS_PER_S)
        self.first_data_grace_ns = 5 * NS_PER_S
        self.stats = SourceStats()
        self.state = SourceState.IDLE
        self.video: FrameRing | None = None
        self.audio: SampleRing | None = None
        self.video_clock: ClockModel | None = None
        self.audio_clock: ClockModel | None = None
        self.sample_rate = 0
        self.nominal_fps = 0.0
        self.fps_meter = RateMeter()
        self.notes: list[str] = []  # what the user is told once (edge run prints them at start)
        self._stop = threading.Event()
        self._opened_once = threading.Event()
        self._thread: threading.Thread | None = None

    # -- device-specific ---------------------------------------------------------------
    @abstractmethod
    def open(self) -> None:
        """Open the device; raise :class:`DeviceError` when it cannot be opened."""

    @abstractmethod
    def pump(self) -> bool:
        """Move whatever data is ready into the rings; True if any was moved.

        May block for a bounded time (a read timeout). Raises :class:`EndOfStream` at the end
        of a file and :class:`DeviceError` (or any exception) when the device failed.
        """

    @abstractmethod
    def close(self) -> None:
        """Release the device; must be safe to call after a failed open."""

    def describe(self) -> str:
        """What this source reads, for messages."""
        return self.name

    def truth_at(self, pipeline_ns: int) -> list[str] | None:
        """Classes truly active at a pipeline time, where the source knows (simulations)."""
        return None

    # -- lifecycle -----------------------------------------------------------------------
    def start(self) -> None:
        """Start the capture thread (idempotent)."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"edge-{self.name}", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 2.0) -> None:
        """Ask the thread to stop and wait up to ``timeout_s`` (idempotent)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
        self.state = SourceState.STOPPED

    def wait_opened(self, timeout_s: float) -> bool:
        """Wait until the device opened once; False on timeout."""
        return self._opened_once.wait(timeout_s)

    def _run(self) -> None:
        attempt = 0
        while not self._stop.is_set():
            self.state = SourceState.CONNECTING if attempt == 0 else SourceState.RECONNECTING
            try:
                self.open()
                self._opened_once.set()
                self.state = SourceState.RUNNING
                attempt = 0
                self._pump_until_failure()
            except EndOfStream:
                self.close()
                self.state = SourceState.FINISHED
                return
            except Exception as exc:  # a device fault must never kill the thread
                self.stats.errors += 1
                self.stats.last_error = str(exc) or type(exc).__name__
                log.warning("source %s: %s", self.name, self.stats.last_error)
            finally:
                self.close()
            if self._stop.is_set():
                break
            self.state = SourceState.RECONNECTING
            self.stats.reconnects += 1
            delay = self.backoff.delay_s(attempt)
            attempt += 1
            self._stop.wait(delay)
        self.state = SourceState.STOPPED

    def _pump_until_failure(self) -> None:
        last = self.clock.now_ns()
        # Devices take a while to deliver their first data after opening (PulseAudio's ALSA
        # plugin ~1 s): the first wait is longer than the stall timeout.
        limit = max(self.stall_timeout_ns, self.first_data_grace_ns)
        while not self._stop.is_set():
            if self.pump():
                last = self.clock.now_ns()
                self.stats.last_data_ns = last
                limit = self.stall_timeout_ns
            elif self.clock.now_ns() - last > limit:
                raise StallError(
                    f"no data for {self.stall_timeout_ns / NS_PER_S:.1f} s from {self.describe()}"
                )

    # -- helpers for subclasses ----------------------------------------------------------
    def frame_committed(self, t_ns: int) -> None:
        self.stats.frames += 1
        self.fps_meter.add(t_ns)
