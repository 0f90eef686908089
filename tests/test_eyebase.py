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
