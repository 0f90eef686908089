"""The front-end cascade of one pipeline: stages on new frames and new audio, results by seq.

Each video source gets its per-frame stages (face, person, hand), each audio source its speech
activity (:mod:`edge.front.stages` runs one stage on one ring). At every tick, before the windows
are featurized, :meth:`Cascade.step` has each stage take the frames its ring published since the
last tick — inside the tick, or collected from its worker thread in a live run — each frame
once, never once per window it falls in, at most at the stage's own rate by frame time (a person
detector needs a few frames a second, not 30). Results are kept per frame sequence number
beside the ring, so a window reads what its own frames gave (:meth:`Cascade.window`); a frame a
stage skipped for its rate reads the newest result at or before it.

Absence is a fact, not a class: a frame without a face is flagged, and with ``mask_absent``
the window's target on that frame is masked for the fusion model, so nothing downstream can
read an absent face as closed eyes; how long the face has been absent goes into health. So
does how long a face in view has had its eyes hidden (dark lenses, a shadow over them:
:func:`edge.front.face.eyes_hidden` over the last second of frames), when eye states cannot
be seen at all; that count stops at the face's last frame while it is away, and ends after 2 s
without an eye measured.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from math import nan
from pathlib import Path
from typing import Any

import numpy as np

from edge.front.config import FrontEndsConfig
from edge.front.face import HIDDEN_WINDOW_S, eyes_hidden
from edge.front.stages import AudioVad, StageWorker, VideoStage
from edge.join.align import Window
from edge.timebase.buffers import FrameRing, SampleRing
from edge.timebase.clock import NS_PER_S


@dataclass(frozen=True)
class StoredResult:
    """A stage's result as a recording keeps it (what windows read of it), for replays."""

    present: bool
    count: int
    values: tuple[float, ...]
    eye_spread: float = float("nan")
    eye_dark: float = float("nan")

    def vector(self) -> np.ndarray:
        return np.array(self.values, np.float32)


def _stored(res: Any) -> list[Any]:
    """A result as one JSON row: present, count, vector (NaN stays NaN, written as null), and
    for a face with its eyes measured their ``[eye_spread, eye_dark]``."""
    vec = [float(x) for x in np.asarray(res.vector(), np.float32).tolist()]
    row = [bool(res.present), int(getattr(res, "count", int(bool(res.present)))), vec]
    eyes = _eyes(res)
    if eyes is not None:
        row.append(list(eyes))
    return row


def _stored_eyes(value: Any) -> tuple[float, float] | None:
    """A stored row's eye measures: a pair of numbers, or None for anything else."""
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        return None
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        return None
    return float(value[0]), float(value[1])


def _eyes(res: Any) -> tuple[float, float] | None:
    """A face result's ``(eye_spread, eye_dark)``; None when absent or not measured."""
    spread, dark = getattr(res, "eye_spread", None), getattr(res, "eye_dark", None)
    if not res.present or spread is None or dark is None or np.isnan(spread) or np.isnan(dark):
        return None
    return float(spread), float(dark)


@dataclass(frozen=True)
class WindowFront:
    """What the front ends say about one window."""

    face: tuple[Any, ...] | None  # per frame target: its face result (None: masked / none yet)
    face_present: np.ndarray | None  # [T] bool
    person: bool | None  # a person in a frame of the last hop
    persons: int | None  # most persons in one frame of the last hop
    speech: bool | None  # at least half of the last hop's chunks are speech
    speech_p: float | None  # highest chunk probability in the last hop
    person_t: tuple[Any, ...] | None = None  # per frame target: the person result held there
    speech_t: np.ndarray | None = None  # [T] per target: highest chunk probability near it
    hand_t: tuple[Any, ...] | None = None  # per frame target: the hand result held there

    def summary(self) -> dict[str, Any]:
        """The compact per-prediction form (``extra['front']`` of a prediction)."""
        out: dict[str, Any] = {}
        if self.face_present is not None:
            out["face"] = round(float(self.face_present.mean()), 3) if self.face_present.size else 0.0
        if self.person is not None:
            out["person"] = self.person
            out["persons"] = self.persons
        if self.hand_t is not None:
            out["hand"] = any(h is not None and bool(h.present) for h in self.hand_t[-2:])
        if self.speech is not None:
            out["speech"] = self.speech
            out["speech_p"] = None if self.speech_p is None else round(self.speech_p, 3)
        return out


