"""Yaw, pitch and roll from the driver's own straight-ahead (edge.front.roadbase): when they
shift, by how much, what they leave alone, how they feed the eye baseline, and the card
sections that turn them on."""

import numpy as np
import pytest

from edge.errors import EngineError
from edge.front.eyebase import EyeBaseline, EyeBaselineSpec
from edge.front.features import FrontSpec
from edge.front.roadbase import (DriverBaseline, RoadAngle, RoadPitchSpec, RoadRollSpec,
                                 RoadYawSpec)

FEATURES = ("face.present", "face.eye_open_left", "face.eye_open_right", "face.yaw", "speech.p",
            "face.pitch", "face.roll")
P, L, R, Y, S, PI, RO = range(7)


def window(yaw: float | list[float], eyes: float = 0.24, present: float = 1.0,
           frames: int = 1, pitch: float = 0.0, roll: float = 0.0) -> np.ndarray:
    yaws = np.broadcast_to(np.asarray(yaw, np.float32), (frames,))
    w = np.zeros((frames, len(FEATURES)), np.float32)
    w[:] = (present, eyes, eyes, 0.0, 0.7, pitch, roll)
    w[:, Y] = yaws
    return w


def road(**kw: float) -> RoadAngle:
    out = FrontSpec(FEATURES, road_yaw=RoadYawSpec(**kw)).eye_scaler()  # type: ignore[arg-type]
    assert isinstance(out, DriverBaseline) and out.eyes is None
    assert out.road is not None
    return out.road


def test_a_camera_aside_is_brought_to_the_edge_of_the_deadband() -> None:
    r = road()
    for k in range(15):
        w = window(25.0 + (k % 3 - 1) * 0.5)
        out = r(w)
        if k < 11:
            assert out is w  # one target a window, fewer than first_samples: as measured
        else:
            assert out[0, Y] == pytest.approx(w[0, Y] - 23.0, abs=0.5)
    w = window(25.0, frames=4)
    w[1, P] = 0.0
    w[1, Y] = 0.0  # an absent face stays zeros
    out = r(w, mask=np.array([1, 1, 0, 1], np.float32))  # a target without a frame stays as is
    assert r.shift == pytest.approx(23.0)  # the median 25, less the 2 degrees of deadband
    assert out[[0, 3], Y] == pytest.approx([2.0, 2.0])
    assert out[1, Y] == 0.0 and out[2, Y] == 25.0
    rest = [P, L, R, S, PI, RO]
    assert out[:, rest] == pytest.approx(w[:, rest])  # the rest untouched
    assert w[0, Y] == 25.0  # the input is not changed
    # the other side; but a head resting further aside than max_offset is looking away
    r = road()
    for _ in range(16):
        r(window(-30.0))
    assert r.shift == pytest.approx(-28.0)
    r = road(max_offset=30.0)
    for _ in range(16):
        w = window(-40.0)
        assert r(w) is w
    assert r.shift == 0.0


def test_a_camera_ahead_reads_as_measured() -> None:
    r = road()
    for k in range(40):
        w = window(0.8 + (k % 5 - 2) * 0.5)  # driver-dev-alert-blink: +0.8 degrees
        assert r(w) is w
    assert r.shift == 0.0


def test_glances_do_not_move_the_road_and_a_swinging_head_has_none() -> None:
    r = road()
    for k in range(40):  # a glance at -40 degrees on 3 of 10 windows
        r(window(-40.0 if k % 10 < 3 else 25.0))
    assert r.shift == pytest.approx(23.0)
    # driver-dev-head-turn's head, -48 to +29 and back: the median -10, a sixth of it near
    sweep = [-48, -41, -11, 24, 29, 15, -10, -46, -41, -34, 0, 28, 25, 6, -19, -44, -45, -23,
             15, 29, 21, -4, -24, -48, -41, -12, 23, 27, 15, -12, -46, -46, -36, 4, 29, 22]
    r = road()
    for v in sweep:
        w = window(float(v))
        assert r(w) is w
    assert r.shift == 0.0


