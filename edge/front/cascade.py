"""The front-end cascade of one pipeline: stages on new frames and new audio, results by seq.

Each video source gets its per-frame stages (face, person, hand), each audio source its speech
activity. At every tick, before the windows are featurized, :meth:`Cascade.step` hands each
stage the frames its ring published since the last tick, in order, each frame once — never
once per window it falls in — and at most at the stage's own rate by frame time (a person
detector needs a few frames a second, not 30). Results are kept per frame sequence number
beside the ring (:class:`PerFrame`), so a window reads what its own frames gave; a frame a stage
skipped for its rate reads the newest result at or before it. The VAD is fed the samples that
arrived, by absolute sample index, its state carried from chunk to chunk.

Absence is a fact, not a class: a frame without a face is flagged, and with ``mask_absent``
the window's target on that frame is masked for the fusion model, so nothing downstream can
read an absent face as closed eyes; how long the face has been absent goes into health.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

import numpy as np

from edge.join.align import Window
from edge.timebase.buffers import FrameRing, SampleRing
from edge.timebase.clock import NS_PER_S
from edge.front.config import FrontEndsConfig


class FrameResult(Protocol):
    """What a per-frame stage gives for one frame."""

    @property
    def present(self) -> bool: ...

    def vector(self) -> np.ndarray: ...


R = TypeVar("R", bound=FrameResult)
R_co = TypeVar("R_co", bound=FrameResult, covariant=True)


class FrameStage(Protocol[R_co]):
    """A per-frame stage: frames in order, results out (it may carry tracking state)."""

    def process(self, frame_bgr: np.ndarray) -> R_co: ...


@dataclass(frozen=True)
class StoredResult:
    """A stage's result as a recording keeps it (what windows read of it), for replays."""

    present: bool
    count: int
    values: tuple[float, ...]

    def vector(self) -> np.ndarray:
        return np.array(self.values, np.float32)


def _stored(res: Any) -> list[Any]:
    """A result as one JSON row: present, count, vector (NaN stays NaN, written as null)."""
    vec = [float(x) for x in np.asarray(res.vector(), np.float32).tolist()]
    return [bool(res.present), int(getattr(res, "count", int(bool(res.present)))), vec]


