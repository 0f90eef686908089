"""Speech activity: silero-vad over a stream of 16 kHz samples indexed by absolute sample number.

This module owns running ``engines/front/silero_vad.onnx`` on a live stream. Chunks lie on an
absolute grid (chunk ``k`` is samples ``[512 k, 512 k + 512)`` of the source's sample counter,
DESIGN.md §2), so the same audio gives the same chunks whatever block sizes the capture hands
over. Between chunks the recurrent state and the last 64 samples (the next chunk's context) are
carried exactly as silero-vad's own ``OnnxWrapper`` does; a gap (samples flagged invalid, or a
block that starts past the end of the previous one) makes the chunks it touches unknown (NaN)
and restarts the model from zero state and zero context, as the wrapper's ``reset_states``.

:func:`speech_flags` turns probabilities into speech flags with silero's hysteresis
(``get_speech_timestamps``: on at ``p >= threshold``, off at ``p < threshold - 0.15``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edge.errors import EngineError
from edge.front.engines import FRONT_DIR, open_front

VAD_NAME = "silero_vad"


class StreamingVad:
    """Silero VAD on one audio stream, fed blocks of samples by absolute sample number.

    Parameters
    ----------
    front_dir : str or Path
        Folder holding ``silero_vad.onnx`` and its card.
    threshold : float
        Speech starts at a chunk probability ``>= threshold`` (silero's default 0.5).
    neg_threshold : float
        Speech ends at a chunk probability ``< neg_threshold`` (silero's default 0.35).
    type_key : str
        Engine backend (``onnx`` or ``tensorrt``).
    options : dict, optional
        Engine options (``threads`` defaults to 1).

    Notes
    -----
    One instance serves one stream; it is not thread-safe. Samples must be float32 mono at the
    card's sample rate (16 kHz), in [-1, 1].
    """

    def __init__(
        self,
        front_dir: str | Path = FRONT_DIR,
        threshold: float = 0.5,
        neg_threshold: float = 0.35,
        type_key: str = "onnx",
        options: dict[str, Any] | None = None,
    ) -> None:
        if not 0.0 <= neg_threshold <= threshold <= 1.0:
            raise EngineError(
                f"VAD thresholds need 0 <= neg_threshold <= threshold <= 1, got {neg_threshold}, {threshold}"
            )
        self.engine = open_front(VAD_NAME, front_dir, type_key, options)
        pre = self.engine.card.preprocess
        self.sample_rate = int(pre.get("sample_rate", 16000))
        self.chunk_samples = int(pre.get("chunk_samples", 512))
        self.context_samples = int(pre.get("context_samples", 64))
        self.state_shape = tuple(int(d) for d in pre.get("state_shape", [2, 1, 128]))
        self.threshold = float(threshold)
        self.neg_threshold = float(neg_threshold)
        self._sr = np.array(self.sample_rate, dtype=np.int64)
        # counters, for health: chunks run, chunks reported unknown, overlapping samples dropped
        self.chunks_run = 0
        self.chunks_unknown = 0
        self.overlap_dropped = 0
        self.reset()

    def reset(self) -> None:
        """Forget the stream: zero state and context, no pending samples, no expected index."""
        self._state = np.zeros(self.state_shape, dtype=np.float32)
        self._ctx = np.zeros(self.context_samples, dtype=np.float32)
        self._next: int | None = None  # absolute index of the next sample expected
        self._pend = np.zeros(0, dtype=np.float32)  # samples [chunk start, _next) of the open chunk
        self._pend_ok = np.zeros(0, dtype=bool)

    @property
    def next_sample(self) -> int | None:
        """Absolute index of the sample the stream expects next (None before the first push)."""
        return self._next

    def push(
        self, samples: np.ndarray, n0: int, valid: np.ndarray | bool = True
    ) -> list[tuple[int, float]]:
        """Feed samples ``[n0, n0 + len(samples))``; score every chunk this push completes.

        Parameters
        ----------
        samples : np.ndarray
            Mono float32 samples at 16 kHz (any shape with one non-unit axis is flattened).
        n0 : int
            Absolute sample index of ``samples[0]``.
        valid : np.ndarray or bool
            Per-sample validity (same length as ``samples``) or one flag for the block. A chunk
            holding any invalid sample is unknown.

        Returns
        -------
        list of (int, float)
            ``(chunk start sample, speech probability)`` in order, one per 512-sample chunk
            completed by this push, including chunks wholly inside a gap before ``n0``. The
            probability is NaN for a chunk that is unknown: it holds invalid or missing samples
            (the part of the stream's first chunk before its first sample counts as missing).
            After an unknown chunk the model restarts from zero state and context.
            Samples before the expected index (an overlap with audio already seen) are dropped
            and counted in ``overlap_dropped``.
        """
        x = np.asarray(samples, dtype=np.float32).reshape(-1)
        if isinstance(valid, (bool, np.bool_)):
            ok = np.full(x.shape[0], bool(valid))
        else:
            ok = np.asarray(valid, dtype=bool).reshape(-1)
            if ok.shape[0] != x.shape[0]:
                raise ValueError(f"valid has {ok.shape[0]} flags for {x.shape[0]} samples")
        n0 = int(n0)
        out: list[tuple[int, float]] = []
        if self._next is None:
            # the stream's first chunk: samples before n0 on the grid are missing
            lead = n0 % self.chunk_samples
            self._pend = np.zeros(lead, dtype=np.float32)
            self._pend_ok = np.zeros(lead, dtype=bool)
            self._next = n0
        elif n0 < self._next:
            skip = min(self._next - n0, x.shape[0])
            self.overlap_dropped += skip
            x, ok, n0 = x[skip:], ok[skip:], n0 + skip
            if x.shape[0] == 0:
                return out
        elif n0 > self._next:
            self._gap(n0, out)
        self._feed(x, ok, out)
        return out

    # -- internals ----------------------------------------------------------------------------
    def _restart(self) -> None:
        self._state = np.zeros(self.state_shape, dtype=np.float32)
        self._ctx = np.zeros(self.context_samples, dtype=np.float32)

    def _gap(self, end: int, out: list[tuple[int, float]]) -> None:
        """Samples ``[_next, end)`` are missing: close the chunks they touch as unknown."""
        assert self._next is not None
        c = self.chunk_samples
        start = self._next - self._pend.shape[0]
        if start + c <= end:
            # every chunk from the open one up to the one holding `end` is unknown; no arrays
            # of the gap's length are built, so a long outage costs one tuple per chunk
            last = end - end % c
            for s in range(start, last, c):
                out.append((s, float("nan")))
            self.chunks_unknown += (last - start) // c
            self._restart()
            lead = end - last
            self._pend = np.zeros(lead, dtype=np.float32)
            self._pend_ok = np.zeros(lead, dtype=bool)
        else:
            fill = end - self._next
            self._pend = np.concatenate([self._pend, np.zeros(fill, dtype=np.float32)])
            self._pend_ok = np.concatenate([self._pend_ok, np.zeros(fill, dtype=bool)])
        self._next = end

    def _feed(self, x: np.ndarray, ok: np.ndarray, out: list[tuple[int, float]]) -> None:
        """Append samples that start at ``_next`` and run every chunk they complete."""
        assert self._next is not None
        c = self.chunk_samples
        start = self._next - self._pend.shape[0]
        buf = np.concatenate([self._pend, x]) if self._pend.shape[0] else x
        okb = np.concatenate([self._pend_ok, ok]) if self._pend_ok.shape[0] else ok
        full = buf.shape[0] // c
        if full:
            good = np.asarray(okb[: full * c].reshape(full, c).all(axis=1))
            for i in range(full):
                s = start + i * c
                if good[i]:
                    out.append((s, self._run(buf[i * c:(i + 1) * c])))
                else:
                    out.append((s, float("nan")))
                    self.chunks_unknown += 1
                    self._restart()
        self._pend = buf[full * c:].copy()
        self._pend_ok = okb[full * c:].copy()
        self._next += x.shape[0]

    def _run(self, chunk: np.ndarray) -> float:
        """One chunk through the model with the carried state and context (silero's wrapper)."""
        inp = np.concatenate([self._ctx, chunk])[None, :]
        res = self.engine.infer({"input": inp, "state": self._state, "sr": self._sr})
        self._state = res["stateN"]
        self._ctx = inp[0, -self.context_samples:].copy()
        self.chunks_run += 1
        return float(res["output"].reshape(-1)[0])


def speech_flags(
    probs: np.ndarray | list[float], threshold: float = 0.5, neg_threshold: float = 0.35
) -> np.ndarray:
    """Speech flag per chunk by silero's hysteresis.

    Parameters
    ----------
    probs : array_like
        Chunk probabilities in stream order; NaN is unknown.
    threshold : float
        Speech starts at ``p >= threshold`` (silero's default 0.5).
    neg_threshold : float
        Speech, once started, goes on until ``p < neg_threshold`` (silero's ``threshold - 0.15``).

    Returns
    -------
    np.ndarray
        Boolean flags, one per chunk. An unknown chunk is not speech and ends a speech run
        (the model restarts after it, so nothing carries across).
    """
    p = np.asarray(probs, dtype=np.float64).reshape(-1)
    flags = np.zeros(p.shape[0], dtype=bool)
    on = False
    for i, v in enumerate(p):
        if np.isnan(v):
            on = False
        elif on:
            on = bool(v >= neg_threshold)
        else:
            on = bool(v >= threshold)
        flags[i] = on
    return flags


def any_per_tick(starts: np.ndarray, flags: np.ndarray, chunk_samples: int, tick_samples: int,
                 n_ticks: int, first_sample: int = 0) -> np.ndarray:
    """Per tick of ``tick_samples`` from ``first_sample``: does any flagged chunk overlap it?

    Parameters
    ----------
    starts : np.ndarray
        Chunk start samples (absolute).
    flags : np.ndarray
        One boolean per chunk.
    chunk_samples : int
        Chunk length in samples.
    tick_samples : int
        Tick length in samples.
    n_ticks : int
        Number of ticks to return.
    first_sample : int
        Absolute sample where tick 0 starts.

    Returns
    -------
    np.ndarray
        Boolean per tick.
    """
    out = np.zeros(n_ticks, dtype=bool)
    s = np.asarray(starts, dtype=np.int64)[np.asarray(flags, dtype=bool)] - first_sample
    for a in s:
        k0 = max(int(a) // tick_samples, 0)
        k1 = min((int(a) + chunk_samples - 1) // tick_samples, n_ticks - 1)
        if k0 <= k1:
            out[k0:k1 + 1] = True
    return out
