"""SIGHUP reloads are all or nothing: everything is checked and built first, then switched to;
a rejected reload leaves the sinks and the rules exactly as they ran."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.timebase.clock import NS_PER_S, FakeClock
from edge.config import load_config
from edge.errors import ConfigError
from edge.recorder.config import RecorderConfig
from edge.recorder.handover import RecorderSlot
from edge.service.run import Runner
from edge.service.daemon import reload_config
from edge.sinks.sinkset import SinkSet
from tests.conftest import demo_config, read_jsonl

ROOT = Path(__file__).resolve().parent.parent
ALWAYS = """    - name: always
      any_of:
        - {class: talking, at_least: 0.0}
"""
BAD_RULE = """    - name: shut
      duration: {class: eyes_shut, at_least: 1.0}
"""


class Notifier:
    def __init__(self) -> None:
        self.sent: list[str] = []

    def send(self, msg: str) -> None:
        self.sent.append(msg)


def write(path: Path, log: Path, rules: str = "") -> Path:
    demo = demo_config().replace("roots: [..]", f"roots: [{ROOT}, {path.parent}]")
    path.write_text(f'sinks:\n  log: {{type: jsonl, path: "{log}"}}\n' + demo + rules)
    return path


def rule_names(runner: Runner) -> list[str]:
    return runner.output_names()[2]


def record(i: int) -> dict[str, object]:
    return {"type": "event", "stream": "cabin", "rule": "sleep", "event": "start", "t_ns": i}


@pytest.fixture
def running(tmp_path: Path) -> tuple[Path, Runner, SinkSet]:
    cfg = write(tmp_path / "run.yaml", tmp_path / "a.jsonl")
    conf = load_config(cfg)
    runner = Runner(conf, FakeClock(1_000 * NS_PER_S))
    sinks = SinkSet(conf.sinks, taken={"--jsonl": str(tmp_path / "out.jsonl")})
    sinks.start()
    return cfg, runner, sinks


def test_a_rejected_reload_leaves_the_sinks_and_the_rules_as_they_ran(
    tmp_path: Path, running: tuple[Path, Runner, SinkSet], capsys: pytest.CaptureFixture[str]
) -> None:
    cfg, runner, sinks = running
    before = rule_names(runner)
    deciders = runner.deciders
    # The sink moves to b.jsonl, but a rule names a class the model lacks: only the runner
    # can tell, after the sinks were already built.
    write(cfg, tmp_path / "b.jsonl", BAD_RULE)
    notifier = Notifier()
    reload_config(str(cfg), runner, notifier, sinks)
    assert "reload rejected" in capsys.readouterr().err
    assert notifier.sent == ["RELOADING=1", "READY=1"]
    assert rule_names(runner) == before and runner.deciders is deciders
    sinks.publish(record(1))
    assert sinks.stop(2.0)
    assert sinks.stats()["log"]["detail"]["path"] == str(tmp_path / "a.jsonl")
    assert read_jsonl(tmp_path / "a.jsonl") == [record(1)]
    assert not (tmp_path / "b.jsonl").exists()  # the new sink was never started


def test_an_accepted_reload_switches_sinks_and_rules_together(
    tmp_path: Path, running: tuple[Path, Runner, SinkSet], capsys: pytest.CaptureFixture[str]
) -> None:
    cfg, runner, sinks = running
    write(cfg, tmp_path / "b.jsonl", ALWAYS)
    reload_config(str(cfg), runner, Notifier(), sinks)
    assert "reloaded decisions, health and sinks" in capsys.readouterr().err
    assert rule_names(runner)[-1] == "always"
    sinks.publish(record(2))
    assert sinks.stop(2.0)
    assert read_jsonl(tmp_path / "b.jsonl") == [record(2)]


def test_a_reload_giving_a_jsonl_sink_the_jsonl_option_file_is_rejected(
    tmp_path: Path, running: tuple[Path, Runner, SinkSet], capsys: pytest.CaptureFixture[str]
) -> None:
    cfg, runner, sinks = running
    write(cfg, tmp_path / "out.jsonl", ALWAYS)
    reload_config(str(cfg), runner, Notifier(), sinks)
    err = capsys.readouterr().err
    assert "reload rejected" in err and "--jsonl" in err
    assert "always" not in rule_names(runner)
    assert sinks.stats()["log"]["detail"]["path"] == str(tmp_path / "a.jsonl")
    sinks.stop(2.0)


def test_runner_prepare_reload_changes_nothing_until_applied(
    tmp_path: Path, running: tuple[Path, Runner, SinkSet]
) -> None:
    cfg, runner, sinks = running
    sinks.stop(1.0)
    before = (runner.config, runner.deciders, runner.hearing)
    plan = runner.prepare_reload(load_config(write(cfg, tmp_path / "a.jsonl", ALWAYS)))
    assert (runner.config, runner.deciders, runner.hearing) == before
    assert runner.apply_reload(plan) == []
    assert rule_names(runner)[-1] == "always" and runner.deciders is not before[1]
    with pytest.raises(ConfigError, match="eyes_shut"):
        runner.prepare_reload(load_config(write(cfg, tmp_path / "a.jsonl", BAD_RULE)))
    assert rule_names(runner)[-1] == "always"


def test_a_reload_changing_the_front_ends_needs_a_restart_and_leaves_them_as_they_run(
    tmp_path: Path, running: tuple[Path, Runner, SinkSet]
) -> None:
    """The cascade is built at start on the sources' rings: a reload cannot swap it, so new
    ``front_ends:`` are reported and the running config keeps the ones the cascade has."""
    cfg, runner, sinks = running
    sinks.stop(1.0)
    assert runner.config.front_ends is None
    text = cfg.read_text()
    cfg.write_text(text + "front_ends: {vad: {}}\n")
    assert runner.reload(load_config(cfg)) == ["front_ends"]
    assert runner.config.front_ends is None


def test_a_sink_reload_prepared_against_other_sinks_is_not_applied(tmp_path: Path) -> None:
    from edge.sinks.config import JsonlSinkConfig

    def jsonl(name: str) -> JsonlSinkConfig:
        return JsonlSinkConfig(type="jsonl", path=str(tmp_path / name))

    sinks = SinkSet({"a": jsonl("a.jsonl")})
    stale = sinks.prepare({"b": jsonl("b.jsonl")})
    sinks.reconfigure({"c": jsonl("c.jsonl")})
    with pytest.raises(RuntimeError, match="changed since"):
        sinks.apply(stale)
    assert sinks.names == ["c"]


def test_a_reload_keeps_unchanged_rules_running_and_ends_the_events_of_replaced_ones(
    tmp_path: Path, running: tuple[Path, Runner, SinkSet]
) -> None:
    """A SIGHUP that leaves ``decisions:`` as they were keeps the deciders, their running
    events and timed closures; one that changes them ends each running event at its last
    tick, given out with the next tick's events, so no start is left without its end."""
    from edge.service.run import Prediction

    cfg, runner, sinks = running
    sinks.stop(1.0)
    runner.reload(load_config(write(cfg, tmp_path / "a.jsonl", ALWAYS)))
    stream = next(iter(runner.deciders))

    def tick(t_s: float) -> list[tuple[str, str]]:
        p = Prediction(stream, int(t_s * NS_PER_S), 0, 0, {"talking": 1.0}, [], 1.0, 1.0, None, None)
        return [(e.rule, e.kind) for _, e in runner.decide([p])]

    assert ("always", "start") in tick(1.0)
    deciders = runner.deciders
    assert runner.reload(load_config(write(cfg, tmp_path / "a.jsonl", ALWAYS))) == []
    assert runner.deciders is deciders and "always" in runner.deciders[stream].active()
    assert tick(1.5) == []  # running on: no second start
    runner.reload(load_config(write(cfg, tmp_path / "a.jsonl", ALWAYS.replace("always", "still"))))
    assert runner.deciders is not deciders
    events = tick(2.0)
    assert ("always", "end") in events and ("still", "start") in events
    assert ("always", "start") not in events


