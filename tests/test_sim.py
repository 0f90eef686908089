"""The scenario simulator: validation, exact labels, determinism, and the cues it renders."""

from __future__ import annotations

import json
import math
import wave
from pathlib import Path

import numpy as np
import pytest

from edge.errors import ConfigError
from edge.sim.render import Simulator, write_files
from edge.sim.scenario import (ALARM_CYCLES, CLASSES, Conditions, Event, Scenario, label_fraction,
                               label_matrix, labels_at, load_scenario, parse_scenario,
                               random_scenario, with_extra_events)
from edge.sim.driver import DriverScene
from edge.sim.home import T3, T3_CYCLE, T4, T4_CYCLE

SR = 16000
CLEAN = Conditions(noise=0.0, shake=0.0, distractors=0.0, eyewear="none")


def driver(*events: tuple[str, float, float], seed: int = 1, seconds: float = 10.0,
           conditions: Conditions = CLEAN) -> Scenario:
    return Scenario(task="driver", seconds=seconds, seed=seed, conditions=conditions,
                    events=tuple(Event(label=l, start=a, end=b) for l, a, b in events))


def home(*events: tuple[str, float, float], seed: int = 1, seconds: float = 10.0,
         conditions: Conditions = CLEAN, variant: str | None = None) -> Scenario:
    return Scenario(task="home", seconds=seconds, seed=seed, conditions=conditions,
                    events=tuple(Event(label=l, start=a, end=b, variant=variant)
                                 for l, a, b in events))


def band_energy(x: np.ndarray, lo: float, hi: float) -> tuple[float, float]:
    """Energy in ``[lo, hi)`` Hz and its share of the total."""
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x)))) ** 2
    f = np.fft.rfftfreq(len(x), 1 / SR)
    e = float(spec[(f >= lo) & (f < hi)].sum())
    return e, e / float(spec.sum() + 1e-20)


def seg(x: np.ndarray, a: float, b: float) -> np.ndarray:
    return x[int(round(a * SR)) : int(round(b * SR))]


# -- validation ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("events", "expected"),
    [
        ([("blinking", 1, 2)], "events[0]: unknown class 'blinking' for task driver"),
        ([("talking", 1, 2), ("eyes_closed", -1, 2)], "events[1]: eyes_closed: negative time"),
        ([("phone", 3, 2)], "events[0]: phone: end 2 must be after start 3"),
        ([("phone", 3, 3)], "events[0]: phone: end 3 must be after start 3"),
        ([("phone", 3, 12)], "events[0]: phone: end 12 is beyond seconds 10"),
        ([("yawning", 1, 4), ("talking", 3, 6)],
         "events[1]: talking [3, 6) overlaps events[0] of exclusive class yawning [1, 4)"),
        ([("phone", 1, 4), ("phone", 3.5, 6)],
         "events[1]: phone [3.5, 6) overlaps events[0] of the same class [1, 4)"),
    ],
)
def test_inconsistent_driver_timelines_raise_config_error_naming_the_event(
    events: list[tuple[str, float, float]], expected: str
) -> None:
    with pytest.raises(ConfigError) as err:
        driver(*events)
    assert expected in str(err.value)
    assert all(line.startswith("events[") for line in str(err.value).splitlines())


def test_smoke_and_co_alarms_are_exclusive_but_other_classes_may_overlap() -> None:
    with pytest.raises(ConfigError, match=r"events\[1\]: co_alarm .* exclusive class smoke_alarm"):
        home(("smoke_alarm", 1, 5), ("co_alarm", 4, 8))
    home(("smoke_alarm", 1, 5), ("co_alarm", 5, 8))  # touching is not overlapping
    driver(("eyes_closed", 1, 5), ("talking", 2, 6), ("phone", 0, 9), ("distracted", 3, 4))
    home(("person", 0, 9), ("speech", 1, 5), ("dog_bark", 2, 3), ("glass_break", 2, 2.5))


def test_a_task_only_accepts_its_own_classes() -> None:
    with pytest.raises(ConfigError, match="unknown class 'talking' for task home"):
        home(("talking", 1, 2))


