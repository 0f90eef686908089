"""The spine: sources -> rings -> a tick every hop -> aligned windows per stream.

:class:`Spine` builds the sources and aligners of a config, and :meth:`Spine.tick` is the pure
step (``now_ns`` in, windows out) that the live loop, replays and tests all call. Ticks follow
"latest wins": a loop that falls behind skips whole ticks (counted) instead of queueing them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np

from edge.join.align import Aligner, Window, WindowSpec
from edge.capture.base import CaptureSource, EndOfStream
from edge.capture.items import ItemSource
from edge.timebase.clock import NS_PER_S, Clock
from edge.config import Config, SourceConfig
from edge.errors import ConfigError, DeviceError, DeviceMissing

log = logging.getLogger(__name__)


def make_source(name: str, cfg: SourceConfig, clock: Clock) -> CaptureSource:
    """Build the capture source that ``cfg`` describes (imports its backend lazily)."""
    if cfg.type == "camera":
        from edge.capture.camera import CameraSource

        return CameraSource(name, cfg, clock)
    if cfg.type == "microphone":
        from edge.capture.microphone import MicrophoneSource

        return MicrophoneSource(name, cfg, clock)
    if cfg.type == "media":
        from edge.capture.media import MediaSource

        return MediaSource(name, cfg, clock)
    if cfg.type == "scenario":
        from edge.capture.scenario import ScenarioSource

        return ScenarioSource(name, cfg, clock)
    from edge.capture.simulated import SyntheticSource

    return SyntheticSource(name, cfg, clock)


def window_spec(
    config: Config, sources: dict[str, CaptureSource], stream: str, sample_grid: int = 1
) -> WindowSpec:
    """The window shape of one stream from the config and its sources' rates."""
    w = config.window
    sc = config.streams[stream]
    fps = sources[sc.video].nominal_fps if sc.video else 30.0
    rate = sources[sc.audio].sample_rate if sc.audio else 16000
    # The nearest frame to a target is at most half an interval away when none is missing; the
    # other quarter is room for arrival jitter (at exactly half, every jittered frame midway
    # between two targets' frames was masked).
    tol = w.tolerance if w.tolerance is not None else 0.75 / fps
    return WindowSpec(
        seconds=w.seconds,
        frames=w.frames,
        audio_seconds=w.audio_seconds,
        sample_rate=rate,
        max_wait_video_ns=int(w.max_wait_video * NS_PER_S),
        max_wait_audio_ns=int(w.max_wait_audio * NS_PER_S),
        tolerance_ns=int(tol * NS_PER_S),
        sample_grid=sample_grid,
    )


@dataclass
class StreamStats:
    """What the windows of one stream looked like."""

    windows: int = 0
    video_masked: int = 0  # frame targets masked
    video_targets: int = 0
    audio_masked: int = 0  # samples masked
    audio_samples: int = 0
    av_offset_ns: list[float] = field(default_factory=list)
    video_age_ns: list[int] = field(default_factory=list)
    audio_age_ns: list[int] = field(default_factory=list)

    def add(self, w: Window) -> None:
        self.windows += 1
        self.video_targets += w.video_mask.size
        self.video_masked += int(w.video_mask.size - w.video_mask.sum())
        self.audio_samples += w.audio_mask.size
        self.audio_masked += int(w.audio_mask.size - w.audio_mask.sum())
        if w.av_offset_ns is not None:
            self.av_offset_ns.append(w.av_offset_ns)
        if w.video_age_ns is not None:
            self.video_age_ns.append(w.video_age_ns)
        if w.audio_age_ns is not None:
            self.audio_age_ns.append(w.audio_age_ns)
        # Keep the lists bounded on long runs: the recent past is what percentiles describe.
        for xs in (self.av_offset_ns, self.video_age_ns, self.audio_age_ns):
            if len(xs) > 4096:
                del xs[: len(xs) - 2048]


