"""The driver's own eye opening (edge.front.eyebase): what is a sample, what the scale is, and
the card section that turns it on."""

import numpy as np
import pytest

from edge.errors import EngineError
from edge.front.eyebase import EyeBaseline, EyeBaselineSpec
from edge.front.features import FrontSpec

FEATURES = ("face.present", "face.eye_open_left", "face.eye_open_right", "face.yaw", "speech.p")


def window(eyes: float, yaw: float = 0.0, present: float = 1.0, frames: int = 4) -> np.ndarray:
    w = np.zeros((frames, len(FEATURES)), np.float32)
    w[:] = (present, eyes, eyes, yaw, 0.7)
    return w


def scaler(**kw: float) -> EyeBaseline:
    out = FrontSpec(FEATURES, EyeBaselineSpec(**kw)).eye_scaler()  # type: ignore[arg-type]
    assert out is not None
    return out


def test_narrow_eyes_are_brought_up_to_nominal_after_min_samples() -> None:
    eb = scaler(min_samples=12, first_samples=12)
    for _ in range(11):
        w = window(0.19, frames=1)
        assert eb(w) is w  # too few samples yet: as measured
    out = eb(window(0.19))
    assert eb.scale == pytest.approx(0.23 / 0.19, rel=1e-5)
    assert out[:, 1:3] == pytest.approx(np.full((4, 2), 0.23), rel=1e-5)
    assert out[:, [0, 3, 4]] == pytest.approx(window(0.19)[:, [0, 3, 4]])  # the rest untouched
    # a blink in the next window is scaled by the same factor, not taken as the baseline
    w = window(0.19)
    w[-1, 1:3] = 0.09
    assert eb(w)[-1, 1:3] == pytest.approx([0.09 * 0.23 / 0.19] * 2, rel=1e-5)


def test_a_first_window_counts_its_own_targets_until_there_are_samples_enough() -> None:
    eb = scaler(min_samples=12, first_samples=4)
    w = window(0.19, frames=16)
    first = w[:3]
    assert eb(first) is first  # 1 sample + 2 targets: too few
    assert eb.scale == 1.0
    assert eb(w[:3])[:, 1:3] == pytest.approx(np.full((3, 2), 0.23), rel=1e-5)  # 2 + 2
    assert eb(w)[:, 1:3] == pytest.approx(np.full((16, 2), 0.23), rel=1e-5)  # 3 + 15
    assert eb.scale == 1.0  # the stored samples alone: three
    # closed eyes in the first window are not taken for narrow open ones
    eb = scaler(min_samples=12)
    closed = window(0.10, frames=16)
    assert eb(closed) is closed
    # nor targets without a frame
    eb = scaler(min_samples=12)
    assert eb(w, mask=np.r_[np.zeros(14), np.ones(2)].astype(np.float32)) is w


def test_usual_and_wide_eyes_read_as_measured() -> None:
    for eyes in (0.23, 0.25, 0.31):
        eb = scaler()
        for _ in range(40):
            w = window(eyes)
            assert eb(w) is w
        assert eb.scale == 1.0


def test_closed_eyes_away_looks_absent_faces_and_masked_targets_are_no_samples() -> None:
    eb = scaler(min_samples=3, first_samples=3)
    for w in (window(0.10), window(0.19, yaw=40), window(0.19, yaw=-30), window(0.0, present=0)):
        for _ in range(10):
            eb(w)
    for _ in range(10):
        eb(window(0.19), mask=np.array([1, 1, 1, 0], np.float32))  # newest target masked
    assert eb.scale == 1.0
    eb(window(0.19, yaw=20))
    eb(window(0.19, yaw=-20))
    eb(window(0.19))
    assert eb.scale == pytest.approx(0.23 / 0.19, rel=1e-5)


def test_a_quarter_of_half_closed_samples_leaves_the_baseline_on_the_open_eye() -> None:
    eb = scaler()
    for k in range(200):
        eb(window(0.16 if k % 5 == 0 else 0.20))  # 20 % half-closed, above the floor
    assert eb.scale == pytest.approx(0.23 / 0.20, rel=1e-5)


def test_scale_is_bounded_and_the_baseline_follows_the_newest_samples() -> None:
    eb = scaler(samples=20, min_samples=5, floor=0.1)
    for _ in range(20):
        eb(window(0.14))
    assert eb.scale == pytest.approx(1.35)  # 0.23 / 0.14 = 1.64, capped
    for _ in range(20):
        eb(window(0.28))
    assert eb.scale == 1.0  # the narrow samples have left the last 20
    eb.reset()
    assert eb.scale == 1.0


def test_card_section_round_trips_and_is_checked() -> None:
    spec = FrontSpec.default("driver")
    assert spec.eye_baseline == EyeBaselineSpec()
    assert FrontSpec.from_dict(spec.to_dict()) == spec
    assert "eye_baseline" not in FrontSpec.default("home").to_dict()
    assert FrontSpec.default("home").eye_scaler() is None
    assert FrontSpec.from_dict({"features": list(FEATURES)}).eye_baseline is None
    with pytest.raises(EngineError, match="unknown keys"):
        FrontSpec.from_dict({"features": list(FEATURES), "eye_baseline": {"nominl": 0.2}})
    with pytest.raises(EngineError, match="inconsistent"):
        EyeBaselineSpec(max_scale=0.8)
    with pytest.raises(EngineError, match="inconsistent"):
        EyeBaselineSpec(first_samples=20)
    with pytest.raises(EngineError, match="needs the features"):
        FrontSpec(("face.present", "face.eye_open_left", "speech.p"), EyeBaselineSpec())
    custom = FrontSpec.from_dict({"features": list(FEATURES),
                                  "eye_baseline": {"nominal": 0.25, "samples": 100}})
    assert custom.eye_baseline == EyeBaselineSpec(nominal=0.25, samples=100)