def test_yaml_errors_name_the_key_path_and_line(tmp_path: Path) -> None:
    text = """task: driver
seconds: 10
events:
  - {label: talking, start: 1, end: 4}
  - {label: yawning, start: 2, end: 5}
"""
    path = tmp_path / "s.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_scenario(path)
    assert str(err.value) == (
        f"{path}: events[1]: yawning [2, 5) overlaps events[0] of exclusive class talking [1, 4)"
        " (line 5)"
    )
    with pytest.raises(ConfigError, match=r"events\[0\]\.colour: unknown key \(line 3\)"):
        parse_scenario("task: home\nseconds: 5\nevents: [{label: person, start: 0, end: 1, colour: red}]\n")
    with pytest.raises(ConfigError, match=r"conditions\.noise: .*less than or equal to 1"):
        parse_scenario("task: home\nseconds: 5\nconditions: {noise: 3}\n")
    with pytest.raises(ConfigError, match="unknown variant 'left' "):
        parse_scenario("task: home\nseconds: 5\nevents: [{label: smoke_alarm, start: 0, end: 4, variant: left}]")
    with pytest.raises(ConfigError, match="no such scenario file"):
        load_scenario(tmp_path / "missing.yaml")


def test_a_valid_file_loads_with_defaults(tmp_path: Path) -> None:
    path = tmp_path / "ok.yaml"
    path.write_text("task: driver\nseconds: 30\nseed: 3\nconditions: {lighting: dark, ir: true}\n"
                    "events:\n  - {label: eyes_closed, start: 2.0, end: 4.5}\n"
                    "  - {label: talking, start: 1.0, end: 9.0}\n")
    sc = load_scenario(path)
    assert sc.conditions.lighting == "dark" and sc.conditions.ir and sc.conditions.noise == 0.2
    assert [e.label for e in sc.events] == ["eyes_closed", "talking"]


# -- ground truth ----------------------------------------------------------------------


def test_labels_are_half_open_intervals_in_class_order() -> None:
    sc = driver(("eyes_closed", 2.0, 4.5), ("talking", 1.0, 9.0))
    assert labels_at(sc, 2.0) == {"eyes_closed": True, "yawning": False, "distracted": False,
                                  "phone": False, "talking": True}
    assert not labels_at(sc, 4.5)["eyes_closed"]
    m = label_matrix(sc, np.array([0.0, 1.0, 2.0, 4.5, 9.0]))
    assert m.shape == (5, len(CLASSES["driver"])) and m.dtype == bool
    assert m[:, 0].tolist() == [False, False, True, False, False]
    assert m[:, 4].tolist() == [False, True, True, True, False]
    np.testing.assert_allclose(label_fraction(sc, 2.0, 6.0), [0.625, 0, 0, 0, 1.0])


def test_random_scenarios_are_valid_varied_and_reproducible() -> None:
    a = [random_scenario("home", 30.0, np.random.default_rng(s)) for s in range(40)]
    b = [random_scenario("home", 30.0, np.random.default_rng(s)) for s in range(40)]
    assert a == b
    assert len({sc.seed for sc in a}) == 40
    assert {e.label for sc in a for e in sc.events} == set(CLASSES["home"])
    assert len({sc.conditions.lighting for sc in a}) == 3
    assert any(not sc.events for sc in a) or min(len(sc.events) for sc in a) <= 2
    d = [random_scenario("driver", 20.0, np.random.default_rng(s)) for s in range(40)]
    assert {e.label for sc in d for e in sc.events} == set(CLASSES["driver"])
    for sc in a + d:  # re-validation from plain data must accept every generated scenario
        assert Scenario.model_validate(sc.model_dump()) == sc


def test_random_alarms_sound_whole_cycles_and_extra_events_fit() -> None:
    """An alarm's label runs to the end of its last cycle (nobody can tell its last pause from
    the end before the next group is due), unless the scene ends first; extra events of a rare
    class are added where they fit, valid, and reproducibly."""
    alarms = 0
    for s in range(60):
        sc = random_scenario("home", 60.0, np.random.default_rng(s))
        for e in sc.events:
            if e.label in ALARM_CYCLES and e.end < 0.9 * sc.seconds:
                cycles = (e.end - e.start) / ALARM_CYCLES[e.label]
                assert round(cycles) >= 1 and abs(cycles - round(cycles)) < 1e-3, e
                alarms += 1
    assert alarms >= 20
    short = [random_scenario("home", 9.0, np.random.default_rng(s)) for s in range(60)]
    cut = [e for sc in short for e in sc.events if e.label == "co_alarm"]
    assert cut and all(abs(e.end - e.start - ALARM_CYCLES["co_alarm"]) < 1e-3 for e in cut)
    base = [random_scenario("home", 24.0, np.random.default_rng(s)) for s in range(30)]
    more = [with_extra_events(sc, {"glass_break": 6.0}, np.random.default_rng(s))
            for s, sc in enumerate(base)]
    again = [with_extra_events(sc, {"glass_break": 6.0}, np.random.default_rng(s))
             for s, sc in enumerate(base)]
    assert more == again
    count = [sum(e.label == "glass_break" for e in sc.events) for sc in base]
    count_more = [sum(e.label == "glass_break" for e in sc.events) for sc in more]
    assert sum(count_more) >= sum(count) + 40  # 2.4 more a scene expected, some do not fit
    for sc, sc2 in zip(base, more):
        assert set(sc.events) <= set(sc2.events)
        assert Scenario.model_validate(sc2.model_dump()) == sc2


