"""``edge run``: the daemon's wiring and its tick, in one place.

:class:`Service` wraps a :class:`~edge.service.run.Runner` and, per tick, takes the windows through the
model and the decision layer, judges sensor health, observes metrics, and hands predictions,
events and health records to the outputs (JSONL on stdout or a file, the sinks, the flight
recorder, the live view). Nothing here waits on an output: sinks have queues of their own.
:meth:`healthz` is what ``/healthz`` serves.

:func:`run_service` is the running daemon around it: it builds the runner, the outputs, the
sinks, the flight recorder, the supervisor and the HTTP status server, installs the SIGTERM and
SIGHUP handlers (:func:`reload_config`), runs the loop, and stops everything again in order.
``edge run`` only parses its arguments and calls it.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from typing import Any, TextIO

from edge.join.align import Window
from edge.timebase.clock import NS_PER_S
from edge.errors import EdgeError
from edge.jsonout import dumps
from edge.recorder.handover import RecorderSlot, standby_journal
from edge.service.run import Runner
from edge.status.endpoint import Metrics

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
            if not windows:  # the tick still happened: threads are still supervised
                self.last_tick_ns = now
                if self.supervisor is not None:
                    self.emit(self.supervisor.check(now))
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
        records += self.event_records(events)
        for h in health:
            log.warning("source %s is %s: %s", h["source"], h["state"], "; ".join(h["reasons"]))
        records.extend(health)
        self.emit(records)
        if self.recorder is not None:
            rec = self.recorder.on_tick(now, windows, preds, events)
            self.emit(rec)
        if self.view is not None:
            self.view.update(preds, now, [e for _, e in events])

    def event_records(self, events: list[tuple[str, Any]]) -> list[Record]:
        """Records of ``(stream, event)`` pairs, counted in the metrics."""
        for _, e in events:
            self.metrics.events.labels(e.rule, e.kind).inc()
        return [{"type": "event", "stream": stream, **e.to_json()} for stream, e in events]

    def emit(self, records: list[Record]) -> None:
        if not records:
            return
        if self.out is not None:
            for rec in records:
                # the line the JSONL sink writes (NaN as null), ASCII for any stdout's encoding
                self.out.write(dumps(rec, compact=True) + "\n")
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


STRICT_OPEN_S = 10.0  # edge run --strict: how long each source may take to open
RECORDER_CLOSE_S = 2.0  # at shutdown: how long the recorder's writer may take to finish


def run_service(
    config_path: str,
    *,
    duration: float | None = None,
    jsonl: str | None = None,
    live_view: bool = True,
    stdout: TextIO | None = None,
    strict: bool = False,
) -> int:
    """Run the pipeline as a daemon until ``duration`` passes, SIGTERM or Ctrl-C; exit code 0.

    ``config_path`` is the config file (re-read on SIGHUP, see :func:`reload_config`).
    ``jsonl`` is where predictions, events and health records go: ``"-"`` for ``stdout``, a
    file path (appended to, created mode 0600), ``""`` for nowhere (the config's sinks are the
    outputs: the systemd unit), or ``None`` for ``stdout`` unless it is a terminal. A JSONL
    sink of the config writing the same file is a config error (one writer per file).
    ``live_view`` draws the live terminal view. A camera or microphone that is not
    there at start is a lost source, retried until it appears, while the other modality's
    predictions go on; ``strict`` fails instead (exit 2) unless every source is there and opens
    within ``STRICT_OPEN_S``. ``stdout`` defaults to
    :data:`sys.stdout`, looked up at call time. Status lines go to :data:`sys.stderr`.
    Errors a user can cause (a bad config, a missing model, a bad secret source) raise
    :class:`~edge.errors.EdgeError`. Installs SIGTERM and SIGHUP handlers, so it must be called
    from the main thread.
    """
    import signal
    import threading

    from edge.timebase.clock import MonotonicClock
    from edge.config import load_config, read_text
    from edge.service.systemd import Notifier
    from edge.status.view import LiveView

    if stdout is None:
        stdout = sys.stdout
    config_text = read_text(config_path, "config")  # read once: a recording keeps this text
    cfg = load_config(config_path, config_text)
    clock = MonotonicClock()
    runner = Runner(cfg, clock)
    runner.engine.warmup()
    _say_unheard(runner)
    _say_int8_cost(runner)
    out: TextIO | None = None
    recorder = RecorderSlot(None)  # a reload may start, replace or stop the flight recorder
    sinks = None
    server = None
    notifier = None
    service: Service | None = None
    # Everything started so far is stopped again in `finally`, also when a later part fails
    # to start (a bad secret source for a sink: exit 2 without a recorder thread left behind).
    try:
        taken = {"--jsonl": jsonl} if jsonl and jsonl != "-" else {}
        if cfg.sinks:
            from edge.sinks.sinkset import check_files

            check_files(cfg.sinks, taken)  # before the file is created
        if jsonl == "-" or (jsonl is None and not stdout.isatty()):
            out = stdout
        elif jsonl:
            # Predictions can be personal data: readable by the service user only.
            fd = os.open(jsonl, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            out = os.fdopen(fd, "a", encoding="utf-8")
        thresholds = {c.name: c.threshold for c in runner.card.classes}
        view = LiveView(runner.spine, thresholds) if live_view else None
        if cfg.recorder is not None and cfg.recorder.enabled:
            from edge.recorder.checks import check_recorder
            from edge.recorder.core import FlightRecorder

            rc = cfg.recorder  # out_dir already resolved and confined by load_config
            check_recorder(rc, runner.spine)
            recorder.current = FlightRecorder.for_runner(rc, runner, config_text=config_text)
            recorder.current.start()
        # while no recorder runs, a history for one a reload adds: its pre-roll, from before it
        recorder.keep_history(standby_journal(runner))
        if cfg.sinks:
            from edge.sinks.sinkset import SinkSet

            # builds them all first: a bad secret source is exit 2
            sinks = SinkSet(cfg.sinks, taken=taken)
            sinks.announce(*runner.output_names())  # Home Assistant knows every sensor at once
            sinks.start()
        from edge.service.supervise import Supervisor

        supervisor = Supervisor()
        supervisor.watch_sources(runner.spine.sources.values())
        if sinks is not None:
            supervisor.watch_sinks(sinks)
        service = Service(runner, out=out, view=view, recorder=recorder, supervisor=supervisor,
                          publish=sinks.publish if sinks is not None else None,
                          sink_stats=sinks.stats if sinks is not None else None)
        if cfg.http is not None:
            from edge.status.endpoint import StatusServer

            server = StatusServer(cfg.http, service.healthz, service.metrics)
            server.start()
            print(f"edge run: /healthz and /metrics on http://{cfg.http.host}:{server.port}",
                  file=sys.stderr)
        notifier = Notifier()
        stop = threading.Event()
        reload = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGHUP, lambda *_: reload.set())

        def on_windows(windows: list[Any]) -> None:
            assert notifier is not None
            if reload.is_set():  # between ticks: the loop thread applies it, capture runs on
                reload.clear()
                reload_config(config_path, runner, notifier, sinks, recorder)
            service.on_windows(windows)
            notifier.tick(clock.now_ns(), runner.spine.ticks)  # only while ticks advance

        runner.start_front_workers()  # the frame stages follow the cameras, off the tick
        missing = runner.spine.start(
            require_open_s=STRICT_OPEN_S if strict else None, strict=strict
        )
        for m in missing:
            print(f"edge run: {m}: waiting for it (edge run --strict fails instead)",
                  file=sys.stderr)
        for src in runner.spine.sources.values():
            for note in src.notes:
                print(f"edge run: {note}", file=sys.stderr)
        notifier.ready(f"{len(runner.spine.sources)} sources, model {runner.card.name}")
        try:
            runner.spine.run(float("inf") if duration is None else duration,
                             on_windows, stop=stop)
        except KeyboardInterrupt:
            pass
    finally:
        if notifier is not None:
            notifier.stopping()
        runner.spine.stop(timeout_s=0.5)
        runner.stop_front_workers()
        if service is not None:  # running events end at the last tick: no start left open
            service.emit(service.event_records(runner.close_decisions()))
        # a recording in progress is saved, marked truncated; its "saved" record (and one the
        # writer finished after the last tick) goes out before the sinks stop. Up to
        # RECORDER_CLOSE_S for a slow card (returns as soon as the writer is done): with the
        # rest, well inside the unit's TimeoutStopSec=5
        last = recorder.close(timeout_s=RECORDER_CLOSE_S)
        if service is not None:
            service.emit(last)
        if sinks is not None:
            sinks.stop(timeout_s=0.7)  # flushes what it can; the rest is counted as abandoned
        if server is not None:
            server.stop()
        if out is not None and out is not stdout:
            out.close()
    eng = runner.engine_ms()
    if eng is not None:
        print(
            f"edge run: {runner.spine.ticks} ticks, {runner.spine.skipped_ticks} skipped, "
            f"engine p50 {eng['p50']:.1f} ms / p99 {eng['p99']:.1f} ms",
            file=sys.stderr,
        )
    return 0


def _say(line: str, level: int = logging.INFO) -> None:
    """A line for whoever started the daemon: in the log, and on stderr."""
    log.log(level, "%s", line)
    print(f"edge run: {line}", file=sys.stderr)


def _say_int8_cost(runner: Any) -> None:
    """An INT8 model on ONNX Runtime's CPU provider: what it may cost, what else serves."""
    from edge.runtime.onnx import int8_note

    note = int8_note(runner.engine)
    if note is not None:
        _say(note)


