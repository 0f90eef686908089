"""Pipeline time and the mapping of device clocks onto it.

Pipeline time is ``int`` nanoseconds of the host monotonic clock. Only thread shells read a
:class:`Clock`; everything else takes ``now_ns`` as an argument, so tests drive it with a
:class:`FakeClock`.

Every device keeps its own clock (an audio card's sample counter, a camera's frame timestamps,
a stream's PTS) and that clock drifts against the host by tens to hundreds of ppm. A
:class:`ClockModel` fits ``host = device + offset + skew * device`` online from pairs of
(device time, host arrival time). Arrival is always *later* than capture by a non-negative
scheduling delay, so the fit follows the lower envelope of ``host - device``: per bin of device
time it keeps the second-smallest offset (one wild early sample cannot pull the bin down), then
fits a line through the bin minima with a robust re-fit that drops outlying bins.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Protocol

import numpy as np

NS_PER_S = 1_000_000_000


class Clock(Protocol):
    """A source of pipeline time and a way to wait on it."""

    def now_ns(self) -> int:
        """Return pipeline time in nanoseconds."""
        ...

    def sleep_until(self, t_ns: int, stop: threading.Event | None = None) -> bool:
        """Wait until ``t_ns``; return False when ``stop`` was set first."""
        ...


class MonotonicClock:
    """The host monotonic clock: production pipeline time."""

    def now_ns(self) -> int:
        return time.monotonic_ns()

    def sleep_until(self, t_ns: int, stop: threading.Event | None = None) -> bool:
        delay = (t_ns - time.monotonic_ns()) / NS_PER_S
        if delay <= 0:
            return not (stop is not None and stop.is_set())
        if stop is None:
            time.sleep(delay)
            return True
        return not stop.wait(delay)


class FakeClock:
    """A clock that moves only when told to; ``sleep_until`` advances it instantly.

    Safe to share between threads: the lock guards ``_t`` and wakes waiters on ``advance``.
    """

    def __init__(self, start_ns: int = 0) -> None:
        self._t = int(start_ns)
        # Guards _t; waiters in wait_for_ns are woken on every change.
        self._cond = threading.Condition()

    def now_ns(self) -> int:
        with self._cond:
            return self._t

    def set_ns(self, t_ns: int) -> None:
        """Move the clock to ``t_ns`` (never backwards)."""
        with self._cond:
            if t_ns < self._t:
                raise ValueError(f"FakeClock cannot go backwards ({t_ns} < {self._t})")
            self._t = int(t_ns)
            self._cond.notify_all()

    def advance(self, dt_ns: int) -> int:
        """Move the clock forward by ``dt_ns`` and return the new time."""
        with self._cond:
            self._t += int(dt_ns)
            self._cond.notify_all()
            return self._t

    def sleep_until(self, t_ns: int, stop: threading.Event | None = None) -> bool:
        if stop is not None and stop.is_set():
            return False
        with self._cond:
            if t_ns > self._t:
                self._t = int(t_ns)
                self._cond.notify_all()
        return True


@dataclass(frozen=True)
class ClockFit:
    """A snapshot of a :class:`ClockModel`: ``host = device + offset_ns + skew * device``."""

    offset_ns: float
    skew: float
    origin_ns: int
    residual_ns: float
    bins: int

    @property
    def skew_ppm(self) -> float:
        """How fast the device clock runs against the host, in ppm (positive: fast)."""
        return (1.0 / (1.0 + self.skew) - 1.0) * 1e6


MAX_SKEW = 0.05  # the fitted skew's bound (50,000 ppm)


class ClockModel:
    """Online offset-and-skew fit from one device clock onto pipeline time.

    Parameters
    ----------
    bin_s:
        Device-time span over which the lowest arrival is kept as one envelope point.
    history_s:
        Device-time span of envelope points used in the fit; older points are forgotten so a
        slowly wandering crystal (temperature) is followed.
    reset_after_ns:
        A jump of the device clock (backwards, or an offset change larger than this) means the
        device restarted its clock: the model starts over instead of fitting across the jump.
        An item *later* than that is first taken for a delivery stall (the items queued behind
        it arrive in a burst, then on time again) and left out of the fit; only when items stay
        that late for ``confirm_late_ns`` of host time has the device clock fallen behind.
    confirm_late_ns:
        Host time items must stay over ``reset_after_ns`` late before the model starts over.
    """

    def __init__(
        self,
        bin_s: float = 1.0,
        history_s: float = 300.0,
        reset_after_ns: int = 2 * NS_PER_S,
        confirm_late_ns: int = NS_PER_S,
    ) -> None:
        if bin_s <= 0 or history_s < 2 * bin_s:
            raise ValueError("ClockModel needs bin_s > 0 and history_s >= 2 * bin_s")
        self._bin_ns = int(bin_s * NS_PER_S)
        self._max_bins = int(history_s / bin_s)
        self._reset_after_ns = reset_after_ns
        self._confirm_late_ns = confirm_late_ns
        # The model is written by one capture thread and read by the scheduler; the lock
        # guards the fitted coefficients and the envelope so a reader never sees half a fit.
        self._lock = threading.Lock()
        self.resets = 0
        self.late_skipped = 0  # items left out as part of a delivery stall
        self._clear()

    def _clear(self) -> None:
        self._origin: int | None = None  # device time of the first observation
        self._bin_index = -1
        self._bin_low: list[tuple[float, float]] = []  # two lowest (offset, device) in bin
        self._points: deque[tuple[float, float]] = deque(maxlen=self._max_bins)
        self._offset = 0.0  # ns, at device == origin
        self._skew = 0.0
        self._residual = 0.0
        self._last_device: int | None = None
        self._min_offset = float("inf")
        self._late_since: int | None = None  # host time of the first of a run of late items

    # -- writer side -------------------------------------------------------------------
    def observe(self, device_ns: int, host_ns: int) -> None:
        """Add one pair: the device stamped ``device_ns``; the host saw it at ``host_ns``."""
        with self._lock:
            if self._origin is None:
                self._origin = device_ns
            elif self._last_device is not None and device_ns < self._last_device - self._reset_after_ns:
                # Far backwards: the device restarted its clock. (Slightly backwards is normal:
                # two tracks of one stream arrive interleaved, each in its own order.)
                self._reset_locked(device_ns)
            if self._last_device is None or device_ns > self._last_device:
                self._last_device = device_ns
            x = float(device_ns - self._origin)
            off = float(host_ns - device_ns)
            jump = off - self._predict_offset(x) if self._points else 0.0
            if jump > self._reset_after_ns:
                # Late: a stall drains as a burst and is over, or the clock fell behind for good.
                if self._late_since is None:
                    self._late_since = host_ns
                if host_ns - self._late_since < self._confirm_late_ns:
                    self.late_skipped += 1
                    return
                self._reset_locked(device_ns)
                x = 0.0
            elif jump < -self._reset_after_ns:  # early: no delay explains it, the clock jumped
                self._reset_locked(device_ns)
                x = 0.0
            else:
                self._late_since = None
            self._min_offset = min(self._min_offset, off)
            b = int(x // self._bin_ns)
            if b != self._bin_index:
                self._close_bin()
                self._bin_index = b
                self._bin_low = []
            low = self._bin_low
            low.append((off, x))
            if len(low) > 2:
                low.sort()
                del low[2:]
            if not self._points:
                # Before the first bin closes: lowest offset seen, no skew.
                self._offset = self._min_offset

    def reset(self) -> None:
        """Forget everything (the device restarted its clock, e.g. after a reconnect)."""
        with self._lock:
            self._clear()
            self.resets += 1

    def _reset_locked(self, device_ns: int) -> None:
        self._clear()
        self.resets += 1
        self._origin = device_ns

    def _close_bin(self) -> None:
        if not self._bin_low:
            return
        low = sorted(self._bin_low)
        off, x = low[1] if len(low) > 1 else low[0]
        self._points.append((x, off))
        self._fit()

    def _predict_offset(self, x: float) -> float:
        return self._offset + self._skew * x

    def _fit(self) -> None:
        pts = np.asarray(self._points, dtype=np.float64)
        x, y = pts[:, 0], pts[:, 1]
        if len(pts) < 3:
            self._offset, self._skew = float(y.min()), 0.0
            self._residual = 0.0
            return
        keep = np.ones(len(pts), dtype=bool)
        a, s = float(np.median(y)), 0.0
        for _ in range(10):
            xm = x[keep].mean()
            dx = x[keep] - xm
            denom = float(dx @ dx)
            s = float(dx @ (y[keep] - y[keep].mean()) / denom) if denom > 0 else 0.0
            a = float(y[keep].mean() - s * xm)
            r = y - (a + s * x)
            med = float(np.median(r))
            mad = float(np.median(np.abs(r - med))) * 1.4826
            # Never tighter than 0.2 ms, so honest envelope noise is not trimmed away.
            new_keep = np.abs(r - med) <= max(4.0 * mad, 200_000.0)
            if new_keep.sum() < 3 or np.array_equal(new_keep, keep):
                break
            keep = new_keep
        if abs(s) > MAX_SKEW:
            # No clock runs 5 % fast or slow: a steeper line is items that came in a burst (a
            # track stored seconds late). Host time standing still while device time runs
            # fits -1, a clock that stops (to_device would divide by zero).
            s = min(max(s, -MAX_SKEW), MAX_SKEW)
            a = float((y[keep] - s * x[keep]).mean())
        # `keep` is the set the last line was fitted on (or its fixed point).
        r = y[keep] - (a + s * x[keep])
        self._residual = float(np.sqrt(np.mean(r * r)))
        # The line runs through the middle of the bins' low points, a little late: slide it
        # down onto the lowest kept one, the item that waited least (outliers are trimmed
        # above). At 20 ms of jitter this takes the error after an hour from 1.8 to 0.25 ms.
        self._offset, self._skew = a + float(r.min()), s

    # -- reader side -------------------------------------------------------------------
    @property
    def ready(self) -> bool:
        """True once at least one observation has been made."""
        with self._lock:
            return self._origin is not None

    def to_pipeline(self, device_ns: int) -> int:
        """Map a device time to pipeline time."""
        with self._lock:
            if self._origin is None:
                raise RuntimeError("ClockModel has no observations yet")
            x = float(device_ns - self._origin)
            return int(round(device_ns + self._offset + self._skew * x))

    def to_pipeline_array(self, device_ns: np.ndarray) -> np.ndarray:
        """Map an int64 array of device times to pipeline time (one consistent fit)."""
        with self._lock:
            if self._origin is None:
                raise RuntimeError("ClockModel has no observations yet")
            x = (device_ns - self._origin).astype(np.float64)
            return device_ns + np.round(self._offset + self._skew * x).astype(np.int64)

    def to_device(self, pipeline_ns: int) -> int:
        """Map a pipeline time to device time (the inverse of :meth:`to_pipeline`)."""
        with self._lock:
            if self._origin is None:
                raise RuntimeError("ClockModel has no observations yet")
            # pipeline = origin + x (1 + skew) + offset  =>  x = (pipeline - origin - offset)/(1+skew)
            x = (pipeline_ns - self._origin - self._offset) / (1.0 + self._skew)
            return int(round(self._origin + x))

    def frozen(self) -> "ClockModel":
        """A copy that maps with the current fit and never learns: one cut of a window maps
        all its times with one fit, even while the capture thread refits the live model."""
        out = FrozenClock()
        with self._lock:
            origin, offset, skew = self._origin, self._offset, self._skew
        out.set_fit(None if origin is None else (origin, offset, skew))
        return out

    def params(self) -> tuple[int, float, float] | None:
        """``(origin_ns, offset_ns, skew)`` of the mapping now; None before any observation."""
        with self._lock:
            return None if self._origin is None else (self._origin, self._offset, self._skew)

    def fit(self) -> ClockFit:
        """A consistent snapshot of the current fit, for metrics."""
        with self._lock:
            return ClockFit(
                offset_ns=self._offset,
                skew=self._skew,
                origin_ns=self._origin or 0,
                residual_ns=self._residual,
                bins=len(self._points),
            )


class FrozenClock(ClockModel):
    """A :class:`ClockModel` with a given fit (``origin_ns, offset_ns, skew``) that does not
    learn; its mapping is the live model's arithmetic, so it gives the very same integers."""

    def set_fit(self, fit: tuple[int, float, float] | list[float] | None) -> None:
        with self._lock:
            self._clear()
            if fit is not None:
                self._origin = int(fit[0])
                self._offset = float(fit[1])
                self._skew = float(fit[2])

    def observe(self, device_ns: int, host_ns: int) -> None:
        raise RuntimeError("a FrozenClock maps with a fixed fit; it does not learn")