# -- determinism -----------------------------------------------------------------------


@pytest.mark.parametrize("task", ["driver", "home"])
def test_same_seed_gives_identical_frames_and_audio_in_any_order(task: str) -> None:
    sc = random_scenario(task, 8.0, np.random.default_rng(5))  # type: ignore[arg-type]
    one, two = Simulator(sc, 96, 96, 10, SR), Simulator(sc, 96, 96, 10, SR)
    times = [0.0, 1.3, 4.05, 7.9]
    frames = [one.frame_at(t) for t in times]
    for t, f in zip(reversed(times), reversed(frames)):
        np.testing.assert_array_equal(two.frame_at(t), f)
    np.testing.assert_array_equal(one.audio(5000, 40000), two.audio(5000, 40000))
    other = Simulator(sc.model_copy(update={"seed": sc.seed + 1}), 96, 96, 10, SR)
    assert not np.array_equal(other.frame_at(1.3), frames[1])
    assert not np.array_equal(other.audio(5000, 40000), one.audio(5000, 40000))


@pytest.mark.parametrize("task", ["driver", "home"])
def test_audio_is_identical_whatever_the_block_size(task: str) -> None:
    sc = random_scenario(task, 6.0, np.random.default_rng(11))  # type: ignore[arg-type]
    sc = sc.model_copy(update={"conditions": sc.conditions.model_copy(update={"distractors": 1.0})})
    whole = Simulator(sc, 32, 32, 10, SR).audio(0, 6 * SR)
    for block in (160, 1000, 7919):
        sim = Simulator(sc, 32, 32, 10, SR)
        parts = np.concatenate([sim.audio(n0, block) for n0 in range(0, 6 * SR, block)])
        np.testing.assert_array_equal(parts[: 6 * SR], whole)
    # Seeking backwards, and a fresh simulator starting mid-stream, give the same samples.
    sim = Simulator(sc, 32, 32, 10, SR)
    np.testing.assert_array_equal(sim.audio(70001, 999), whole[70001:71000])
    np.testing.assert_array_equal(sim.audio(3, 500), whole[3:503])
    assert whole.dtype == np.float32 and np.abs(whole).max() <= 1.0
    with pytest.raises(ValueError):
        sim.audio(-1, 10)


# -- acoustic cues ---------------------------------------------------------------------


def test_smoke_alarm_sounds_t3_at_3_khz_and_is_silent_in_its_gaps() -> None:
    sc = home(("smoke_alarm", 1.0, 9.0), variant="tone")
    x = Simulator(sc, 32, 32, 10, SR).audio(0, 10 * SR)
    quiet = float(np.sqrt(np.mean(seg(x, 0.0, 0.9) ** 2)))
    for cycle in (0, 1):
        t0 = 1.0 + cycle * T3_CYCLE
        for a, b in T3:  # on: tonal energy at ~3 kHz, loud
            on = seg(x, t0 + a + 0.02, t0 + b - 0.02)
            assert band_energy(on, 2800, 3400)[1] > 0.9
            assert np.sqrt(np.mean(on**2)) > 10 * quiet
        for a, b in ((0.5, 1.0), (1.5, 2.0), (2.5, 4.0)):  # off: room tone only
            off = seg(x, t0 + a + 0.02, t0 + b - 0.02)
            assert band_energy(off, 2800, 3400)[1] < 0.1
            assert np.sqrt(np.mean(off**2)) < 2 * quiet
    assert np.sqrt(np.mean(seg(x, 9.05, 10.0) ** 2)) < 2 * quiet  # stops with the event


def test_low_frequency_smoke_alarm_is_a_520_hz_square_wave() -> None:
    x = Simulator(home(("smoke_alarm", 0.0, 4.0), variant="square"), 32, 32, 10, SR).audio(0, 4 * SR)
    beep = seg(x, 0.05, 0.45)
    fund, share = band_energy(beep, 500, 540)
    third, _ = band_energy(beep, 1540, 1580)
    assert share > 0.5 and 0.05 < third / fund < 0.2  # a square wave's 3rd harmonic: 1/9 power