def test_a_first_window_counts_its_own_targets() -> None:
    r = road()
    w = window(30.0, frames=16)
    assert r(w)[:, Y] == pytest.approx(np.full(16, 2.0))  # 1 sample and 15 targets
    assert r.shift == 0.0  # the stored samples alone: one
    r = road()
    part = w[:8]
    assert r(part) is part  # 1 and 7: fewer than first_samples
    r = road()
    assert r(w, mask=np.r_[np.zeros(10), np.ones(6)].astype(np.float32)) is w  # 6 with frames


def test_the_eyes_are_sampled_at_the_shifted_yaw() -> None:
    """A camera 30 degrees aside: every frame is past the eye baseline's 25 degrees of looking
    ahead, so alone it never samples this driver's narrow eyes; after the road's shift it does."""
    spec = FrontSpec(FEATURES, EyeBaselineSpec(min_samples=12, first_samples=12), RoadYawSpec())
    both = spec.eye_scaler()
    eyes_only = FrontSpec(FEATURES, EyeBaselineSpec(min_samples=12, first_samples=12)).eye_scaler()
    assert isinstance(both, DriverBaseline) and isinstance(eyes_only, EyeBaseline)
    for _ in range(30):
        out = both(window(30.0, eyes=0.19))
        alone = eyes_only(window(30.0, eyes=0.19))
    assert out[0, [L, R]] == pytest.approx([0.23, 0.23], rel=1e-5) and out[0, Y] == 2.0
    assert alone[0, [L, R]] == pytest.approx([0.19, 0.19]) and alone[0, Y] == 30.0


def test_a_camera_above_the_eyes_has_its_pitch_taken_off_whole_and_a_look_down_stays() -> None:
    """A camera above the eyes sees a driver watching the road at -20 degrees of pitch; the
    median is taken off whole (no deadband), so the road reads 0 and a head pitched 15 degrees
    down to a phone in the lap reads -15, as from a camera at eye level; the yaw is its own."""
    spec = FrontSpec(FEATURES, None, RoadYawSpec(), RoadPitchSpec())
    base = spec.eye_scaler()
    assert isinstance(base, DriverBaseline) and base.pitch is not None and base.road is not None
    for k in range(40):
        base(window(1.0, pitch=-20.0 + (k % 3 - 1) * 0.5))
    assert base.pitch.shift == pytest.approx(-20.0) and base.road.shift == 0.0
    out = base(window(1.0, pitch=-35.0, frames=3))
    assert out[:, PI] == pytest.approx([-15.0] * 3) and out[:, Y] == pytest.approx([1.0] * 3)
    # the sim's heads rest from -25 to +24 degrees; past 40 is a look down or up, not a camera
    far = FrontSpec(FEATURES, None, None, RoadPitchSpec()).eye_scaler()
    assert isinstance(far, DriverBaseline) and far.road is None and far.pitch is not None
    for _ in range(20):
        w = window(0.0, pitch=-44.0)
        assert far(w) is w
    assert far.pitch.shift == 0.0
    assert sorted(far.samples()) == ["road_pitch"]
    with pytest.raises(EngineError, match="front.road_pitch needs the features"):
        FrontSpec(FEATURES[:5], road_pitch=RoadPitchSpec())


