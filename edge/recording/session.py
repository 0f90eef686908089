"""The shell of ``edge record``: start a stream's sources, loop, stop cleanly, finish the folder.

The main thread starts the stream's sources (capture threads fill their rings), waits until
every one has delivered data, then loops every 40 ms: :meth:`RecordingCore.poll` moves what is
new into the media writer, keys are read, and about once a second a progress line goes to
stderr. Ctrl-C, SIGTERM, ``q`` or ``--seconds`` end the loop; the sources are stopped, what the
rings still hold is written, the encoders are flushed and the container closed, and only then is
``video.mkv.part`` renamed to ``video.mkv``. Then come ``timestamps.npz``, ``sheet.png`` and, last,
``labels.json``, each written to a temporary name and renamed: the folder counts as a recording
(``edge eval/train --recordings``) only once it is complete.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, TextIO

from edge.capture.base import CaptureSource
from edge.timebase.clock import NS_PER_S, Clock, MonotonicClock
from edge.config import Config, StreamConfig
from edge.errors import ConfigError, DeviceError, EdgeError
from edge.recording.core import RecordingCore
from edge.recording.folder import (
    VIDEO_NAME,
    RecordResult,
    check_folder,
    valid_events,
    write_labels,
    write_sidecar,
)
from edge.recording.keys import Keyboard, LabelToggles
from edge.recording.sheet import ContactSheet, mmss, open_speech_activity
from edge.recording.writer import AudioTrack, MediaWriter, VideoTrack, check_tracks

if TYPE_CHECKING:
    from edge.join.spine import Spine

log = logging.getLogger(__name__)

FIRST_DATA_S = 10.0  # how long the sources may take to deliver after they opened
STALL_GRACE_S = 3.0  # past --seconds, how long a stalled track is waited for
LOOP_S = 0.04


@dataclass(frozen=True)
class RecordSettings:
    """What ``edge record`` was asked to do."""

    out: Path
    seconds: float | None = None
    stream: str | None = None
    task: str | None = None
    force: bool = False
    codec: str = "mjpeg"
    sheet: bool = True


def resolve_task(config: Config, task: str | None) -> str:
    """``--task``, else the task of the config's model card."""
    from edge.sim.scenario import CLASSES

    if task is None and config.model is not None:
        from edge.runtime.card import card_path_for, load_card

        task = load_card(card_path_for(config.model.path)).task
    if task is None:
        raise ConfigError("the config has no model to take the task from: say --task driver|home")
    if task not in CLASSES:
        raise ConfigError(f"unknown task {task!r} (known: {', '.join(CLASSES)})")
    return task


@dataclass
class _Plan:
    """One stream's sources (built, not started) and the tracks they give."""

    name: str
    stream: StreamConfig
    spine: Spine
    vsrc: CaptureSource | None
    asrc: CaptureSource | None
    video: VideoTrack | None
    audio: AudioTrack | None

    def tracks(self) -> str:
        parts = []
        if self.video is not None:
            v = self.video
            parts.append(f"video {self.stream.video}: {v.codec} {v.width}x{v.height} {v.fps:g} fps")
        if self.audio is not None:
            a = self.audio
            parts.append(f"audio {self.stream.audio}: pcm_s16le {a.sample_rate} Hz {a.channels} ch")
        return "; ".join(parts)


