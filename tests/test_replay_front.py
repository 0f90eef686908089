"""A flight recording with front ends starts where the live run was: the results its stages had
made for the recorded frames before the first recorded tick, their running state, and the eye
baselines' samples, so that its replay reproduces every prediction bit for bit even when the
first window reaches back before the first recorded tick (a video-only stream has no log-mel
warm-up ticks) and the driver's eyes had been scaled for a while."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import edge.front.cascade as cascade_mod
from edge.front.cascade import Cascade
from edge.front.config import FrontEndsConfig
from edge.config import parse_config
from edge.front.eyebase import EyeBaselineSpec
from edge.front.features import FACE_NAMES, FrontSpec
from edge.front.stages import VideoStage
from edge.recorder.replay import load_recording, recorded_config, replay_recording
from edge.runtime.card import TensorInfo
from edge.timebase.buffers import FrameRing
from edge.timebase.clock import NS_PER_S
from edge.train.cards import make_card, make_front_card
from tests.test_recorder import ONE_RULE, config_text, recordings, run_recorded
from tests.tiny_model import tiny_model

HOP_NS = NS_PER_S // 4
AT = {n: i for i, n in enumerate(FACE_NAMES)}


@dataclass(frozen=True)
class Face:
    present: bool
    values: tuple[float, ...]

    def vector(self) -> np.ndarray:
        return np.array(self.values, np.float32)


class Narrowing:
    """A face stage with history: a face on 8 frames of 12, its eyes a little narrower frame by
    frame (0.30 down to 0.16, then again): what it says depends on all it saw before."""

    def __init__(self) -> None:
        self.n = 0

    def process(self, frame_bgr: np.ndarray) -> Face:
        self.n += 1
        v = np.zeros(len(FACE_NAMES), np.float32)
        present = (self.n // 4) % 3 != 2
        if present:
            v[AT["present"]], v[AT["face_size"]] = 1.0, 0.3
            v[AT["eye_open_left"]] = v[AT["eye_open_right"]] = 0.30 - 0.01 * (self.n % 15)
        return Face(present, tuple(float(x) for x in v))


class Turning(Narrowing):
    """:class:`Narrowing` seen from a camera aside, above and rolled: the head at 20-32 degrees
    of yaw, -18 to -24 of pitch and 8-12 of roll, a little more frame by frame, so that the
    driver's straight-ahead moves window by window."""

    def process(self, frame_bgr: np.ndarray) -> Face:
        face = super().process(frame_bgr)
        if not face.present:
            return face
        v = list(face.values)
        v[AT["yaw"]] = 20.0 + 0.75 * (self.n % 17)
        v[AT["pitch"]] = -18.0 - 0.5 * (self.n % 13)
        v[AT["roll"]] = 8.0 + 0.4 * (self.n % 11)
        return Face(True, tuple(v))


class Leaving(Narrowing):
    """One driver (eyes open at 0.30) for 3.5 s of frames, the seat empty for 3 s, then another
    whose eyes open at 0.18."""

    def process(self, frame_bgr: np.ndarray) -> Face:
        self.n += 1
        v = np.zeros(len(FACE_NAMES), np.float32)
        present = not 35 <= self.n < 65
        if present:
            v[AT["present"]], v[AT["face_size"]] = 1.0, 0.3
            v[AT["eye_open_left"]] = v[AT["eye_open_right"]] = 0.30 if self.n < 35 else 0.18
        return Face(present, tuple(float(x) for x in v))


def _fake_faces(monkeypatch: pytest.MonkeyPatch, kind: type[Narrowing]) -> list[Narrowing]:
    made: list[Narrowing] = []

    def fake_build(config: FrontEndsConfig, video: dict[str, FrameRing], audio: object,
                   hop_ns: int, clock: object) -> Cascade:
        c = Cascade(config, hop_ns)
        for name, ring in video.items():
            made.append(kind())
            c.face[name] = VideoStage("face", made[-1], ring, None, lambda: 0)
        return c

    monkeypatch.setattr(cascade_mod, "build_cascade", fake_build)
    return made


@pytest.fixture
def narrowing_faces(monkeypatch: pytest.MonkeyPatch) -> list[Narrowing]:
    return _fake_faces(monkeypatch, Narrowing)


@pytest.fixture
def turning_faces(monkeypatch: pytest.MonkeyPatch) -> list[Narrowing]:
    return _fake_faces(monkeypatch, Turning)


