"""The clock model maps drifting device clocks onto pipeline time to within a millisecond."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from edge.timebase.clock import NS_PER_S, ClockModel, FakeClock


def simulate(
    skew: float, jitter_ns: float, outliers: float, seconds: float, period_ns: int, seed: int
) -> tuple[ClockModel, float]:
    """Feed an hour-like capture; return the model and its worst error after the first 10 s."""
    rng = np.random.default_rng(seed)
    model = ClockModel()
    origin = 7_000_000_000_000
    worst = 0.0
    n = int(seconds * NS_PER_S / period_ns)
    delays = rng.uniform(0, jitter_ns, n)
    wild = rng.random(n) < outliers
    # Outliers both ways: late deliveries (a stalled thread) and early stamps (a bad timestamp).
    delays[wild] = np.where(
        rng.random(wild.sum()) < 0.5,
        rng.uniform(20e6, 500e6, wild.sum()),
        -rng.uniform(5e6, 50e6, wild.sum()),
    )
    for i in range(n):
        dev = i * period_ns
        true_host = origin + dev * (1 + skew)
        model.observe(dev, int(true_host + delays[i]))
        if dev >= 10 * NS_PER_S and i % 25 == 0:
            worst = max(worst, abs(model.to_pipeline(dev) - true_host))
    return model, worst


def test_hour_at_200ppm_with_5ms_jitter_and_1pct_outliers_maps_within_1ms() -> None:
    model, worst = simulate(200e-6, 5e6, 0.01, 3600, 20_000_000, seed=1)
    assert worst <= 1_000_000, f"worst mapping error {worst / 1e6:.3f} ms"
    # host runs 200 ppm faster than the device: the device clock is slow
    assert model.fit().skew_ppm == pytest.approx(-200, abs=2)


@pytest.mark.parametrize("skew", [-500e-6, 50e-6, 500e-6])
def test_other_skews_converge(skew: float) -> None:
    _, worst = simulate(skew, 5e6, 0.01, 120, 33_333_333, seed=2)
    assert worst <= 1_000_000


def test_the_mapping_sits_on_the_items_that_waited_least() -> None:
    # Delivery delays uniform in [0, 20 ms): the capture time is the lower envelope of the
    # arrivals, not their middle. A fit through each bin's low points alone is ~0.8 ms late.
    rng = np.random.default_rng(4)
    model = ClockModel()
    errors = []
    period = 20_000_000
    for i in range(int(120 * NS_PER_S / period)):
        dev = i * period
        true_host = 5_000_000_000_000 + dev * (1 + 200e-6)
        model.observe(dev, int(true_host + rng.uniform(0, 20e6)))
        if dev >= 110 * NS_PER_S:
            errors.append(model.to_pipeline(dev) - true_host)
    assert abs(float(np.mean(errors))) <= 200_000, f"bias {np.mean(errors) / 1e6:+.3f} ms"


def test_inverse_mapping_round_trips() -> None:
    model, _ = simulate(300e-6, 1e6, 0.0, 30, 20_000_000, seed=3)
    for dev in (0, 12_345_678_901, 29 * NS_PER_S):
        assert abs(model.to_device(model.to_pipeline(dev)) - dev) <= 1


def test_device_clock_jump_backwards_resets_the_fit() -> None:
    model = ClockModel()
    for i in range(200):
        model.observe(i * 20_000_000, 5 * NS_PER_S + i * 20_000_000)
    model.observe(3_990_000_000, 5 * NS_PER_S + 3_990_000_000)  # interleaved track: no reset
    assert model.resets == 0
    model.observe(0, 9 * NS_PER_S)  # device restarted its counter
    assert model.resets == 1
    assert model.to_pipeline(0) == 9 * NS_PER_S


def test_a_burst_of_items_with_host_time_standing_still_is_not_a_stopped_clock() -> None:
    """Three seconds of a track that arrive at one host instant (a file storing them late) fit
    a line of slope -1: a clock that stops, whose inverse divides by zero. The fit's skew stays
    within MAX_SKEW and the mapping keeps both directions."""
    from edge.timebase.clock import MAX_SKEW

    model = ClockModel()
    for i in range(50):  # 64 ms blocks, 3.2 s of device time, all at host 5 s
        model.observe(i * 64_000_000, 5 * NS_PER_S)
    assert model.fit().bins >= 3 and abs(model.fit().skew) <= MAX_SKEW
    assert model.to_device(model.to_pipeline(2 * NS_PER_S)) == pytest.approx(2 * NS_PER_S, abs=1)


def test_unready_model_refuses_to_map() -> None:
    with pytest.raises(RuntimeError):
        ClockModel().to_pipeline(0)


def test_fake_clock_moves_only_forward_and_sleep_advances_it() -> None:
    clock = FakeClock(100)
    assert clock.sleep_until(250)
    assert clock.now_ns() == 250
    assert clock.advance(50) == 300
    with pytest.raises(ValueError):
        clock.set_ns(10)


def feed(model: ClockModel, t0_s: float, t1_s: float, host_of: Callable[[int], int]) -> None:
    for i in range(int(t0_s * 50), int(t1_s * 50)):
        dev = i * 20_000_000
        model.observe(dev, host_of(dev))


def test_a_delivery_stall_longer_than_the_reset_threshold_is_ridden_out() -> None:
    """A 2.5 s stall: the queued blocks arrive in one burst, then on time again. The model
    keeps its fit (no reset) and maps as well after the stall as before it."""
    model = ClockModel()
    base = 5 * NS_PER_S
    skew = 1 + 300e-6
    feed(model, 0, 30, lambda d: base + int(d * skew) + 1_000_000)
    stall_end = base + int(32.5 * NS_PER_S * skew)
    # blocks from 30 s to 32.5 s arrive together when the stall ends
    feed(model, 30, 32.5, lambda d: max(base + int(d * skew), stall_end) + 1_000_000)
    feed(model, 32.5, 60, lambda d: base + int(d * skew) + 1_000_000)
    assert model.resets == 0 and model.late_skipped > 0
    dev = 59 * NS_PER_S
    assert abs(model.to_pipeline(dev) - (base + dev * skew)) <= 1_500_000


def test_a_device_clock_that_falls_behind_for_good_resets_after_a_second() -> None:
    model = ClockModel()
    base = 5 * NS_PER_S
    feed(model, 0, 30, lambda d: base + d)
    # from 30 s on the device counter lags 3 s (samples lost without the counter moving)
    feed(model, 30, 45, lambda d: base + d + 3 * NS_PER_S)
    assert model.resets == 1
    dev = 44 * NS_PER_S
    assert abs(model.to_pipeline(dev) - (base + dev + 3 * NS_PER_S)) <= 1_000_000