def test_co_alarm_sounds_t4_four_short_beeps_then_five_seconds_quiet() -> None:
    x = Simulator(home(("co_alarm", 0.5, 9.0)), 32, 32, 10, SR).audio(0, 10 * SR)
    for a, b in T4:
        assert band_energy(seg(x, 0.5 + a + 0.01, 0.5 + b - 0.01), 2900, 3500)[1] > 0.9
        assert band_energy(seg(x, 0.5 + b + 0.01, 0.5 + b + 0.09), 2900, 3500)[1] < 0.1
    assert band_energy(seg(x, 0.5 + 0.72, 0.5 + T4_CYCLE - 0.02), 2900, 3500)[1] < 0.1
    assert band_energy(seg(x, 0.5 + T4_CYCLE + 0.01, 0.5 + T4_CYCLE + 0.09), 2900, 3500)[1] > 0.9


def test_glass_bark_and_speech_are_louder_than_the_room_and_differ_in_spectrum() -> None:
    sc = home(("glass_break", 1.0, 2.0), ("dog_bark", 3.0, 5.0), ("speech", 6.0, 9.0))
    x = Simulator(sc, 32, 32, 10, SR).audio(0, 10 * SR)
    rms = {k: float(np.sqrt(np.mean(seg(x, a, b) ** 2)))
           for k, (a, b) in {"room": (0.0, 0.9), "glass": (1.0, 1.5), "bark": (3.0, 5.0),
                             "speech": (6.0, 9.0)}.items()}
    assert min(rms["glass"], rms["bark"], rms["speech"]) > 5 * rms["room"]
    assert band_energy(seg(x, 1.0, 1.5), 2000, 8000)[1] > 0.5  # glass: bright
    assert band_energy(seg(x, 6.0, 9.0), 80, 1200)[1] > 0.5  # voice: low harmonics dominate


def test_distractors_add_sound_but_never_labels() -> None:
    busy = Conditions(noise=0.1, distractors=1.0)
    sc_quiet, sc_busy = home(seconds=60.0), home(seconds=60.0, conditions=busy)
    a = Simulator(sc_quiet, 32, 32, 10, SR).audio(0, 60 * SR)
    b = Simulator(sc_busy, 32, 32, 10, SR).audio(0, 60 * SR)
    assert np.sqrt(np.mean(b**2)) > 2 * np.sqrt(np.mean(a**2))
    assert not label_matrix(sc_busy, np.arange(0, 60, 0.1)).any()


def test_talking_moves_the_mouth_with_the_syllables_that_are_heard() -> None:
    sc = driver(("talking", 2.0, 8.0))
    scene = DriverScene(sc, 96, 96, SR)
    mouth = np.array([scene.state(t).mouth for t in np.arange(0, 10, 0.01)])
    assert mouth[:200].max() == 0 and mouth[800:].max() == 0 and mouth[200:800].max() > 0.3
    x = scene.audio(0, 10 * SR)
    env = np.array([np.sqrt(np.mean(x[i * 160 : (i + 1) * 160] ** 2)) for i in range(1000)])
    assert np.corrcoef(mouth[200:800], env[200:800])[0, 1] > 0.4


# -- visual cues -----------------------------------------------------------------------


def eye_box(scene: DriverScene) -> tuple[slice, slice]:
    """Rows and columns around both eyes (the brows and nose excluded)."""
    hd = scene.head
    return (slice(int(hd.cy - 0.35 * hd.fh), int(hd.cy + 0.1 * hd.fh) + 1),
            slice(int(hd.cx - 0.8 * hd.fw), int(hd.cx + 0.8 * hd.fw) + 1))


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_closed_eyes_change_only_the_eye_region(seed: int) -> None:
    t = 3.0
    opened = DriverScene(driver(seed=seed), 128, 128, SR)
    closed = DriverScene(driver(("eyes_closed", 2.0, 4.0), seed=seed), 128, 128, SR)
    assert opened.state(t).eye_open > 0.7 and closed.state(t).eye_open == 0.0
    a, b = opened.frame(t).astype(int), closed.frame(t).astype(int)
    rows, cols = eye_box(opened)
    inside = np.abs(a - b)[rows, cols]
    outside = np.abs(a - b)
    outside[rows, cols] = 0
    assert inside.mean() > 8 and outside.max() == 0
    # White sclera and a dark iris make open eyes the more contrasted.
    assert a[rows, cols].mean(axis=2).std() > b[rows, cols].mean(axis=2).std()