@pytest.fixture
def leaving_faces(monkeypatch: pytest.MonkeyPatch) -> list[Narrowing]:
    return _fake_faces(monkeypatch, Leaving)


def without_restore(recording: Path) -> None:
    """The recording as the previous format kept it: no ``restore`` on any tick."""
    path = recording / "ticks.jsonl"
    lines = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
    assert any("restore" in t for t in lines)
    path.write_text("".join(json.dumps({k: v for k, v in t.items() if k != "restore"}) + "\n"
                            for t in lines))
    as_written_only(recording, "edge-recording/2")


def as_written_only(recording: Path, version: str) -> None:
    """The recording as a format before 4 kept it: its config as written, not every setting."""
    manifest = json.loads((recording / "manifest.json").read_text())
    assert manifest["format"] == "edge-recording/4"
    settings = manifest.pop("settings")
    del manifest["files"][settings]
    (recording / settings).unlink()
    manifest["format"] = version
    (recording / "manifest.json").write_text(json.dumps(manifest))


def video_only(text: str) -> str:
    assert "cabin: {video: sim, audio: sim}" in text
    return text.replace("cabin: {video: sim, audio: sim}", "cabin: {video: sim}")


def test_a_video_only_recording_replays_its_first_windows_with_the_results_made_before_it(
    tmp_path: Path, narrowing_faces: list[Narrowing]
) -> None:
    model = tiny_model(tmp_path, make_card("driver", "tiny"))
    text = video_only(config_text(model, ONE_RULE)) + "front_ends: {face: {mask_absent: true}}\n"
    run = run_recorded(model, tmp_path / "rec", text=text, pre_roll=1.5, post_roll=1.0)
    assert run.starts == [("held", 104_500_000_000)]
    masked = [p.video_valid for p in run.preds]
    assert 0.0 < min(masked) and max(masked) < 1.0  # the absent faces were masked
    [d] = recordings(tmp_path / "rec")
    ticks = [json.loads(x) for x in (d / "ticks.jsonl").read_text().splitlines()]
    assert ticks[0]["role"] == "pre"  # no audio: no warm-up, the first window reaches before it
    rows = ticks[0]["restore"]["front"]["rows"]["face:sim"]
    assert len(rows) >= 15  # the 2 s window's frames, made in the ticks before the recording

    result = replay_recording(d)
    assert result.identical, [c for c in result.comparisons if c.max_abs_diff or not c.aligned]
    assert result.notes == []  # the source's audio feeds no stream: no log-mel cache to warn of
    assert len(narrowing_faces) == 2 and narrowing_faces[1].n == 0  # the replay ran no stage

    without_restore(d)  # what replays gave before: the first windows' frames had no results
    old = replay_recording(d, verify=False)
    assert not old.identical
    assert not old.comparisons[0].aligned and old.comparisons[-1].max_abs_diff == 0.0
    assert any("recorded as edge-recording/2: without the front ends'" in n for n in old.notes)


def _held_eyes_recorded(tmp_path: Path, spec: FrontSpec,
                        face: str = "{}") -> tuple[Any, Path, dict[str, Any]]:
    """A tiny model over ``spec``'s face features served on the simulated cabin with the fake
    face stage (configured by ``face``), recorded when eyes_closed has held 6 s: the run, the
    recording and its first compared tick."""
    card = make_front_card("driver", "tinyfront")
    card.front = spec.to_dict()
    card.inputs["front"] = TensorInfo(shape=["B", 8, len(spec.features)], description="front")
    model = tiny_model(tmp_path, card, name="tinyfront")
    late = "    - {name: held, duration: {class: eyes_closed, at_least: 6.0}}\n"
    text = config_text(model, late) + f"front_ends: {{face: {face}}}\n"
    run = run_recorded(model, tmp_path / "rec", text=text, pre_roll=1.5, post_roll=1.0)
    [d] = recordings(tmp_path / "rec")
    ticks = [json.loads(x) for x in (d / "ticks.jsonl").read_text().splitlines()]
    return run, d, next(t for t in ticks if t["compare"])