def test_stopping_ends_the_running_events_at_the_last_tick(
    tmp_path: Path, running: tuple[Path, Runner, SinkSet]
) -> None:
    """What ``edge run`` gives out as it stops: each running event's end, dated at the last
    tick, so a consumer that saw a start is not left with a rule on."""
    from edge.service.run import Prediction

    cfg, runner, sinks = running
    sinks.stop(1.0)
    runner.reload(load_config(write(cfg, tmp_path / "a.jsonl", ALWAYS)))
    stream = next(iter(runner.deciders))
    p = Prediction(stream, 3 * NS_PER_S, 0, 0, {"talking": 1.0}, [], 1.0, 1.0, None, None)
    assert [(e.rule, e.kind) for _, e in runner.decide([p])] == [("always", "start")]
    (end,) = runner.close_decisions()
    assert end[0] == stream and (end[1].rule, end[1].kind, end[1].t_ns) == ("always", "end", 3 * NS_PER_S)
    assert runner.close_decisions() == [] and runner.deciders[stream].active() == []


def test_a_reload_removing_a_rule_the_running_recorder_names_is_rejected(tmp_path: Path) -> None:
    """The recorder runs as it started: a reload whose rules drop the one it records on is
    refused, not accepted with the recorder silently never triggering again."""
    conf = load_config(write(tmp_path / "run.yaml", tmp_path / "a.jsonl", ALWAYS))
    rec = tmp_path / "recordings"
    runner = Runner(conf.model_copy(update={"recorder": RecorderConfig(
        out_dir=str(rec), rules=["always"])}), FakeClock(1_000 * NS_PER_S))
    renamed = load_config(write(tmp_path / "run.yaml", tmp_path / "a.jsonl",
                                ALWAYS.replace("always", "still")))
    with pytest.raises(ConfigError, match="recorder.rules: no rule named 'always'"):
        runner.prepare_reload(renamed)
    assert runner.prepare_reload(load_config(write(tmp_path / "run.yaml", tmp_path / "a.jsonl",
                                                   ALWAYS))).decisions is None  # unchanged


