"""The model stage: card checks, the featurizer, and a runner over a simulated stream."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge.runtime.card import TensorInfo, card_path_for, load_card
from edge.timebase.clock import NS_PER_S, FakeClock
from edge.config import parse_config
from edge.errors import EngineError
from edge.join.spine import replay
from edge.service.run import Runner
from edge.runtime.base import load_engine
from edge.train.cards import make_card
from tests.tiny_model import tiny_model


@pytest.fixture
def model(tmp_path: Path) -> Path:
    return tiny_model(tmp_path, make_card("driver", "tiny"))


def test_card_sits_beside_every_form_of_a_model() -> None:
    assert card_path_for("engines/x.onnx") == Path("engines/x.yaml")
    assert card_path_for("engines/x.int8.onnx") == Path("engines/x.yaml")
    assert card_path_for("engines/x.plan") == Path("engines/x.yaml")
    assert card_path_for("engines/x.int8.plan") == Path("engines/x.yaml")


def test_engine_refuses_a_model_that_does_not_match_its_card(model: Path) -> None:
    card = load_card(card_path_for(model))
    card.inputs["audio"] = TensorInfo(shape=["B", 1, 64, 99])
    with pytest.raises(EngineError, match=r"input 'audio' has shape \['B', 1, 64, 197\], the card expects \['B', 1, 64, 99\]"):
        load_engine("onnx", model, card)


def test_missing_model_file_and_unknown_engine_are_clear(model: Path) -> None:
    card = load_card(card_path_for(model))
    with pytest.raises(EngineError, match="no such model file"):
        load_engine("onnx", model.with_name("nope.onnx"), card)
    with pytest.raises(EngineError, match="unknown engine type 'tensorflow'"):
        load_engine("tensorflow", model, card)


def config_for(model: Path) -> str:
    return f"""
sources:
  sim: {{type: scenario, scenario: driver, seconds: 20, seed: 3, width: 160, height: 120, fps: 10,
         loop: false}}
streams:
  cabin: {{video: sim, audio: sim}}