def test_a_replay_scales_the_eyes_as_the_live_run_had_them_scaled(
    tmp_path: Path, narrowing_faces: list[Narrowing]
) -> None:
    features = ("face.present", "face.eye_open_left", "face.eye_open_right", "face.yaw")
    # A baseline of the last 6 windows' samples, brought up to 0.40: the scale moves window by
    # window, so a replay that starts with none scales its first windows otherwise.
    spec = FrontSpec(features, EyeBaselineSpec(nominal=0.40, max_scale=2.0, samples=6,
                                               min_samples=3, first_samples=1))
    run, d, first = _held_eyes_recorded(tmp_path, spec)
    assert run.starts == [("held", 106_500_000_000)]  # more windows before than warm-up ticks
    scaler = run.runner.eye_scalers["cabin"]
    assert scaler is not None and scaler.scale > 1.0
    saved = first["restore"]["eyes"]["cabin"]
    assert first["role"] == "pre" and sorted(saved) == ["eyes", "eyes_frontal", "eyes_peak"]
    assert len(saved["eyes"]) == len(saved["eyes_frontal"]) == 6

    result = replay_recording(d)
    assert result.identical, [c for c in result.comparisons if c.max_abs_diff or not c.aligned]

    without_restore(d)
    old = replay_recording(d, verify=False)
    assert not old.identical and old.comparisons[0].max_abs_diff > 0.0


