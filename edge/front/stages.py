"""One front-end stage on one ring: each new frame (or audio chunk) once, results by seq.

This module owns running a stage: :class:`VideoStage` hands a per-frame stage the frames its
ring published since it last ran, in order and at most at the stage's rate by frame time, and
keeps the results beside the ring by frame seq (:class:`PerFrame`); :class:`StageWorker` runs
one in its own thread as frames arrive; :class:`AudioVad` feeds the VAD the samples that arrived,
by absolute sample index, its state carried. :mod:`edge.front.cascade` puts them together per
pipeline and reads them per window.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

import numpy as np

from edge.timebase.buffers import FrameRing, SampleRing
from edge.timebase.clock import NS_PER_S


class FrameResult(Protocol):
    """What a per-frame stage gives for one frame."""

    @property
    def present(self) -> bool: ...

    def vector(self) -> np.ndarray: ...


R = TypeVar("R", bound=FrameResult)
R_co = TypeVar("R_co", bound=FrameResult, covariant=True)


class FrameStage(Protocol[R_co]):
    """A per-frame stage: frames in order, results out (it may carry tracking state)."""

    def process(self, frame_bgr: np.ndarray) -> R_co: ...


class PerFrame(Generic[R]):
    """Results of one stage for one video ring, by frame seq, the oldest dropped past
    ``capacity``."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._seqs: list[int] = []
        self._items: dict[int, tuple[int, R]] = {}  # seq -> (device t_ns, result)
        self._lock = threading.Lock()  # a stage's worker thread puts while the tick reads

    def put(self, seq: int, t_ns: int, result: R, replace: bool = False) -> None:
        """Keep ``result`` for frame ``seq``, newer than any kept (with ``replace``, ``seq``
        may be the newest kept one: its result is replaced)."""
        with self._lock:
            if replace and self._seqs and seq == self._seqs[-1]:
                self._items[seq] = (t_ns, result)
                return
            if self._seqs and seq <= self._seqs[-1]:
                raise ValueError(f"frame {seq} is not newer than {self._seqs[-1]}")
            self._seqs.append(seq)
            self._items[seq] = (t_ns, result)
            if len(self._seqs) > self.capacity:
                del self._items[self._seqs.pop(0)]

    def at(self, seq: int) -> tuple[int, int, R] | None:
        """``(seq, t_ns, result)`` of the newest processed frame at or before ``seq``."""
        with self._lock:
            i = bisect.bisect_right(self._seqs, seq)
            if i == 0:
                return None
            s = self._seqs[i - 1]
            t, r = self._items[s]
            return s, t, r

    def between(self, first_seq: int, last_seq: int) -> list[tuple[int, int, R]]:
        """The processed frames with ``first_seq <= seq <= last_seq``, oldest first."""
        with self._lock:
            lo = bisect.bisect_left(self._seqs, first_seq)
            hi = bisect.bisect_right(self._seqs, last_seq)
            return [(s, *self._items[s]) for s in self._seqs[lo:hi]]

    def __len__(self) -> int:
        return len(self._seqs)


@dataclass
class StageStats:
    """Counters of one stage."""

    processed: int = 0  # frames (or chunks) it ran on
    present: int = 0  # of those, with the thing present (a face, a person, speech)
    skipped: int = 0  # frames left out for the stage's rate
    lapped: int = 0  # frames overwritten in the ring before the stage got to them
    busy_ns: int = 0  # time spent in the stage


class VideoStage(Generic[R]):
    """One per-frame stage on one video ring, at most ``rate`` frames per second.

    :meth:`run` processes the frames published since it last ran and keeps what it made
    pending; :meth:`drain` hands that to the tick. Inside the tick both run back to back
    (:meth:`step`); with a :class:`StageWorker` thread, :meth:`run` follows the camera and the
    tick only drains. A window reads no result newer than the last drain (:attr:`horizon`), so
    what a tick saw is exactly what it recorded, and a replay of it is bit-exact either way.
    """

    def __init__(self, name: str, stage: FrameStage[R], ring: FrameRing, rate: float | None,
                 clock: Callable[[], int]) -> None:
        self.name = name
        self.stage = stage
        self.ring = ring
        self.period_ns = None if rate is None else int(NS_PER_S / rate)
        self.results: PerFrame[R] = PerFrame(max(64, ring.capacity * 2))
        self.stats = StageStats()
        self._seen = -1  # newest seq looked at (processed, skipped or lapped)
        self._run_t: int | None = None  # device time of the newest processed frame (its rate)
        self.last_t: int | None = None  # device time of the newest frame handed to the tick
        #: newest seq handed to the tick (None: no cap, the stage runs inside the tick)
        self.horizon: int | None = None
        self._pending: list[tuple[int, int, R]] = []
        self._cond = threading.Condition()
        self._now = clock

    @property
    def seen(self) -> int:
        """Newest frame seq this stage has looked at."""
        return self._seen

    def run(self) -> int:
        """Process the frames published since the last run; returns how many it looked at."""
        idx = self.ring.index()
        new = idx.seq > self._seen
        n = 0
        for seq, t in zip(idx.seq[new].tolist(), idx.t_ns[new].tolist()):
            n += 1
            res: R | None = None
            # A frame within 90 % of the period is left out (frame times jitter).
            if (self.period_ns is not None and self._run_t is not None
                    and t - self._run_t < 0.9 * self.period_ns):
                self.stats.skipped += 1
            else:
                frame = self.ring.read(seq)
                if frame is None:
                    self.stats.lapped += 1
                else:
                    t0 = self._now()
                    res = self.stage.process(frame)
                    self.stats.busy_ns += self._now() - t0
                    self.stats.processed += 1
                    self.stats.present += bool(res.present)
                    self.results.put(seq, t, res)
                    self._run_t = t
            with self._cond:
                if res is not None:
                    self._pending.append((seq, t, res))
                self._seen = seq
                self._cond.notify_all()
        return n

    def drain(self, cap: bool = False) -> list[tuple[int, int, R]]:
        """What :meth:`run` made since the last drain, oldest first; with ``cap`` windows read
        no result past what was handed over."""
        with self._cond:
            made, self._pending = self._pending, []
            if cap:
                self.horizon = self._seen
        if made:
            self.last_t = made[-1][1]
        return made

    def step(self) -> list[tuple[int, int, R]]:
        """Run on the frames published since the last step; return what it made."""
        self.run()
        return self.drain()

    def wake(self) -> None:
        """Wake whoever waits in :meth:`wait_seen` (the worker stopped on an error)."""
        with self._cond:
            self._cond.notify_all()

    def wait_seen(self, seq: int, timeout_s: float) -> bool:
        """Wait until the stage has looked at frame ``seq`` (a worker runs it); False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: self._seen >= seq, timeout_s)

    def capped(self, seq: int) -> int:
        """``seq``, or the horizon when that is older."""
        return seq if self.horizon is None else min(seq, self.horizon)


class StageWorker:
    """A thread that runs one :class:`VideoStage` as frames arrive (polling the ring's newest
    seq every ``poll_s``). An error in the stage stops the thread and is raised again by
    :meth:`check` on the tick thread, where the service's error handling sees it."""

    def __init__(self, stage: VideoStage[Any], source: str, poll_s: float = 0.003) -> None:
        self.stage = stage
        self.poll_s = poll_s
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, name=f"front-{stage.name}-{source}",
                                       daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _loop(self) -> None:
        st = self.stage
        try:
            while not self._stop.is_set():
                if st.ring.next_seq - 1 <= st.seen:
                    self._stop.wait(self.poll_s)
                    continue
                st.run()
        except BaseException as exc:  # handed to the tick thread by check()
            self.error = exc
            st.wake()

    def check(self) -> None:
        if self.error is not None:
            raise self.error

    def stop(self, timeout_s: float = 1.0) -> None:
        self._stop.set()
        if self.thread.is_alive():
            self.thread.join(timeout_s)


