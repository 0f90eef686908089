"""The front-end cascade on fake stages: each new frame once, at the stage's rate, results by
seq beside the ring, absent faces masked and reported; VAD chunks by absolute sample index."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from edge.timebase.buffers import FrameRing, SampleRing
from edge.timebase.clock import NS_PER_S
from edge.front.cascade import Cascade
from edge.front.stages import AudioVad, PerFrame, VideoStage
from edge.front.config import FaceConfig, FrontEndsConfig
from edge.status.config import HealthConfig
from edge.status.health import TickStats, judge

FPS = 15
FRAME_NS = NS_PER_S // FPS


@dataclass(frozen=True)
class Seen:
    present: bool
    value: float

    def vector(self) -> np.ndarray:
        return np.array([self.present, self.value], np.float32)


class FakeFace:
    """A stage that 'sees a face' in frames whose first pixel is non-zero."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def process(self, frame_bgr: np.ndarray) -> Seen:
        self.calls.append(int(frame_bgr[0, 0, 1]))
        return Seen(bool(frame_bgr[0, 0, 0]), float(frame_bgr[0, 0, 1]))


def write_frames(ring: FrameRing, first: int, n: int, face: bool, t0: int = 0) -> None:
    for k in range(first, first + n):
        img = np.zeros((4, 4, 3), np.uint8)
        img[0, 0, 0] = 255 if face else 0
        img[0, 0, 1] = k % 256
        ring.write(img, t0 + k * FRAME_NS)


def clock() -> int:
    return 0


def test_per_frame_results_answer_with_the_newest_at_or_before_a_seq() -> None:
    store: PerFrame[Seen] = PerFrame(capacity=3)
    for seq in (2, 5, 9, 12):
        store.put(seq, seq * 10, Seen(True, float(seq)))
    assert store.at(1) is None  # evicted (2) and nothing older
    assert store.at(7) == (5, 50, Seen(True, 5.0))
    assert store.at(12)[0] == 12 and store.at(100)[0] == 12  # type: ignore[index]
    assert [s for s, _, _ in store.between(5, 11)] == [5, 9]
    with pytest.raises(ValueError, match="not newer"):
        store.put(12, 0, Seen(True, 0.0))


def test_each_new_frame_is_processed_once_whatever_the_ticks() -> None:
    ring = FrameRing(32, (4, 4, 3))
    fake = FakeFace()
    st = VideoStage("face", fake, ring, rate=None, clock=clock)
    write_frames(ring, 0, 5, face=True)
    assert [s for s, _, _ in st.step()] == [0, 1, 2, 3, 4]
    assert st.step() == []  # nothing new: nothing run
    write_frames(ring, 5, 3, face=True)
    st.step()
    assert fake.calls == list(range(8))
    assert st.stats.processed == 8 and st.stats.present == 8


def test_a_stage_runs_at_its_own_rate_by_frame_time_and_windows_hold_its_result() -> None:
    ring = FrameRing(64, (4, 4, 3))
    fake = FakeFace()
    st = VideoStage("person", fake, ring, rate=4.0, clock=clock)  # 15 fps camera, 4 fps stage
    write_frames(ring, 0, 30, face=True)
    st.step()
    # 2 s of frames: one frame in every 4 (266 ms apart), never two within 90 % of 250 ms
    assert fake.calls == [0, 4, 8, 12, 16, 20, 24, 28]
    assert st.stats.skipped == 22
    assert st.results.at(6)[0] == 4  # type: ignore[index]


def test_frames_overwritten_before_the_stage_got_to_them_are_counted_not_run() -> None:
    ring = FrameRing(4, (4, 4, 3))
    fake = FakeFace()
    st = VideoStage("face", fake, ring, rate=None, clock=clock)
    write_frames(ring, 0, 10, face=True)
    st.step()
    assert fake.calls == [6, 7, 8, 9]  # the ring held the last 4; the older ones were never seen