def test_yawns_head_turns_and_phones_are_visible() -> None:
    sc = driver(("yawning", 1.0, 5.0), ("distracted", 6.0, 8.0), ("phone", 8.5, 9.9))
    base = DriverScene(driver(), 128, 128, SR)
    scene = DriverScene(sc, 128, 128, SR)
    for t in (3.0, 7.0, 9.2):
        changed = np.abs(scene.frame(t).astype(int) - base.frame(t).astype(int)).max(axis=2) > 30
        assert changed.sum() > 200, t
    assert scene.state(3.0).yawn > 0.9 and abs(scene.state(7.0).yaw) + scene.state(7.0).pitch > 0.4
    assert scene.state(9.2).phone > 0.9 and scene.state(5.9).phone == 0


def test_people_appear_exactly_during_person_events() -> None:
    sc = home(("person", 2.0, 6.0), seed=4)
    empty = Simulator(home(seed=4), 128, 96, 10, SR)
    sim = Simulator(sc, 128, 96, 10, SR)
    for t in (1.9, 6.0, 7.0):
        np.testing.assert_array_equal(sim.frame_at(t), empty.frame_at(t))
    assert all(np.abs(sim.frame_at(t).astype(int) - empty.frame_at(t).astype(int)).sum() > 500
               for t in np.arange(2.05, 6.0, 0.5))


@pytest.mark.parametrize("lighting", ["dark", "normal", "glare"])
@pytest.mark.parametrize("ir", [False, True])
def test_conditions_change_exposure_and_ir_is_grey(lighting: str, ir: bool) -> None:
    cond = Conditions(lighting=lighting, ir=ir)
    f = Simulator(driver(conditions=cond), 96, 96, 10, SR).frame_at(1.0)
    assert f.shape == (96, 96, 3) and f.dtype == np.uint8
    if ir:
        assert (f[..., 0] == f[..., 1]).all() and (f[..., 1] == f[..., 2]).all()
    elif lighting == "dark":
        assert f.mean() < 70
    else:
        assert f.mean() > 70


# -- windows and files -----------------------------------------------------------------


def test_window_cuts_frames_and_samples_like_the_aligner() -> None:
    sim = Simulator(driver(("talking", 1.0, 3.0)), 96, 96, 15, SR)
    w = sim.window(4.0, 2.0, 8)
    assert w.video.shape == (8, 96, 96, 3) and w.audio.shape == (2 * SR,)
    np.testing.assert_allclose(w.frame_times, 2.0 + 0.25 * np.arange(1, 9))
    assert w.n0 == 2 * SR
    np.testing.assert_array_equal(w.audio, sim.audio(2 * SR, 2 * SR))
    np.testing.assert_allclose(w.labels, [0, 0, 0, 0, 0.5])
    assert not w.labels_end.any()
    with pytest.raises(ValueError):
        sim.window(1.0, 2.0, 8)


def test_written_files_decode_with_video_audio_and_labels(tmp_path: Path) -> None:
    av = pytest.importorskip("av")
    sc = home(("smoke_alarm", 0.5, 2.5), seconds=3.0)
    files = write_files(sc, tmp_path / "out", 64, 48, fps=10, sample_rate=SR)
    with av.open(str(files.media)) as box:
        assert math.isclose(box.duration / 1e6, 3.0, abs_tol=0.1)
        assert {s.type for s in box.streams} == {"video", "audio"}
        frames = [f.to_ndarray(format="bgr24") for f in box.decode(video=0)]
    with av.open(str(files.media)) as box:
        audio = np.concatenate([f.to_ndarray().reshape(-1) for f in box.decode(audio=0)])
    assert len(frames) == 30 and frames[0].shape == (48, 64, 3)
    assert len(audio) == 3 * SR
    expected = Simulator(sc, 64, 48, 10, SR)
    assert np.abs(frames[12].astype(int) - expected.frame(12).astype(int)).mean() < 6
    with wave.open(str(files.wav)) as w:
        assert (w.getframerate(), w.getnchannels(), w.getnframes()) == (SR, 1, 3 * SR)
        pcm = np.frombuffer(w.readframes(3 * SR), dtype="<i2")
    np.testing.assert_array_equal(pcm, audio)
    np.testing.assert_allclose(pcm / 32767, expected.audio(0, 3 * SR), atol=1e-4)
    labels = json.loads(files.labels.read_text())
    assert labels["classes"] == list(CLASSES["home"]) and labels["fps"] == 10
    assert labels["events"] == [{"label": "smoke_alarm", "start": 0.5, "end": 2.5, "variant": None}]
    assert labels["seconds"] == 3.0 and labels["seed"] == 1 and labels["sample_rate"] == SR