class PerFrame(Generic[R]):
    """Results of one stage for one video ring, by frame seq, the oldest dropped past
    ``capacity``."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._seqs: list[int] = []
        self._items: dict[int, tuple[int, R]] = {}  # seq -> (device t_ns, result)
        self._lock = threading.Lock()  # a stage's worker thread puts while the tick reads

    def put(self, seq: int, t_ns: int, result: R) -> None:
        with self._lock:
            if self._seqs and seq <= self._seqs[-1]:
                raise ValueError(f"frame {seq} is not newer than {self._seqs[-1]}")
            self._seqs.append(seq)
            self._items[seq] = (t_ns, result)
            if len(self._seqs) > self.capacity:
                del self._items[self._seqs.pop(0)]

    def at(self, seq: int) -> tuple[int, int, R] | None:
        """``(seq, t_ns, result)`` of the newest processed frame at or before ``seq``."""
        with self._lock:
            i = bisect.bisect_right(self._seqs, seq)
            if i == 0:
                return None
            s = self._seqs[i - 1]
            t, r = self._items[s]
            return s, t, r

    def between(self, first_seq: int, last_seq: int) -> list[tuple[int, int, R]]:
        """The processed frames with ``first_seq <= seq <= last_seq``, oldest first."""
        with self._lock:
            lo = bisect.bisect_left(self._seqs, first_seq)
            hi = bisect.bisect_right(self._seqs, last_seq)
            return [(s, *self._items[s]) for s in self._seqs[lo:hi]]

    def __len__(self) -> int:
        return len(self._seqs)


@dataclass
class StageStats:
    """Counters of one stage."""

    processed: int = 0  # frames (or chunks) it ran on
    present: int = 0  # of those, with the thing present (a face, a person, speech)
    skipped: int = 0  # frames left out for the stage's rate
    lapped: int = 0  # frames overwritten in the ring before the stage got to them
    busy_ns: int = 0  # time spent in the stage


class VideoStage(Generic[R]):
    """One per-frame stage on one video ring, at most ``rate`` frames per second.

    :meth:`run` processes the frames published since it last ran and keeps what it made
    pending; :meth:`drain` hands that to the tick. Inside the tick both run back to back
    (:meth:`step`); with a :class:`StageWorker` thread, :meth:`run` follows the camera and the
    tick only drains. A window reads no result newer than the last drain (:attr:`horizon`), so
    what a tick saw is exactly what it recorded, and a replay of it is bit-exact either way.
    """

    def __init__(self, name: str, stage: FrameStage[R], ring: FrameRing, rate: float | None,
                 clock: Callable[[], int]) -> None:
        self.name = name
        self.stage = stage
        self.ring = ring
        self.period_ns = None if rate is None else int(NS_PER_S / rate)
        self.results: PerFrame[R] = PerFrame(max(64, ring.capacity * 2))
        self.stats = StageStats()
        self._seen = -1  # newest seq looked at (processed, skipped or lapped)
        self._run_t: int | None = None  # device time of the newest processed frame (its rate)
        self.last_t: int | None = None  # device time of the newest frame handed to the tick
        #: newest seq handed to the tick (None: no cap, the stage runs inside the tick)
        self.horizon: int | None = None
        self._pending: list[tuple[int, int, R]] = []
        self._cond = threading.Condition()
        self._now = clock

    @property
    def seen(self) -> int:
        """Newest frame seq this stage has looked at."""
        return self._seen

    def run(self) -> int:
        """Process the frames published since the last run; returns how many it looked at."""
        idx = self.ring.index()
        new = idx.seq > self._seen
        n = 0
        for seq, t in zip(idx.seq[new].tolist(), idx.t_ns[new].tolist()):
            n += 1
            res: R | None = None
            # A frame within 90 % of the period is left out (frame times jitter).
            if (self.period_ns is not None and self._run_t is not None
                    and t - self._run_t < 0.9 * self.period_ns):
                self.stats.skipped += 1
            else:
                frame = self.ring.read(seq)
                if frame is None:
                    self.stats.lapped += 1
                else:
                    t0 = self._now()
                    res = self.stage.process(frame)
                    self.stats.busy_ns += self._now() - t0
                    self.stats.processed += 1
                    self.stats.present += bool(res.present)
                    self.results.put(seq, t, res)
                    self._run_t = t
            with self._cond:
                if res is not None:
                    self._pending.append((seq, t, res))
                self._seen = seq
                self._cond.notify_all()
        return n

    def drain(self, cap: bool = False) -> list[tuple[int, int, R]]:
        """What :meth:`run` made since the last drain, oldest first; with ``cap`` windows read
        no result past what was handed over."""
        with self._cond:
            made, self._pending = self._pending, []
            if cap:
                self.horizon = self._seen
        if made:
            self.last_t = made[-1][1]
        return made

    def step(self) -> list[tuple[int, int, R]]:
        """Run on the frames published since the last step; return what it made."""
        self.run()
        return self.drain()

    def wait_seen(self, seq: int, timeout_s: float) -> bool:
        """Wait until the stage has looked at frame ``seq`` (a worker runs it); False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: self._seen >= seq, timeout_s)

    def capped(self, seq: int) -> int:
        """``seq``, or the horizon when that is older."""
        return seq if self.horizon is None else min(seq, self.horizon)


class StageWorker:
    """A thread that runs one :class:`VideoStage` as frames arrive (polling the ring's newest
    seq every ``poll_s``). An error in the stage stops the thread and is raised again by
    :meth:`check` on the tick thread, where the service's error handling sees it."""

    def __init__(self, stage: VideoStage[Any], source: str, poll_s: float = 0.003) -> None:
        self.stage = stage
        self.poll_s = poll_s
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, name=f"front-{stage.name}-{source}",
                                       daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _loop(self) -> None:
        st = self.stage
        try:
            while not self._stop.is_set():
                if st.ring.next_seq - 1 <= st.seen:
                    self._stop.wait(self.poll_s)
                    continue
                st.run()
        except BaseException as exc:  # handed to the tick thread by check()
            self.error = exc
            with st._cond:
                st._cond.notify_all()

    def check(self) -> None:
        if self.error is not None:
            raise self.error

    def stop(self, timeout_s: float = 1.0) -> None:
        self._stop.set()
        if self.thread.is_alive():
            self.thread.join(timeout_s)