def _window(ring: FrameRing, seqs: list[int]) -> object:
    from edge.join.align import Window

    idx = ring.index()
    t = [int(idx.t_ns[idx.seq == q][0]) for q in seqs]
    frames = tuple(ring.read(q) for q in seqs)
    return Window(stream="s", t_start_ns=t[0], t_end_ns=t[-1], cut_ns=t[-1], frames=frames,
                  frame_shape=(4, 4, 3), video_mask=np.ones(len(seqs), bool),
                  video_t_ns=np.array(t, np.int64), target_t_ns=np.array(t, np.int64),
                  audio=None, audio_mask=np.zeros(0, bool), audio_n0=None, video_age_ns=0,
                  audio_age_ns=None, av_offset_ns=None,
                  video_seq=np.array(seqs, np.int64))


def test_frames_without_a_face_are_masked_and_the_absence_is_timed_for_health() -> None:
    ring = FrameRing(64, (4, 4, 3))
    cfg = FrontEndsConfig(face=FaceConfig(mask_absent=True, absent_degraded=2.0))
    c = Cascade(cfg, hop_ns=NS_PER_S // 2)
    c.face["cam"] = VideoStage("face", FakeFace(), ring, rate=None, clock=clock)
    write_frames(ring, 0, 4, face=True)
    write_frames(ring, 4, 4, face=False)
    c.step()
    w = _window(ring, [1, 3, 5, 7])
    front = c.window(w, "cam", None, 16000)  # type: ignore[arg-type]
    assert front.face_present.tolist() == [True, True, False, False]  # type: ignore[union-attr]
    assert w.video_mask.tolist() == [True, True, False, False]  # type: ignore[attr-defined]
    assert w.frames[2] is None and w.video_seq.tolist() == [1, 3, -1, -1]  # type: ignore[attr-defined]
    assert front.summary() == {"face": 0.5}
    assert c.face_absent_s("cam") == pytest.approx(3 * FRAME_NS / NS_PER_S)
    write_frames(ring, 8, 30, face=False)  # two more seconds without a face
    c.step()
    absent = c.face_absent_s("cam")
    assert absent is not None and absent > 2.0
    tick = TickStats(t_ns=0, running=True, video_masked=0.0, audio_masked=None, video_age_ns=0,
                     audio_age_ns=None, frame_mean=None, frame_std=None, clipped=None, faults=0,
                     notes=(f"face absent {absent:.1f} s",))
    state, reasons = judge([tick], HealthConfig())
    assert state == "degraded" and reasons == ["face absent 2.2 s"]  # frames 4..37 at 15 fps
    write_frames(ring, 38, 1, face=True)  # back
    c.step()
    assert c.face_absent_s("cam") is None


@dataclass(frozen=True)
class Eyes:
    present: bool
    eye_spread: float
    eye_dark: float

    def vector(self) -> np.ndarray:
        return np.array([self.present], np.float32)


class FakeEyes:
    """A face in every frame whose first pixel is non-zero, its eyes behind a dark lens (eye
    region flat and dark) where the second pixel is, an eye's contrast otherwise."""

    def process(self, frame_bgr: np.ndarray) -> Eyes:
        face = bool(frame_bgr[0, 0, 0])
        if not face or frame_bgr[0, 0, 1]:  # no face, or its eyes not measured (off the frame)
            return Eyes(face, float("nan"), float("nan"))
        return Eyes(True, 0.05, 0.35) if frame_bgr[0, 0, 2] else Eyes(True, 0.6, 0.8)


def write_eyes(ring: FrameRing, first: int, n: int, face: bool = True, hidden: bool = True,
               measured: bool = True) -> None:
    for k in range(first, first + n):
        img = np.zeros((4, 4, 3), np.uint8)
        img[0, 0, 0] = 255 if face else 0
        img[0, 0, 1] = 0 if measured else 255
        img[0, 0, 2] = 255 if hidden else 0
        ring.write(img, k * FRAME_NS)


def test_hidden_eyes_are_timed_for_health_over_short_sightings_and_in_replays() -> None:
    """A face in view whose eyes are hidden (dark lenses) over the last second is timed from
    the frame where its second first said so; eyes seen on a few frames of it (a turn past the lens) do
    not end it, seen on most of a second they do, and so does the face leaving. The recorded
    rows carry the measures, so a replay times it the same."""
    ring = FrameRing(128, (4, 4, 3))
    c = Cascade(FrontEndsConfig(face=FaceConfig()), hop_ns=NS_PER_S // 2)
    c.face["cam"] = VideoStage("face", FakeEyes(), ring, rate=None, clock=clock)
    write_eyes(ring, 0, 15, hidden=False)  # a second of eyes seen
    c.step()
    assert c.eyes_hidden_s("cam") is None
    first = c.produced["face:cam"]
    write_eyes(ring, 15, 30)  # two seconds hidden: said from frame 23 (9 of the 16 frames within its second)
    c.step()
    rows = c.produced["face:cam"]
    assert c.eyes_hidden_s("cam") == pytest.approx((44 - 23) * FRAME_NS / NS_PER_S)
    write_eyes(ring, 45, 5, hidden=False)  # seen on 5 frames of 15: still hidden
    write_eyes(ring, 50, 10)
    c.step()
    assert c.eyes_hidden_s("cam") == pytest.approx((59 - 23) * FRAME_NS / NS_PER_S)
    write_eyes(ring, 60, 8, hidden=False)  # seen on most of the last second
    c.step()
    assert c.eyes_hidden_s("cam") is None
    write_eyes(ring, 68, 20)
    c.step()
    assert c.eyes_hidden_s("cam") is not None
    write_eyes(ring, 88, 2, face=False)  # the mesh loses the face for two frames: a flicker
    write_eyes(ring, 90, 1)
    c.step()
    assert c.eyes_hidden_s("cam") == pytest.approx((90 - 68 - 8) * FRAME_NS / NS_PER_S)
    write_eyes(ring, 91, 17, face=False)  # the face leaves for a second: the count stands
    c.step()  # still at its last frame (health says absence once it is long enough, no flap)
    assert c.eyes_hidden_s("cam") == pytest.approx((90 - 68 - 8) * FRAME_NS / NS_PER_S)
    assert c.face_absent_s("cam") == pytest.approx(16 * FRAME_NS / NS_PER_S)
    write_eyes(ring, 108, 15, hidden=False)  # back, eyes seen: over
    c.step()
    assert c.eyes_hidden_s("cam") is None and c.face_absent_s("cam") is None
    # replayed: the rows as the flight recorder keeps them, the measures in them
    assert [len(r) for r in rows] == [6] * 30 and rows[0][5] == [0.05, 0.35]
    replay = Cascade(FrontEndsConfig(face=FaceConfig()), hop_ns=NS_PER_S // 2)
    replay.replaying = True
    replay.face["cam"] = VideoStage("face", FakeEyes(), FrameRing(128, (4, 4, 3)), rate=None,
                                    clock=clock)
    replay.inject({"face:cam": first}, lambda src, seq: seq)
    replay.inject({"face:cam": rows}, lambda src, seq: seq)
    assert replay.eyes_hidden_s("cam") == pytest.approx((44 - 23) * FRAME_NS / NS_PER_S)
    held = replay.face["cam"].results.at(20)
    assert held is not None and held[2].eye_spread == pytest.approx(0.05)
    # rows of recordings without the measures (format 1), or with anything else there, say
    # nothing of the eyes
    for old in ([r[:5] for r in rows], [[*r[:5], True] for r in rows], [[*r[:5], None] for r in rows]):
        again = Cascade(FrontEndsConfig(face=FaceConfig()), hop_ns=NS_PER_S // 2)
        again.replaying = True
        again.face["cam"] = VideoStage("face", FakeEyes(), FrameRing(128, (4, 4, 3)), rate=None,
                                       clock=clock)
        again.inject({"face:cam": old}, lambda src, seq: seq)
        assert again.eyes_hidden_s("cam") is None and again.face["cam"].last_t is not None


def test_a_hidden_stretch_ends_when_the_eyes_go_unmeasured_or_the_frames_stop() -> None:
    """Hidden eyes, then the face still found but its eyes not measured (an eye off the frame)
    for 60 s: the stretch is not timed on, once 2 s have passed without a measure; nor across
    a 10-minute stall of the camera, after which the eyes show."""
    ring = FrameRing(2048, (4, 4, 3))
    c = Cascade(FrontEndsConfig(face=FaceConfig()), hop_ns=NS_PER_S // 2)
    c.face["cam"] = VideoStage("face", FakeEyes(), ring, rate=None, clock=clock)
    write_eyes(ring, 0, 60)  # 4 s behind lenses
    c.step()
    assert c.eyes_hidden_s("cam") == pytest.approx((59 - 2) * FRAME_NS / NS_PER_S)
    for start in range(60, 960, 300):  # 60 s of the face with its eyes unmeasured
        write_eyes(ring, start, 300, measured=False)
        c.step()
    assert c.eyes_hidden_s("cam") is None
    write_eyes(ring, 960, 60)  # hidden again for 4 s, then a 10-minute stall, then eyes seen
    c.step()
    assert c.eyes_hidden_s("cam") is not None
    write_eyes(ring, 960 + 60 + 9000, 1, hidden=False)
    c.step()
    assert c.eyes_hidden_s("cam") is None


class FakeVad:
    """Chunk probability = the chunk's first sample; NaN where any sample is invalid."""

    chunk_samples = 512

    def __init__(self) -> None:
        self.next = 0

    def push(self, x: np.ndarray, n0: int, valid: np.ndarray) -> list[tuple[int, float]]:
        assert n0 == self.next or self.next == 0
        out = []
        end = n0 + len(x)
        first = -(-max(n0, self.next) // 512) * 512 if self.next else n0 - n0 % 512
        for s in range(first, end - 511, 512):
            k = s - n0
            ok = bool(np.all(valid[k:k + 512]))
            out.append((s, float(x[k]) if ok else float("nan")))
        self.next = first + 512 * len(out)
        return out


def test_vad_chunks_follow_the_sample_ring_with_hysteresis_across_ticks() -> None:
    ring = SampleRing(16000 * 4)
    v = AudioVad(FakeVad(), ring, threshold=0.5, neg_threshold=0.35, clock=clock)
    levels = [0.1, 0.6, 0.4, 0.4, 0.2, 0.9]  # speech starts at 0.6, holds at 0.4, ends at 0.2
    for k, p in enumerate(levels):
        ring.write(np.full((512, 1), p, np.float32), k * 512)
        v.step()  # one chunk per tick: the flag carries over
    probs, flags = v.span(0, 512 * len(levels))
    np.testing.assert_allclose(probs, levels, rtol=1e-6)
    assert flags.tolist() == [False, True, True, True, False, True]
    probs, flags = v.span(100, 512 * 3)  # only whole chunks inside the span
    assert len(probs) == 2


class Flipping:
    """A stage with history: 'a face' in 5 processed frames, then none in the next 5, and so
    on — what it says of a frame depends on everything it saw before (like tracking)."""

    instances: list["Flipping"] = []

    def __init__(self) -> None:
        self.n = 0
        Flipping.instances.append(self)

    def process(self, frame_bgr: np.ndarray) -> Seen:
        self.n += 1
        return Seen((self.n // 5) % 2 == 0, float(self.n))


def test_a_flight_recording_with_front_ends_replays_bit_for_bit_from_their_recorded_results(
    tmp_path: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pathlib import Path

    import edge.front.cascade as cascade_mod
    from edge.recorder.replay import replay_recording
    from edge.train.cards import make_card
    from tests.test_recorder import ONE_RULE, config_text, recordings, run_recorded
    from tests.tiny_model import tiny_model

    def fake_build(config: FrontEndsConfig, video: dict[str, FrameRing], audio: object,
                   hop_ns: int, clock: object) -> Cascade:
        c = Cascade(config, hop_ns)
        for name, ring in video.items():
            c.face[name] = VideoStage("face", Flipping(), ring, None, lambda: 0)
        return c

    monkeypatch.setattr(cascade_mod, "build_cascade", fake_build)
    tmp = Path(str(tmp_path))
    model = tiny_model(tmp, make_card("driver", "tiny"))
    text = config_text(model, ONE_RULE) + "front_ends: {face: {mask_absent: true}}\n"
    run = run_recorded(model, tmp / "rec", text=text, pre_roll=1.5, post_roll=1.0)
    live = Flipping.instances[0]
    assert live.n > 50  # every frame of the run, once
    masked = [p.video_valid for p in run.preds]
    assert 0.0 < min(masked) and max(masked) < 1.0  # frames without 'a face' were masked
    assert all("front" in p.extra for p in run.preds)
    [d] = recordings(tmp / "rec")
    result = replay_recording(d)
    assert result.identical, [c for c in result.comparisons if c.max_abs_diff or not c.aligned]
    assert len(Flipping.instances) == 2 and Flipping.instances[1].n == 0  # replay ran nothing


class SlowFace(FakeFace):
    """A fake face stage that takes a few milliseconds per frame, like the real one."""

    def process(self, frame_bgr: np.ndarray) -> Seen:
        import time

        time.sleep(0.002)
        return super().process(frame_bgr)


def test_worker_threads_follow_the_camera_and_each_tick_hands_over_exactly_what_it_read() -> None:
    """With workers the stages run as frames arrive; every frame is processed once and handed
    to exactly one tick, and a window reads no result newer than its tick's hand-over (what a
    tick recorded is what it used, so replays stay bit-exact)."""
    import threading
    import time

    ring = FrameRing(64, (4, 4, 3))
    fake = SlowFace()
    cascade = Cascade(FrontEndsConfig(face=FaceConfig()), hop_ns=NS_PER_S // 4)
    st = VideoStage("face", fake, ring, rate=None, clock=clock)
    cascade.face["cam"] = st
    cascade.start_workers()
    assert [w.thread.name for w in cascade.workers] == ["front-face-cam"]
    done = threading.Event()

    def camera() -> None:
        for k in range(60):
            write_frames(ring, k, 1, face=True)
            time.sleep(0.004)
        done.set()

    threading.Thread(target=camera, daemon=True).start()
    handed: list[int] = []
    try:
        while not done.is_set() or st.seen < ring.next_seq - 1:
            time.sleep(0.02)
            cascade.step()
            rows = cascade.produced["face:cam"]
            handed += [r[0] for r in rows]
            assert st.horizon is not None
            assert all(s <= st.horizon for s in handed)
            got = st.results.at(st.capped(10**9))
            assert got is None or got[0] <= st.horizon
    finally:
        cascade.close()
    assert handed == list(range(60))  # each frame once, in order, to exactly one tick
    assert fake.calls == list(range(60))
    assert not cascade.workers


def test_a_stage_error_in_a_worker_is_raised_on_the_tick() -> None:
    class Broken(FakeFace):
        def process(self, frame_bgr: np.ndarray) -> Seen:
            raise RuntimeError("model file vanished")

    ring = FrameRing(8, (4, 4, 3))
    cascade = Cascade(FrontEndsConfig(face=FaceConfig()), hop_ns=NS_PER_S // 4)
    cascade.face["cam"] = VideoStage("face", Broken(), ring, rate=None, clock=clock)
    cascade.start_workers()
    try:
        write_frames(ring, 0, 1, face=True)
        with pytest.raises(RuntimeError, match="vanished"):
            for _ in range(50):
                cascade.step()
    finally:
        cascade.close()