def test_recordings_after_a_reload_keep_the_config_that_runs(
    tmp_path: Path, running: tuple[Path, Runner, SinkSet], capsys: pytest.CaptureFixture[str]
) -> None:
    """A recording keeps its config so that it can be read and replayed: after a reload that
    is the reloaded file when all of it applied, and the running config written out when a
    section of the file needs a restart (that section as started)."""
    from edge.config import parse_config
    from edge.recorder.core import FlightRecorder

    cfg, runner, sinks = running
    started = cfg.read_text()
    recorder = FlightRecorder.for_runner(RecorderConfig(out_dir=str(tmp_path / "rec")), runner,
                                         config_text=started)
    write(cfg, tmp_path / "a.jsonl", ALWAYS)
    reload_config(str(cfg), runner, Notifier(), sinks, RecorderSlot(recorder))
    assert recorder.config_text == cfg.read_text() != started  # the new rule is in it

    hop = runner.config.window.hop
    cfg.write_text(cfg.read_text().replace(f"hop: {hop}", f"hop: {hop * 2}"))
    assert f"hop: {hop * 2}" in cfg.read_text()
    reload_config(str(cfg), runner, Notifier(), sinks, RecorderSlot(recorder))
    assert "need a restart: window" in capsys.readouterr().err
    text = recorder.config_text
    assert text.startswith(f"# {cfg} was reloaded, but these sections of it need a restart: "
                           "window.")
    kept = parse_config(text)
    assert kept.window.hop == hop and [r.name for r in kept.decisions.rules][-1] == "always"
    assert kept.model_dump() == runner.config.model_dump()  # exactly what runs
    sinks.stop(2.0)


def test_sinks_a_reload_adds_where_none_ran_are_not_in_the_recordings_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """They start with the next restart, so the config a recording keeps has none."""
    from edge.config import parse_config
    from edge.recorder.core import FlightRecorder

    cfg = tmp_path / "run.yaml"
    demo = demo_config().replace("roots: [..]", f"roots: [{ROOT}, {tmp_path}]")
    cfg.write_text(demo)
    runner = Runner(load_config(cfg), FakeClock(1_000 * NS_PER_S))
    recorder = FlightRecorder.for_runner(RecorderConfig(out_dir=str(tmp_path / "rec")), runner,
                                         config_text=demo)
    write(cfg, tmp_path / "a.jsonl", ALWAYS)
    reload_config(str(cfg), runner, Notifier(), None, RecorderSlot(recorder))
    assert "need a restart: sinks" in capsys.readouterr().err
    assert recorder.config_text.startswith(f"# {cfg} was reloaded, but these sections of it "
                                           "need a restart: sinks.")
    kept = parse_config(recorder.config_text)
    assert kept.sinks == {} and [r.name for r in kept.decisions.rules][-1] == "always"
