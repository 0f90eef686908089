"""Preallocated ring buffers between capture threads and the scheduler.

Rings hold *device* time (a frame's timestamp, an absolute sample index); the reader maps it to
pipeline time through the source's clock model at cut time, so every frame benefits from the
newest fit rather than the one that was current when it arrived.

One writer per ring, any number of readers, no lock held while pixels or samples are copied.

``FrameRing`` holds ``capacity`` frames in one preallocated array. The writer fills the next slot
in place (``begin_write`` returns the slot; ``commit`` publishes it) and readers copy the frames
they select, checking the slot's sequence number before and after the copy (a seqlock): a reader
that the writer lapped mid-copy gets ``False`` instead of a torn frame.

``SampleRing`` holds audio indexed by *absolute* sample number, so a window is an exact sample
range ``[n0, n0 + N)``. Gaps (device overflow, lost blocks, reconnects) are kept as a list of
ranges and turned into a validity mask for the reader.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

_EMPTY = -1
_WRITING = -2


@dataclass(frozen=True)
class FrameIndex:
    """A snapshot of which frames a ring holds: sequence numbers and times, oldest first."""

    seq: np.ndarray  # int64
    t_ns: np.ndarray  # int64, device time


class FrameRing:
    """Fixed-capacity ring of equally shaped frames, overwrite-oldest.

    Parameters
    ----------
    capacity:
        Number of slots.
    shape:
        Shape of one frame, e.g. ``(480, 640, 3)``.
    """

    def __init__(self, capacity: int, shape: tuple[int, ...], dtype: type = np.uint8) -> None:
        if capacity < 2:
            raise ValueError("FrameRing needs at least 2 slots")
        self.capacity = capacity
        self.shape = tuple(shape)
        self._frames: np.ndarray = np.zeros((capacity, *shape), dtype=dtype)
        self._t_ns = np.zeros(capacity, dtype=np.int64)
        # Per-slot published sequence number; _WRITING while the writer fills the slot.
        self._slot_seq = np.full(capacity, _EMPTY, dtype=np.int64)
        self._next_seq = 0
        self._writing = False
        self._release_ns: int | None = None
        self.written = 0
        #: frames evicted that a reader had not released yet (the ring was too small)
        self.dropped = 0
        #: reads that found their frame overwritten (before or during the copy)
        self.lapped = 0

    # -- writer ------------------------------------------------------------------------
    def begin_write(self) -> np.ndarray:
        """Return the next slot to be filled in place; it is invisible to readers until commit."""
        slot = self._next_seq % self.capacity
        old = int(self._slot_seq[slot])
        if old >= 0 and self._release_ns is not None and self._t_ns[slot] >= self._release_ns:
            self.dropped += 1
        self._slot_seq[slot] = _WRITING
        self._writing = True
        return self._frames[slot]

    def commit(self, t_ns: int) -> int:
        """Publish the slot returned by :meth:`begin_write`, stamped ``t_ns``; return its seq."""
        if not self._writing:
            raise RuntimeError("commit() without begin_write()")
        seq = self._next_seq
        slot = seq % self.capacity
        self._t_ns[slot] = t_ns
        self._slot_seq[slot] = seq
        self._next_seq = seq + 1
        self._writing = False
        self.written += 1
        return seq

    def abort(self) -> None:
        """Give up the slot from :meth:`begin_write` (a failed read); it stays empty."""
        if self._writing:
            self._slot_seq[self._next_seq % self.capacity] = _EMPTY
            self._writing = False

    def write(self, frame: np.ndarray, t_ns: int) -> int:
        """Copy ``frame`` into the next slot and publish it."""
        slot = self.begin_write()
        np.copyto(slot, frame)
        return self.commit(t_ns)

    # -- readers -----------------------------------------------------------------------
    def release_before(self, t_ns: int) -> None:
        """Say that no reader needs frames older than ``t_ns``: evicting newer ones is a drop."""
        self._release_ns = t_ns

    def index(self) -> FrameIndex:
        """Sequence numbers and times of the published frames, oldest first."""
        seq = self._slot_seq.copy()
        t = self._t_ns.copy()
        ok = seq >= 0
        seq, t = seq[ok], t[ok]
        order = np.argsort(seq, kind="stable")
        return FrameIndex(seq=seq[order], t_ns=t[order])

    @property
    def next_seq(self) -> int:
        """Sequence number the next published frame will get (the count published so far)."""
        return self._next_seq

    def newest_t_ns(self) -> int | None:
        """Time of the newest published frame, or None when empty."""
        last = self._next_seq - 1
        if last < 0:
            return None
        slot = last % self.capacity
        t = int(self._t_ns[slot])
        return t if self._slot_seq[slot] == last else None

    def read_into(self, seq: int, out: np.ndarray) -> bool:
        """Copy frame ``seq`` into ``out``; False when the writer overwrote it."""
        slot = seq % self.capacity
        if self._slot_seq[slot] != seq:
            self.lapped += 1
            return False
        np.copyto(out, self._frames[slot])
        if self._slot_seq[slot] != seq:  # lapped during the copy: what we have may be torn
            self.lapped += 1
            return False
        return True

    def read(self, seq: int) -> np.ndarray | None:
        """A copy of frame ``seq``, or None when it is gone."""
        out = np.empty(self.shape, dtype=self._frames.dtype)
        return out if self.read_into(seq, out) else None


class SampleRing:
    """Audio indexed by absolute sample number, with a list of gaps.

    Parameters
    ----------
    capacity:
        Samples held per channel.
    channels:
        Channel count.
    """

    def __init__(self, capacity: int, channels: int = 1, dtype: type = np.float32) -> None:
        if capacity < 1 or channels < 1:
            raise ValueError("SampleRing needs capacity >= 1 and channels >= 1")
        self.capacity = capacity
        self.channels = channels
        self._buf: np.ndarray = np.zeros((capacity, channels), dtype=dtype)
        self._start: int | None = None  # absolute index of the first sample ever written
        self._end = 0  # one past the newest published sample
        # (start, end) absolute ranges with no valid data. Appended by the writer only; readers
        # iterate over a tuple copy, so no lock is needed.
        self._gaps: deque[tuple[int, int]] = deque()
        self.gap_samples = 0
        self.gap_events = 0
        self.overlaps = 0
        # Highest index the writer is about to overwrite up to; readers compare against it
        # after a copy (the seqlock of this ring).
        self._claim = 0

    @property
    def start(self) -> int | None:
        """Absolute index of the first sample ever written (None when empty)."""
        return self._start

    @property
    def end(self) -> int:
        """One past the newest published sample."""
        return self._end

    def _add_gap(self, a: int, b: int) -> None:
        if b <= a:
            return
        if self._gaps and self._gaps[-1][1] >= a:
            a0, _ = self._gaps[-1]
            self._gaps[-1] = (a0, max(b, self._gaps[-1][1]))
        else:
            self._gaps.append((a, b))
            self.gap_events += 1
        self.gap_samples += b - a
        oldest = self._end - self.capacity
        while self._gaps and self._gaps[0][1] <= oldest:
            self._gaps.popleft()

    def _copy_in(self, n0: int, block: np.ndarray) -> None:
        n = len(block)
        self._claim = max(self._claim, n0 + n)
        i = n0 % self.capacity
        k = min(n, self.capacity - i)
        self._buf[i : i + k] = block[:k]
        if k < n:
            self._buf[: n - k] = block[k:]

    def write(self, block: np.ndarray, n0: int | None = None, valid: bool = True) -> None:
        """Append ``block`` (``[n]`` or ``[n, channels]``) at absolute index ``n0``.

        ``n0`` defaults to :attr:`end`. Skipped samples between :attr:`end` and ``n0`` become a
        gap (zeros). Samples before :attr:`end` are already there and are trimmed. ``valid=False``
        stores the block but marks it as a gap (e.g. the block after an input overflow).
        """
        data = block.reshape(len(block), -1) if block.ndim == 1 else block
        if data.shape[1] != self.channels:
            raise ValueError(f"block has {data.shape[1]} channels, ring has {self.channels}")
        if n0 is None:
            n0 = self._end
        if self._start is None:
            self._start = n0
            self._end = n0
        if n0 < self._end:
            self.overlaps += 1
            cut = self._end - n0
            if cut >= len(data):
                return
            data, n0 = data[cut:], self._end
        if n0 > self._end:
            missing = n0 - self._end
            zeros_from = max(self._end, n0 - self.capacity)
            self._copy_in(zeros_from, np.zeros((n0 - zeros_from, self.channels), self._buf.dtype))
            self._add_gap(self._end, n0)
            self._end = self._end + missing
        if len(data) > self.capacity:
            n0 += len(data) - self.capacity
            data = data[-self.capacity :]
            self._end = n0
        self._copy_in(n0, data)
        if not valid:
            self._add_gap(n0, n0 + len(data))
        self._end = n0 + len(data)

    def mark_gap(self, n: int) -> None:
        """Advance :attr:`end` by ``n`` samples of silence marked invalid (known loss)."""
        if self._start is None or n <= 0:
            return
        self.write(np.zeros((0, self.channels), self._buf.dtype), n0=self._end + n)

    def read(self, n0: int, n: int, out: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Samples ``[n0, n0 + n)`` and their validity mask.

        Samples not (or no longer) in the ring, in a gap, or overwritten during the copy are
        zero with mask False.
        """
        if out is None:
            out = np.zeros((n, self.channels), dtype=self._buf.dtype)
        else:
            out[:] = 0
        mask = np.zeros(n, dtype=bool)
        start = self._start
        if start is None or n <= 0:
            return out, mask
        end = self._end
        a = max(n0, start, end - self.capacity)
        b = min(n0 + n, end)
        if b > a:
            i = a % self.capacity
            k = min(b - a, self.capacity - i)
            out[a - n0 : a - n0 + k] = self._buf[i : i + k]
            if k < b - a:
                out[a - n0 + k : b - n0] = self._buf[: b - a - k]
            mask[a - n0 : b - n0] = True
            # The writer may have lapped the oldest part while we copied.
            oldest_now = max(self._end, self._claim) - self.capacity
            if oldest_now > a:
                lost = min(oldest_now, b) - n0
                out[a - n0 : lost] = 0
                mask[a - n0 : lost] = False
        for ga, gb in tuple(self._gaps):
            lo, hi = max(ga, n0), min(gb, n0 + n)
            if hi > lo:
                out[lo - n0 : hi - n0] = 0
                mask[lo - n0 : hi - n0] = False
        return out, mask
