"""Windows to predictions: the model stage of the pipeline, for live runs, replays and eval.

:class:`Runner` owns a :class:`~edge.join.spine.Spine`, one :class:`~edge.features.serve.Featurizer` per
stream and the engine. :meth:`Runner.process` takes the windows of one tick, batches all streams
into one engine call (per-stream calls for an engine with a fixed batch of 1) and returns one
:class:`Prediction` per stream. The live loop, ``edge eval`` and tests all go through it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np

from edge.join.align import Window
from edge.timebase.buffers import FrameRing, SampleRing
from edge.front.eyebase import EyeBaseline
from edge.front.features import FrontSpec
from edge.front.roadbase import DriverBaseline
from edge.capture.base import CaptureSource, SourceState
from edge.runtime.card import ModelCard, card_path_for, load_card
from edge.timebase.clock import NS_PER_S, Clock
from edge.recorder.checks import rule_problems
from edge.config import Config
from edge.decisions.rules import DecisionsConfig
from edge.decisions.decide import Decider, Event, degraded_flags
from edge.errors import ConfigError
from edge.join.spine import Spine
from edge.runtime.base import Engine, open_engine
from edge.service.hearing import Hearing, unheard
from edge.features.logmel import LogMelSpec
from edge.status.band import BandCheck
from edge.status.health import HealthMonitor, TickStats, clipped_share, frame_stats
from edge.features.serve import Features, Featurizer, batch, sigmoid

log = logging.getLogger(__name__)


@dataclass
class Prediction:
    """One stream's probabilities for one window."""

    stream: str
    t_end_ns: int
    cut_ns: int
    emitted_ns: int
    probs: dict[str, float]
    active: list[str]
    video_valid: float
    audio_valid: float
    video_age_ns: int | None
    audio_age_ns: int | None
    extra: dict[str, object] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        return {
            "stream": self.stream,
            "t_end_ns": self.t_end_ns,
            "latency_ms": round((self.emitted_ns - self.t_end_ns) / 1e6, 2),
            "probs": {k: round(v, 4) for k, v in self.probs.items()},
            "active": self.active,
            "video_valid": round(self.video_valid, 3),
            "audio_valid": round(self.audio_valid, 3),
            **self.extra,
        }


def fit_window(config: Config, card: ModelCard) -> Config:
    """The config with ``window.audio_seconds`` taken from the card where it leaves it unset."""
    if config.window.audio_seconds is not None or "audio_seconds" not in card.window:
        return config
    window = config.window.model_copy(
        update={"audio_seconds": float(card.window["audio_seconds"])}
    )
    return config.model_copy(update={"window": window})


@dataclass(frozen=True)
class _Decisions:
    deciders: dict[str, Decider]
    hearing: Hearing


@dataclass(frozen=True)
class RunnerReload:
    """A reload prepared by :meth:`Runner.prepare_reload`; :meth:`Runner.apply_reload`
    switches to it."""

    config: Config
    decisions: _Decisions | None  # None: ``decisions:`` unchanged, the running ones kept
    needs_restart: list[str]