class Spine:
    """Sources, rings and aligners of one config, and the tick that cuts windows."""

    def __init__(
        self,
        config: Config,
        clock: Clock,
        sample_grid: int = 1,
        sources: dict[str, CaptureSource] | None = None,
    ) -> None:
        self.config = config
        self.clock = clock
        given = sources or {}
        self.sources: dict[str, CaptureSource] = {
            name: given[name] if name in given else make_source(name, cfg, clock)
            for name, cfg in config.sources.items()
        }
        self.aligners: dict[str, Aligner] = {}
        for name, sc in config.streams.items():
            v = self.sources[sc.video] if sc.video else None
            a = self.sources[sc.audio] if sc.audio else None
            if a is not None and v is not None and a is not v and a.sample_rate <= 0:
                raise ConfigError(f"streams.{name}.audio: source has no audio")
            spec = window_spec(config, self.sources, name, sample_grid)
            ring = a.audio if a is not None else None
            need_s = spec.audio_span_s + config.window.max_wait_audio + config.window.hop
            if ring is not None and ring.capacity < need_s * spec.sample_rate:
                raise ConfigError(
                    f"sources.{sc.audio}: the audio ring holds {ring.capacity / spec.sample_rate:g} s,"
                    f" windows of stream {name!r} need {need_s:g} s (raise its buffer_seconds or "
                    f"audio_buffer_seconds)"
                )
            self.aligners[name] = Aligner(
                name,
                spec,
                frames=v.video if v is not None else None,
                samples=a.audio if a is not None else None,
                audio_clock=a.audio_clock if a is not None else None,
                video_clock=v.video_clock if v is not None else None,
            )
        self.hop_ns = int(config.window.hop * NS_PER_S)
        self.stream_stats = {name: StreamStats() for name in self.aligners}
        self.ticks = 0
        self.skipped_ticks = 0

    # -- lifecycle -----------------------------------------------------------------------
    def check(self, strict: bool = True) -> list[str]:
        """Fail fast on sources that cannot open: a device, stream or file that is not there
        (:class:`DeviceMissing`) raises only when ``strict``, and is otherwise returned as a
        message; what can never open (no GStreamer, no PortAudio) always raises."""
        missing = []
        for src in self.sources.values():
            check = getattr(src, "check", None)
            if check is None:
                continue
            try:
                check()
            except DeviceMissing as exc:
                if strict:
                    raise
                missing.append(str(exc))
        return missing

    def start(self, require_open_s: float | None = None, strict: bool = True) -> list[str]:
        """Start every source; with ``require_open_s``, fail unless each opens in time.

        Not ``strict`` (a daemon), a source whose device is not there yet starts anyway: it is
        retried with its backoff and reported lost until it appears. Returns what is missing.
        """
        missing = self.check(strict)
        for src in self.sources.values():
            src.start()
        if require_open_s is not None:
            for src in self.sources.values():
                if not src.wait_opened(require_open_s):
                    err = src.stats.last_error or "no answer"
                    prefix = f"{src.describe()}: "
                    err = err[len(prefix) :] if err.startswith(prefix) else err
                    self.stop()
                    raise DeviceError(f"{prefix}{err} (gave up after {require_open_s:g} s)")
        return missing

    def stop(self, timeout_s: float = 1.0) -> None:
        """Stop every source within ``timeout_s`` in all: all are told first, then joined
        against one deadline (capture threads are daemons: a device stuck in a driver call
        cannot hold the process)."""
        deadline = time.monotonic() + timeout_s
        for src in self.sources.values():
            src.stop(0.0)
        for src in self.sources.values():
            src.stop(max(0.0, deadline - time.monotonic()))

    # -- the pure step -------------------------------------------------------------------
    def tick(self, now_ns: int) -> list[Window]:
        """Cut one window per stream at ``now_ns``."""
        self.ticks += 1
        out = []
        for name, aligner in self.aligners.items():
            w = aligner.cut(now_ns)
            self.stream_stats[name].add(w)
            out.append(w)
        return out

    def run(
        self,
        seconds: float,
        on_windows: Callable[[list[Window]], None] | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        """Tick every hop for ``seconds`` (live loop; skips ticks it is too late for)."""
        stop = stop or threading.Event()
        start = self.clock.now_ns()
        end = None if seconds == float("inf") else start + int(seconds * NS_PER_S)
        next_tick = start + self.hop_ns
        while end is None or next_tick <= end:
            if not self.clock.sleep_until(next_tick, stop):
                return
            now = self.clock.now_ns()
            behind = (now - next_tick) // self.hop_ns
            if behind > 0:  # latest wins: whole ticks are skipped, never queued
                self.skipped_ticks += int(behind)
                next_tick += int(behind) * self.hop_ns
            windows = self.tick(now)
            if on_windows is not None:
                on_windows(windows)
            next_tick += self.hop_ns

    # -- reporting -----------------------------------------------------------------------
    def report(self, now_ns: int) -> dict[str, object]:
        """Per-source and per-stream statistics as plain data."""
        sources = {}
        for name, src in self.sources.items():
            s = src.stats
            fit = src.video_clock.fit() if src.video_clock is not None else None
            afit = src.audio_clock.fit() if src.audio_clock is not None else None
            use = afit if afit is not None and afit.bins else fit
            ring = src.video
            sources[name] = {
                "kind": src.kind,
                "state": src.state.value,
                "fps": round(src.fps_meter.rate(now_ns), 2),
                "frames": s.frames,
                "samples": s.samples,
                "drops": s.drops + (ring.dropped if ring is not None else 0),
                "gaps": s.gaps,
                "overflows": s.overflows,
                "reconnects": s.reconnects,
                "skew_ppm": round(use.skew_ppm, 1) if use is not None else None,
                "clock_residual_ms": round(use.residual_ns / 1e6, 3) if use is not None else None,
                "last_error": s.last_error,
            }
        streams = {}
        for name, st in self.stream_stats.items():
            streams[name] = {
                "windows": st.windows,
                "video_masked": round(st.video_masked / st.video_targets, 3) if st.video_targets else None,
                "audio_masked": round(st.audio_masked / st.audio_samples, 3) if st.audio_samples else None,
                "av_offset_ms": _pcts(st.av_offset_ns),
                "video_age_ms": _pcts(st.video_age_ns),
                "audio_age_ms": _pcts(st.audio_age_ns),
            }
        return {"ticks": self.ticks, "skipped_ticks": self.skipped_ticks, "sources": sources, "streams": streams}


def _pcts(xs: Iterable[float]) -> dict[str, float] | None:
    a = np.asarray(list(xs), dtype=np.float64)
    if a.size == 0:
        return None
    p50, p99 = np.percentile(a, [50, 99]) / 1e6
    return {"p50": round(float(p50), 2), "p99": round(float(p99), 2)}


def replay(
    source: ItemSource,
    spine: Spine,
    clock: Clock,
    on_windows: Callable[[list[Window]], None],
    max_seconds: float | None = None,
    phase_s: float = 0.0,
) -> None:
    """Run one item source through ``spine`` on a fake clock, single-threaded and exact.

    Each item is written when the clock reaches its due time; every tick whose time comes
    before that item is cut first, so windows see exactly the data a live run would have seen.
    The first tick comes one hop after the start, ``phase_s`` later still: where a live run's
    ticks fall against the data is chance, so a replay can be scored on several grids.
    """
    if not 0.0 <= phase_s < spine.hop_ns / NS_PER_S:
        raise ValueError(f"phase_s must lie in [0, hop), not {phase_s}")
    source.open()
    next_tick = clock.now_ns() + spine.hop_ns + int(round(phase_s * NS_PER_S))
    stop_at = None if max_seconds is None else clock.now_ns() + int(max_seconds * NS_PER_S)
    try:
        origin: tuple[int, int] | None = None
        while True:
            item = source.next_item()
            if item is None:
                break
            device_ns = source.device_due_ns(item)
            if origin is None:
                origin = (device_ns, clock.now_ns())
            due = origin[1] + source.pace_delay_ns(device_ns - origin[0])
            while next_tick < due:  # items due at a tick are in before it is cut
                if stop_at is not None and next_tick > stop_at:
                    return  # the finally below closes the source
                clock.sleep_until(next_tick)
                on_windows(spine.tick(next_tick))
                next_tick += spine.hop_ns
            clock.sleep_until(due)
            source.write_item(item, clock.now_ns())
    except EndOfStream:
        pass
    finally:
        source.close()
    # The ticks that fall on the last item's time still see complete data.
    while next_tick <= clock.now_ns() and (stop_at is None or next_tick <= stop_at):
        on_windows(spine.tick(next_tick))
        next_tick += spine.hop_ns