window: {{seconds: 2.0, frames: 8, hop: 0.5}}
model: {{path: "{model}"}}
"""


def test_runner_predicts_every_tick_of_a_simulated_stream(model: Path) -> None:
    cfg = parse_config(config_for(model))
    clock = FakeClock(100 * NS_PER_S)
    runner = Runner(cfg, clock)
    preds = []
    replay(runner.spine.sources["sim"], runner.spine, clock, lambda ws: preds.extend(runner.process(ws)))  # type: ignore[arg-type]
    assert len(preds) == 40  # 20 s at a 0.5 s hop
    late = preds[5:]
    assert all(p.video_valid == 1.0 and p.audio_valid > 0.99 for p in late)
    assert all(set(p.probs) == set(runner.classes) for p in preds)
    assert all("truth" in p.extra for p in preds)
    # the tiny model reacts to its inputs: probabilities are not constant over the scenario
    probs = np.array([[p.probs[c] for c in runner.classes] for p in late])
    assert probs.std(axis=0).max() > 1e-4


def test_window_shape_that_differs_from_the_card_is_a_config_error(model: Path) -> None:
    from edge.errors import ConfigError

    cfg = parse_config(config_for(model).replace("frames: 8", "frames: 6"))
    with pytest.raises(ConfigError, match="expects 2 s x 8 frames"):
        Runner(cfg, FakeClock())


def test_eval_scores_a_scenario_in_all_three_modes(model: Path, tmp_path: Path) -> None:
    from edge.evaluate.eval import evaluate, format_report

    sc = tmp_path / "s.yaml"
    sc.write_text(
        "task: driver\nseconds: 12\nseed: 5\nevents:\n"
        "  - {label: eyes_closed, start: 3, end: 6}\n  - {label: talking, start: 7, end: 11}\n"
    )
    cfg = parse_config(config_for(model))
    report = evaluate(cfg, [sc], log=None)
    for mode in ("both", "video_masked", "audio_masked"):
        assert report[mode]["ticks"] == 21  # ticks whose whole window lies in the 12 s
        assert set(report[mode]["classes"]) == set(make_card("driver", "x").class_names)
    table = format_report(report)
    assert "eyes_closed" in table and "macro" in table


def test_live_view_renders_bars_states_and_sources(model: Path) -> None:
    from edge.status.view import render

    cfg = parse_config(config_for(model))
    clock = FakeClock(100 * NS_PER_S)
    runner = Runner(cfg, clock)
    preds: list = []
    replay(runner.spine.sources["sim"], runner.spine, clock, lambda ws: preds.extend(runner.process(ws)), max_seconds=5)  # type: ignore[arg-type]
    lines = render(preds[-1:], runner.spine, clock.now_ns(), {c: 0.5 for c in runner.classes})
    assert lines[0].startswith("stream cabin")
    assert any(ln.strip().startswith("eyes_closed") for ln in lines)
    assert lines[-1].startswith("source sim")


def test_audio_span_comes_from_the_card_unless_the_config_sets_it(tmp_path: Path) -> None:
    from edge.errors import ConfigError

    home = tiny_model(tmp_path, make_card("home", "tinyhome"))
    assert load_card(card_path_for(home)).window["audio_seconds"] == 6.0
    text = config_for(home).replace("scenario: driver", "scenario: home")
    runner = Runner(parse_config(text), FakeClock(100 * NS_PER_S))
    spec = runner.spine.aligners["cabin"].spec
    assert spec.audio_span_s == 6.0 and spec.seconds == 2.0
    assert runner.featurizers["cabin"].n_columns == 597  # the card's audio input
    bad = text.replace("hop: 0.5}", "hop: 0.5, audio_seconds: 2.0}")
    with pytest.raises(ConfigError, match=r"2 s of audio per window, but model 'tinyhome' expects 6 s"):
        Runner(parse_config(bad), FakeClock())


def test_an_audio_ring_too_short_for_the_window_is_a_config_error(tmp_path: Path) -> None:
    from edge.errors import ConfigError

    home = tiny_model(tmp_path, make_card("home", "tinyhome"))
    text = config_for(home).replace("scenario: driver", "scenario: home, audio_buffer_seconds: 4")
    with pytest.raises(ConfigError, match=r"sources.sim: the audio ring holds 4 s, windows of stream 'cabin' need 6.75 s"):
        Runner(parse_config(text), FakeClock())


def test_decisions_turn_predictions_into_states_and_events(model: Path) -> None:
    text = config_for(model) + """
decisions:
  defaults: {tau: 0.0, on_threshold: 0.01, off_threshold: 0.0}
  rules:
    - {name: held, duration: {class: eyes_closed, at_least: 1.0}}