def test_a_rolled_camera_has_its_roll_taken_off_whole_and_a_phone_at_the_ear_stays() -> None:
    """A camera rolled 12 degrees sees a driver watching the road with his head rolled 12; the
    median is taken off whole, so the road reads 0 and a head tilted 10 degrees more to a
    phone at the ear reads 10, as from a level camera; yaw and pitch are their own. Past 25
    degrees a resting head is leaning, not a camera's roll."""
    spec = FrontSpec(FEATURES, None, RoadYawSpec(), RoadPitchSpec(), RoadRollSpec())
    base = spec.eye_scaler()
    assert isinstance(base, DriverBaseline) and base.roll is not None
    assert base.road is not None and base.pitch is not None
    for k in range(40):
        base(window(1.0, pitch=2.0, roll=12.0 + (k % 3 - 1) * 0.5))
    assert base.roll.shift == pytest.approx(12.0)
    assert base.road.shift == 0.0 and base.pitch.shift == pytest.approx(2.0)
    out = base(window(1.0, pitch=2.0, roll=22.0, frames=3))
    assert out[:, RO] == pytest.approx([10.0] * 3) and out[:, Y] == pytest.approx([1.0] * 3)
    assert sorted(base.samples()) == ["road", "road_pitch", "road_roll"]
    far = FrontSpec(FEATURES, road_roll=RoadRollSpec()).eye_scaler()
    assert isinstance(far, DriverBaseline) and far.roll is not None and far.road is None
    for _ in range(20):
        w = window(0.0, roll=-27.0)
        assert far(w) is w
    with pytest.raises(EngineError, match="front.road_roll needs the features"):
        FrontSpec(FEATURES[:6], road_roll=RoadRollSpec())


def test_samples_restore_and_a_recording_of_the_eyes_alone() -> None:
    spec = FrontSpec(FEATURES, EyeBaselineSpec(), RoadYawSpec())
    a = spec.eye_scaler()
    assert isinstance(a, DriverBaseline)
    for k in range(30):
        a(window(25.0 + k % 4, eyes=0.20))
    saved = a.samples()
    assert sorted(saved) == ["eyes", "road"] and len(saved["road"]) == 30
    b = spec.eye_scaler()
    assert isinstance(b, DriverBaseline)
    b.restore(saved)
    w = window(27.0, eyes=0.20, frames=4)
    assert b(w) == pytest.approx(a(w))  # where the first one was
    c = spec.eye_scaler()
    assert isinstance(c, DriverBaseline)
    c.restore(saved["eyes"])  # a recording made without front.road_yaw
    assert c.road is not None and c.road.samples() == [] and c.eyes is not None and c.eyes.samples() == saved["eyes"]
    eyes_only = FrontSpec(FEATURES, EyeBaselineSpec()).eye_scaler()
    assert isinstance(eyes_only, EyeBaseline)
    eyes_only.restore(saved)  # a recording made with it, replayed by a model without it
    assert eyes_only.samples() == saved["eyes"]


def test_a_recording_restores_the_parts_it_kept_and_names_the_others() -> None:
    """What recordings made by earlier models hold: the eyes' samples alone (a bare list), the
    road's yaw beside them, yaw and pitch, or all four; each part takes its own, the rest start
    empty."""
    spec = FrontSpec(FEATURES, EyeBaselineSpec(), RoadYawSpec(), RoadPitchSpec(), RoadRollSpec())
    base = spec.eye_scaler()
    assert isinstance(base, DriverBaseline) and base.road is not None and base.pitch is not None
    assert base.eyes is not None and base.roll is not None
    yaw, pitch, roll, eyes = [25.0, 26.0, 24.5], [-20.0, -19.0], [8.0], [0.20, 0.21]

    def held() -> tuple[list[float], ...]:
        assert base.road and base.pitch and base.roll and base.eyes
        return (base.road.samples(), base.pitch.samples(), base.roll.samples(),
                base.eyes.samples())

    full = {"road": yaw, "road_pitch": pitch, "road_roll": roll, "eyes": eyes}
    base.restore(full)
    assert held() == (yaw, pitch, roll, eyes) and base.missing(full) == []
    base.restore({"road": yaw, "road_pitch": pitch, "eyes": eyes})  # a model without roll
    assert held() == (yaw, pitch, [], eyes)
    assert base.missing({"road": yaw, "road_pitch": pitch, "eyes": eyes}) == ["road_roll"]
    base.restore({"road": yaw, "eyes": eyes})  # a model with road_yaw alone recorded it
    assert held() == (yaw, [], [], eyes)
    assert base.missing({"road": yaw, "eyes": eyes}) == ["road_pitch", "road_roll"]
    base.restore(eyes)  # a model with the eye baseline alone recorded it
    assert held() == ([], [], [], eyes)
    assert base.missing(eyes) == ["road", "road_pitch", "road_roll"]


