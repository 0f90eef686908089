"""The window join: cut timestamp-aligned audio+video windows from the rings.

A window ending at ``t_end`` wants ``T`` frames at evenly spaced target times over ``W``
seconds and exactly ``N = W * sample_rate`` samples over the same span. Each target takes the
nearest frame within a tolerance or is masked; audio is an exact sample range found through the
audio source's clock model, so its length never jitters.

``t_end`` trails the newest data of each modality by at most that modality's ``max_wait``
(:func:`choose_t_end`): a late modality is cut anyway and masked, never waited for without bound.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from edge.timebase.buffers import FrameRing, SampleRing
from edge.timebase.clock import NS_PER_S, ClockModel


@dataclass(frozen=True)
class WindowSpec:
    """Shape of a window: ``frames`` targets over ``seconds`` and the audio of the last
    ``audio_seconds`` (default ``seconds``; longer where a sound's pattern is slower than the
    window, e.g. a CO alarm's 5 s pause), both ending at the same instant."""

    seconds: float
    frames: int
    sample_rate: int
    max_wait_video_ns: int
    max_wait_audio_ns: int
    tolerance_ns: int
    sample_grid: int = 1  # audio starts on multiples of this (the log-mel hop: cached columns)
    audio_seconds: float | None = None

    @property
    def span_ns(self) -> int:
        return int(round(self.seconds * NS_PER_S))

    @property
    def audio_span_s(self) -> float:
        return self.seconds if self.audio_seconds is None else self.audio_seconds

    @property
    def audio_span_ns(self) -> int:
        return int(round(self.audio_span_s * NS_PER_S))

    @property
    def samples(self) -> int:
        return int(round(self.audio_span_s * self.sample_rate))

    def targets(self, t_end_ns: int) -> np.ndarray:
        """Target times of the frames: evenly spaced, the last one at ``t_end_ns``."""
        step = self.span_ns / self.frames
        k = np.arange(1, self.frames + 1, dtype=np.float64)
        return (t_end_ns - self.span_ns + np.round(k * step)).astype(np.int64)


@dataclass
class Window:
    """One aligned audio+video window and what is known about its quality.

    Its frames are read-only copies shared with the neighbouring windows of the stream (at a
    0.5 s hop, 6 of 8 frames are the previous window's): a cut copies only frames it has not
    copied before. :attr:`video` stacks them when somebody asks.
    """

    stream: str
    t_start_ns: int
    t_end_ns: int
    cut_ns: int
    frames: tuple[np.ndarray | None, ...] | None  # [T] uint8 [H, W, C] each (None where masked)
    frame_shape: tuple[int, ...] | None  # [H, W, C] of the stream's frames
    video_mask: np.ndarray  # [T] bool
    video_t_ns: np.ndarray  # [T] int64 time of the chosen frame (-1 where masked)
    target_t_ns: np.ndarray  # [T] int64
    audio: np.ndarray | None  # [N, channels] float32
    audio_mask: np.ndarray  # [N] bool
    audio_n0: int | None
    video_age_ns: int | None  # cut time minus newest frame time
    audio_age_ns: int | None  # cut time minus newest sample time
    av_offset_ns: float | None  # mean (video content time - audio content time) in the window
    # How it was cut, for an exact re-cut (edge.recorder.replay): the clock fits used, and one past the
    # newest frame seq the video ring held.
    video_fit: tuple[int, float, float] | None = None
    audio_fit: tuple[int, float, float] | None = None
    video_upto: int | None = None
    video_seq: np.ndarray | None = None  # [T] int64 ring seq of the chosen frame (-1 where masked)
    _video: np.ndarray | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def video(self) -> np.ndarray | None:
        """The frames stacked, uint8 ``[T, H, W, C]``, blank where masked (built on first use)."""
        if self.frames is None or self.frame_shape is None:
            return None
        if self._video is None:
            v = np.zeros((len(self.frames), *self.frame_shape), np.uint8)
            for k, f in enumerate(self.frames):
                if f is not None:
                    v[k] = f
            self._video = v
        return self._video

    def newest_frame(self) -> np.ndarray | None:
        """The newest valid frame, or None."""
        for f in reversed(self.frames or ()):
            if f is not None:
                return f
        return None

    def mask_video(self) -> None:
        """Mask every frame target (the window then holds blank video)."""
        self.video_mask[:] = False
        if self.frames is not None:
            self.frames = (None,) * len(self.frames)
        self._video = None

    def mask_frames(self, keep: np.ndarray) -> None:
        """Mask the frame targets where ``keep`` is False (e.g. frames without a face)."""
        keep = np.asarray(keep, bool)
        if keep.all() or self.frames is None:
            return
        self.video_mask &= keep
        self.frames = tuple(f if k else None for f, k in zip(self.frames, keep))
        if self.video_seq is not None:
            self.video_seq = np.where(keep, self.video_seq, -1)
        self._video = None

    def mask_audio(self) -> None:
        """Mask every sample (the window then holds silence)."""
        self.audio_mask[:] = False
        if self.audio is not None:
            self.audio[:] = 0

    @property
    def video_valid(self) -> float:
        return float(self.video_mask.mean()) if self.video_mask.size else 0.0

    @property
    def audio_valid(self) -> float:
        return float(self.audio_mask.mean()) if self.audio_mask.size else 0.0


def choose_t_end(
    now_ns: int,
    newest_video_ns: int | None,
    newest_audio_ns: int | None,
    max_wait_video_ns: int,
    max_wait_audio_ns: int,
) -> int:
    """End time of the next window: as late as every modality has data, but bounded.

    Each modality holds ``t_end`` back to its newest data, but never more than its
    ``max_wait`` behind ``now``; a modality without any data holds nothing back beyond that.
    """
    t_end = now_ns
    for newest, wait in ((newest_video_ns, max_wait_video_ns), (newest_audio_ns, max_wait_audio_ns)):
        floor = now_ns - wait
        t_end = min(t_end, floor if newest is None else max(newest, floor))
    return t_end


class Aligner:
    """Cuts windows for one stream (a video ring and/or an audio ring)."""

    def __init__(
        self,
        stream: str,
        spec: WindowSpec,
        frames: FrameRing | None = None,
        samples: SampleRing | None = None,
        audio_clock: ClockModel | None = None,
        video_clock: ClockModel | None = None,
    ) -> None:
        if frames is None and samples is None:
            raise ValueError(f"stream {stream!r} has neither video nor audio")
        if samples is not None and audio_clock is None:
            raise ValueError("an audio ring needs its clock model")
        if frames is not None and video_clock is None:
            raise ValueError("a frame ring needs its clock model")
        self.stream = stream
        self.spec = spec
        self.frames = frames
        self.samples = samples
        self.audio_clock = audio_clock
        self.video_clock = video_clock
        self._ns_per_sample = NS_PER_S / spec.sample_rate
        self.last_t_end_ns: int | None = None
        # Copies of the frames the last window chose, by ring seq: the next cut takes them from
        # here instead of copying them out of the ring again (a frame never changes once made).
        self._held: dict[int, np.ndarray] = {}

    # -- audio index <-> pipeline time ---------------------------------------------------
    def sample_at(self, t_ns: int) -> int:
        """Absolute sample index captured at pipeline time ``t_ns``."""
        assert self.audio_clock is not None
        return int(round(self.audio_clock.to_device(t_ns) / self._ns_per_sample))

    def time_of_sample(self, n: int) -> int:
        """Pipeline time of absolute sample ``n``."""
        assert self.audio_clock is not None
        return self.audio_clock.to_pipeline(int(round(n * self._ns_per_sample)))

    def newest_audio_ns(self) -> int | None:
        if self.samples is None or self.samples.start is None or self.audio_clock is None:
            return None
        if not self.audio_clock.ready:
            return None
        return self.time_of_sample(self.samples.end)

    def newest_video_ns(self) -> int | None:
        if self.frames is None or self.video_clock is None or not self.video_clock.ready:
            return None
        newest = self.frames.newest_t_ns()
        return None if newest is None else self.video_clock.to_pipeline(newest)

    def next_t_end(self, now_ns: int) -> int:
        """The end of the window to cut at ``now_ns`` (see :func:`choose_t_end`)."""
        return choose_t_end(
            now_ns,
            self.newest_video_ns() if self.frames is not None else now_ns,
            self.newest_audio_ns() if self.samples is not None else now_ns,
            self.spec.max_wait_video_ns,
            self.spec.max_wait_audio_ns,
        )

    def cut(self, now_ns: int, t_end_ns: int | None = None) -> Window:
        """Cut the window ending at ``t_end_ns`` (default: :meth:`next_t_end`).

        The whole cut maps times with one snapshot of each clock fit (the capture threads may
        refit meanwhile); the window carries those fits and how far the rings were read, so a
        recording of it can be cut again exactly.
        """
        live = self.video_clock, self.audio_clock
        self.video_clock = live[0].frozen() if live[0] is not None else None
        if live[1] is live[0]:  # one device clock for both tracks: one snapshot
            self.audio_clock = self.video_clock
        else:
            self.audio_clock = live[1].frozen() if live[1] is not None else None
        try:
            return self._cut(now_ns, t_end_ns)
        finally:
            self.video_clock, self.audio_clock = live

    def _cut(self, now_ns: int, t_end_ns: int | None) -> Window:
        spec = self.spec
        if t_end_ns is None:
            t_end_ns = self.next_t_end(now_ns)
        t_start = t_end_ns - spec.span_ns
        targets = spec.targets(t_end_ns) if self.frames is not None else np.zeros(0, np.int64)
        n_targets = spec.frames if self.frames is not None else 0
        video_mask = np.zeros(n_targets, dtype=bool)
        video_t = np.full(n_targets, -1, dtype=np.int64)
        video_seq = np.full(n_targets, -1, dtype=np.int64)
        frames: list[np.ndarray | None] | None = None
        video_age = None
        video_upto = None
        if self.frames is not None:
            # a masked target is blank, never a stale or invented frame
            frames = [None] * n_targets
            video_upto = self._join_video(targets, frames, video_mask, video_t, video_seq)
            newest_v = self.newest_video_ns()
            video_age = None if newest_v is None else now_ns - newest_v
            if self.video_clock is not None and self.video_clock.ready:
                self.frames.release_before(self.video_clock.to_device(t_start))

        audio = None
        audio_mask = np.zeros(spec.samples if self.samples is not None else 0, dtype=bool)
        n0 = None
        audio_age = None
        av_offset = None
        if self.samples is not None and self.audio_clock is not None and self.audio_clock.ready:
            t_audio = t_end_ns - spec.audio_span_ns
            n0 = self.sample_at(t_audio)
            g = spec.sample_grid
            n0 = (n0 + g // 2) // g * g
            audio, audio_mask = self.samples.read(n0, spec.samples)
            newest_a = self.newest_audio_ns()
            audio_age = None if newest_a is None else now_ns - newest_a
            if video_mask.any():
                # Where the audio content sits vs where the chosen frames sit, both relative to
                # the targets they stand for.
                audio_err = self.time_of_sample(n0) - t_audio
                video_err = float(np.mean(video_t[video_mask] - targets[video_mask]))
                av_offset = video_err - audio_err
        elif self.samples is not None:
            audio = np.zeros((spec.samples, self.samples.channels), dtype=np.float32)

        self.last_t_end_ns = t_end_ns
        return Window(
            stream=self.stream,
            t_start_ns=t_start,
            t_end_ns=t_end_ns,
            cut_ns=now_ns,
            frames=None if frames is None else tuple(frames),
            frame_shape=None if self.frames is None else self.frames.shape,
            video_mask=video_mask,
            video_t_ns=video_t,
            target_t_ns=targets,
            audio=audio,
            audio_mask=audio_mask,
            audio_n0=n0,
            video_age_ns=video_age,
            audio_age_ns=audio_age,
            av_offset_ns=av_offset,
            video_fit=self.video_clock.params() if self.video_clock is not None else None,
            audio_fit=self.audio_clock.params() if self.audio_clock is not None else None,
            video_upto=video_upto,
            video_seq=video_seq,
        )

    def _join_video(
        self, targets: np.ndarray, out: list[np.ndarray | None], mask: np.ndarray,
        chosen_t: np.ndarray, chosen_seq: np.ndarray,
    ) -> int | None:
        """Fill ``out``; return one past the newest frame seq the ring index held (or None)."""
        assert self.frames is not None and self.video_clock is not None
        idx = self.frames.index()
        held, self._held = self._held, {}
        if idx.t_ns.size == 0 or not self.video_clock.ready:
            return None
        t = self.video_clock.to_pipeline_array(idx.t_ns)
        pos = np.searchsorted(t, targets)
        left = np.clip(pos - 1, 0, t.size - 1)
        right = np.clip(pos, 0, t.size - 1)
        pick = np.where(np.abs(t[left] - targets) <= np.abs(t[right] - targets), left, right)
        dist = np.abs(t[pick] - targets)
        for k in np.flatnonzero(dist <= self.spec.tolerance_ns):
            seq = int(idx.seq[pick[k]])
            frame = self._held.get(seq)  # two targets can pick one frame (a slow camera)
            if frame is None:
                frame = held.get(seq)
            if frame is None:
                frame = self.frames.read(seq)
                if frame is None:  # overwritten since the index was taken
                    continue
                frame.flags.writeable = False  # shared by the windows that choose it
            out[k] = self._held[seq] = frame
            mask[k] = True
            chosen_t[k] = t[pick[k]]
            chosen_seq[k] = seq
        return int(idx.seq.max()) + 1
