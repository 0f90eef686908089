"""Model inputs from windows, and the loop that turns windows into predictions.

:class:`Featurizer` is the one place where a :class:`~edge.join.align.Window` becomes model inputs:
frames through :func:`edge.features.frames.preprocess_frames`, each frame once (consecutive windows
share most of their frames: at a 0.5 s hop, 6 of 8), audio through a per-stream
:class:`edge.features.logmel.StreamingLogMel` that is fed each tick with the samples that arrived since
the last one (every STFT column is computed once). Training, calibration, evaluation and serving
all call it, so they cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import numpy as np

from edge.join.align import Aligner, Window
from edge.runtime.card import ModelCard
from edge.errors import ConfigError
from edge.features.frames import VideoSpec, preprocess_frames
from edge.features.logmel import LogMelSpec, StreamingLogMel, frame_mask
from edge.front.cascade import WindowFront
from edge.front.features import FrontSpec, compose


@dataclass
class Features:
    """One window's model inputs (no batch dimension)."""

    video: np.ndarray  # [T, C, H, W] float32 (empty for a model over front-end features)
    video_mask: np.ndarray  # [T] float32
    audio: np.ndarray  # [1, M, F] float32
    audio_mask: np.ndarray  # [F] float32
    front: np.ndarray | None = None  # [T, F] float32: per-frame front-end features
    front_mask: np.ndarray | None = None  # [T] float32