def test_card_section_round_trips_and_is_checked() -> None:
    spec = FrontSpec.default("driver")
    assert spec.road_yaw == RoadYawSpec() and spec.road_pitch == RoadPitchSpec()
    assert spec.road_roll == RoadRollSpec()
    assert spec.to_dict()["road_pitch"]["deadband"] == 0.0
    assert spec.to_dict()["road_pitch"]["max_offset"] == 40.0
    assert spec.to_dict()["road_roll"]["deadband"] == 0.0
    assert spec.to_dict()["road_roll"]["max_offset"] == 25.0
    unrolled = FrontSpec(spec.features, spec.eye_baseline, spec.road_yaw, spec.road_pitch)
    assert "road_roll" not in unrolled.to_dict()  # a card from before roll: read as it was
    assert FrontSpec.from_dict(unrolled.to_dict()) == unrolled
    assert FrontSpec.from_dict(spec.to_dict()) == spec
    assert "road_yaw" not in FrontSpec.default("home").to_dict()
    yaw_only = {"features": list(FEATURES), "eye_baseline": {}, "road_yaw": {}}  # a card from before
    assert FrontSpec.from_dict(yaw_only).road_pitch is None
    assert FrontSpec.from_dict(yaw_only).road_roll is None
    old = {"features": list(FEATURES), "eye_baseline": {}}  # a card from before: eyes alone
    assert isinstance(FrontSpec.from_dict(old).eye_scaler(), EyeBaseline)
    with pytest.raises(EngineError, match="unknown keys"):
        FrontSpec.from_dict({"features": list(FEATURES), "road_yaw": {"dead_band": 3}})
    with pytest.raises(EngineError, match="inconsistent"):
        RoadYawSpec(support=0.0)
    with pytest.raises(EngineError, match="inconsistent"):
        RoadYawSpec(first_samples=20)
    with pytest.raises(EngineError, match="needs the features"):
        FrontSpec(("face.present", "speech.p"), road_yaw=RoadYawSpec())
    custom = FrontSpec.from_dict({"features": list(FEATURES), "road_yaw": {"deadband": 3}})
    assert custom.road_yaw == RoadYawSpec(deadband=3.0)
    with pytest.raises(EngineError, match="inconsistent"):
        RoadYawSpec(deadband=40.0)  # past max_offset: nothing could ever be shifted
    with pytest.raises(EngineError, match="front.road_yaw: could not convert"):
        FrontSpec.from_dict({"features": list(FEATURES), "road_yaw": {"deadband": "two"}})
    with pytest.raises(EngineError, match="front.road_pitch: inconsistent"):
        FrontSpec.from_dict({"features": list(FEATURES), "road_pitch": {"max_offset": -1}})
    pitch = FrontSpec.from_dict({"features": list(FEATURES), "road_pitch": {"spread": 6}})
    assert pitch.road_pitch == RoadPitchSpec(spread=6.0)
    roll = FrontSpec.from_dict({"features": list(FEATURES), "road_roll": {"max_offset": 15}})
    assert roll.road_roll == RoadRollSpec(max_offset=15.0) and roll.road_yaw is None
    assert FrontSpec.from_dict(roll.to_dict()) == roll
    with pytest.raises(EngineError, match="front.road_roll: inconsistent"):
        FrontSpec.from_dict({"features": list(FEATURES), "road_roll": {"deadband": 30}})