@pytest.mark.parametrize("after", [1.7, None])
def test_a_long_empty_seat_starts_the_driver_baselines_again(
    tmp_path: Path, leaving_faces: list[Narrowing], after: float | None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The seat empty from 103.5 s to 106.5 s: with ``new_driver_after: 1.7`` the eye and road
    baselines are emptied at the tick of 105.5 s (the face absent 2.1 s), so the next driver's
    eyes (0.18 open) are scaled from his own alone, up to the nominal 0.40 (the cap, 2.0: 0.36);
    the recording spans that tick and replays bit for bit. With ``null`` the first driver's
    eyes (0.30) stay in the samples and hold the scale at 0.40 / 0.30."""
    from edge.front.roadbase import DriverBaseline, RoadYawSpec

    features = ("face.present", "face.eye_open_left", "face.eye_open_right", "face.yaw")
    spec = FrontSpec(features, EyeBaselineSpec(nominal=0.40, max_scale=2.0, samples=40,
                                               min_samples=3, first_samples=1),
                     RoadYawSpec(samples=40, min_samples=3, first_samples=1))
    caplog.set_level("INFO", logger="edge.service.run")
    face = "{new_driver_after: " + ("null" if after is None else str(after)) + "}"
    run, d, first = _held_eyes_recorded(tmp_path, spec, face)
    base = run.runner.eye_scalers["cabin"]
    assert isinstance(base, DriverBaseline) and base.eyes is not None and base.road is not None
    eyes = base.eyes.samples()
    said = [r.getMessage() for r in caplog.records if "driver baselines" in r.getMessage()]
    if after is None:
        assert 0.30 in np.round(eyes, 2) and said == []
        assert base.eyes.scale == pytest.approx(0.40 / 0.30)
        return
    assert eyes and set(np.round(eyes, 2)) == {0.18}  # the second driver's alone
    assert len(base.road.samples()) == len(eyes)  # emptied together, refilled together
    assert base.eyes.scale == pytest.approx(2.0)
    assert said == ["cabin: no face for 2.1 s: the driver baselines start again"]  # once
    # the recording starts before the emptying (its first compared tick restores the first
    # driver's samples) and ends after the second driver is back: its replay empties them
    # itself, on the same tick, and scales his eyes as the live run did
    assert 0.30 in np.round(first["restore"]["eyes"]["cabin"]["eyes"], 2)
    result = replay_recording(d)
    assert result.identical, [c for c in result.comparisons if c.max_abs_diff or not c.aligned]
    # the recording keeps every setting as it ran, and the replay runs with those, not with
    # the config as written (whose missing settings would take the replaying edge's defaults)
    manifest = json.loads((d / "manifest.json").read_text())
    settings, config = d / manifest["settings"], d / manifest["config"]
    assert parse_config(settings.read_text()) == run.runner.config
    assert "new_driver_after: 1.7" in settings.read_text()
    text = config.read_text()
    assert "{new_driver_after: 1.7}" in text
    config.write_text(text.replace("{new_driver_after: 1.7}", "{}"))  # a default of 20 s
    assert replay_recording(d, verify=False).identical
    # the same recording replayed as if the baselines were kept differs: the emptying matters
    assert "new_driver_after: 1.7" in settings.read_text()
    settings.write_text(settings.read_text().replace("new_driver_after: 1.7",
                                                     "new_driver_after: null"))
    kept = replay_recording(d, verify=False)
    assert not kept.identical and max(c.max_abs_diff for c in kept.comparisons) > 0.0


def test_a_recording_from_before_new_driver_after_replays_with_the_baselines_kept(
    tmp_path: Path, leaving_faces: list[Narrowing]
) -> None:
    """A recording of format 1-3 keeps its config as written only: the replay runs with
    ``new_driver_after`` off where the text does not set it, whatever today's default (formats
    1 and 2 predate it; format 3 does not say, and the note says what a difference would mean),
    and as the text sets it where it does. A format-4 recording runs its settings: a front-end
    folder not here is the text's, and settings this edge cannot read fall back to the text."""
    features = ("face.present", "face.eye_open_left", "face.eye_open_right", "face.yaw")
    spec = FrontSpec(features, EyeBaselineSpec(nominal=0.40, max_scale=2.0, samples=40,
                                                min_samples=3, first_samples=1))
    _, d, _ = _held_eyes_recorded(tmp_path, spec, "{new_driver_after: null}")
    result = replay_recording(d)
    assert result.identical and not any("new_driver_after" in n for n in result.notes)
    manifest = json.loads((d / "manifest.json").read_text())
    settings, config = d / manifest["settings"], d / manifest["config"]
    text = config.read_text()
    assert "front_ends: {face: {new_driver_after: null}}" in text

    # format 4, its front-end folder moved away: the one the text names, where that is here
    here = tmp_path / "front"
    here.mkdir()
    config.write_text(text.replace("front_ends: {face:", f"front_ends: {{dir: '{here}', face:"))
    ran_settings = settings.read_text()
    gone = str(tmp_path / "elsewhere" / "front")
    fixed = re.sub(r"(?m)^(  dir: ).*$", lambda m_: m_.group(1) + repr(gone), ran_settings,
                   count=1)
    assert fixed != ran_settings
    settings.write_text(fixed)
    ran, notes = recorded_config(load_recording(d, verify=False))
    assert ran.front_ends is not None and ran.front_ends.dir == str(here) and notes == []
    # settings a later edge cannot read: the text, said
    settings.write_text(ran_settings.replace("front_ends:\n", "front_ends:\n  renamed: 1\n", 1))
    ran, notes = recorded_config(load_recording(d, verify=False))
    assert ran.front_ends is not None and ran.front_ends.dir == str(here)
    assert len(notes) == 1 and notes[0].startswith("its settings do not parse here (")
    assert "replayed from its config as written" in notes[0]
    assert replay_recording(d, verify=False).identical

    def as_format(version: str, face: str) -> tuple[Any, list[str]]:
        config.write_text(text.replace("{new_driver_after: null}", face))
        rec = load_recording(d, verify=False)
        assert rec.settings_text is None and rec.manifest["format"] == version
        return recorded_config(rec)

    as_written_only(d, "edge-recording/3")
    assert parse_config(text.replace("{new_driver_after: null}", "{}")).front_ends.face \
        .new_driver_after == 20.0  # today's default
    ran, notes = as_format("edge-recording/3", "{}")
    assert ran.front_ends.face.new_driver_after is None
    assert notes == ["recorded as edge-recording/3, which does not say whether its edge had "
                     "front_ends.face.new_driver_after (it came during that format): replayed "
                     "without it; a replay that differs only once the face has been absent 20 s "
                     "is one whose live run emptied the driver baselines there"]
    old = replay_recording(d, verify=False)
    assert old.identical and notes[0] in old.notes
    assert not any("without the front ends' results" in n for n in old.notes)  # it has them
    ran, notes = as_format("edge-recording/3", "{new_driver_after: 5}")  # set: as it ran
    assert ran.front_ends.face.new_driver_after == 5.0 and notes == []
    manifest = json.loads((d / "manifest.json").read_text())
    manifest["format"] = "edge-recording/2"
    (d / "manifest.json").write_text(json.dumps(manifest))
    ran, notes = as_format("edge-recording/2", "{}")
    assert ran.front_ends.face.new_driver_after is None
    assert notes == ["recorded as edge-recording/2, before front_ends.face.new_driver_after: "
                     "replayed without it, as it ran"]


