"""The core of ``edge record``: new data from the rings onto one file timeline.

:meth:`RecordingCore.poll` is called from the recorder's main loop with ``now_ns`` (never from a
capture callback); it takes the frames committed since the last call by sequence number and the
samples since the last call by absolute index, and hands them to a sink (the media writer).

One timeline: a frame's file time is its device time mapped through its source's
:class:`~edge.timebase.clock.ClockModel` onto pipeline time, minus the origin ``t0`` (the pipeline time of
the first frame or sample written). Audio is a contiguous run of samples, so its file time is
its sample count; to keep that count on pipeline time too, each block is compared with where the
audio clock model puts its end, and a drift beyond ``tol_s`` is taken out by repeating or
leaving out single samples (at most 1 % of a block: a card 100 ppm fast loses one sample in
10 000). A jump beyond ``resync_s`` (the device clock restarted) is bridged at once, with
silence or by dropping samples. A reader that counts samples (``edge.capture.media``) therefore
sees both tracks in sync, however far the card's crystal drifts.

Samples the ring marks invalid (overflows, device loss, or overwritten before they were read)
are written as silence and listed as gaps; frames overwritten before they were read are counted.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from edge.timebase.buffers import FrameRing, SampleRing
from edge.timebase.clock import NS_PER_S, ClockModel

GAP_INVALID = 0  # the ring had no valid samples there: silence written
GAP_RESYNC = 1  # the audio clock jumped ahead: silence written to catch up
GAP_DROPPED = 2  # the audio clock jumped back: samples left out (file_n counts them)


class Sink(Protocol):
    """Where the core puts what it read (the media writer)."""

    def write_frame(self, image: np.ndarray, pts_ms: int) -> None: ...

    def write_audio(self, samples: np.ndarray, f0: int) -> None: ...


FrameHook = Callable[[np.ndarray, float], None]
"""Called with each frame written and its file time in seconds."""
AudioHook = Callable[[np.ndarray, int, np.ndarray], None]
"""Called with each block written (float ``[n, channels]``), its first file sample, its mask."""


@dataclass
class CoreStats:
    """Counters of one recording."""

    frames: int = 0
    lost_frames: int = 0  # overwritten in the ring before the loop read them
    pts_bumped: int = 0  # frames whose mapped time was not after the previous one's
    samples_read: int = 0  # device samples taken from the ring
    samples_written: int = 0  # file samples written (differs by the drift taken out)
    gap_events: int = 0
    gap_samples: int = 0
    resyncs: int = 0


class RecordingCore:
    """Reads one stream's rings into a :class:`Sink` on one timeline.

    Parameters
    ----------
    sink:
        Receives frames (BGR, with milliseconds) and float samples (with a file sample index).
    frames, video_clock:
        The video ring and its clock model (None: no video track).
    samples, audio_clock:
        The audio ring and its clock model (None: no audio track).
    sample_rate:
        Of the audio ring.
    fps:
        Nominal frame rate (the length of the last frame).
    limit_s:
        Stop writing at this file time (``--seconds``); None: no limit.
    tol_s:
        Audio drift against pipeline time that is left alone.
    resync_s:
        Audio drift that is bridged at once instead of taken out gradually.
    chunk_s:
        Longest block read from the audio ring at once.
    """

    def __init__(
        self,
        sink: Sink,
        *,
        frames: FrameRing | None = None,
        video_clock: ClockModel | None = None,
        samples: SampleRing | None = None,
        audio_clock: ClockModel | None = None,
        sample_rate: int = 16000,
        fps: float = 30.0,
        limit_s: float | None = None,
        tol_s: float = 0.002,
        resync_s: float = 0.2,
        chunk_s: float = 1.0,
    ) -> None:
        if (frames is None) != (video_clock is None) or (samples is None) != (audio_clock is None):
            raise ValueError("a ring needs its clock model")
        if frames is None and samples is None:
            raise ValueError("nothing to record")
        self.sink = sink
        self.frames, self.video_clock = frames, video_clock
        self.samples, self.audio_clock = samples, audio_clock
        self.sample_rate = sample_rate
        self.fps = fps
        self.limit_ms = None if limit_s is None else int(round(limit_s * 1000))
        self.limit_samples = None if limit_s is None else int(round(limit_s * sample_rate))
        self._ns_per_sample = NS_PER_S / sample_rate
        self._tol = max(2, int(round(tol_s * sample_rate)))
        self._resync = int(round(resync_s * sample_rate))
        self._chunk = max(1, int(round(chunk_s * sample_rate)))
        self.on_frame: list[FrameHook] = []
        self.on_audio: list[AudioHook] = []
        self.stats = CoreStats()
        self.t0_ns: int | None = None
        self.audio_f0 = 0  # file sample index of the first sample (the audio track's start)
        self.video_done = frames is None
        self.audio_done = samples is None
        self._next_seq: int | None = None
        self._next_n: int | None = None
        self._f = 0  # file samples written, counted from the file's time zero
        self._last_pts: int | None = None
        self._dropping = False  # leaving out samples after the audio clock jumped back
        self._buf = np.empty(frames.shape, np.uint8) if frames is not None else None
        # The sidecar, row by row (converted to arrays by :meth:`sidecar`).
        self._frame_rows: list[tuple[int, int, int, int]] = []
        self._block_rows: list[tuple[int, int, int, int, int]] = []
        self._gap_rows: list[tuple[int, int, int, int]] = []
        self._fit_rows: list[tuple[int, int, int]] = []  # (now, 0 video / 1 audio, origin)
        self._fit_vals: list[tuple[float, float]] = []  # (offset ns, skew)
        self._last_fit_ns: int | None = None
        self._begun = False

    # -- lifecycle -----------------------------------------------------------------------
    def begin(self) -> None:
        """Start from now: only frames committed and samples published from here on count."""
        if self.frames is not None:
            self._next_seq = self.frames.written
        if self.samples is not None and self.samples.start is not None:
            self._next_n = self.samples.end
        self._begun = True

    @property
    def started(self) -> bool:
        """True once the origin is set (the first frame or sample is being written)."""
        return self.t0_ns is not None

    @property
    def done(self) -> bool:
        """True once every track reached ``limit_s``."""
        return self.video_done and self.audio_done

    def poll(self, now_ns: int) -> None:
        """Write everything new in the rings (the main loop calls this every few tens of ms)."""
        if not self._begun:
            raise RuntimeError("poll() before begin()")
        if self.t0_ns is None and not self._try_start():
            return
        if self.frames is not None:
            self._poll_video()
        if self.samples is not None:
            self._poll_audio()
        if self._last_fit_ns is None or now_ns - self._last_fit_ns >= NS_PER_S:
            self._last_fit_ns = now_ns
            for kind, model in ((0, self.video_clock), (1, self.audio_clock)):
                p = model.params() if model is not None else None
                if p is not None:
                    self._fit_rows.append((now_ns, kind, p[0]))
                    self._fit_vals.append((p[1], p[2]))

    # -- time ----------------------------------------------------------------------------
    def _audio_pipeline_ns(self, n: int) -> int:
        assert self.audio_clock is not None
        return self.audio_clock.to_pipeline(int(round(n * self._ns_per_sample)))

    def _file_samples(self, pipeline_ns: int) -> int:
        assert self.t0_ns is not None
        return int(round((pipeline_ns - self.t0_ns) * self.sample_rate / NS_PER_S))

    def _try_start(self) -> bool:
        starts = []
        if self.frames is not None:
            assert self.video_clock is not None and self._next_seq is not None
            if self.frames.written <= self._next_seq or not self.video_clock.ready:
                return False
            idx = self.frames.index()
            sel = idx.seq >= self._next_seq
            if not sel.any():
                return False
            starts.append(self.video_clock.to_pipeline(int(idx.t_ns[sel][0])))
        a_start = None
        if self.samples is not None:
            assert self.audio_clock is not None
            if self.samples.start is None or not self.audio_clock.ready:
                return False
            if self._next_n is None:
                self._next_n = self.samples.start
            if self.samples.end <= self._next_n:
                return False
            a_start = self._audio_pipeline_ns(self._next_n)
            starts.append(a_start)
        self.t0_ns = min(starts)
        if a_start is not None:
            self._f = self.audio_f0 = self._file_samples(a_start)
        return True

    # -- video ---------------------------------------------------------------------------
    def _poll_video(self) -> None:
        ring, model, buf = self.frames, self.video_clock, self._buf
        assert ring is not None and model is not None and buf is not None
        assert self._next_seq is not None and self.t0_ns is not None
        idx = ring.index()
        sel = idx.seq >= self._next_seq
        for seq, t in zip(idx.seq[sel].tolist(), idx.t_ns[sel].tolist()):
            if seq > self._next_seq:
                self.stats.lost_frames += seq - self._next_seq
            self._next_seq = seq + 1
            if not ring.read_into(seq, buf):  # the writer lapped us during the copy
                self.stats.lost_frames += 1
                continue
            pipeline = model.to_pipeline(t)
            pts = int(round((pipeline - self.t0_ns) / 1e6))
            if self.limit_ms is not None and pts >= self.limit_ms:
                self.video_done = True
                continue
            if self._last_pts is not None and pts <= self._last_pts:
                pts = self._last_pts + 1  # a refit moved time back by a hair: keep order
                self.stats.pts_bumped += 1
            self._last_pts = pts
            self.sink.write_frame(buf, pts)
            self.stats.frames += 1
            self._frame_rows.append((seq, t, pipeline, pts))
            for hook in self.on_frame:
                hook(buf, pts / 1000.0)

    # -- audio ---------------------------------------------------------------------------
    def _poll_audio(self) -> None:
        ring = self.samples
        assert ring is not None and self._next_n is not None
        end = ring.end
        while self._next_n < end:
            n = self._next_n
            k = min(end - n, self._chunk)
            data, mask = ring.read(n, k)
            self._next_n = n + k
            self._write_block(n, data, mask)

    def _write_block(self, n: int, data: np.ndarray, mask: np.ndarray) -> None:
        if self.audio_done:
            return
        k = len(data)
        self.stats.samples_read += k
        pipeline = self._audio_pipeline_ns(n)
        err = self._file_samples(self._audio_pipeline_ns(n + k)) - (self._f + k)
        if err > self._resync:  # the device clock jumped ahead: silence up to where it is now
            self._gap_rows.append((n, self._f, err, GAP_RESYNC))
            self.stats.resyncs += 1
            self._emit(np.zeros((err, data.shape[1]), data.dtype), np.zeros(err, bool))
        elif err < -self._resync or self._dropping:  # it jumped back: that was written already
            if not self._dropping:
                self._dropping = True
                self._gap_rows.append((n, self._f, 0, GAP_DROPPED))
                self.stats.resyncs += 1
            drop = min(-err, k) if err < 0 else 0
            self._dropping = drop == k and err < -k  # a longer jump goes on into the next block
            a, f, m, kind = self._gap_rows[-1]
            self._gap_rows[-1] = (a, f, m + drop, kind)
            data, mask = data[drop:], mask[drop:]
        elif abs(err) > self._tol:  # drift: repeat or leave out single samples, spread out
            step = max(1, k // 100)
            m = k + max(-step, min(step, err))
            pick = np.rint(np.linspace(0, k - 1, m)).astype(np.int64) if m > 0 else np.zeros(0, np.int64)
            data, mask = data[pick], mask[pick]
        if len(data):
            self._block_rows.append((n, k, self._f, len(data), pipeline))
            self._emit(data, mask, n, k)

    def _emit(self, data: np.ndarray, mask: np.ndarray, n: int | None = None, k: int = 0) -> None:
        """Write ``data`` at the file position, cut at the limit; record its invalid runs."""
        if self.limit_samples is not None and self._f + len(data) >= self.limit_samples:
            keep = max(0, self.limit_samples - self._f)
            data, mask = data[:keep], mask[:keep]
            self.audio_done = True
        if not len(data):
            return
        if n is not None and not mask.all():
            bad = np.flatnonzero(np.diff(np.concatenate(([1], mask.astype(np.int8), [1]))))
            scale = k / len(data)
            for a, b in zip(bad[0::2].tolist(), bad[1::2].tolist()):
                self._gap_rows.append((n + int(a * scale), self._f + a, b - a, GAP_INVALID))
                self.stats.gap_events += 1
                self.stats.gap_samples += b - a
        self.sink.write_audio(data, self._f)
        for hook in self.on_audio:
            hook(data, self._f, mask)
        self._f += len(data)
        self.stats.samples_written += len(data)

    # -- results -------------------------------------------------------------------------
    def recorded_s(self) -> float:
        """Length of the recording so far: the later end of the two tracks, in seconds."""
        ends = [0.0]
        if self._last_pts is not None:
            ends.append(self._last_pts / 1000.0 + 1.0 / self.fps)
        if self.samples is not None and self.t0_ns is not None:
            ends.append(self._f / self.sample_rate)
        end = max(ends)
        return end if self.limit_ms is None else min(end, self.limit_ms / 1000.0)

    def audio_s(self) -> float:
        """Seconds of audio written (silence in gaps included)."""
        return (self._f - self.audio_f0) / self.sample_rate if self.t0_ns is not None else 0.0

    def sidecar(self) -> dict[str, np.ndarray]:
        """The device timestamps and clock fits behind the file's timestamps, as arrays."""

        def arr(rows: Sequence[tuple[float, ...]], cols: int, dtype: type) -> np.ndarray:
            return np.asarray(rows, dtype=dtype).reshape(-1, cols)

        f = arr(self._frame_rows, 4, np.int64)
        b = arr(self._block_rows, 5, np.int64)
        fits = arr(self._fit_rows, 3, np.int64)
        return {
            "t0_ns": np.asarray(self.t0_ns if self.t0_ns is not None else -1, np.int64),
            "sample_rate": np.asarray(self.sample_rate, np.int64),
            "frame_seq": f[:, 0],
            "frame_device_ns": f[:, 1],
            "frame_pipeline_ns": f[:, 2],
            "frame_pts_ms": f[:, 3],
            "audio_device_n0": b[:, 0],
            "audio_device_n": b[:, 1],
            "audio_file_f0": b[:, 2],
            "audio_file_n": b[:, 3],
            "audio_pipeline_ns": b[:, 4],
            "audio_gaps": arr(self._gap_rows, 4, np.int64),
            "clock_fit_ns": fits[:, 0],
            "clock_fit_kind": fits[:, 1],
            "clock_fit_origin_ns": fits[:, 2],
            "clock_fit_offset_skew": arr(self._fit_vals, 2, np.float64),
            "lost_frames": np.asarray(self.stats.lost_frames, np.int64),
        }