def _say_unheard(runner: Any) -> None:
    """Rules that hear (beeps, sound measures) on a stream without audio: what each loses."""
    for line in runner.unheard():
        _say(line, logging.WARNING)


def reload_config(path: str, runner: Any, notifier: Any, sinks: Any,
                  recorder: RecorderSlot | None = None) -> None:
    """SIGHUP: re-read the config; apply decisions, health, sinks and (with ``recorder``, the
    daemon's) the flight recorder, keep the old on any error.

    Two steps: everything is checked and built first (the config, the new sinks, the new
    deciders, a new recorder) without touching what runs; only when all of it succeeded is it
    switched to. A rejected reload changes nothing. A new recorder takes over once the running
    one has no recording in progress (:mod:`edge.recorder.handover`); recordings started after
    the reload keep the config that runs (:func:`~edge.recorder.config.reloaded_text`).
    """
    from edge.config import load_config, read_text
    from edge.recorder.config import reloaded_text
    from edge.recorder.handover import recorder_for

    log = logging.getLogger("edge.reload")
    notifier.send("RELOADING=1")
    try:
        try:
            text = read_text(path, "config")
            cfg = load_config(path, text)
            sink_plan = sinks.prepare(cfg.sinks) if sinks is not None else None
            runner_plan = runner.prepare_reload(cfg, recorder=recorder is not None)
            changed = recorder is not None and cfg.recorder != runner.config.recorder
            successor = None
            if recorder is not None and changed:
                successor = recorder_for(cfg.recorder, runner, recorder)
        except EdgeError as exc:
            log.error("reload of %s rejected, the running config stays: %s", path, exc)
            print(f"edge run: reload rejected, the running config stays: {exc}", file=sys.stderr)
            return
        restart = runner.apply_reload(runner_plan)
        if sinks is not None:
            sinks.apply(sink_plan, 1.5)  # unchanged sinks keep running with their queues
            sinks.announce(*runner.output_names())  # a rule added is in Home Assistant at once
        elif cfg.sinks:  # none ran: they start with the next restart
            restart.append("sinks")
        if recorder is not None:
            if changed:
                recorder.replace(successor)
            running = runner.config
            if sinks is None and cfg.sinks:
                running = running.model_copy(update={"sinks": {}})
            recorder.set_config_text(reloaded_text(path, text, restart, running), running)
        note = f"; changed but need a restart: {', '.join(restart)}" if restart else ""
        if recorder is not None and changed:
            when = " once it has no recording in progress"
            note += "; the flight recorder " + (
                ("starts" if successor is not None else "stays off") if recorder.current is None
                else ("is replaced" if successor is not None else "stops") + when)
        log.warning("reloaded decisions, health and sinks from %s%s", path, note)
        print(f"edge run: reloaded decisions, health and sinks from {path}{note}", file=sys.stderr)
        _say_unheard(runner)
    finally:
        notifier.send("READY=1")