def blinking(open_eye: float, k: int) -> np.ndarray:
    """One window of an alert driver: open eyes, a blink (0.6 of open) every sixth window."""
    return window(open_eye * (0.6 if k % 6 == 5 else 1.0))


def test_eyes_that_never_reach_the_floor_lower_it_after_narrow_after_targets() -> None:
    eb = scaler()  # floor 0.15, narrow_after 40, narrow_ratio 0.7
    narrow = 0.24 * 0.6  # the dev subjects' open eye a little under two thirds as wide: 0.144
    for k in range(39):
        w = blinking(narrow, k)
        assert eb(w) is w  # read as measured: too early to take them for open
        assert eb.floor == 0.15
    eb(blinking(narrow, 39))
    assert eb.floor == pytest.approx(0.7 * narrow, rel=1e-5)  # the blinks (0.086) stay out
    assert eb.scale == pytest.approx(0.23 / narrow, rel=1e-5)  # 1.6: over max_scale 1.35
    assert eb(window(narrow))[:, 1:3] == pytest.approx(np.full((4, 2), 0.23), rel=1e-5)
    # a closure from that level is scaled by the same factor (0.138: still shut), and does not
    # move it
    for _ in range(12):
        assert eb(window(0.6 * narrow))[:, 1:3] == pytest.approx(np.full((4, 2), 0.138),
                                                                rel=1e-5)
    assert eb.scale == pytest.approx(0.23 / narrow, rel=1e-5)
    # up to narrow_max_scale
    eb = scaler()
    for k in range(60):
        eb(blinking(0.10, k))
    assert eb.scale == pytest.approx(2.0)
    # a fifth of the windows wider, over the floor (a smile, raised brows): still narrow eyes
    eb = scaler()
    for k in range(200):
        eb(window(0.155 if k % 5 == 0 else 0.12))
    assert eb.floor == pytest.approx(0.7 * 0.155, rel=1e-5)
    assert eb.scale == pytest.approx(0.23 / 0.12, rel=1e-5)  # the quantile 0.75: the usual
    # one eye under the floor, the other over it (a drooping lid): the narrower eye decides
    eb = scaler()
    for k in range(60):
        w = blinking(0.20, k)
        w[:, 1] *= 0.66
        eb(w)
    assert eb.floor == pytest.approx(0.7 * 0.132, rel=1e-5)
    assert eb.scale == pytest.approx(0.23 / 0.132, rel=1e-5)


def test_an_eye_seen_open_keeps_the_floor_and_no_narrow_after_means_never() -> None:
    # open usual eyes for 4 s, then held shut for longer than the samples kept: the shut eyes
    # never become the baseline
    eb = scaler()
    for k in range(16):
        eb(blinking(0.24, k))
    for _ in range(600):
        shut = window(0.145)
        assert eb(shut) is shut
        assert eb.floor == 0.15
    # a drive that opens with them shut takes them for narrow open eyes after narrow_after
    eb = scaler()
    for _ in range(40):
        eb(window(0.145))
    assert eb.floor < 0.15 and eb.scale == pytest.approx(0.23 / 0.145, rel=1e-5)
    # with narrow_after 0 the floor never moves
    eb = scaler(narrow_after=0)
    for k in range(200):
        w = blinking(0.14, k)
        assert eb(w) is w
    assert eb.floor == 0.15 and eb.scale == 1.0
    with pytest.raises(EngineError, match="inconsistent"):
        EyeBaselineSpec(narrow_ratio=1.0)
    with pytest.raises(EngineError, match="inconsistent"):
        EyeBaselineSpec(narrow_after=8)  # before min_samples could say the eyes were open


def test_turned_away_absent_and_masked_targets_do_not_count_toward_narrow_after() -> None:
    eb = scaler()
    for _ in range(50):
        eb(window(0.14, yaw=40))
        eb(window(0.0, present=0))
        eb(window(0.14), mask=np.array([1, 1, 1, 0], np.float32))
    assert eb.floor == 0.15 and eb.scale == 1.0
    assert eb.state()["eyes_frontal"] == []


def test_state_restores_the_lowered_floor_and_a_bare_list_starts_it_over() -> None:
    a = scaler()
    for k in range(60):
        a(blinking(0.14, k))
    b = scaler()
    b.restore(a.state())
    assert b.floor == a.floor < 0.15 and b.scale == a.scale > 1.0
    assert a.state()["eyes_peak"] == [pytest.approx(0.14)]
    w = window(0.14)
    assert b(w) == pytest.approx(a(w))
    c = scaler()
    c.restore(a.samples())  # a recording made before the targets looking ahead were kept
    assert c.floor == 0.15 and c.state()["eyes_frontal"] == []


def test_eyes_open_over_the_floor_at_first_read_as_without_the_narrow_path() -> None:
    """A driver whose open eyes reach the floor (0.165 here) over half the time looking ahead
    in his first min_samples targets is scaled from the samples alone from then on, as with
    narrow_after 0, through a closure longer than everything before it."""
    on, off = scaler(), scaler(narrow_after=0)
    rng = np.random.default_rng(0)
    drive = [0.165 + 0.01 * rng.standard_normal() for _ in range(30)]
    drive += [0.10 + 0.005 * rng.standard_normal() for _ in range(200)]  # 50 s shut
    drive += [0.165 + 0.01 * rng.standard_normal() for _ in range(30)]
    for eyes in drive:
        w = window(eyes)
        assert np.array_equal(on(w), off(w))
    assert on.floor == 0.15