class AudioVad:
    """Speech activity on one sample ring: new samples in, chunk probabilities and speech
    flags (hysteresis carried across ticks) kept by chunk start sample."""

    def __init__(self, vad: Any, ring: SampleRing, threshold: float, neg_threshold: float,
                 clock: Callable[[], int]) -> None:
        self.vad = vad
        self.ring = ring
        self.threshold = threshold
        self.neg_threshold = neg_threshold
        self.chunk = int(vad.chunk_samples)
        keep = ring.capacity // self.chunk + 2
        self._start = np.full(keep, -1, np.int64)  # chunk start sample per slot
        self._prob = np.full(keep, np.nan, np.float32)
        self._flag = np.zeros(keep, bool)
        self._speaking = False
        self._fed: int | None = None
        self.stats = StageStats()
        self._now = clock

    def step(self) -> list[list[Any]]:
        """Feed the samples that arrived; return the chunks scored, as JSON rows
        ``[start, probability, speech]``."""
        ring = self.ring
        if ring.start is None:
            return []
        end = ring.end
        start = ring.start if self._fed is None else self._fed
        start = max(start, end - ring.capacity)
        if end <= start:
            return []
        data, mask = ring.read(start, end - start)
        t0 = self._now()
        chunks = self.vad.push(data[:, 0], start, mask)
        self.stats.busy_ns += self._now() - t0
        self._fed = end
        rows: list[list[Any]] = []
        for s, p in chunks:
            if np.isnan(p):
                self._speaking = False
            elif self._speaking:
                self._speaking = bool(p >= self.neg_threshold)
            else:
                self._speaking = bool(p >= self.threshold)
            self._put(int(s), float(p), self._speaking)
            self.stats.processed += 1
            self.stats.present += self._speaking
            rows.append([int(s), float(p), self._speaking])
        return rows

    def _put(self, start: int, prob: float, flag: bool) -> None:
        slot = (start // self.chunk) % self._start.size
        self._start[slot], self._prob[slot], self._flag[slot] = start, prob, flag

    def inject(self, rows: list[list[Any]]) -> None:
        """Recorded chunks (rows of :meth:`step`), as if scored here."""
        for s, p, flag in rows:
            self._put(int(s), float("nan") if p is None else float(p), bool(flag))

    def span(self, n0: int, n1: int) -> tuple[np.ndarray, np.ndarray]:
        """Probabilities and speech flags of the chunks wholly inside samples ``[n0, n1)``,
        oldest first (NaN / False for chunks not known)."""
        first = -(-n0 // self.chunk) * self.chunk
        starts = np.arange(first, n1 - self.chunk + 1, self.chunk, dtype=np.int64)
        slots = (starts // self.chunk) % self._start.size
        known = self._start[slots] == starts
        return (np.where(known, self._prob[slots], np.nan).astype(np.float32),
                known & self._flag[slots])


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
        #: what the last step made, as JSON rows by "stage:source" (the flight recorder keeps it)
        self.produced: dict[str, list[list[Any]]] = {}
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
                self._face_seen(src, t, bool(r.present))
            produced[f"face:{src}"] = [[s, t, *_stored(r)] for s, t, r in got]
        for kind, stages in (("person", self.person), ("hand", self.hand)):
            for src, st in stages.items():
                produced[f"{kind}:{src}"] = [[s, t, *_stored(r)] for s, t, r in made(st)]
        for src, v in self.vad.items():
            produced[f"vad:{src}"] = v.step()
        self.produced = produced

    def _face_seen(self, source: str, t_ns: int, present: bool) -> None:
        if present:
            self._absent_since[source] = None
        elif self._absent_since.get(source) is None:
            self._absent_since[source] = t_ns

    def inject(self, produced: dict[str, list[list[Any]]],
               seq_of: Callable[[str, int], int | None]) -> None:
        """Take a recorded step's results (``produced`` of the live step) as if the stages had
        made them; ``seq_of(source, live_seq)`` gives the frame's seq in the replay's ring."""
        for key, rows in produced.items():
            kind, src = key.split(":", 1)
            if kind == "vad" and src in self.vad:
                self.vad[src].inject(rows)
                continue
            stages = {"face": self.face, "person": self.person, "hand": self.hand}.get(kind, {})
            st = stages.get(src)
            if st is None:
                continue
            for s, t, present, count, vec in rows:
                seq = seq_of(src, int(s))
                if seq is None:
                    continue
                values = tuple(float("nan") if x is None else float(x) for x in vec)
                st.results.put(seq, int(t), StoredResult(bool(present), int(count), values))
                st.last_t = int(t)
                if kind == "face":
                    self._face_seen(src, int(t), bool(present))

    def face_absent_s(self, source: str) -> float | None:
        """Seconds (device time) the face of ``source`` has been absent, up to its newest
        processed frame; None when present or not watched."""
        st = self.face.get(source)
        since = self._absent_since.get(source)
        if st is None or since is None or st.last_t is None:
            return None
        return (st.last_t - since) / NS_PER_S

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
                hop = [r for _, t, r in st.results.between(0, st.capped(newest))
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
                              int8=config.int8)
            c.face[name] = VideoStage("face", stage, ring, config.face.rate, clock)
    if config.person is not None:
        from edge.front.person import PersonStage

        for name, ring in video.items():
            pstage = PersonStage(d, min_score=config.person.min_score, type_key=config.engine,
                                 options=opts, int8=config.int8)
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