def test_a_replay_measures_head_angles_from_the_straight_ahead_the_live_run_had(
    tmp_path: Path, turning_faces: list[Narrowing]
) -> None:
    """With the card's road_yaw, road_pitch and road_roll (edge.front.roadbase) the first
    compared tick carries the road's samples beside the eyes' (``restore.eyes.STREAM = {road,
    road_pitch, road_roll, eyes, eyes_frontal, eyes_peak}``), and the replay shifts the angles
    as the live run did; without them it shifts its first windows otherwise, and says which
    samples it lacked."""
    from edge.front.roadbase import DriverBaseline, RoadPitchSpec, RoadRollSpec, RoadYawSpec

    features = ("face.present", "face.eye_open_left", "face.eye_open_right", "face.yaw",
                "face.pitch", "face.roll")
    road = {"samples": 6, "min_samples": 3, "first_samples": 1, "deadband": 0.0}
    spec = FrontSpec(features, EyeBaselineSpec(nominal=0.40, max_scale=2.0, samples=6,
                                               min_samples=3, first_samples=1),
                     RoadYawSpec(**road), RoadPitchSpec(**road),  # type: ignore[arg-type]
                     RoadRollSpec(**road))  # type: ignore[arg-type]
    run, d, first = _held_eyes_recorded(tmp_path, spec)
    assert [rule for rule, _ in run.starts] == ["held"]
    base = run.runner.eye_scalers["cabin"]
    assert isinstance(base, DriverBaseline) and base.road is not None and base.pitch is not None
    assert base.roll is not None
    assert base.road.shift > 20.0 and base.pitch.shift < -17.0 and base.roll.shift > 7.0
    saved = first["restore"]["eyes"]["cabin"]
    assert sorted(saved) == ["eyes", "eyes_frontal", "eyes_peak", "road", "road_pitch",
                             "road_roll"]
    assert len(saved["road_pitch"]) == len(saved["road_roll"]) == 6

    result = replay_recording(d)
    assert result.identical, [c for c in result.comparisons if c.max_abs_diff or not c.aligned]
    assert result.notes == []

    path = d / "ticks.jsonl"
    recorded = path.read_text()

    def keep(parts: tuple[str, ...], bare: bool = False) -> Any:
        lines = [json.loads(x) for x in recorded.splitlines()]
        for t in lines:
            if "eyes" in t.get("restore", {}):
                t["restore"]["eyes"] = {s: (v["eyes"] if bare else {k: v[k] for k in parts})
                                        for s, v in t["restore"]["eyes"].items()}
        path.write_text("".join(json.dumps(t) + "\n" for t in lines))
        return replay_recording(d, verify=False)

    # as a model with road_yaw and road_pitch would have recorded it: no roll samples
    no_roll = keep(("road", "road_pitch", "eyes"))
    assert not no_roll.identical
    assert [n for n in no_roll.notes if "road baseline" in n] == [
        "recorded without the road baseline's samples (front.road_roll): the replay's starts "
        "empty, so its first windows' roll can differ"]
    # as a model with road_yaw alone would have recorded it: no pitch or roll samples
    no_pitch = keep(("road", "eyes"))
    assert not no_pitch.identical
    assert [n for n in no_pitch.notes if "road baseline" in n] == [
        "recorded without the road baseline's samples (front.road_pitch): the replay's starts "
        "empty, so its first windows' pitch can differ",
        "recorded without the road baseline's samples (front.road_roll): the replay's starts "
        "empty, so its first windows' roll can differ"]
    # as a model without any would have recorded it: the eyes' samples alone
    eyes_alone = keep((), bare=True)
    assert not eyes_alone.identical
    assert sum("without the road baseline's samples" in n for n in eyes_alone.notes) == 3

    without_restore(d)
    old = replay_recording(d, verify=False)
    assert not old.identical and old.comparisons[0].max_abs_diff > 0.0