class Featurizer:
    """Turns the windows of one stream into model inputs, per the model card."""

    def __init__(self, card: ModelCard, aligner: Aligner) -> None:
        self.card = card
        self.aligner = aligner
        self.vspec = VideoSpec.from_dict(card.video)
        self.mspec = LogMelSpec.from_dict(card.audio)
        self.front = FrontSpec.from_dict(card.front) if card.front else None
        self.pixels = "video" in card.inputs  # a model over front-end features reads no pixels
        spec = aligner.spec
        want_frames = int(card.window.get("frames", spec.frames))
        want_seconds = float(card.window.get("seconds", spec.seconds))
        if want_frames != spec.frames or abs(want_seconds - spec.seconds) > 1e-9:
            raise ConfigError(
                f"stream {aligner.stream!r}: windows of {spec.seconds:g} s x {spec.frames} frames,"
                f" but model {card.name!r} expects {want_seconds:g} s x {want_frames} frames"
            )
        want_audio = float(card.window.get("audio_seconds", want_seconds))
        if aligner.samples is not None and abs(want_audio - spec.audio_span_s) > 1e-9:
            raise ConfigError(
                f"stream {aligner.stream!r}: {spec.audio_span_s:g} s of audio per window, but "
                f"model {card.name!r} expects {want_audio:g} s (window.audio_seconds)"
            )
        if spec.sample_grid % self.mspec.hop_length:
            raise ConfigError(
                f"stream {aligner.stream!r}: audio windows must start on the log-mel hop grid "
                f"({self.mspec.hop_length} samples)"
            )
        if aligner.samples is not None and spec.sample_rate != self.mspec.sample_rate:
            raise ConfigError(
                f"stream {aligner.stream!r}: audio at {spec.sample_rate} Hz, but model "
                f"{card.name!r} expects {self.mspec.sample_rate} Hz"
            )
        self.n_columns = self.mspec.n_frames(spec.samples)
        capacity = self.n_columns * 4
        self.logmel = StreamingLogMel(self.mspec, capacity)
        self._pushed: int | None = None  # absolute index of the next sample to feed
        self._frames: dict[int, np.ndarray] = {}  # ring seq of a frame -> its model input
        self._blank_input: tuple[tuple[int, ...], np.ndarray] | None = None

    @property
    def fed_until(self) -> int | None:
        """Absolute index of the next sample to feed the log-mel cache, or None."""
        return self._pushed

    def _video(self, w: Window) -> np.ndarray:
        """The window's frames as model input; frames of the previous window are reused.

        A frame is known by its sequence number in the stream's ring (a ring lives as long as
        its source), so a frame chosen again is the same pixels and gives the same numbers;
        only new frames are resized. A masked target is a blank frame.
        """
        assert w.frames is not None and w.frame_shape is not None
        n = len(w.frames)
        out = np.empty(self.vspec.shape(n), np.float32)
        seqs = w.video_seq if w.video_seq is not None else np.full(n, -1)
        frames = [f if ok else None for f, ok in zip(w.frames, w.video_mask)]
        # No seq (a window cut without one): its frame is preprocessed, never cached.
        keys = [int(q) if f is not None and q >= 0 else None for f, q in zip(frames, seqs)]
        todo = [(k, f) for k, (key, f) in enumerate(zip(keys, frames))
                if f is not None and (key is None or key not in self._frames)]
        if todo:
            out[[k for k, _ in todo]] = preprocess_frames([f for _, f in todo], self.vspec)
        done = {k for k, _ in todo}
        for k, (key, f) in enumerate(zip(keys, frames)):
            if f is None:
                out[k] = self._blank(w.frame_shape)
            elif key is not None and k not in done:  # a cached frame
                out[k] = self._frames[key]
        self._frames = {key: out[k] for k, key in enumerate(keys) if key is not None}
        return out

    def _blank(self, shape: tuple[int, ...]) -> np.ndarray:
        """Model input of a blank frame (a masked target), computed once per frame shape."""
        if self._blank_input is None or self._blank_input[0] != shape:
            blank = preprocess_frames(np.zeros((1, *shape), np.uint8), self.vspec)[0]
            self._blank_input = shape, blank
        return self._blank_input[1]

    def _feed(self) -> None:
        ring = self.aligner.samples
        if ring is None or ring.start is None:
            return
        end = ring.end
        start = ring.start if self._pushed is None else self._pushed
        start = max(start, end - ring.capacity)
        if end > start:
            data, mask = ring.read(start, end - start)
            self.logmel.push(data[:, 0], start, mask)
            self._pushed = end

    def __call__(self, w: Window, front: WindowFront | None = None) -> Features:
        vs = self.vspec
        fr = fmask = None
        if self.front is not None:
            if front is None:
                raise ConfigError(
                    f"model {self.card.name!r} reads front-end features "
                    f"({', '.join(sorted(self.front.stages))}): enable them under front_ends:"
                )
            fr, fmask = compose(self.front, w.video_mask, front.face, front.person_t,
                                front.speech_t, front.hand_t)
        if not self.pixels:
            video = np.zeros((0,), np.float32)
            vmask = w.video_mask.astype(np.float32)
        elif w.frames is not None and w.video_mask.any():
            video = self._video(w)
            vmask = w.video_mask.astype(np.float32)
        else:
            video = np.zeros(vs.shape(self.aligner.spec.frames), np.float32)
            vmask = np.zeros(self.aligner.spec.frames, np.float32)
        mels = self.mspec.n_mels
        if w.audio_n0 is not None:
            self._feed()
            cols, cmask = self.logmel.columns(
                w.audio_n0, self.aligner.spec.samples, w.audio, w.audio_mask
            )
            # The window's own mask has the last word (a masked modality, a gap seen at cut).
            cmask = cmask & frame_mask(w.audio_mask, self.mspec)
            if not cmask.any():  # no audio at all: the zeros the model was trained with
                cols[:] = 0
            audio = cols[np.newaxis].astype(np.float32, copy=False)
            amask = cmask.astype(np.float32)
        else:
            audio = np.zeros((1, mels, self.n_columns), np.float32)
            amask = np.zeros(self.n_columns, np.float32)
        return Features(video, vmask, audio, amask, fr, fmask)


def batch(features: list[Features], names: Collection[str] | None = None) -> dict[str, np.ndarray]:
    """Stack windows into the engine's named inputs (only ``names``, when given: the card's)."""
    keys = ("video", "video_mask", "audio", "audio_mask", "front", "front_mask")
    out = {}
    for k in keys:
        if names is not None and k not in names:
            continue
        parts = [getattr(f, k) for f in features]
        if any(p is None for p in parts):
            continue
        out[k] = np.stack(parts)
    return out


def sigmoid(x: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-x)), dtype=np.float32)
