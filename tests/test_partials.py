"""The partial share (edge.features.partials): a struck bell's high band is a few partials, a
glass break's is spread; the home glass_break rule's ``unless`` rests on it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge.features.logmel import LogMelSpec, log_mel
from edge.features.partials import PartialShare
from edge.runtime.card import load_card
from edge.sim import voices
from tests import test_alarm_cadence as a

ROOT = Path(__file__).resolve().parents[1]
SPEC = LogMelSpec.from_dict(load_card(ROOT / "engines" / "home-front.yaml").audio)
SR = SPEC.sample_rate
REALWORLD = ROOT.parent / "shared" / "realworld"


def share_after(x: np.ndarray, onset_s: float, after_s: float) -> float:
    """The share at a tick ``after_s`` past the sound's onset (the window's newest column)."""
    cols = log_mel(np.asarray(x, np.float64), SPEC)
    share = PartialShare(SPEC)(cols[:, : round((onset_s + after_s) * 100)])
    assert share is not None
    return share


def in_room(x: np.ndarray, rng: np.random.Generator, rt60: float = 0.4) -> np.ndarray:
    """One second of quiet, ``x``, one more; in a room, over a -60 dBFS floor."""
    y = np.concatenate([np.zeros(SR), a.at_peak(x, -12), np.zeros(SR)])
    return a.room(y, rt60, -3.0, rng) + a.at_rms(a.pink(len(y) / SR, rng), -60)


@pytest.mark.parametrize("hz", [2000.0, 2600.0, 3300.0, 4200.0])
def test_a_struck_bell_is_a_few_partials(hz: float) -> None:
    rng = np.random.default_rng(int(hz))
    x = in_room(a.struck(hz, a.DOME, 1.5, rng), rng)
    assert all(share_after(x, 1.0, dt) > 0.8 for dt in (0.1, 0.25, 0.5))


def test_a_bicycle_bell_and_a_doorbell_are_a_few_partials() -> None:
    rng = np.random.default_rng(3)
    for x in (a.bicycle_bell(4.0, rng), a.doorbell(4.0, rng)):
        x = in_room(x, rng)
        assert all(share_after(x, 1.5, dt) > 0.8 for dt in (0.1, 0.25, 0.5))


def test_the_simulators_glass_is_spread_up_to_half_a_second_after_the_impact() -> None:
    rng = np.random.default_rng(0)
    worst = 0.0
    for _ in range(20):
        x = voices.glass(rng, int(rng.uniform(0.4, 1.5) * SR), SR)
        x = in_room(x, rng, float(rng.uniform(0.2, 0.8)))
        worst = max(worst, *(share_after(x, 1.0, dt) for dt in (0.1, 0.25, 0.35, 0.5)))
    assert worst < 0.7


@pytest.mark.skipif(not REALWORLD.is_dir(), reason=f"{REALWORLD} is not there")
def test_real_glass_is_spread() -> None:
    rng = np.random.default_rng(1)
    glass = a.decode(REALWORLD / "sounds" / "minetest_default_break_glass.1.flac")
    for rt60 in (0.3, 0.5, 0.8):
        x = in_room(glass, rng, rt60)
        assert all(share_after(x, 1.0, dt) < 0.4 for dt in (0.1, 0.25, 0.5))
    home = a.decode(REALWORLD / "home-dev-1" / "video.mkv")  # the shatter starts at 30.9 s
    assert all(share_after(home, 30.9, dt) < 0.4 for dt in (0.1, 0.25, 0.5))


def test_too_few_valid_columns_say_nothing() -> None:
    cols = np.zeros((SPEC.n_mels, 200), np.float32)
    ok = np.ones(200, bool)
    ok[-30:] = False
    measure = PartialShare(SPEC)
    assert measure(cols, ok) is None
    ok[-30:] = True
    assert measure(cols, ok) == pytest.approx(4 / len(measure.rows))
    with pytest.raises(ValueError, match="need more than k"):
        PartialShare(SPEC, lo_hz=7000.0, k=8)