"""
    cfg = parse_config(text)
    clock = FakeClock(100 * NS_PER_S)
    runner = Runner(cfg, clock)
    preds, events = [], []

    def on_windows(ws: list) -> None:  # type: ignore[type-arg]
        ps = runner.process(ws)
        events.extend(runner.decide(ps))
        preds.extend(ps)

    replay(runner.spine.sources["sim"], runner.spine, clock, on_windows)  # type: ignore[arg-type]
    assert all("eyes_closed" in p.extra["states"] for p in preds)
    starts = [e for s, e in events if e.kind == "start"]
    assert [e.rule for e in starts] == ["held"]
    assert starts[0].evidence == {"eyes_closed": "video"}
    # the rule starts once eyes_closed has been on for 1 s: two ticks after the first
    assert starts[0].t_ns - preds[0].t_end_ns == pytest.approx(1.0 * NS_PER_S, abs=1)
    assert preds[-1].extra["rules"] == ["held"]


def test_alarm_cadence_rules_fire_from_beeps_heard_through_the_pipeline(tmp_path: Path) -> None:
    from edge.decisions.rules import HOME_RULES

    home = tiny_model(tmp_path, make_card("home", "tinyhome"))
    sc = tmp_path / "alarms.yaml"
    sc.write_text(
        "task: home\nseconds: 32\nseed: 11\nevents:\n"
        "  - {label: smoke_alarm, start: 2, end: 14, variant: square}\n"
        "  - {label: speech, start: 14.5, end: 17}\n"
        "  - {label: co_alarm, start: 17, end: 31}\n"
    )
    text = config_for(home).replace("scenario: driver, seconds: 20", f"scenario: {sc}")
    cfg = parse_config(text + HOME_RULES)
    clock = FakeClock(100 * NS_PER_S)
    runner = Runner(cfg, clock)
    src = runner.spine.sources["sim"]
    events = []
    replay(src, runner.spine, clock, lambda ws: events.extend(runner.decide(runner.process(ws))))  # type: ignore[arg-type]
    t0 = src.scenario_time  # type: ignore[attr-defined]
    fired = {(e.rule, e.kind): t0(e.started_ns) for _, e in events if e.kind in ("start", "end")}
    # T3 (520 Hz square): beeps from 2 s; confirmed after two 4 s cycles
    assert fired[("smoke_alarm", "start")] == pytest.approx(2.0, abs=0.05)
    assert ("smoke_alarm", "end") in fired
    # T4 (3 kHz): four 0.1 s beeps every 5.7 s from 17 s; confirmed over two cycles
    assert fired[("co_alarm", "start")] == pytest.approx(17.0, abs=0.05)
    # one episode each: speech and the switch from one alarm to the other start nothing more
    starts = [e.rule for _, e in events if e.kind == "start" and e.rule.endswith("_alarm")]
    assert sorted(starts) == ["co_alarm", "smoke_alarm"]


def test_rules_that_hear_say_what_they_lose_on_a_stream_without_audio(tmp_path: Path) -> None:
    """The home rules on a camera alone: the alarms' beep rhythms are never heard, the glass
    rule's quiet-shatter condition never met, its vetoes never applied: said rule by rule
    (``edge run`` prints them at start). With the microphone, nothing is said."""
    from edge.decisions.rules import HOME_RULES

    home = tiny_model(tmp_path, make_card("home", "tinyhome"))
    text = config_for(home).replace("scenario: driver", "scenario: home") + HOME_RULES
    assert Runner(parse_config(text), FakeClock(100 * NS_PER_S)).unheard() == []
    deaf = Runner(parse_config(text.replace("{video: sim, audio: sim}", "{video: sim}")), FakeClock())
    assert deaf.unheard() == [
        "stream cabin without audio: smoke_alarm never starts (its beep rhythm is never heard)",
        "stream cabin without audio: co_alarm never starts (its beep rhythm is never heard)",
        "stream cabin without audio: glass_break: its conditions that need a sound measured "
        "never hold and its unless never holds it back",
    ]
    no_rules = text[: text.index("decisions:")].replace("{video: sim, audio: sim}", "{video: sim}")
    assert Runner(parse_config(no_rules), FakeClock()).unheard() == []
    two = text.replace("  cabin: {video: sim, audio: sim}",
                       "  cabin: {video: sim}\n  hall: {video: sim}\n  den: {video: sim, audio: sim}")
    assert Runner(parse_config(two), FakeClock()).unheard()[0] == (
        "streams cabin, hall without audio: smoke_alarm never starts (its beep rhythm is never heard)")


def test_an_any_of_rule_whose_every_condition_needs_a_sound_never_starts_without_audio() -> None:
    from edge.decisions.decide import parse_decisions
    from edge.service.hearing import unheard

    dc = parse_decisions("""
decisions:
  rules:
    - name: loud_glass
      any_of:
        - {class: glass_break, at_least: 0.0, needs: {measure: high_rise, above: 20}}
    - name: held
      duration: {class: glass_break, at_least: 1.0}
""")
    assert unheard(dc) == ["loud_glass never starts (each condition needs a sound measured)"]
