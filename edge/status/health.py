"""Sensor health as an output: per source ``ok`` / ``degraded`` / ``lost``, with the reasons.

A confident prediction from a covered lens or a clipping microphone is worse than none, so each
source's data is judged on every tick from what the windows and the source counters already
carry: masked fraction of its modality, data age, new drops / gaps / input overflows, clipped
audio, audio with nothing above 4 kHz (:mod:`edge.status.band`), and cheap image statistics of
the newest frame (dark, overexposed, occluded: a flat image). Judgements are over a sliding
horizon (default 5 s) so a single late frame does not flap the state; a change of state is
reported as a health record, so a degraded or lost sensor is announced within the horizon plus
one tick. The core is pure: data and ``now_ns`` in, records out.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from statistics import fmean, median
from typing import Any

import cv2
import numpy as np

from edge.join.align import Window
from edge.status.config import HealthConfig
from edge.timebase.clock import NS_PER_S

OK, DEGRADED, LOST = "ok", "degraded", "lost"
LEVEL = {OK: 0, DEGRADED: 1, LOST: 2}


@dataclass(frozen=True)
class TickStats:
    """What one tick says about one source."""

    t_ns: int
    running: bool  # the capture thread has its device open
    video_masked: float | None  # share of frame targets masked (None: gives no video here)
    audio_masked: float | None
    video_age_ns: int | None
    audio_age_ns: int | None
    frame_mean: float | None  # grey level of the newest valid frame
    frame_std: float | None
    clipped: float | None  # share of audio samples at |x| >= 0.999
    faults: int  # new drops + gaps + overflows since the previous tick
    error: str | None = None  # why the device is not open ("no such device"), when it is not
    notes: tuple[str, ...] = ()  # what the front ends say degrades it ("face absent 12.0 s")
    high_band_db: float | None = None  # edge.status.band.BandCheck's figure (None: not yet)


def frame_stats(w: Window) -> tuple[float | None, float | None]:
    """Mean and spread of the newest valid frame's grey level (BT.601 luma of every 4th pixel:
    0.03 ms for 640x480)."""
    f = w.newest_frame()
    if f is None:
        return None, None
    h, wd = f.shape[:2]
    small = cv2.resize(f, ((wd + 3) // 4, (h + 3) // 4), interpolation=cv2.INTER_NEAREST)
    colour = small.ndim == 3 and small.shape[2] == 3
    grey = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY) if colour else small
    mean, std = cv2.meanStdDev(grey)
    return float(mean[0, 0]), float(std[0, 0])


def clipped_share(w: Window) -> float | None:
    """Share of the window's valid audio samples at full scale (``|x| >= 0.999``)."""
    if w.audio is None or not w.audio_mask.any():
        return None
    full = np.abs(w.audio) >= 0.999  # [N, channels]
    if w.audio_mask.all():
        return np.count_nonzero(full) / full.size
    valid = np.count_nonzero(w.audio_mask) * full.shape[1]
    return np.count_nonzero(full & w.audio_mask[:, None]) / valid


@dataclass
class _Source:
    samples: deque[TickStats] = field(default_factory=deque)
    state: str = OK
    reasons: tuple[str, ...] = ()
    faults_seen: int = 0


class HealthMonitor:
    """Judges each source from its ticks; :meth:`update` returns health records on changes."""

    def __init__(self, config: HealthConfig | None = None) -> None:
        self.config = config or HealthConfig()
        self._sources: dict[str, _Source] = {}

    def update(self, source: str, tick: TickStats) -> list[dict[str, Any]]:
        s = self._sources.setdefault(source, _Source())
        s.samples.append(tick)
        horizon = int(self.config.horizon * NS_PER_S)
        while s.samples and s.samples[0].t_ns < tick.t_ns - horizon:
            s.samples.popleft()
        state, reasons = judge(list(s.samples), self.config)
        changed = state != s.state
        s.state, s.reasons = state, tuple(reasons)
        if not changed:  # reasons carry figures that move every tick: report changes of state
            return []
        return [{"type": "health", "source": source, "state": state, "reasons": list(reasons),
                 "t_ns": tick.t_ns}]

    def state(self, source: str) -> str:
        s = self._sources.get(source)
        return OK if s is None else s.state

    def snapshot(self) -> dict[str, dict[str, Any]]:
        return {n: {"state": s.state, "reasons": list(s.reasons)} for n, s in self._sources.items()}


def judge(ticks: list[TickStats], cfg: HealthConfig) -> tuple[str, list[str]]:
    """State and reasons from a horizon of ticks (oldest first)."""
    if not ticks:
        return OK, []
    last = ticks[-1]
    lost: list[str] = []
    degraded: list[str] = []
    if not last.running:
        lost.append(f"not capturing: {last.error}" if last.error else "not capturing")
    for kind in ("video", "audio"):
        shares = [x for t in ticks if (x := getattr(t, f"{kind}_masked")) is not None]
        if shares:  # plain Python: a horizon holds about ten ticks, too few for NumPy to pay
            m = fmean(shares)
            if m >= cfg.masked_lost:
                lost.append(f"{kind} masked {m:.0%}")
            elif m >= cfg.masked_degraded:
                degraded.append(f"{kind} masked {m:.0%}")
        age = getattr(last, f"{kind}_age_ns")
        if age is not None:
            if age >= cfg.age_lost * NS_PER_S:
                lost.append(f"{kind} {age / NS_PER_S:.1f} s old")
            elif age >= cfg.age_degraded * NS_PER_S:
                degraded.append(f"{kind} {age / NS_PER_S:.1f} s old")
    degraded.extend(last.notes)
    faults = sum(t.faults for t in ticks)
    if faults:
        degraded.append(f"{faults} drops/gaps/overflows")
    means = [t.frame_mean for t in ticks if t.frame_mean is not None]
    stds = [t.frame_std for t in ticks if t.frame_std is not None]
    if means:
        mean, std = median(means), median(stds)
        if mean < cfg.dark_mean:
            degraded.append(f"video dark (mean {mean:.0f})")
        elif mean > cfg.bright_mean:
            degraded.append(f"video overexposed (mean {mean:.0f})")
        elif std < cfg.flat_std:
            degraded.append(f"video occluded (flat, spread {std:.1f})")
    clips = [t.clipped for t in ticks if t.clipped is not None]
    if clips and fmean(clips) >= cfg.clip_fraction:
        degraded.append(f"audio clipping {fmean(clips):.1%}")
    band = last.high_band_db
    if band is not None and cfg.band_limited_db is not None and band < cfg.band_limited_db:
        degraded.append(f"audio band-limited: nothing above 4 kHz ({band:.0f} dB; an 8 kHz "
                        "microphone?)")
    if lost:
        return LOST, lost + degraded
    if degraded:
        return DEGRADED, degraded
    return OK, []