class Runner:
    """Spine + features + engine of one config."""

    def __init__(
        self,
        config: Config,
        clock: Clock,
        engine: Engine | None = None,
        card: ModelCard | None = None,
        sources: dict[str, CaptureSource] | None = None,
    ) -> None:
        if config.model is None and engine is None:
            raise ConfigError("the config has no `model:` section (which model to run)")
        if engine is None:
            assert config.model is not None
            # load_config resolved it against the config's folder (edge.paths); a config
            # built in code names it as it is meant.
            model_path = Path(config.model.path)
            card = load_card(card_path_for(model_path))
            ec = config.model.engine
            engine = open_engine(ec.type, model_path, card, ec.model_dump())
        self.engine = engine
        self.card = card or engine.card
        config = fit_window(config, self.card)
        hop = int(self.card.audio.get("hop_length", 160))
        self.spine = Spine(config, clock, sample_grid=hop, sources=sources)
        self.clock = clock
        self.featurizers = {n: Featurizer(self.card, al) for n, al in self.spine.aligners.items()}
        self.cascade = self._build_cascade(config)
        self.classes = self.card.class_names
        self.thresholds = np.array([c.threshold for c in self.card.classes], np.float32)
        self.infer_ns: list[int] = []
        self.deciders: dict[str, Decider] = {}
        self._closed: list[tuple[str, Event]] = []  # events a reload ended, out next tick
        self.set_decisions(config.decisions)
        self._last: dict[str, tuple[Window, Features]] = {}
        self.feature_hook: Callable[[Features], Features] | None = None  # edge eval --perturb
        # Per stream: the driver's eyes scaled to his own (a card's front.eye_baseline).
        spec = FrontSpec.from_dict(self.card.front) if self.card.front else None
        self.eye_scalers = {n: spec.eye_scaler() if spec else None for n in self.featurizers}
        self._driver_gone: set[str] = set()  # streams whose baselines a long absence emptied
        self.health = HealthMonitor(config.health)
        self.config = config
        self._faults: dict[str, int] = {}
        self._first_tick: dict[str, int] = {}
        self._first_data: dict[str, int] = {}
        self._bands: dict[str, BandCheck] = {}  # per audio source
        self.health_records: list[dict[str, Any]] = []  # of the latest tick

    def _build_cascade(self, config: Config) -> Any:
        """The front ends ``front_ends:`` asks for, on the streams' rings (None: none)."""
        fc = config.front_ends
        spec = FrontSpec.from_dict(self.card.front) if self.card.front else None
        need = set(spec.stages) if spec is not None else set()
        have = set() if fc is None else {k for k in ("face", "person", "hand", "vad") if getattr(fc, k)}
        if need - have:
            raise ConfigError(
                f"model {self.card.name!r} reads front-end features of "
                f"{', '.join(sorted(need))}; add front_ends: with {', '.join(sorted(need - have))}"
            )
        if fc is None:
            return None
        if spec is not None and fc.face is not None:
            # A model over front-end features reads face.present itself: nothing is masked;
            # the iris model runs only for a model that reads what it gives.
            face = {"mask_absent": False} | ({"gaze": True} if spec.gaze else {})
            fc = fc.model_copy(update={"face": fc.face.model_copy(update=face)})
        from edge.front.cascade import build_cascade  # the stages' engines load with it

        video: dict[str, FrameRing] = {}
        audio: dict[str, SampleRing] = {}
        for sc in config.streams.values():
            ring = self.spine.sources[sc.video].video if sc.video else None
            if sc.video and ring is not None:
                video[sc.video] = ring
            src = self.spine.sources[sc.audio] if sc.audio else None
            if sc.audio and src is not None and src.audio is not None and fc.vad is not None:
                if src.sample_rate != 16000:
                    raise ConfigError(f"front_ends.vad: source {sc.audio!r} gives "
                                      f"{src.sample_rate} Hz audio; the VAD needs 16000 Hz")
                audio[sc.audio] = src.audio
        return build_cascade(fc, video, audio, self.spine.hop_ns, time.perf_counter_ns)

    def _driver_left(self, stream: str, scaler: EyeBaseline | DriverBaseline) -> None:
        """Empty the stream's driver baselines while its face has been absent for
        ``front_ends.face.new_driver_after`` seconds (said once an absence): the next face may be
        another driver's. While no face is there they take no sample, so emptying them tick after
        tick is emptying them once, and a replay that restores the face's running state does it
        on the same tick."""
        fc = self.config.front_ends
        after = fc.face.new_driver_after if fc is not None and fc.face is not None else None
        video = self.spine.config.streams[stream].video
        absent = (self.cascade.face_absent_s(video)
                  if after is not None and self.cascade is not None and video else None)
        if absent is None or after is None or absent < after:
            self._driver_gone.discard(stream)
            return
        if stream not in self._driver_gone:
            self._driver_gone.add(stream)
            log.info("%s: no face for %.1f s: the driver baselines start again", stream, absent)
        scaler.reset()

    def process(self, windows: list[Window]) -> list[Prediction]:
        """Model outputs for the windows of one tick (all streams in one batch)."""
        fronts: dict[str, Any] = {}
        if self.cascade is not None:  # before the features: it masks frames without a face
            self.cascade.step()
            for w in windows:
                sc = self.spine.config.streams[w.stream]
                rate = self.spine.sources[sc.audio].sample_rate if sc.audio else 16000
                al = self.spine.aligners[w.stream]
                fronts[w.stream] = self.cascade.window(
                    w, sc.video, sc.audio, rate, al.sample_at if al.audio_clock is not None else None
                )
        feats = [self.featurizers[w.stream](w, fronts.get(w.stream)) for w in windows]
        if self.feature_hook is not None:
            feats = [self.feature_hook(f) for f in feats]
        for w, f in zip(windows, feats):
            scaler = self.eye_scalers.get(w.stream)
            if scaler is not None and f.front is not None:  # after the hook: it sees the change
                self._driver_left(w.stream, scaler)
                f.front = scaler(f.front, f.front_mask)
            self._last[w.stream] = (w, f)
        self.health_records = self._judge_health(windows)
        t0 = self.clock.now_ns()
        limit = self.engine.max_batch
        names = self.card.inputs
        if limit is None or limit >= len(feats):
            logits = next(iter(self.engine.infer(batch(feats, names)).values()))
        else:
            parts = [
                next(iter(self.engine.infer(batch(feats[i : i + limit], names)).values()))
                for i in range(0, len(feats), limit)
            ]
            logits = np.concatenate(parts)
        now = self.clock.now_ns()
        self.infer_ns.append(now - t0)
        if len(self.infer_ns) > 4096:
            del self.infer_ns[:2048]
        probs = sigmoid(logits)
        out = []
        for w, p in zip(windows, probs):
            sc = self.spine.config.streams[w.stream]
            src = self.spine.sources[sc.video or sc.audio or ""]
            truth = src.truth_at(w.t_end_ns)
            out.append(
                Prediction(
                    stream=w.stream,
                    t_end_ns=w.t_end_ns,
                    cut_ns=w.cut_ns,
                    emitted_ns=now,
                    probs={c: float(x) for c, x in zip(self.classes, p)},
                    active=[c for c, x, t in zip(self.classes, p, self.thresholds) if x >= t],
                    video_valid=w.video_valid,
                    audio_valid=w.audio_valid,
                    video_age_ns=w.video_age_ns,
                    audio_age_ns=w.audio_age_ns,
                    extra={} if truth is None else {"truth": truth},
                )
            )
            if w.stream in fronts:
                out[-1].extra["front"] = fronts[w.stream].summary()
            degraded = [k.split("_")[0] for k, v in self._flags(out[-1]).items() if v]
            if degraded:  # a prediction resting on a sensor that is not ok says so
                out[-1].extra["degraded"] = degraded
        return out

    def start_front_workers(self) -> None:
        """Live runs with ``front_ends.workers``: each frame stage follows its camera in a
        thread of its own, off the tick (nothing without front ends or with workers off)."""
        fc = self.config.front_ends
        if self.cascade is not None and fc is not None and fc.workers:
            self.cascade.start_workers()

    def stop_front_workers(self, timeout_s: float = 0.5) -> None:
        """Stop the front ends' worker threads, if any (a frame being processed finishes)."""
        if self.cascade is not None:
            self.cascade.close(timeout_s=timeout_s)

    def last_features(self, stream: str) -> Features:
        """The model inputs of ``stream``'s latest window (training from recordings reads them)."""
        return self._last[stream][1]

    def set_decisions(self, dc: DecisionsConfig | None) -> None:
        """(Re)build the deciders and what their rules hear; running events end at their last
        tick (given out with the next tick's events), the new rules start afresh."""
        self._use_decisions(self._build_decisions(dc))

    def _build_decisions(self, dc: DecisionsConfig | None) -> _Decisions:
        """The deciders, beep detectors and sound measures of ``dc``, built without touching
        the running ones; raises :class:`ConfigError` for rules the model cannot serve."""
        deciders = {} if dc is None else {
            n: Decider.from_card(dc, self.card) for n in self.spine.aligners}
        audio = [n for n, al in self.spine.aligners.items() if al.samples is not None]
        return _Decisions(deciders, Hearing(dc, LogMelSpec.from_dict(self.card.audio), audio))

    def unheard(self) -> list[str]:
        """What the rules lose on the streams without audio, a line per rule that hears
        (:func:`edge.service.hearing.unheard`); ``edge run`` says them at start and reload."""
        deaf = [n for n, al in self.spine.aligners.items() if al.samples is None]
        where = f"stream{'s' * (len(deaf) > 1)} {', '.join(deaf)} without audio"
        return [f"{where}: {line}" for line in unheard(self.config.decisions)] if deaf else []

    def close_decisions(self) -> list[tuple[str, Event]]:
        """End every running event at its last tick (stopping), with any a reload ended."""
        out, self._closed = self._closed, []
        return out + [(name, e) for name, d in self.deciders.items() for e in d.close()]

    def _use_decisions(self, d: _Decisions) -> None:
        self._closed = self.close_decisions()
        self.deciders, self.hearing = d.deciders, d.hearing

    def prepare_reload(self, new: Config, recorder: bool = False) -> RunnerReload:
        """Everything :meth:`apply_reload` needs to switch to ``new``, built and checked without
        changing what runs (``recorder``: the caller replaces the recorder, so ``new``'s is the
        one checked); raises :class:`ConfigError` for a config it cannot take."""
        old = self.config
        new = fit_window(new, self.card)
        rc = new.recorder if recorder else old.recorder
        if rc is not None and (problems := rule_problems(rc, new.decisions)):
            restart = "" if recorder else " (a running recorder needs a restart)"
            raise ConfigError("\n".join(problems) + restart)
        keys: tuple[str, ...] = ("sources", "streams", "window", "model", "front_ends", "http")
        keys += () if recorder else ("recorder",)
        needs_restart = [k for k in keys if getattr(new, k) != getattr(old, k)]
        same = new.decisions == old.decisions  # kept running: events, closures, sums
        return RunnerReload(
            config=new.model_copy(update={k: getattr(old, k) for k in needs_restart}),
            decisions=None if same else self._build_decisions(new.decisions),
            needs_restart=needs_restart,
        )

    def apply_reload(self, plan: RunnerReload) -> list[str]:
        """Switch to a prepared reload (cannot fail); return the sections that differ but
        need a restart (left as they are). New rules start afresh; the events the old ones
        had running end at their last tick, given out with the next tick's events."""
        if plan.decisions is not None:
            self._use_decisions(plan.decisions)
        self.health.config = plan.config.health
        self.config = plan.config
        return list(plan.needs_restart)

    def reload(self, new: Config) -> list[str]:
        """Apply what can change while capture runs (decisions, health) from ``new``; return
        the sections that need a restart. A config it cannot take raises, changing nothing."""
        return self.apply_reload(self.prepare_reload(new))

    def output_names(self) -> tuple[list[str], list[str], list[str]]:
        """The streams, model classes and rules whose states the predictions carry (for
        outputs that describe them up front: Home Assistant discovery)."""
        dc = self.config.decisions
        rules = [r.name for r in dc.rules] if dc is not None else []
        return list(self.spine.config.streams), list(self.classes), rules

    def decide(self, preds: list[Prediction]) -> list[tuple[str, Event]]:
        """Feed each stream's decider (``decisions:``); the events of this tick, by stream.

        Each prediction gains ``states`` (classes committed on) and ``rules`` (rules active).
        """
        out, self._closed = self._closed, []  # events a reload ended
        for p in preds:
            d = self.deciders.get(p.stream)
            if d is None:
                continue
            # judged once, in process(): the modalities resting on a sensor that is not ok
            degraded = cast(list[str], p.extra.get("degraded", []))
            flags = {f"{m}_degraded": m in degraded for m in ("video", "audio")}
            events = d.update(p.t_end_ns, p.probs, flags, *self._heard(p.stream))
            p.extra["states"] = [n for n, st in d.states().items() if st.on]
            p.extra["rules"] = d.active()
            out.extend((p.stream, e) for e in events)
        return out

    def _judge_health(self, windows: list[Window]) -> list[dict[str, Any]]:
        """Health records of the sources whose state changed at this tick."""
        out: list[dict[str, Any]] = []
        for w in windows:
            sc = self.spine.config.streams[w.stream]
            for name in dict.fromkeys(n for n in (sc.video, sc.audio) if n):
                src = self.spine.sources[name]
                st = src.stats
                if not self._settled(name, src.stats.last_data_ns, w):
                    continue
                faults = st.drops + st.gaps + st.overflows + (src.video.dropped if src.video else 0)
                new = faults - self._faults.get(name, faults)
                self._faults[name] = faults
                gives_video, gives_audio = name == sc.video, name == sc.audio
                mean, std = frame_stats(w) if gives_video else (None, None)
                # IDLE: fed by a replay on a fake clock, never started as a thread
                running = src.state in (SourceState.RUNNING, SourceState.IDLE)
                tick = TickStats(
                    t_ns=w.cut_ns,
                    running=running,
                    video_masked=1.0 - w.video_valid if gives_video else None,
                    audio_masked=1.0 - w.audio_valid if gives_audio else None,
                    video_age_ns=w.video_age_ns if gives_video else None,
                    audio_age_ns=w.audio_age_ns if gives_audio else None,
                    frame_mean=mean,
                    frame_std=std,
                    clipped=clipped_share(w) if gives_audio else None,
                    faults=max(0, new),
                    error=None if running else src.stats.last_error,
                    notes=self._front_notes(name) if gives_video else (),
                    high_band_db=self._high_band(name, w) if gives_audio else None,
                )
                out.extend(self.health.update(name, tick))
        return out

    def _high_band(self, source: str, w: Window) -> float | None:
        """The audio source's high band under its reference band (:mod:`edge.status.band`)."""
        if w.audio is None or w.audio_n0 is None:
            return None
        check = self._bands.get(source)
        if check is None:
            check = self._bands[source] = BandCheck(self.spine.sources[source].sample_rate)
        return check.push(w.audio, w.audio_mask, w.audio_n0)

    def _front_notes(self, source: str) -> tuple[str, ...]:
        """Health notes of the front ends on a video source ('face absent 12.0 s', 'eyes hidden
        3.0 s')."""
        fc = self.config.front_ends
        if self.cascade is None or fc is None or fc.face is None:
            return ()
        absent = self.cascade.face_absent_s(source)
        if absent is not None and absent >= fc.face.absent_degraded:
            return (f"face absent {absent:.1f} s",)
        hidden = self.cascade.eyes_hidden_s(source)
        if hidden is not None and hidden >= fc.face.hidden_degraded:
            return (f"eyes hidden {hidden:.1f} s",)
        return ()

    def _settled(self, source: str, last_data_ns: int | None, w: Window) -> bool:
        """Whether a source's windows can be judged: not while its first windows still reach
        back before its first data (a start, not a fault) — unless no data comes for 5 s."""
        first_tick = self._first_tick.setdefault(source, w.cut_ns)
        if last_data_ns is None:
            return w.cut_ns - first_tick >= 5 * NS_PER_S
        first = self._first_data.setdefault(source, w.cut_ns)
        span = max(w.t_end_ns - w.t_start_ns, self.spine.aligners[w.stream].spec.audio_span_ns)
        return (w.cut_ns - first >= span + self.spine.hop_ns
                or w.cut_ns - first_tick >= 5 * NS_PER_S + span)

    def _flags(self, p: Prediction) -> dict[str, bool]:
        """Which modality of a prediction rests on a sensor that is not ``ok`` (or is masked)."""
        sc = self.spine.config.streams[p.stream]
        flags = degraded_flags(p.video_valid, p.audio_valid)
        if sc.video and self.health.state(sc.video) != "ok":
            flags["video_degraded"] = True
        if sc.audio and self.health.state(sc.audio) != "ok":
            flags["audio_degraded"] = True
        return flags

    def _heard(self, stream: str) -> tuple[dict[str, Any], Mapping[str, float | None]]:
        """Beeps and sound measures of the stream's newest window (:mod:`edge.service.hearing`)."""
        w, f = self._last.get(stream, (None, None))
        if w is None or f is None or w.audio_n0 is None:
            return {}, {}
        return self.hearing.heard(stream, w.audio_n0, f.audio[0], f.audio_mask > 0,
                                  self.spine.aligners[stream].time_of_sample)

    def run(
        self,
        seconds: float | None,
        on_predictions: Callable[[list[Prediction]], None],
        stop: threading.Event | None = None,
    ) -> None:
        """Live loop: tick every hop until ``seconds`` pass or ``stop`` is set."""
        self.spine.run(float("inf") if seconds is None else seconds,
                       on_windows=lambda ws: on_predictions(self.process(ws)), stop=stop)

    def engine_ms(self) -> dict[str, float] | None:
        if not self.infer_ns:
            return None
        p50, p99 = np.percentile(np.asarray(self.infer_ns, np.float64), [50, 99]) / 1e6
        return {"p50": round(float(p50), 2), "p99": round(float(p99), 2)}
