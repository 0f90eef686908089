"""The flight recorder's tick journal: what each tick was, without pixels.

A recording starts in the past (its pre-roll), so the recorder keeps, always, a short history of
every tick: per tick and source the clock fit the cut used, per window its times and up to
which frame and sample the rings held at the cut, per stream the samples the tick pushed into
the featurizer's log-mel cache, and the tick's predictions and events. :class:`TickJournal`
keeps that history over a horizon of the pre-roll plus one window's lookback, and says from
which tick a recording must start for its replay to build the log-mel cache in the live run's
batches (:meth:`TickJournal.warmup_start`) and what a replay restores of the front ends
(:meth:`TickJournal.restore`); :class:`~edge.recorder.core.FlightRecorder` reads it when a
recording starts and as it goes on.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from edge.timebase.buffers import FrameRing, SampleRing
from edge.timebase.clock import NS_PER_S, ClockModel, FrozenClock
from edge.recorder.config import fit_of

if TYPE_CHECKING:
    from edge.join.align import Window
    from edge.decisions.decide import Event
    from edge.join.spine import Spine
    from edge.service.run import Prediction
    from edge.features.serve import Featurizer


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("._-")[:64] or "x"


@dataclass
class _Tap:
    """One source as the recorder reads it."""

    name: str
    dir: str  # its folder name inside a recording
    kind: str
    video: FrameRing | None
    audio: SampleRing | None
    video_clock: ClockModel | None
    audio_clock: ClockModel | None
    fps: float
    sample_rate: int
    scratch: FrozenClock = field(default_factory=FrozenClock)  # for mapping with a snapshot
    newest: int = -1  # newest frame seq at the last tick
    arrived: int = 0  # frames that arrived during the last tick


@dataclass
class _Tick:
    """What one tick was, without pixels: enough to replay it."""

    now_ns: int
    line: dict[str, Any]
    predictions: list[dict[str, Any]]
    events: list[dict[str, Any]]
    #: the front ends' state before the tick (after the one before it): the cascade's and
    #: each stream's eye baseline samples; empty without front ends
    before: dict[str, Any] = field(default_factory=dict)


def _feed_end(featurizer: Featurizer) -> int | None:
    # Read right after process(), how far the featurizer fed its log-mel cache says exactly which
    # samples that tick pushed.
    value = featurizer.fed_until
    return None if value is None else int(value)


def _prediction_line(p: Prediction) -> dict[str, Any]:
    return {
        "stream": p.stream, "t_end_ns": p.t_end_ns, "cut_ns": p.cut_ns, "emitted_ns": p.emitted_ns,
        "probs": {k: float(v) for k, v in p.probs.items()},  # full precision: replay compares bits
        "active": list(p.active), "video_valid": p.video_valid, "audio_valid": p.audio_valid,
        "video_age_ns": p.video_age_ns, "audio_age_ns": p.audio_age_ns, "extra": p.extra,
    }


def first_pre_roll_tick(ticks_ns: Sequence[int], trigger_ns: int, pre_ns: int, hop_ns: int) -> int:
    """Index of the first of ``ticks_ns`` (ascending, the trigger's last) within the pre-roll.

    Ticks come a hop apart give or take the loop's jitter, so a pre-roll of whole hops would
    keep or lose its oldest tick by microseconds; a tick up to a quarter hop beyond the pre-roll
    still counts (the rings hold two hops more than the pre-roll: ``ring_seconds_needed``)."""
    edge_ns = trigger_ns - pre_ns - hop_ns // 4
    return next(i for i, t in enumerate(ticks_ns) if t >= edge_ns)


class TickJournal:
    """The history of ticks a recording can start from (see the module docstring).

    Parameters
    ----------
    spine:
        The running spine: its sources' rings and clock models, and its aligners' specs.
    featurizers:
        The runner's featurizers by stream: how far each fed its log-mel cache.
    pre_roll_s:
        The recorder's pre-roll; the history reaches back that far plus one window.
    cascade:
        The runner's front ends (:class:`edge.front.cascade.Cascade`), if any: each tick keeps
        what they made (per frame seq, per audio chunk), which a replay feeds back instead of
        running them (their tracking state reaches back before any recording), and the state
        they were in before it, from which a replay starts.
    eye_scalers:
        The runner's eye baselines by stream (``Runner.eye_scalers``): each tick keeps their
        samples before it, too.
    """

    def __init__(
        self, spine: Spine, featurizers: Mapping[str, Featurizer], pre_roll_s: float,
        cascade: Any = None, eye_scalers: Mapping[str, Any] | None = None,
    ) -> None:
        self.spine = spine
        self.cascade = cascade
        self.eye_scalers = {n: s for n, s in (eye_scalers or {}).items() if s is not None}
        # the front ends' state after the last tick (a journal made mid-run starts from theirs)
        self._state: dict[str, Any] = self._front_state()
        self.featurizers = featurizers
        self.hop_ns = spine.hop_ns
        self.taps: dict[str, _Tap] = {}
        used = {n for sc in spine.config.streams.values() for n in (sc.video, sc.audio) if n}
        dirs: set[str] = set()
        for name, src in spine.sources.items():
            if name not in used:
                continue
            d = _safe(name)
            while d in dirs:
                d += "_"
            dirs.add(d)
            self.taps[name] = _Tap(
                name, d, src.kind, src.video, src.audio, src.video_clock, src.audio_clock,
                src.nominal_fps, src.sample_rate,
            )
        n_fft = max((f.mspec.n_fft for f in self.featurizers.values()), default=0)
        rate = max((t.sample_rate for t in self.taps.values()), default=0)
        w = spine.config.window
        lookback_s = max(a.spec.audio_span_s for a in spine.aligners.values()) + w.max_wait_audio
        lookback_s += 2 * w.hop + (n_fft / rate if rate else 0.0)
        self.lookback_ns = int(round(lookback_s * NS_PER_S))
        self.retime(pre_roll_s)
        self.history: deque[_Tick] = deque(maxlen=100_000)
        self._fed: dict[str, int | None] = {s: _feed_end(f) for s, f in featurizers.items()}

    def retime(self, pre_roll_s: float) -> None:
        """Keep the history for another pre-roll (a recorder taking this journal over)."""
        self.pre_ns = int(round(pre_roll_s * NS_PER_S))
        self.horizon_ns = self.pre_ns + self.lookback_ns + 2 * self.hop_ns

    def record(
        self,
        now_ns: int,
        windows: Sequence[Window],
        predictions: Sequence[Prediction],
        events: Sequence[tuple[str, Event]],
    ) -> _Tick:
        """Add one tick to the history (and forget what fell out of the horizon); return it."""
        tick = self._observe(now_ns, windows, predictions, events)
        tick.before, self._state = self._state, self._front_state()
        self.history.append(tick)
        while self.history and self.history[0].now_ns < now_ns - self.horizon_ns:
            self.history.popleft()
        return tick

    def restore(
        self, ticks: Sequence[_Tick], compared_from: int, first_seq: Mapping[str, int],
        first_sample: Mapping[str, int],
    ) -> dict[int, dict[str, Any]]:
        """What a replay of ``ticks`` (a recording's, from the history) restores before which of
        them (by index): before the first, the front ends' results made until then for the
        recorded frames (from ``first_seq`` per video source) and audio (from ``first_sample``)
        and their running state; before the first compared one (``compared_from``), the eye
        baselines' samples (the windows of the ticks before it reach before the recorded data,
        so a replay's own samples there would differ)."""
        out: dict[int, dict[str, Any]] = {}
        if not ticks:
            return out
        state = ticks[0].before.get("cascade")
        if state is not None and self.cascade is not None:
            rows = self.cascade.made_rows(state, dict(first_seq), dict(first_sample))
            out[0] = {"front": {"state": state, "rows": rows}}
        eyes = ticks[compared_from].before.get("eyes") if compared_from < len(ticks) else None
        if eyes:
            out.setdefault(compared_from, {})["eyes"] = eyes
        return out

    def warmup_start(
        self, ticks: list[_Tick], compared_from: int, need_n0: dict[str, int]
    ) -> tuple[int, dict[str, int], bool]:
        """The first tick to record, and from which sample each audio source must be kept.

        The replay's log-mel cache must be built in the live run's batches: a tick whose feed
        started at column ``c`` had the samples from ``c * hop`` in its cache's tail, so a
        replay ring starting there and fed from that tick on repeats every later batch. The
        latest such tick whose start still precedes the first compared window is chosen.
        """
        by_source: dict[str, list[str]] = {}
        for stream, f in self.featurizers.items():
            src = self.spine.config.streams[stream].audio
            if src is not None and src in self.taps and self.taps[src].audio is not None:
                by_source.setdefault(src, []).append(stream)
        if not by_source:  # exact unless a stream hears audio that no featurizer fed
            heard = [sc.audio for sc in self.spine.config.streams.values() if sc.audio]
            return compared_from, {}, not any(
                n in self.taps and self.taps[n].audio is not None for n in heard)
        for i in range(compared_from, -1, -1):
            starts = self._feed_starts(ticks[i], by_source, need_n0)
            if starts is not None:
                return i, starts, True
        return 0, {}, False

    def _feed_starts(
        self, tick: _Tick, by_source: dict[str, list[str]], need_n0: dict[str, int]
    ) -> dict[str, int] | None:
        """Per audio source, the sample a replay ring must start at for ``tick`` to be the
        replay's first feed; None when that tick cannot be (no feed, or data already gone)."""
        starts: dict[str, int] = {}
        for src, stream_names in by_source.items():
            ring = self.taps[src].audio
            assert ring is not None
            oldest = max(ring.start or 0, ring.end - ring.capacity)
            for s in stream_names:
                feed = tick.line["feeds"].get(s)
                if feed is None:
                    return None
                spec = self.featurizers[s].mspec
                if feed["first"]:  # the live cache began here too: nothing earlier to rebuild
                    s0 = feed["from"]
                else:  # the first column the cache had not computed, i.e. the start of its tail
                    s0 = ((feed["from"] - spec.n_fft) // spec.hop_length + 1) * spec.hop_length
                if s0 < oldest or (not feed["first"] and s0 > need_n0.get(src, s0)):
                    return None
                starts[src] = min(starts.get(src, s0), s0)
        return starts

    def _front_state(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.cascade is not None:
            out["cascade"] = self.cascade.state()
        if self.eye_scalers:
            out["eyes"] = {n: s.state() for n, s in self.eye_scalers.items()}
        return out

    def _observe(
        self,
        now_ns: int,
        windows: Sequence[Window],
        predictions: Sequence[Prediction],
        events: Sequence[tuple[str, Event]],
    ) -> _Tick:
        clocks: dict[str, dict[str, Any]] = {}
        for name, tap in self.taps.items():
            clocks[name] = {"video": fit_of(tap.video_clock), "audio": fit_of(tap.audio_clock)}
            if tap.video is not None:
                newest = tap.video.written - 1
                tap.arrived, tap.newest = max(0, newest - tap.newest), newest
        streams = self.spine.config.streams
        for w in windows:  # the fits the cut itself used, where the window carries them
            sc = streams[w.stream]
            if sc.video in clocks and w.video_fit is not None:
                clocks[sc.video]["video"] = list(w.video_fit)
            if sc.audio in clocks and w.audio_fit is not None:
                clocks[sc.audio]["audio"] = list(w.audio_fit)
        wins = []
        for w in windows:
            sc = streams[w.stream]
            entry: dict[str, Any] = {
                "stream": w.stream, "t_start_ns": w.t_start_ns, "t_end_ns": w.t_end_ns,
                "cut_ns": w.cut_ns, "audio_n0": w.audio_n0, "video_t_ns": w.video_t_ns.tolist(),
                "video_valid": w.video_valid, "audio_valid": w.audio_valid,
            }
            if sc.video and sc.video in self.taps:
                seq, exact = self._visible(self.taps[sc.video], clocks[sc.video]["video"], w)
                entry["video_upto"], entry["video_exact"] = seq, exact
            if w.audio_n0 is not None and w.audio_mask.size:
                # The ring held at least the window's last valid sample at the cut; anything past
                # it the replay leaves unwritten until after the cut (it was masked either way).
                valid = np.flatnonzero(w.audio_mask)
                entry["audio_upto"] = None if valid.size == 0 else w.audio_n0 + int(valid[-1]) + 1
            wins.append(entry)
        feeds: dict[str, Any] = {}
        for stream, f in self.featurizers.items():
            cur, prev = _feed_end(f), self._fed.get(stream)
            ring = self.spine.aligners[stream].samples
            if cur is None or cur == prev or ring is None:
                feeds[stream] = None
            elif prev is None:  # the featurizer's first feed started at the ring's oldest sample
                start = ring.start if ring.start is not None else cur
                feeds[stream] = {"from": max(start, cur - ring.capacity), "to": cur, "first": True}
            else:
                feeds[stream] = {"from": prev, "to": cur, "first": False}
            self._fed[stream] = cur
        audio_end = {n: t.audio.end for n, t in self.taps.items() if t.audio is not None}
        line = {"now_ns": now_ns, "clocks": clocks, "windows": wins, "feeds": feeds, "audio_end": audio_end}
        if self.cascade is not None:
            line["front"] = self.cascade.produced
        preds = [_prediction_line(p) for p in predictions]
        evs = [{"stream": s, **e.to_json()} for s, e in events]
        return _Tick(now_ns, line, preds, evs)

    def _visible(self, tap: _Tap, fit: list[float] | None, w: Window) -> tuple[int | None, bool]:
        """Newest frame seq the ring held at the window's cut, and whether that is exact.

        At the cut the newest frame mapped to ``cut - video_age``; with the tick's fit the same
        frame maps to the same integer (a newer one arrived since the cut maps later).
        """
        if w.video_upto is not None:  # the cut says how far it read the ring
            return w.video_upto - 1, True
        ring = tap.video
        if ring is None or fit is None or w.video_age_ns is None:
            return None, True
        tap.scratch.set_fit(fit)
        newest_ns = w.cut_ns - w.video_age_ns
        idx = ring.index()
        for k in range(idx.seq.size - 1, max(-1, idx.seq.size - 64), -1):
            t = tap.scratch.to_pipeline(int(idx.t_ns[k]))
            if t == newest_ns:
                return int(idx.seq[k]), True
            if t < newest_ns:
                return int(idx.seq[k]), False
        return (int(idx.seq[0]) if idx.seq.size else None), False