class AudioVad:
    """Speech activity on one sample ring: new samples in, chunk probabilities and speech
    flags (hysteresis carried across ticks) kept by chunk start sample."""

    def __init__(self, vad: Any, ring: SampleRing, threshold: float, neg_threshold: float,
                 clock: Callable[[], int]) -> None:
        self.vad = vad
        self.ring = ring
        self.threshold = threshold
        self.neg_threshold = neg_threshold
        self.chunk = int(vad.chunk_samples)
        keep = ring.capacity // self.chunk + 2
        self._start = np.full(keep, -1, np.int64)  # chunk start sample per slot
        self._prob = np.full(keep, np.nan, np.float32)
        self._flag = np.zeros(keep, bool)
        self._speaking = False
        self._fed: int | None = None
        self.stats = StageStats()
        self._now = clock

    def step(self) -> list[list[Any]]:
        """Feed the samples that arrived; return the chunks scored, as JSON rows
        ``[start, probability, speech]``."""
        ring = self.ring
        if ring.start is None:
            return []
        end = ring.end
        start = ring.start if self._fed is None else self._fed
        start = max(start, end - ring.capacity)
        if end <= start:
            return []
        data, mask = ring.read(start, end - start)
        t0 = self._now()
        chunks = self.vad.push(data[:, 0], start, mask)
        self.stats.busy_ns += self._now() - t0
        self._fed = end
        rows: list[list[Any]] = []
        for s, p in chunks:
            if np.isnan(p):
                self._speaking = False
            elif self._speaking:
                self._speaking = bool(p >= self.neg_threshold)
            else:
                self._speaking = bool(p >= self.threshold)
            self._put(int(s), float(p), self._speaking)
            self.stats.processed += 1
            self.stats.present += self._speaking
            rows.append([int(s), float(p), self._speaking])
        return rows

    def _put(self, start: int, prob: float, flag: bool) -> None:
        slot = (start // self.chunk) % self._start.size
        self._start[slot], self._prob[slot], self._flag[slot] = start, prob, flag

    @property
    def fed(self) -> int | None:
        """The sample after the last one fed to the VAD (None: nothing yet)."""
        return self._fed

    def rows(self, first: int, end: int) -> list[list[Any]]:
        """The chunks kept that start in samples ``[first, end)``, oldest first, as rows of
        :meth:`step`."""
        keep = (self._start >= max(0, first)) & (self._start < end)  # -1: an empty slot
        order = np.argsort(self._start[keep], kind="stable")
        starts, probs, flags = (a[keep][order] for a in (self._start, self._prob, self._flag))
        return [[int(s), None if np.isnan(p) else float(p), bool(f)]
                for s, p, f in zip(starts.tolist(), probs.tolist(), flags.tolist())]

    def inject(self, rows: list[list[Any]]) -> None:
        """Recorded chunks (rows of :meth:`step`), as if scored here."""
        for s, p, flag in rows:
            self._put(int(s), float("nan") if p is None else float(p), bool(flag))

    def span(self, n0: int, n1: int) -> tuple[np.ndarray, np.ndarray]:
        """Probabilities and speech flags of the chunks wholly inside samples ``[n0, n1)``,
        oldest first (NaN / False for chunks not known)."""
        first = -(-n0 // self.chunk) * self.chunk
        starts = np.arange(first, n1 - self.chunk + 1, self.chunk, dtype=np.int64)
        slots = (starts // self.chunk) % self._start.size
        known = self._start[slots] == starts
        return (np.where(known, self._prob[slots], np.nan).astype(np.float32),
                known & self._flag[slots])
