"""``edge run``'s tick: predictions, decisions, health, metrics and outputs, in one place.

:class:`Service` wraps a :class:`~edge.run.Runner` and, per tick, takes the windows through the
model and the decision layer, judges sensor health, observes metrics, and hands predictions,
events and health records to the outputs (JSONL on stdout or a file, the sinks, the flight
recorder, the live view). Nothing here waits on an output: sinks have queues of their own.
:meth:`healthz` is what ``/healthz`` serves.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any, TextIO

from edge.align import Window
from edge.clock import NS_PER_S
from edge.run import Runner
from edge.status import Metrics

log = logging.getLogger(__name__)

Record = dict[str, Any]


class Service:
    """One tick at a time: ``on_windows`` is the spine's callback."""

    def __init__(
        self,
        runner: Runner,
        out: TextIO | None = None,
        publish: Callable[[Record], None] | None = None,
        sink_stats: Callable[[], dict[str, Any]] | None = None,
        view: Any = None,
        recorder: Any = None,
        supervisor: Any = None,
    ) -> None:
        self.runner = runner
        self.out = out
        self.publish = publish
        self.sink_stats = sink_stats
        self.view = view
        self.recorder = recorder
        self.supervisor = supervisor
        self.metrics = Metrics(self.snapshot)
        self.last_tick_ns: int | None = None
        self.late_windows = 0  # skipped: older than the latency budget at their tick
        self.over_budget = 0  # predictions emitted later than the budget
        self.event_counts: dict[str, int] = {}

    def on_windows(self, windows: list[Window]) -> None:
        r = self.runner
        budget = r.config.window.budget
        budget_ns = None if budget is None else int(budget * NS_PER_S)
        if budget_ns is not None:
            # Already too old to make the budget: skipped, never queued.
            now = r.clock.now_ns()
            fresh = [w for w in windows if now - w.t_end_ns <= budget_ns]
            self.late_windows += len(windows) - len(fresh)
            windows = fresh
            if not windows:
                return
        preds = r.process(windows)
        if budget_ns is not None:
            self.over_budget += sum(p.emitted_ns - p.t_end_ns > budget_ns for p in preds)
        events = r.decide(preds)
        now = r.clock.now_ns()
        health = list(r.health_records)
        if self.supervisor is not None:
            health += self.supervisor.check(now)
        self.last_tick_ns = now
        if r.infer_ns:
            self.metrics.engine_latency.observe(r.infer_ns[-1] / NS_PER_S)
        for w in windows:
            for modality, age in (("video", w.video_age_ns), ("audio", w.audio_age_ns)):
                if age is not None:
                    # newest sample -> prediction emitted: the window's age plus the tick's work
                    self.metrics.data_age.labels(w.stream, modality).observe(
                        (age + now - w.cut_ns) / NS_PER_S
                    )
        records: list[Record] = [{"type": "prediction", **p.to_json()} for p in preds]
        for stream, e in events:
            self.metrics.events.labels(e.rule, e.kind).inc()
            records.append({"type": "event", "stream": stream, **e.to_json()})
        for h in health:
            log.warning("source %s is %s: %s", h["source"], h["state"], "; ".join(h["reasons"]))
        records.extend(health)
        self._emit(records)
        if self.recorder is not None:
            rec = self.recorder.on_tick(now, windows, preds, events)
            self._emit(rec)
        if self.view is not None:
            self.view.update(preds, now, [e for _, e in events])

    def _emit(self, records: list[Record]) -> None:
        if not records:
            return
        if self.out is not None:
            for rec in records:
                self.out.write(json.dumps(rec) + "\n")
            self.out.flush()
        if self.publish is not None:
            for rec in records:
                self.publish(rec)

    def snapshot(self) -> dict[str, Any]:
        """The spine's report plus health and sinks (for metrics and ``/healthz``)."""
        r = self.runner
        rep: dict[str, Any] = dict(r.spine.report(r.clock.now_ns()))
        rep["health"] = r.health.snapshot()
        rep["sinks"] = self.sink_stats() if self.sink_stats is not None else {}
        rep["budget"] = {"late_windows": self.late_windows, "over_budget": self.over_budget}
        return rep

    def healthz(self) -> dict[str, Any]:
        r = self.runner
        now = r.clock.now_ns()
        snap = self.snapshot()
        health = snap["health"]
        sources = {}
        for name, s in snap["sources"].items():
            h = health.get(name, {"state": "unknown", "reasons": ["not judged yet"]})
            sources[name] = {
                "health": h["state"],
                "reasons": h["reasons"],
                "state": s["state"],
                "fps": s["fps"],
                "drops": s["drops"],
                "gaps": s["gaps"],
                "reconnects": s["reconnects"],
                "skew_ppm": s["skew_ppm"],
                "last_error": s["last_error"],
            }
        worst = max((v["health"] for v in sources.values()),
                    key=["ok", "unknown", "degraded", "lost"].index, default="unknown")
        age = None if self.last_tick_ns is None else round((now - self.last_tick_ns) / NS_PER_S, 3)
        engine = dict(r.engine.describe())
        engine["latency_ms"] = r.engine_ms()
        return {
            "status": worst,
            "sources": sources,
            "streams": snap["streams"],
            "engine": engine,
            "sinks": snap["sinks"],
            "recorder": self.recorder.stats() if self.recorder is not None else None,
            "supervisor": self.supervisor.snapshot() if self.supervisor is not None else None,
            "ticks": snap["ticks"],
            "skipped_ticks": snap["skipped_ticks"],
            "budget": snap["budget"],
            "last_tick_age_s": age,
        }