class Cascade:
    """The front ends of one pipeline: per video source its frame stages, per audio source its
    VAD. Build with :func:`build_cascade`."""

    def __init__(self, config: FrontEndsConfig, hop_ns: int) -> None:
        self.config = config
        self.hop_ns = hop_ns
        self.face: dict[str, VideoStage[Any]] = {}
        self.person: dict[str, VideoStage[Any]] = {}
        self.hand: dict[str, VideoStage[Any]] = {}
        self.vad: dict[str, AudioVad] = {}
        self._absent_since: dict[str, int | None] = {}  # device time the face went away
        self._hidden_since: dict[str, int | None] = {}  # ... its eyes were hidden
        self._face_last: dict[str, int] = {}  # device time of its last frame with a face
        self._eye_log: dict[str, deque[tuple[int, float, float]]] = {}  # the last second's
        #: what the last step made, as JSON rows by "stage:source" (the flight recorder keeps it)
        self.produced: dict[str, list[list[Any]]] = {}
        self._made: dict[str, int] = {}  # "stage:source" -> newest frame seq handed to a tick
        #: a replay feeds recorded results through :meth:`inject` instead of running stages
        self.replaying = False
        self.workers: list[StageWorker] = []
        #: with workers, how long a tick waits for the newest frame's results at most
        self.wait_s = min(0.1, 0.25 * hop_ns / NS_PER_S)

    def start_workers(self) -> None:
        """Run each frame stage in its own thread as frames arrive (live runs); the tick then
        only collects results, waiting at most :attr:`wait_s` for the frames published by then."""
        if self.workers or self.replaying:
            return
        for stages in (self.face, self.person, self.hand):
            for src, st in stages.items():
                self.workers.append(StageWorker(st, src))
        for w in self.workers:
            w.start()

    def close(self, timeout_s: float = 1.0) -> None:
        """Stop the worker threads (a frame being processed finishes first)."""
        for w in self.workers:
            w.stop(timeout_s)
        self.workers = []

    def step(self) -> None:
        """Run every stage on what arrived since the last step (with workers: collect what
        they made, after waiting for the frames published by now)."""
        if self.replaying:
            return
        threaded = bool(self.workers)
        if threaded:
            for w in self.workers:
                w.check()
                w.stage.wait_seen(w.stage.ring.next_seq - 1, self.wait_s)
            for w in self.workers:
                w.check()

        def made(st: VideoStage[Any]) -> list[tuple[int, int, Any]]:
            return st.drain(cap=True) if threaded else st.step()

        produced: dict[str, list[list[Any]]] = {}
        for src, st in self.face.items():
            got = made(st)
            for _, t, r in got:
                self._face_seen(src, t, bool(r.present), _eyes(r))
            produced[f"face:{src}"] = [[s, t, *_stored(r)] for s, t, r in got]
        for kind, stages in (("person", self.person), ("hand", self.hand)):
            for src, st in stages.items():
                produced[f"{kind}:{src}"] = [[s, t, *_stored(r)] for s, t, r in made(st)]
        for key, rows in produced.items():
            if rows:
                self._made[key] = int(rows[-1][0])
        for src, v in self.vad.items():
            produced[f"vad:{src}"] = v.step()
        self.produced = produced

    def _face_seen(self, source: str, t_ns: int, present: bool,
                   eyes: tuple[float, float] | None = None) -> None:
        log = self._eye_log.setdefault(source, deque())
        window_ns = int(HIDDEN_WINDOW_S * NS_PER_S)
        if not present:
            since = self._absent_since.get(source)
            if since is None:
                since = self._absent_since[source] = t_ns
            if t_ns - since >= window_ns:  # gone, not a flicker of the mesh's presence
                log.clear()  # the hidden stretch stays, ended at the face's last frame
            return
        self._absent_since[source] = None
        self._face_last[source] = t_ns
        if log and t_ns - log[-1][0] > 2 * window_ns:  # no eye measured for 2 s: afresh
            log.clear()  # (too few frames then to say hidden: the stretch ends below)
        if eyes is not None:
            log.append((t_ns, *eyes))
        # the last second, and never fewer than 3 frames (a slow camera or face rate) as long
        # as they are no older than 3 s
        while log and log[0][0] <= t_ns - window_ns and (
                len(log) > 3 or log[0][0] <= t_ns - 3 * window_ns):
            log.popleft()
        if not eyes_hidden([e[1] for e in log], [e[2] for e in log]):
            self._hidden_since[source] = None
        elif self._hidden_since.get(source) is None:
            self._hidden_since[source] = t_ns

    def inject(self, produced: dict[str, list[list[Any]]],
               seq_of: Callable[[str, int], int | None]) -> None:
        """Take a recorded step's results (``produced`` of the live step) as if the stages had
        made them; ``seq_of(source, live_seq)`` gives the frame's seq in the replay's ring
        (-1 for a frame older than all recorded ones: the newest of those is held there)."""
        self._put(produced, seq_of, face_seen=True)

    def _put(self, produced: dict[str, list[list[Any]]],
             seq_of: Callable[[str, int], int | None], face_seen: bool) -> None:
        for key, rows in produced.items():
            kind, src = key.split(":", 1)
            if kind == "vad" and src in self.vad:
                self.vad[src].inject(rows)
                continue
            st = self._stage(kind, src)
            if st is None:
                continue
            for row in rows:
                s, t, present, count, vec = row[:5]
                eyes = _stored_eyes(row[5] if len(row) > 5 else None)
                if kind == "face" and face_seen:  # timed as the live step timed it, frame
                    self._face_seen(src, int(t), bool(present), eyes)  # in the ring or not
                seq = seq_of(src, int(s))
                if seq is None:
                    continue
                values = tuple(float("nan") if x is None else float(x) for x in vec)
                stored = StoredResult(bool(present), int(count), values, *(eyes or (nan, nan)))
                st.results.put(seq, int(t), stored, replace=seq == -1)
                st.last_t = int(t)

    def _stage(self, kind: str, source: str) -> VideoStage[Any] | None:
        """The frame stage ``kind`` (face, person, hand) of ``source``, if it runs."""
        return {"face": self.face, "person": self.person, "hand": self.hand}.get(kind, {}).get(source)

    def _frame_stages(self) -> list[tuple[str, str, VideoStage[Any]]]:
        return [(kind, src, st) for kind, stages in (("face", self.face), ("person", self.person),
                                                     ("hand", self.hand))
                for src, st in stages.items()]

    def state(self) -> dict[str, Any]:
        """What the stages had handed to the ticks by now and the face's running state (absent,
        eyes hidden, the eye log), as JSON: with :meth:`made_rows`, what a replay starting
        here restores (:meth:`restore`) instead of the results and state made before it."""
        return {
            "made": dict(self._made),
            "vad_fed": {src: v.fed for src, v in self.vad.items()},
            "last_t": {f"{kind}:{src}": st.last_t for kind, src, st in self._frame_stages()},
            "faces": {src: {"absent_since": self._absent_since.get(src),
                            "hidden_since": self._hidden_since.get(src),
                            "face_last": self._face_last.get(src),
                            "eye_log": [list(e) for e in self._eye_log.get(src, ())]}
                      for src in self.face},
        }

    def made_rows(self, state: dict[str, Any], first_seq: dict[str, int],
                  first_sample: dict[str, int]) -> dict[str, list[list[Any]]]:
        """The results made by the time of ``state`` (an earlier :meth:`state`) for frames from
        ``first_seq`` per video source on, with the newest one before it (a frame the stage
        skipped for its rate reads it), and the VAD chunks from ``first_sample`` per audio
        source on, as rows of :attr:`produced`."""
        out: dict[str, list[list[Any]]] = {}
        for kind, src, st in self._frame_stages():
            key = f"{kind}:{src}"
            made = state.get("made", {}).get(key)
            if made is None or src not in first_seq:
                continue
            lo = first_seq[src]
            held = st.results.at(min(lo - 1, int(made)))
            got = ([] if held is None else [held]) + st.results.between(lo, int(made))
            out[key] = [[s, t, *_stored(r)] for s, t, r in got]
        for src, v in self.vad.items():
            fed = state.get("vad_fed", {}).get(src)
            if fed is not None and src in first_sample:
                out[f"vad:{src}"] = v.rows(first_sample[src] - v.chunk, int(fed))
        return out

    def restore(self, state: dict[str, Any], rows: dict[str, list[list[Any]]],
                seq_of: Callable[[str, int], int | None]) -> None:
        """Start a replay where the live run was: the face's running state of ``state`` and the
        results ``rows`` (of :meth:`made_rows`), kept as if made here."""
        for src, f in state.get("faces", {}).items():
            if src not in self.face:
                continue
            self._absent_since[src] = f.get("absent_since")
            self._hidden_since[src] = f.get("hidden_since")
            if f.get("face_last") is not None:
                self._face_last[src] = int(f["face_last"])
            self._eye_log[src] = deque((int(t), float(a), float(b)) for t, a, b in f["eye_log"])
        self._put(rows, seq_of, face_seen=False)
        for key, t in state.get("last_t", {}).items():
            kind, src = key.split(":", 1)
            st = self._stage(kind, src)
            if st is not None and t is not None:
                st.last_t = int(t)

    def face_absent_s(self, source: str) -> float | None:
        """Seconds (device time) the face of ``source`` has been absent, up to its newest
        processed frame; None when present or not watched."""
        st = self.face.get(source)
        since = self._absent_since.get(source)
        if st is None or since is None or st.last_t is None:
            return None
        return (st.last_t - since) / NS_PER_S

    def eyes_hidden_s(self, source: str) -> float | None:
        """Seconds (device time) a face of ``source`` in view has had its eyes hidden (since the
        frame whose last second first said so), up to its newest frame with the face (while the
        face is away the count stands still, until absence is reported instead); None when
        they show or the source is not watched."""
        st = self.face.get(source)
        since = self._hidden_since.get(source)
        if st is None or since is None or st.last_t is None:
            return None
        return (min(st.last_t, self._face_last.get(source, st.last_t)) - since) / NS_PER_S

    def window(self, w: Window, video: str | None, audio: str | None,
               sample_rate: int, sample_at: Callable[[int], int] | None = None) -> WindowFront:
        """Read the results of the window's frames and audio (and mask absent faces);
        ``sample_at`` maps a pipeline time to the audio's sample index, for per-target speech."""
        face: tuple[Any, ...] | None = None
        present: np.ndarray | None = None
        person = persons = None
        person_t: tuple[Any, ...] | None = None
        hand_t: tuple[Any, ...] | None = None
        speech: bool | None = None
        speech_p: float | None = None
        speech_t: np.ndarray | None = None
        seqs = w.video_seq
        if video in self.person and seqs is not None:  # before any masking: all targets
            pst = self.person[video]
            held = [pst.results.at(pst.capped(int(q))) if ok and q >= 0 else None
                    for q, ok in zip(seqs, w.video_mask)]
            person_t = tuple(None if g is None else g[2] for g in held)
        if video in self.hand and seqs is not None:
            hst = self.hand[video]
            hheld = [hst.results.at(hst.capped(int(q))) if ok and q >= 0 else None
                     for q, ok in zip(seqs, w.video_mask)]
            hand_t = tuple(None if g is None else g[2] for g in hheld)
        if video in self.face and seqs is not None:
            st = self.face[video]
            got = [st.results.at(st.capped(int(q))) if ok and q >= 0 else None
                   for q, ok in zip(seqs, w.video_mask)]
            face = tuple(None if g is None else g[2] for g in got)
            present = np.array([g is not None and bool(g[2].present) for g in got], bool)
            if self.config.face is not None and self.config.face.mask_absent:
                w.mask_frames(present)
        if video in self.person and seqs is not None:
            st = self.person[video]
            valid = seqs[seqs >= 0]
            if valid.size:
                newest = int(valid.max())
                t_new = int(w.video_t_ns[seqs == newest][0])
                # from -1: a replay holds the newest result before its recorded frames there
                hop = [r for _, t, r in st.results.between(-1, st.capped(newest))
                       if t > t_new - self.hop_ns]
                latest = st.results.at(st.capped(newest))
                if not hop and latest is not None:  # nothing processed in this hop: hold
                    hop = [latest[2]]
                person = any(bool(r.present) for r in hop)
                persons = max((int(getattr(r, "count", int(r.present))) for r in hop), default=0)
        if audio in self.vad and w.audio_n0 is not None:
            n1 = w.audio_n0 + (len(w.audio_mask))
            n0 = max(w.audio_n0, n1 - int(self.hop_ns * sample_rate / NS_PER_S))
            probs, flags = self.vad[audio].span(n0, n1)
            known = ~np.isnan(probs)
            if known.any():
                speech = bool(flags.sum() * 2 >= len(flags))
                speech_p = float(np.nanmax(probs))
            else:
                speech = False
            if sample_at is not None and len(w.target_t_ns) > 0:
                targets = w.target_t_ns.astype(np.int64)
                half = int(np.median(np.diff(targets)) // 2) if len(targets) > 1 else self.hop_ns // 2
                speech_t = np.full(len(targets), np.nan, np.float32)
                for k, t in enumerate(targets.tolist()):
                    p, _ = self.vad[audio].span(sample_at(t - half), sample_at(t + half))
                    if p.size and not np.isnan(p).all():
                        speech_t[k] = np.nanmax(p)
        return WindowFront(face, present, person, persons, speech, speech_p, person_t, speech_t,
                           hand_t)

    def stats(self) -> dict[str, dict[str, Any]]:
        """Counters per stage and source, for /healthz and reports."""
        out: dict[str, dict[str, Any]] = {}
        for kind, stages in (("face", self.face), ("person", self.person), ("hand", self.hand),
                             ("vad", self.vad)):
            for src, st in stages.items():
                s = st.stats
                out[f"{kind}:{src}"] = {
                    "processed": s.processed, "present": s.present, "skipped": s.skipped,
                    "lapped": s.lapped,
                    "ms_per_item": round(s.busy_ns / 1e6 / s.processed, 3) if s.processed else None,
                }
        return out


def build_cascade(config: FrontEndsConfig, video: dict[str, FrameRing],
                  audio: dict[str, SampleRing], hop_ns: int,
                  clock: Callable[[], int]) -> Cascade:
    """The stages ``config`` asks for on the given rings (by source name); the stage modules
    and their engines load here."""
    c = Cascade(config, hop_ns)
    d = Path(config.dir)
    opts = {"threads": config.threads}
    if config.face is not None:
        from edge.front.face import FaceStage

        for name, ring in video.items():
            stage = FaceStage(d, detect_every=config.face.detect_every,
                              min_face=config.face.min_face, type_key=config.engine, options=opts,
                              int8=config.int8, gaze=config.face.gaze, zoom=config.face.zoom)
            c.face[name] = VideoStage("face", stage, ring, config.face.rate, clock)
    if config.person is not None:
        from edge.front.person import PersonStage

        for name, ring in video.items():
            pstage = PersonStage(d, min_score=config.person.min_score, type_key=config.engine,
                                 options=opts, int8=config.int8, zoom=config.person.zoom)
            c.person[name] = VideoStage("person", pstage, ring, config.person.rate, clock)
    if config.hand is not None:
        from edge.front.hand import HandStage

        for name, ring in video.items():
            hstage = HandStage(d, min_score=config.hand.min_score, type_key=config.engine,
                               options=opts, int8=config.int8,
                               min_presence=config.hand.min_presence)
            c.hand[name] = VideoStage("hand", hstage, ring, config.hand.rate, clock)
    if config.vad is not None:
        from edge.front.vad import StreamingVad

        for name, sring in audio.items():
            vad = StreamingVad(d, threshold=config.vad.threshold,
                               neg_threshold=config.vad.neg_threshold, type_key=config.engine,
                               options=opts)
            c.vad[name] = AudioVad(vad, sring, config.vad.threshold, config.vad.neg_threshold,
                                   clock)
    return c