def _plan(config: Config, settings: RecordSettings, clock: Clock) -> _Plan:
    from edge.join.spine import Spine

    if not config.streams:
        raise ConfigError("the config has no streams")
    name = settings.stream or next(iter(config.streams))
    if name not in config.streams:
        raise ConfigError(f"no stream {name!r} in the config (streams: {', '.join(config.streams)})")
    sc = config.streams[name]
    wanted = [n for n in dict.fromkeys((sc.video, sc.audio)) if n is not None]
    sub = config.model_copy(update={"sources": {n: config.sources[n] for n in wanted},
                                    "streams": {name: sc}})
    spine = Spine(sub, clock)
    vsrc = spine.sources[sc.video] if sc.video else None
    asrc = spine.sources[sc.audio] if sc.audio else None
    video = audio = None
    if vsrc is not None and vsrc.video is not None:
        h, w = vsrc.video.shape[:2]
        video = VideoTrack(w, h, vsrc.nominal_fps, settings.codec)
    if asrc is not None and asrc.audio is not None:
        audio = AudioTrack(asrc.sample_rate, asrc.audio.channels)
    check_tracks(video, audio)
    return _Plan(name, sc, spine, vsrc, asrc, video, audio)


@contextmanager
def _stop_on_signals(stop: threading.Event, reason: list[str]) -> Iterator[None]:
    """SIGINT and SIGTERM set ``stop`` instead of killing (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        if not stop.is_set():
            reason.append("Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name)
        stop.set()

    saved = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in saved.items():
            signal.signal(s, h)


class _Progress:
    """One line about once a second: ``\\r``-updated on a terminal, a line each otherwise."""

    def __init__(self, stream: TextIO | None, limit_s: float | None) -> None:
        self.stream = stream
        self.limit = "" if limit_s is None else f" / {mmss(limit_s)}"
        try:
            self.tty = bool(stream is not None and stream.isatty())
        except (AttributeError, ValueError):
            self.tty = False
        self._last: tuple[float, int] | None = None
        self._open_line = False

    def start(self, now_s: float) -> None:
        self._last = (now_s, 0)

    def say(self, text: str) -> None:
        if self.stream is None:
            return
        self.end()
        self.stream.write(f"edge record: {text}\n")
        self.stream.flush()

    def update(self, now_s: float, core: RecordingCore, writer: MediaWriter) -> None:
        if self.stream is None:
            return
        st = core.stats
        fps = 0.0
        if self._last is not None and now_s > self._last[0]:
            fps = (st.frames - self._last[1]) / (now_s - self._last[0])
        self._last = (now_s, st.frames)
        line = (f"{mmss(core.recorded_s())}{self.limit}  frames {st.frames} ({fps:.1f} fps)  "
                f"audio {core.audio_s():.1f} s  {writer.size_bytes() / 1e6:.1f} MB  "
                f"lost frames {st.lost_frames}  audio gaps {st.gap_events}")
        if self.tty:
            self.stream.write(f"\r\x1b[2Kedge record: {line}")
            self._open_line = True
        else:
            self.stream.write(f"edge record: {line}\n")
        self.stream.flush()

    def end(self) -> None:
        if self.stream is not None and self._open_line:
            self.stream.write("\n")
            self.stream.flush()
            self._open_line = False


def _wait_for_data(sources: list[CaptureSource], stop: threading.Event, timeout_s: float) -> bool:
    """Wait until every source delivered data; False when stopped first."""
    deadline = time.monotonic() + timeout_s
    while True:
        waiting = [s for s in sources
                   if (s.video is not None and s.video.written == 0)
                   or (s.audio is not None and (s.audio.start is None or s.audio.end <= s.audio.start))]
        if not waiting:
            return True
        if time.monotonic() > deadline:
            err = waiting[0].stats.last_error
            raise DeviceError(f"{waiting[0].describe()}: no data within {timeout_s:g} s"
                              + (f" ({err})" if err else ""))
        if stop.wait(0.05):
            return False


def record(
    config: Config,
    settings: RecordSettings,
    *,
    clock: Clock | None = None,
    progress: TextIO | None = None,
    keyboard: Keyboard | None = None,
    stop: threading.Event | None = None,
) -> RecordResult:
    """Record the live sources of one stream of ``config`` into ``settings.out``.

    Parameters
    ----------
    config:
        A loaded config; its first stream (or ``settings.stream``) names the sources.
    settings:
        Output folder, length, task, codec.
    clock:
        Pipeline time (:class:`MonotonicClock` by default).
    progress:
        Where progress lines go (``sys.stderr`` by default).
    keyboard:
        Label keys (default: stdin when it is a terminal).
    stop:
        Set it to stop the recording (Ctrl-C and SIGTERM set it too).

    Returns
    -------
    RecordResult
        What was written.
    """
    clock = clock or MonotonicClock()
    if settings.seconds is not None and settings.seconds <= 0:
        raise ConfigError("--seconds must be > 0")
    task = resolve_task(config, settings.task)
    plan = _plan(config, settings, clock)
    out = Path(settings.out)
    check_folder(out, settings.force)
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    shell = _Shell(clock, _Progress(sys.stderr if progress is None else progress, settings.seconds),
                   keyboard or Keyboard(), stop or threading.Event(), LabelToggles(task))
    started = datetime.now(timezone.utc)
    try:
        with _stop_on_signals(shell.stop, shell.reason):
            core, writer, sheet, notes = shell.capture(config, plan, settings, out)
    except BaseException:
        if created and out.is_dir() and not any(out.iterdir()):
            out.rmdir()
        raise
    return _finish(out, task, plan, settings, core, writer, sheet, notes, shell, started)


@dataclass
class _Shell:
    """The live part: sources running, the loop, keys, progress and the reason it stopped."""

    clock: Clock
    progress: _Progress
    keyboard: Keyboard
    stop: threading.Event
    toggles: LabelToggles

    def __post_init__(self) -> None:
        self.reason: list[str] = []

    def capture(self, config: Config, plan: _Plan, settings: RecordSettings, out: Path
                ) -> tuple[RecordingCore, MediaWriter, ContactSheet | None, list[str]]:
        """Run the sources and the loop; the media file is closed and renamed on return."""
        spine = plan.spine
        writer: MediaWriter | None = None
        try:
            open_s = max([float(getattr(s, "open_timeout", 2.0))
                          for s in spine.config.sources.values()] + [2.0])
            spine.start(require_open_s=open_s + 1.0)
            if not _wait_for_data(list(spine.sources.values()), self.stop, FIRST_DATA_S):
                raise EdgeError("stopped before anything was recorded")
            writer = MediaWriter(out / VIDEO_NAME, plan.video, plan.audio)
            vsrc, asrc = plan.vsrc, plan.asrc
            core = RecordingCore(
                writer,
                frames=vsrc.video if vsrc is not None else None,
                video_clock=vsrc.video_clock if vsrc is not None else None,
                samples=asrc.audio if asrc is not None else None,
                audio_clock=asrc.audio_clock if asrc is not None else None,
                sample_rate=plan.audio.sample_rate if plan.audio else 16000,
                fps=plan.video.fps if plan.video else 30.0,
                limit_s=settings.seconds,
            )
            sheet, notes = _sheet(config, plan) if settings.sheet else (None, [])
            if sheet is not None:
                core.on_frame.append(sheet.add_frame)
                core.on_audio.append(sheet.add_audio)
            self.loop(core, writer, settings.seconds)
            spine.stop()
            core.poll(self.clock.now_ns())  # what the rings still hold
            self.progress.end()
            if not core.started:
                writer.abort()
                raise DeviceError("no data arrived after recording started; nothing was written")
            writer.close()
            return core, writer, sheet, notes
        except BaseException:
            spine.stop()
            self.progress.end()
            if writer is not None and not writer.closed:
                try:
                    writer.close(rename=False)
                except Exception as exc:  # e.g. the disk that failed the write fails the close
                    log.debug("closing %s: %s", writer.part, exc)
                log.error("the recording was interrupted; what was written is in %s", writer.part)
            raise

    def loop(self, core: RecordingCore, writer: MediaWriter, limit_s: float | None) -> None:
        """Poll the rings until stopped, the limit is reached, or a track stalls past it."""
        clock, progress = self.clock, self.progress
        core.begin()
        with self.keyboard:
            if self.keyboard.enabled:
                progress.say(self.toggles.key_map())
            next_report = clock.now_ns() + NS_PER_S
            progress.start(clock.now_ns() / NS_PER_S)
            while True:
                now = clock.now_ns()
                core.poll(now)
                for key in self.keyboard.read():
                    if key in "qQ":
                        self.reason.append("q")
                        self.stop.set()
                    elif core.started:
                        said = self.toggles.press(key, core.recorded_s())
                        if said:
                            progress.say(said)
                if now >= next_report:
                    progress.update(now / NS_PER_S, core, writer)
                    next_report += NS_PER_S * max(1, (now - next_report) // NS_PER_S + 1)
                if core.done:
                    return
                if (limit_s is not None and core.t0_ns is not None
                        and now - core.t0_ns > (limit_s + STALL_GRACE_S) * NS_PER_S):
                    progress.say("a track stalled past --seconds; stopping")
                    return
                if self.stop.wait(LOOP_S):
                    return


def _sheet(config: Config, plan: _Plan) -> tuple[ContactSheet, list[str]]:
    notes = []
    speech = None
    video, audio = plan.video, plan.audio
    if audio is not None:
        from edge.front.engines import FRONT_DIR

        front_dir = config.front_ends.dir if config.front_ends is not None else FRONT_DIR
        speech, note = open_speech_activity(front_dir, audio.sample_rate)
        notes.append(note)
    else:
        notes.append("no audio track: no level or speech activity")
    sheet = ContactSheet(video.width if video else None, video.height if video else None,
                         audio.sample_rate if audio else 0, speech)
    return sheet, notes


def _finish(out: Path, task: str, plan: _Plan, settings: RecordSettings, core: RecordingCore,
            writer: MediaWriter, sheet: ContactSheet | None, notes: list[str], shell: _Shell,
            started: datetime) -> RecordResult:
    """``timestamps.npz``, ``sheet.png``, then ``labels.json``; the result."""
    length = round(core.recorded_s(), 3)
    stopped_by = shell.reason[0] if shell.reason else ("--seconds" if core.done else "stop")
    camera_drops = plan.vsrc.stats.drops if plan.vsrc is not None else 0
    when = started.isoformat(timespec="seconds")
    meta = {
        "stream": plan.name, "video_source": plan.stream.video, "audio_source": plan.stream.audio,
        "task": task, "codec": settings.codec, "started": when, "seconds": length,
        "stopped_by": stopped_by, "camera_drops": camera_drops, "stats": vars(core.stats),
    }
    write_sidecar(out / "timestamps.npz", core.sidecar(), meta)
    files = [writer.path, out / "timestamps.npz"]
    if sheet is not None:
        header = [f"{out.name}: {mmss(length)} ({length:g} s) recorded "
                  f"{started.astimezone().strftime('%Y-%m-%d %H:%M')}, task {task}",
                  plan.tracks()] + notes
        try:
            files += sheet.render(out / "sheet.png", length, header)
        except (OSError, ValueError, MemoryError) as exc:  # the recording matters more
            notes.append(f"no contact sheet: {exc}")
    events = valid_events(task, length, shell.toggles.events(length), shell.progress.say)
    write_labels(out / "labels.json", task, length, events, source="edge record", recorded=when,
                 stream=plan.name)
    files.append(out / "labels.json")
    st = core.stats
    return RecordResult(
        folder=out, task=task, seconds=length, frames=st.frames, lost_frames=st.lost_frames,
        camera_drops=camera_drops, audio_seconds=round(core.audio_s(), 3),
        gap_events=st.gap_events, gap_seconds=st.gap_samples / core.sample_rate,
        resyncs=st.resyncs, stopped_by=stopped_by, size_bytes=writer.size_bytes(),
        tracks=plan.tracks(), events=events, files=files, notes=notes,
    )