def test_restore_rows_hold_the_newest_result_before_the_recorded_frames(tmp_path: Path) -> None:
    """A frame the stage skipped for its rate reads the newest result at or before it: the one
    of a frame older than every recorded frame is held at seq -1 of the replay's ring."""
    ring = FrameRing(32, (4, 4, 3), np.uint8)
    c = Cascade(FrontEndsConfig.model_validate({"face": {}}), HOP_NS)
    stage = Narrowing()
    c.face["cam"] = VideoStage("face", stage, ring, 5.0, lambda: 0)  # 5 a second of 15 fps
    for k in range(12):
        ring.write(np.zeros((4, 4, 3), np.uint8), k * NS_PER_S // 15)
    c.step()
    state = c.state()
    assert state["made"]["face:cam"] == 9  # frames 0, 3, 6, 9 processed
    rows = c.made_rows(state, {"cam": 7}, {})["face:cam"]
    assert [r[0] for r in rows] == [6, 9]  # the one before frame 7, then from 7 on

    replay = Cascade(FrontEndsConfig.model_validate({"face": {}}), HOP_NS)
    rring = FrameRing(32, (4, 4, 3), np.uint8)
    replay.face["cam"] = VideoStage("face", Narrowing(), rring, None, lambda: 0)
    live_seqs = [7, 8, 9, 10, 11]

    def seq_of(src: str, live: int) -> int | None:
        return -1 if live < live_seqs[0] else (live_seqs.index(live) if live in live_seqs else None)

    replay.restore(state, {"face:cam": rows}, seq_of)
    res = replay.face["cam"].results
    got: Any = res.at(0)  # live frame 7 was skipped: it read frame 6's result
    assert got is not None and got[0] == -1 and got[1] == 6 * NS_PER_S // 15
    assert res.at(1) == res.at(0) and res.at(2) is not None and res.at(2)[0] == 2


def test_vad_rows_are_the_chunks_scored_in_a_span_and_no_empty_slot() -> None:
    from edge.front.stages import AudioVad
    from edge.timebase.buffers import SampleRing
    from tests.test_cascade import FakeVad

    ring = SampleRing(16000 * 2)
    v = AudioVad(FakeVad(), ring, threshold=0.5, neg_threshold=0.35, clock=lambda: 0)
    for k, p in enumerate([0.1, 0.6, 0.4]):
        ring.write(np.full((512, 1), p, np.float32), k * 512)
        v.step()
    assert v.fed == 3 * 512
    rows = v.rows(-512, v.fed)  # a recording from sample 0: the chunk before it is no chunk
    assert [r[0] for r in rows] == [0, 512, 1024] and [r[2] for r in rows] == [False, True, True]
    assert rows[1][1] == pytest.approx(0.6) and v.rows(600, 1100) == [rows[2]]


def test_a_model_that_reads_gaze_has_the_face_stage_read_it_and_older_rows_read_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The iris model runs only for a model that reads gaze (the config need not say so), and a
    face row recorded before gaze existed (ten values) gives the model zeros there, as a stage
    that does not read gaze does."""
    from edge.config import parse_config
    from edge.front.features import compose
    from edge.service.run import Runner
    from edge.timebase.clock import FakeClock

    asked: list[bool] = []

    def fake_build(config: FrontEndsConfig, video: dict[str, FrameRing], audio: object,
                   hop_ns: int, clock: object) -> Cascade:
        assert config.face is not None
        asked.append(config.face.gaze)
        return Cascade(config, hop_ns)

    monkeypatch.setattr(cascade_mod, "build_cascade", fake_build)
    for gaze in (False, True):
        model = tiny_model(tmp_path, make_front_card("driver", f"g{int(gaze)}", gaze=gaze),
                           name=f"g{int(gaze)}")
        Runner(parse_config(config_text(model, ONE_RULE)
                            + "front_ends: {face: {}, hand: {}, vad: {}}\n"),
               FakeClock(100 * NS_PER_S))
    assert asked == [False, True]

    spec = FrontSpec.default("driver", gaze=True)
    assert spec.gaze and not FrontSpec.default("driver").gaze
    now = np.arange(len(FACE_NAMES), dtype=np.float32) + 1.0
    before = Face(True, tuple(float(x) for x in now[:10]))  # recorded before gaze
    front, _ = compose(spec, np.ones(2, bool), face=[before, Face(True, tuple(now.tolist()))])
    cols = {f: k for k, f in enumerate(spec.features)}
    assert front[0, cols["face.gaze_x"]] == 0.0 and front[0, cols["face.gaze_y"]] == 0.0
    assert front[1, cols["face.gaze_x"]] == now[AT["gaze_x"]]
    assert front[0, cols["face.yaw"]] == front[1, cols["face.yaw"]] == now[AT["yaw"]]
