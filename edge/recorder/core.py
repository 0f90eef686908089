"""The flight recorder's per-tick core: :class:`FlightRecorder`.

A replay reproduces a prediction only if it cuts the same window from the same data and feeds
the log-mel cache the same way, so a recording holds, besides frames and audio:

* per tick and source, the clock fit (origin, offset, skew) the source's ``ClockModel`` had: the
  replay maps device time through exactly that fit instead of re-learning it;
* per window, ``t_end``/cut time and up to which frame and sample the rings held at the cut
  (derived from the window itself: its data age and its audio mask), so a replay cut sees the
  same frames and the same audio ``n0``;
* per stream, the sample range each tick pushed into the featurizer's log-mel cache, and a few
  *warm-up* ticks before the pre-roll that the replay runs (uncompared) so the cache is built in
  the same batches as in the live run.

:class:`FlightRecorder` is the core, called once per tick with ``now_ns`` (no clock reads). Its
:class:`~edge.recorder.journal.TickJournal` keeps the tick metadata (no pixels) so that a
recording can start in the past; the core decides when a recording starts and ends, copies frames from the rings on the tick thread (oldest first, a bounded number per tick, but
never later than the ring would overwrite them) and hands chunks to a writer thread through a
bounded queue (:class:`~edge.recorder.store.RecordingStore` is that thread's side). A full
queue, a full disk or the quota abandon the recording (reported in
:meth:`FlightRecorder.stats`); capture and inference never wait.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edge.timebase.clock import NS_PER_S
from edge.jsonout import dumps
from edge.recorder.config import ModelInfo, RecorderConfig, config_yaml
from edge.recorder.journal import TickJournal, _safe, _Tick, first_pre_roll_tick
from edge.recorder.store import (FORMAT, SETTINGS, RecordingStore, _Begin, _Chunk, _Finish, _Job,
                                 _writer_loop)

if TYPE_CHECKING:
    from edge.config import Config
    from edge.join.align import Window
    from edge.decisions.decide import Event
    from edge.join.spine import Spine
    from edge.service.run import Prediction, Runner
    from edge.features.serve import Featurizer

log = logging.getLogger("edge.recorder")  # the package's logger, as before the split


@dataclass
class _Recording:
    rec_id: int
    name: str
    wall_s: float  # wall-clock time of the trigger, for names and the manifest
    rule: str
    trigger_ns: int
    last_trigger_ns: int
    ends_ns: int
    first_compared_ns: int | None
    triggers: list[dict[str, Any]]
    pending: dict[str, deque[int]]  # source -> frame seqs still to copy, oldest first
    next_seq: dict[str, int]  # source -> next new frame seq to take
    audio_next: dict[str, int]  # source -> next sample to take
    audio_start: dict[str, int]
    frames: dict[str, int]
    ticks: int = 0
    compared: int = 0
    warmup: int = 0
    last_tick_ns: int = 0
    taking_ticks: bool = True
    notes: list[str] = field(default_factory=list)


def _dumps(obj: Any) -> str:
    return dumps(obj, compact=True)


class FlightRecorder:
    """Records the rings, windows and predictions around rule events (see the module docstring).

    Parameters
    ----------
    config:
        The ``recorder:`` section.
    spine:
        The running spine: its sources' rings and clock models, and its aligners' window specs.
    featurizers:
        The runner's featurizers by stream (``Runner.featurizers``). Without them a replay
        still cuts identical windows, but builds its log-mel cache in other batches than the
        live run (equal only where numpy's FFT and BLAS give batch-independent columns).
    config_text:
        The config YAML to store (default: the spine's config dumped to YAML).
    settings:
        The config that runs, stored beside it with every setting written out, defaults
        included (default: the spine's): a replay by a later edge, whose defaults may differ,
        runs with the settings the recording ran with.
    model:
        The model that made the predictions (name, absolute path, sha256, engine options).
    cascade:
        The runner's front ends (``Runner.cascade``), if any: a recording keeps what they made
        tick by tick, and what they had made and were in when it starts.
    eye_scalers:
        The runner's eye baselines by stream (``Runner.eye_scalers``): a recording keeps their
        samples as they were before its first compared tick.
    wall_clock:
        Seconds since the epoch, for recording names only (tests pass a fake).
    """

    def __init__(
        self,
        config: RecorderConfig,
        spine: Spine,
        *,
        featurizers: Mapping[str, Featurizer] | None = None,
        cascade: Any = None,
        eye_scalers: Mapping[str, Any] | None = None,
        config_text: str | None = None,
        settings: Config | None = None,
        model: ModelInfo | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.spine = spine
        self.featurizers = dict(featurizers or {})
        self.config_text = ""
        self.settings_text = ""
        self.use_config(config_text, settings)
        self.model = model
        self.wall_clock = wall_clock
        self.journal = TickJournal(spine, self.featurizers, config.pre_roll, cascade=cascade,
                                   eye_scalers=eye_scalers)
        self.hop_ns = spine.hop_ns
        self.taps = self.journal.taps
        self.pre_ns, self.horizon_ns = self.journal.pre_ns, self.journal.horizon_ns
        self._history = self.journal.history
        self._rules = frozenset(config.rules)  # the rules that start a recording (none: any)
        self._rec: _Recording | None = None
        self._next_id = 1
        self._last_name = ""
        self._records: list[dict[str, Any]] = []
        self.store = RecordingStore(
            Path(config.out_dir), int(config.quota_mb * 2**20), config.max_recordings
        )
        self._jobs: queue.Queue[_Job | None] = queue.Queue(maxsize=config.queue_chunks)
        self._thread: threading.Thread | None = None
        self._closed = False
        self._sentinel = False  # the writer was told to end (after what it has queued)
        self._prepared = False  # the folder made and measured
        self.finishing = False  # a successor waits: the recording in progress, no new one
        self.tick_ms_last = 0.0
        self.tick_ms_max = 0.0

    @classmethod
    def for_runner(
        cls,
        config: RecorderConfig,
        runner: Runner,
        *,
        config_text: str | None = None,
        wall_clock: Callable[[], float] = time.time,
        model: ModelInfo | None = None,
    ) -> FlightRecorder:
        """A recorder over a :class:`~edge.service.run.Runner`'s spine, featurizers and engine
        (``model``: what describes the engine, when known already; else its file is hashed)."""
        if model is None:
            engine = runner.engine
            info = dict(engine.describe())
            info["options"] = dict(getattr(engine, "options", {}) or {})
            model = ModelInfo.of(runner.card.name, getattr(engine, "model_path", None), info)
        return cls(config, runner.spine, featurizers=runner.featurizers, cascade=runner.cascade,
                   eye_scalers=runner.eye_scalers,
                   config_text=config_text, settings=runner.config, model=model,
                   wall_clock=wall_clock)

    def use_config(self, text: str | None, settings: Config | None = None) -> None:
        """The config the recordings started from now on keep: ``text`` as written (None: the
        settings written out) and ``settings`` (None: the spine's) with every setting written
        out. Written out here, once, not when a recording starts on the tick thread."""
        resolved = config_yaml(settings if settings is not None else self.spine.config)
        self.config_text = resolved if text is None else text
        self.settings_text = resolved

    # -- lifecycle -----------------------------------------------------------------------------
    def prepare(self) -> None:
        """Make the folder, remove ``.tmp-*`` leftovers in it and measure what is there, once
        (an OSError says the folder cannot be used)."""
        if self.config.enabled and not self._prepared:
            self.store.prepare()
            self._prepared = True

    def start(self) -> None:
        """Prepare the folder (see :meth:`prepare`) and start the writer (idempotent)."""
        if not self.config.enabled or self._thread is not None:
            return
        self.prepare()
        self._thread = threading.Thread(
            target=_writer_loop, args=(self._jobs, self.store), name="edge-recorder", daemon=True
        )
        self._thread.start()

    def close(self, timeout_s: float = 2.0) -> list[dict[str, Any]]:
        """Save a recording in progress as it stands (``truncated``), then stop the writer.

        Returns the records that happened since the last :meth:`on_tick` (a ``saved`` the
        writer finished after the last tick, the truncated recording's), for the caller to
        publish before its sinks stop. Bounded: after ``timeout_s`` the writer is left behind
        (a daemon thread); whatever it had not renamed stays a ``.tmp-`` folder, removed at the
        next start, and is not in the records.
        """
        if self._closed:
            return []
        self._closed = True
        deadline = time.monotonic() + timeout_s
        rec = self._rec
        if rec is not None:
            self._rec = None
            chunk = self._new_chunk(rec)
            self._copy_frames(rec, chunk, everything=True)
            if self._submit(rec, chunk):
                self._submit(rec, self._finish_job(rec, truncated=rec.taking_ticks))
        if self._thread is not None:
            if not self._end_writer(max(0.0, deadline - time.monotonic())) and timeout_s > 0:
                log.warning("flight recorder: writer still busy at shutdown; leaving it")
            self._thread.join(max(0.0, deadline - time.monotonic()))
        return self.drain()

    def _end_writer(self, timeout_s: float) -> bool:
        """Tell the writer to end after what it was given (once); False: its queue stayed full."""
        if not self._sentinel:
            try:
                self._jobs.put(None, block=timeout_s > 0, timeout=timeout_s or None)
                self._sentinel = True
            except queue.Full:
                return False
        return True

    @property
    def recording(self) -> bool:
        """Whether a recording is in progress."""
        return self._rec is not None

    def take_history(self, old: FlightRecorder) -> None:
        """Take ``old``'s tick history over (the same spine's): this recorder's pre-roll
        reaches back as far as ``old``'s did."""
        self.take_journal(old.journal)

    def take_journal(self, journal: TickJournal) -> None:
        """Record on from ``journal`` (the same spine's), kept by a recorder before this one or
        while none ran: this recorder's pre-roll reaches back as far as it does."""
        self.journal = journal
        self.journal.retime(self.config.pre_roll)
        self.taps, self._history = self.journal.taps, self.journal.history
        self.pre_ns, self.horizon_ns = self.journal.pre_ns, self.journal.horizon_ns

    def adopt(self, old: FlightRecorder) -> None:
        """Take over ``old``'s history, writer and folder (a reload that changed the recorder
        but kept its ``out_dir``): nothing is closed; the writer's queue takes this config's
        ``queue_chunks`` (what it holds stays: a smaller bound only refuses new chunks)."""
        self.take_history(old)
        self.store, self._jobs, self._thread = old.store, old._jobs, old._thread
        with self._jobs.mutex:  # queue.Queue reads maxsize under this lock in put()
            self._jobs.maxsize = self.config.queue_chunks
            self._jobs.not_full.notify_all()
        self.store.quota_bytes = int(self.config.quota_mb * 2**20)
        self.store.max_recordings = self.config.max_recordings
        self._next_id, self._last_name, self._prepared = old._next_id, old._last_name, True
        self._records = old._records + self._records
        old._records, old._closed = [], True  # its writer is this one's now

    def writer_done(self) -> bool:
        """After :meth:`close`: whether the writer has ended, having written all it was given
        (telling it to end again where its queue was full)."""
        if self._thread is None or not self._thread.is_alive():
            return True
        self._end_writer(0.0)
        return False

    def drain(self) -> list[dict[str, Any]]:
        """The records made since the last call: the core's own, then the writer's (also after
        :meth:`close`)."""
        out, self._records = self._records + self.store.drain_records(), []
        return out

    # -- the tick ------------------------------------------------------------------------------
    def on_tick(
        self,
        now_ns: int,
        windows: Sequence[Window],
        predictions: Sequence[Prediction],
        events: Sequence[tuple[str, Event]],
    ) -> list[dict[str, Any]]:
        """Observe one tick; start, extend or end a recording. Returns recorder records
        (``{"type": "recorder", "event": "started"|"saved"|"abandoned"|"deleted", ...}``) that
        happened since the last call."""
        if not self.config.enabled or self._closed:
            return []
        t0 = time.perf_counter()  # the recorder's own cost, for stats(); not pipeline time
        try:
            self._tick(now_ns, windows, predictions, events)
        except Exception as exc:  # a recorder bug must not stop the pipeline: report, go on
            log.exception("flight recorder: tick failed")
            rec, self._rec = self._rec, None
            if rec is not None:
                self.store.abandon(rec.rec_id, f"{rec.name}: {type(exc).__name__}: {exc}")
            else:
                self.store.abandon(0, f"{type(exc).__name__}: {exc}")
        ms = (time.perf_counter() - t0) * 1e3
        self.tick_ms_last, self.tick_ms_max = ms, max(self.tick_ms_max, ms)
        return self.drain()

    def _tick(
        self,
        now_ns: int,
        windows: Sequence[Window],
        predictions: Sequence[Prediction],
        events: Sequence[tuple[str, Event]],
    ) -> None:
        if self._thread is None:
            self.start()
        tick = self.journal.record(now_ns, windows, predictions, events)
        rec = self._rec
        if rec is not None and self.store.is_abandoned(rec.rec_id):
            self._rec = rec = None
        rules = self._rules
        triggers = [(s, e) for s, e in events if e.kind == "start" and (not rules or e.rule in rules)]
        if rec is None:
            if triggers and not self.finishing:
                self._start_recording(tick, triggers)
        else:
            self._continue(rec, tick, triggers)

    # -- recordings ----------------------------------------------------------------------------
    def _name(self, rule: str, wall: float) -> str:
        stamp = datetime.fromtimestamp(wall, timezone.utc).strftime("%Y%m%dT%H%M%S")
        name = f"{stamp}.{int(wall * 1000) % 1000:03d}Z-{_safe(rule)}"
        if name <= self._last_name:  # same millisecond, or the wall clock stepped back
            name = f"{self._last_name}-{self._next_id}"
        self._last_name = name
        return name

    def _start_recording(self, tick: _Tick, triggers: list[tuple[str, Event]]) -> None:
        T = tick.now_ns
        rule = triggers[0][1].rule
        cfg = self.config
        rec_id, self._next_id = self._next_id, self._next_id + 1
        ticks = list(self._history)  # trimmed to the horizon by this very tick
        compared_from = first_pre_roll_tick([t.now_ns for t in ticks], T, self.pre_ns, self.hop_ns)
        streams = self.spine.config.streams
        # Frames: every frame a compared window may have chosen (nearest within tolerance).
        frames_from: dict[str, int] = {}
        need_n0: dict[str, int] = {}
        for t in ticks[compared_from:]:
            for wl in t.line["windows"]:
                sc, spec = streams[wl["stream"]], self.spine.aligners[wl["stream"]].spec
                if sc.video:
                    lo = wl["t_start_ns"] - spec.tolerance_ns - int(NS_PER_S / max(1.0, self.taps[sc.video].fps))
                    frames_from[sc.video] = min(frames_from.get(sc.video, lo), lo)
                if sc.audio and wl["audio_n0"] is not None:
                    need_n0[sc.audio] = min(need_n0.get(sc.audio, wl["audio_n0"]), wl["audio_n0"])
        first, audio_from, exact_cache = self.journal.warmup_start(ticks, compared_from, need_n0)
        ticks = ticks[first:]
        compared_from -= first
        notes = [] if exact_cache else [
            "the log-mel cache of the replay starts without the live run's warm-up: equal only "
            "where log-mel columns do not depend on how many are computed at once"
        ]
        pending: dict[str, deque[int]] = {}
        next_seq: dict[str, int] = {}
        wrapped_after: dict[str, int] = {}  # source -> pipeline time of its oldest frame, if evicted some
        for name, tap in self.taps.items():
            if tap.video is None:
                continue
            # `written` first: a frame committed while the index is taken has a seq >= written
            # and is copied later with the new frames (before, it fell between the two).
            written = tap.video.written
            idx = tap.video.index()
            seqs, t_ns = idx.seq[idx.seq < written], idx.t_ns[idx.seq < written]
            keep = np.ones(seqs.size, bool)
            if tap.video_clock is not None and tap.video_clock.ready and name in frames_from:
                keep = tap.video_clock.to_pipeline_array(t_ns) >= frames_from[name]
            pending[name] = deque(int(s) for s in seqs[keep])
            next_seq[name] = written
            if written > tap.video.capacity and seqs.size and tap.video_clock is not None \
                    and tap.video_clock.ready:
                wrapped_after[name] = tap.video_clock.to_pipeline(int(t_ns[0]))
        audio_start = {}
        for name, tap in self.taps.items():
            if tap.audio is not None and tap.audio.start is not None:
                audio_start[name] = audio_from.get(name, max(tap.audio.start, tap.audio.end - tap.audio.capacity))
        wall = self.wall_clock()
        rec = _Recording(
            rec_id=rec_id, name=self._name(rule, wall), wall_s=wall, rule=rule, trigger_ns=T, last_trigger_ns=T,
            ends_ns=T + int(round(min(cfg.post_roll, cfg.max_seconds) * NS_PER_S)),
            first_compared_ns=None, triggers=[], pending=pending, next_seq=next_seq,
            audio_next=dict(audio_start), audio_start=dict(audio_start),
            frames={n: 0 for n in pending}, notes=notes,
        )
        if not self._submit(rec, _Begin(rec_id, rec.name, self.config_text, self.settings_text)):
            return
        self._rec = rec
        self._records.append({"type": "recorder", "event": "started", "recording": rec.name, "rule": rule})
        log.info("flight recorder: %s started recording %s", rule, rec.name)
        chunk = self._new_chunk(rec)
        roles = ["warmup" if i < compared_from else ("pre" if t.now_ns < T else "trigger")
                 for i, t in enumerate(ticks)]
        covered = [r != "warmup" and self._covered(t, rec, wrapped_after)
                   for r, t in zip(roles, ticks)]
        first_seq = {n: (q[0] if q else next_seq[n]) for n, q in pending.items()}
        restore = self.journal.restore(ticks, covered.index(True) if any(covered) else len(ticks),
                                       first_seq, audio_start)
        for t, role, compare, more in zip(ticks, roles, covered, map(restore.get, range(len(ticks)))):
            self._add_tick(rec, chunk, t, role, compare, more)
        self._add_triggers(rec, chunk, T, triggers)
        if self._take_audio(rec, chunk):
            self._step_end(rec, chunk)

    def _covered(self, t: _Tick, rec: _Recording, wrapped_after: dict[str, int]) -> bool:
        """Whether the recorded data hold everything this (past) tick's windows could use."""
        streams = self.spine.config.streams
        for wl in t.line["windows"]:
            sc = streams[wl["stream"]]
            if sc.video and sc.video in wrapped_after:
                tol = self.spine.aligners[wl["stream"]].spec.tolerance_ns
                if wrapped_after[sc.video] > wl["t_start_ns"] - tol:
                    return False
            if sc.audio and wl["audio_n0"] is not None and sc.audio in rec.audio_start:
                ring = self.taps[sc.audio].audio
                assert ring is not None
                if rec.audio_start[sc.audio] > wl["audio_n0"] and rec.audio_start[sc.audio] != ring.start:
                    return False
        return True

    def _add_tick(self, rec: _Recording, chunk: _Chunk, t: _Tick, role: str, compare: bool,
                  restore: dict[str, Any] | None = None) -> None:
        line = {"tick": rec.ticks, "role": role, "compare": compare, **t.line}
        if restore:  # what a replay sets before this tick (TickJournal.restore)
            line["restore"] = restore
        chunk.ticks.append(_dumps(line))
        for p in t.predictions:
            chunk.predictions.append(_dumps({"tick": rec.ticks, "now_ns": t.now_ns, "compare": compare, **p}))
        for e in t.events:
            chunk.events.append(_dumps({"tick": rec.ticks, "now_ns": t.now_ns, **e}))
        rec.ticks += 1
        rec.warmup += role == "warmup"
        rec.compared += compare
        if compare and rec.first_compared_ns is None:
            rec.first_compared_ns = t.now_ns
        rec.last_tick_ns = t.now_ns

    def _add_triggers(self, rec: _Recording, chunk: _Chunk, now_ns: int, triggers: list[tuple[str, Event]]) -> None:
        cap = rec.trigger_ns + int(round(self.config.max_seconds * NS_PER_S))
        for stream, e in triggers:
            rec.triggers.append({"tick": rec.ticks - 1, "now_ns": now_ns, "stream": stream, "rule": e.rule,
                                 "started_ns": e.started_ns})
        rec.last_trigger_ns = now_ns
        want = now_ns + int(round(self.config.post_roll * NS_PER_S))
        rec.ends_ns = min(cap, want)
        if rec.ends_ns < want and not any(n.startswith("max_seconds") for n in rec.notes):
            rec.notes.append(f"max_seconds ({self.config.max_seconds:g} s from the first trigger) "
                             f"cuts the post-roll of {', '.join(e.rule for _, e in triggers)} "
                             f"at {(now_ns - rec.trigger_ns) / NS_PER_S:.2f} s to "
                             f"{(rec.ends_ns - now_ns) / NS_PER_S:.2f} s")

    def _continue(self, rec: _Recording, tick: _Tick, triggers: list[tuple[str, Event]]) -> None:
        chunk = self._new_chunk(rec)
        if rec.taking_ticks:
            self._add_tick(rec, chunk, tick, "post", True)
            if triggers:
                self._add_triggers(rec, chunk, tick.now_ns, triggers)
            if not self._take_audio(rec, chunk):
                return
        self._step_end(rec, chunk)

    def _step_end(self, rec: _Recording, chunk: _Chunk) -> None:
        """Enqueue new frames, copy some, hand the chunk over, and finish when all is in."""
        if rec.taking_ticks:
            for name, tap in self.taps.items():
                if tap.video is not None and name in rec.pending:
                    newest = tap.video.written
                    rec.pending[name].extend(range(rec.next_seq[name], newest))
                    rec.next_seq[name] = newest
            if rec.last_tick_ns >= rec.ends_ns:
                rec.taking_ticks = False
        if not self._copy_frames(rec, chunk):
            return
        if not self._submit(rec, chunk):
            return
        if not rec.taking_ticks and not any(rec.pending.values()):
            self._rec = None
            self._submit(rec, self._finish_job(rec, truncated=False))

    def _take_audio(self, rec: _Recording, chunk: _Chunk) -> bool:
        for name, tap in self.taps.items():
            ring = tap.audio
            if ring is None or ring.start is None:
                continue
            if name not in rec.audio_next:  # its first samples arrived during the recording
                rec.audio_next[name] = rec.audio_start[name] = ring.start
            a, b = rec.audio_next[name], ring.end
            if a < b - ring.capacity:
                self._abandon(rec, f"{rec.name}: audio of source {name!r} was overwritten before "
                                   "the recorder read it (raise audio_buffer_seconds)")
                return False
            if b > a:
                data, mask = ring.read(a, b - a)
                chunk.audio[tap.dir] = (a, data, mask)
                rec.audio_next[name] = b
        return True

    def _copy_frames(self, rec: _Recording, chunk: _Chunk, everything: bool = False) -> bool:
        """Copy pending frames, oldest first: those the ring will overwrite before the next tick,
        and enough more that the backlog is gone by the end of the post-roll."""
        left_ticks = max(1, (rec.ends_ns - rec.last_tick_ns) // max(1, self.hop_ns))
        for name, q in rec.pending.items():
            tap = self.taps[name]
            ring = tap.video
            if ring is None or not q:
                continue
            newest = ring.written - 1
            margin = 2 * tap.arrived + 2
            must = sum(1 for s in q if s <= newest - ring.capacity + margin)
            budget = len(q) if everything or not rec.taking_ticks else max(
                must, 2 * tap.arrived + 1, -(-len(q) // left_ticks)
            )
            n = min(len(q), budget)
            frames = np.empty((n, *ring.shape), np.uint8)
            seqs = np.empty(n, np.int64)
            t_ns = np.empty(n, np.int64)
            idx = ring.index()
            where = {int(s): int(t) for s, t in zip(idx.seq, idx.t_ns)}
            for k in range(n):
                s = q.popleft()
                if s not in where or not ring.read_into(s, frames[k]):
                    self._abandon(rec, f"{rec.name}: frame {s} of source {name!r} was overwritten "
                                       "before the recorder copied it (raise buffer_seconds)")
                    return False
                seqs[k], t_ns[k] = s, where[s]
            pipe = (tap.video_clock.to_pipeline_array(t_ns) if tap.video_clock is not None
                    and tap.video_clock.ready else np.full(n, -1, np.int64))
            chunk.video[tap.dir] = (frames, t_ns, seqs, pipe)
            rec.frames[name] += n
        return True

    def _new_chunk(self, rec: _Recording) -> _Chunk:
        return _Chunk(rec.rec_id, {}, {}, [], [], [])

    def _submit(self, rec: _Recording, job: _Job) -> bool:
        try:
            self._jobs.put_nowait(job)
            return True
        except queue.Full:
            self._abandon(rec, f"{rec.name}: the writer fell {self.config.queue_chunks} ticks behind")
            return False

    def _abandon(self, rec: _Recording, reason: str) -> None:
        if self._rec is rec:
            self._rec = None
        self.store.abandon(rec.rec_id, reason)

    def _finish_job(self, rec: _Recording, truncated: bool) -> _Finish:
        sources: dict[str, Any] = {}
        rates: dict[str, int] = {}
        for name, tap in self.taps.items():
            meta: dict[str, Any] = {"kind": tap.kind, "dir": tap.dir,
                                    "shared_clock": tap.video_clock is tap.audio_clock}
            if tap.video is not None:
                meta["video"] = {"shape": list(tap.video.shape), "capacity": tap.video.capacity,
                                 "fps": tap.fps, "frames": rec.frames.get(name, 0)}
            if tap.audio is not None:
                meta["audio"] = {"sample_rate": tap.sample_rate, "channels": tap.audio.channels,
                                 "capacity": tap.audio.capacity, "n0": rec.audio_start.get(name),
                                 "samples": rec.audio_next.get(name, 0) - rec.audio_start.get(name, 0)}
                rates[tap.dir] = tap.sample_rate
            sources[name] = meta
        manifest = {
            "format": FORMAT,
            "rule": rec.rule,
            "trigger_utc": datetime.fromtimestamp(rec.wall_s, timezone.utc).isoformat(timespec="milliseconds"),
            "trigger_ns": rec.trigger_ns,
            "last_trigger_ns": rec.last_trigger_ns,
            "triggers": rec.triggers,
            "pre_roll_s": self.config.pre_roll,
            "post_roll_s": self.config.post_roll,
            "recorded_pre_roll_s": None if rec.first_compared_ns is None
            else (rec.trigger_ns - rec.first_compared_ns) / NS_PER_S,
            "recorded_post_roll_s": (rec.last_tick_ns - rec.last_trigger_ns) / NS_PER_S,
            "ticks": rec.ticks,
            "compared_ticks": rec.compared,
            "warmup_ticks": rec.warmup,
            "truncated": truncated,
            "hop_ns": self.hop_ns,
            "sources": sources,
            "streams": {n: {"video": sc.video, "audio": sc.audio} for n, sc in self.spine.config.streams.items()},
            "model": None if self.model is None else {
                "name": self.model.name, "path": self.model.path, "sha256": self.model.sha256,
                "card": self.model.card_path, "card_sha256": self.model.card_sha256,
                "engine": self.model.engine,
            },
            "config": "config.yaml",
            "settings": SETTINGS,
            "notes": rec.notes,
        }
        return _Finish(rec.rec_id, manifest, rates)

    # -- reporting -----------------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        """The recorder's state for ``/healthz``: ``recorder_state`` is ``disabled``, ``idle``,
        ``recording``, ``error`` (the last recording was abandoned) or ``stopped``."""
        s = self.store.snapshot()
        rec = self._rec  # read once: the tick thread may end the recording meanwhile
        if not self.config.enabled:
            state = "disabled"
        elif self._closed:
            state = "stopped"
        elif rec is not None:
            state = "recording"
        else:
            state = "error" if s["failed_last"] else "idle"
        return {
            "recorder_state": state,
            "last_error": s["last_error"],
            "recording": rec.name if rec is not None else None,
            "saved": s["saved"],
            "abandoned": s["abandoned"],
            "deleted": s["deleted"],
            "last_recording": s["last_recording"],
            "disk_mb": round(s["disk_bytes"] / 2**20, 3),
            "quota_mb": self.config.quota_mb,
            "queue": self._jobs.qsize(),
            "tick_ms": {"last": round(self.tick_ms_last, 3), "max": round(self.tick_ms_max, 3)},
            "write_s_last": None if s["write_s"] is None else round(s["write_s"], 3),
        }
