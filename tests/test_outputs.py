"""The run loop's outputs together: sinks from the config, their stats in /metrics."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from edge.timebase.clock import NS_PER_S, FakeClock
from edge.config import parse_config
from edge.join.spine import replay
from edge.service.run import Runner
from edge.service.daemon import Service
from edge.sinks.sinkset import SinkSet
from tests.conftest import demo_config, read_jsonl

ROOT = Path(__file__).resolve().parent.parent


def test_two_jsonl_sinks_get_every_record_and_metrics_carry_both(tmp_path: Path) -> None:
    demo = demo_config(loop=False)
    cfg = parse_config(demo + f"""
sinks:
  all: {{type: jsonl, path: "{tmp_path / 'all.jsonl'}"}}
  events: {{type: jsonl, path: "{tmp_path / 'ev' / 'events.jsonl'}", records: [event]}}
""")
    clock = FakeClock(1_000 * NS_PER_S)
    runner = Runner(cfg, clock)
    sinks = SinkSet(cfg.sinks)
    sinks.start()
    service = Service(runner, publish=sinks.publish, sink_stats=sinks.stats)
    replay(runner.spine.sources["cabin"], runner.spine, clock, service.on_windows,  # type: ignore[arg-type]
           max_seconds=30)
    sinks.stop(timeout_s=5.0)
    rows = read_jsonl(tmp_path / "all.jsonl")
    preds = [r for r in rows if r["type"] == "prediction"]
    events = [r for r in rows if r["type"] == "event"]
    assert len(preds) == runner.spine.ticks == 60
    # the scripted eyes closed 13-17 s makes a sleep episode (>= 3 s): its start and end
    assert [(e["rule"], e["event"]) for e in events if e["event"] != "update"][:2] == [
        ("sleep", "start"), ("sleep", "end")]
    only = read_jsonl(tmp_path / "ev" / "events.jsonl")
    assert only == events
    assert (tmp_path / "ev").stat().st_mode & 0o777 == 0o700
    assert (tmp_path / "all.jsonl").stat().st_mode & 0o777 == 0o600
    fams = {f.name: f for f in text_string_to_metric_families(service.metrics.text().decode())}
    sent = {s.labels["sink"]: s.value for s in fams["edge_sink_sent"].samples
            if s.name == "edge_sink_sent_total"}
    assert sent == {"all": float(len(rows)), "events": float(len(events))}
    assert {s.labels["rule"] for s in fams["edge_events"].samples} >= {"sleep"}


def test_shipped_device_configs_pass_the_run_time_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Beyond the schema: the model loads, rules name its classes, the rings hold what the
    window and the recorder's pre-roll need, and the sinks build (secrets from the env)."""
    from edge.timebase.clock import MonotonicClock
    from edge.config import load_config
    from edge.recorder.checks import check_recorder

    monkeypatch.setenv("EDGE_MQTT_PASSWORD", "x")
    for name in ("driver.yaml", "home.yaml", "demo.yaml"):
        path = ROOT / "configs" / name
        cfg = load_config(path)
        runner = Runner(cfg, MonotonicClock())
        assert runner.deciders, name
        if cfg.recorder is not None:
            check_recorder(cfg.recorder, runner.spine)
        SinkSet(cfg.sinks)  # built, not started: no broker needed


def test_windows_already_older_than_the_budget_are_skipped_and_counted() -> None:
    demo = demo_config(loop=False)
    # A budget shorter than a frame interval: the newest frame is usually older than that.
    cfg = parse_config(demo.replace("  hop: 0.5", "  hop: 0.5\n  budget: 0.02"))
    clock = FakeClock(1_000 * NS_PER_S)
    runner = Runner(cfg, clock)
    preds: list[object] = []
    service = Service(runner, publish=lambda r: preds.append(r) if r["type"] == "prediction" else None)
    replay(runner.spine.sources["cabin"], runner.spine, clock, service.on_windows,  # type: ignore[arg-type]
           max_seconds=10)
    assert runner.spine.ticks == 20
    assert service.late_windows > 0 and len(preds) == 20 - service.late_windows
    fams = {f.name: f for f in text_string_to_metric_families(service.metrics.text().decode())}
    late = [s.value for s in fams["edge_ticks"].samples if s.labels.get("outcome") == "late"]
    assert late == [float(service.late_windows)]


def test_a_tick_whose_windows_are_all_too_late_is_still_supervised() -> None:
    from edge.service.supervise import Supervisor

    cfg = parse_config(demo_config(loop=False).replace("  hop: 0.5", "  hop: 0.5\n  budget: 0.001"))
    clock = FakeClock(1_000 * NS_PER_S)
    runner = Runner(cfg, clock)
    checks: list[int] = []
    sup = Supervisor()
    sup.watch("cabin", "source", alive=lambda: False, should_run=lambda: False,
              restart=lambda: None)
    check = sup.check
    sup.check = lambda now: checks.append(now) or check(now)  # type: ignore[method-assign]
    service = Service(runner, supervisor=sup)
    replay(runner.spine.sources["cabin"], runner.spine, clock, service.on_windows,  # type: ignore[arg-type]
           max_seconds=3)
    assert runner.spine.ticks == 6 and service.late_windows >= 2  # some ticks had no window
    assert len(checks) == 6  # yet every tick was supervised
    assert service.last_tick_ns == checks[-1]


def test_a_run_that_fails_to_start_leaves_nothing_running_or_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The recorder is started, then a sink's secret is missing (exit 2 in `edge run`): the
    recorder's thread and the predictions file are closed again, not left to the process."""
    import os
    import threading

    from edge.errors import ConfigError
    from edge.service.daemon import run_service

    monkeypatch.delenv("EDGE_TEST_NO_SUCH_SECRET", raising=False)
    demo = (ROOT / "configs" / "demo.yaml").read_text()
    cfg = tmp_path / "run.yaml"
    demo = demo.replace("roots: [..]", f"roots: [{ROOT}, {tmp_path}]")
    demo = demo.replace("    loop: true\n", "    loop: true\n    buffer_seconds: 6\n")
    cfg.write_text(demo + f"""
recorder: {{out_dir: "{tmp_path / 'rec'}", rules: [sleep], pre_roll: 1.0, post_roll: 1.0}}
sinks:
  broker: {{type: mqtt, host: 127.0.0.1, username: u, password_env: EDGE_TEST_NO_SUCH_SECRET}}
""")
    preds = tmp_path / "preds.jsonl"
    with pytest.raises(ConfigError, match="EDGE_TEST_NO_SUCH_SECRET is not set"):
        run_service(str(cfg), duration=1.0, jsonl=str(preds), live_view=False)
    assert preds.exists()  # it was opened before the sinks failed ...
    open_files = {os.path.realpath(f"/proc/self/fd/{fd}") for fd in os.listdir("/proc/self/fd")}
    assert str(preds) not in open_files  # ... and is closed again
    assert not [t for t in threading.enumerate() if t.name == "edge-recorder"]


def strict_json(line: str) -> object:
    """Parse as JSON proper: NaN and Infinity are not JSON."""
    import json

    def refuse(word: str) -> object:
        raise ValueError(f"not JSON: {word}")

    return json.loads(line, parse_constant=refuse)


def test_records_on_stdout_are_strict_json_with_nan_as_null_like_the_jsonl_sink() -> None:
    import io
    import math

    from edge.sinks.records import encode_record

    runner = Runner(parse_config(demo_config()), FakeClock(1_000 * NS_PER_S))
    out = io.StringIO()
    rec = {"type": "prediction", "stream": "cabin", "probs": {"talking": math.nan},
           "latency_ms": math.inf, "skew": [-math.inf, 0.5]}
    Service(runner, out=out).emit([rec])
    line = out.getvalue()
    assert strict_json(line) == {"type": "prediction", "stream": "cabin",
                                 "probs": {"talking": None}, "latency_ms": None,
                                 "skew": [None, 0.5]}
    assert line.encode() == encode_record(rec) + b"\n"  # the same line as the JSONL sink's


def test_reports_and_healthz_json_write_nan_as_null() -> None:
    import math

    from edge.jsonout import dumps

    doc = {"f1": math.nan, "per_class": [{"p": math.inf}], "ok": 1.0}
    for text in (dumps(doc), dumps(doc, indent=2), dumps(doc, compact=True)):
        assert strict_json(text) == {"f1": None, "per_class": [{"p": None}], "ok": 1.0}


def test_two_jsonl_sinks_writing_one_file_are_a_config_error(tmp_path: Path) -> None:
    from edge.errors import ConfigError
    from edge.sinks.config import JsonlSinkConfig

    (tmp_path / "link").symlink_to(tmp_path)
    a = JsonlSinkConfig(type="jsonl", path=str(tmp_path / "x.jsonl"))
    b = JsonlSinkConfig(type="jsonl", path=str(tmp_path / "link" / "x.jsonl"))
    with pytest.raises(ConfigError, match=r"sinks\.b\.path: .* also written by sinks\.a"):
        SinkSet({"a": a, "b": b})


def test_run_refuses_a_jsonl_option_naming_a_file_a_jsonl_sink_writes(tmp_path: Path) -> None:
    """Under systemd every record was written twice (--jsonl and the config's sink): one
    writer per file, refused before the file is created."""
    from edge.errors import ConfigError
    from edge.service.daemon import run_service

    demo = demo_config().replace("roots: [..]", f"roots: [{ROOT}, {tmp_path}]")
    cfg = tmp_path / "run.yaml"
    cfg.write_text(f'sinks:\n  log: {{type: jsonl, path: "{tmp_path / "edge.jsonl"}"}}\n' + demo)
    (tmp_path / "link").symlink_to(tmp_path)
    with pytest.raises(ConfigError, match=r"sinks\.log\.path: .* also written by --jsonl"):
        run_service(str(cfg), duration=1.0, jsonl=str(tmp_path / "link" / "edge.jsonl"),
                    live_view=False)
    assert not (tmp_path / "edge.jsonl").exists()


def test_run_with_no_jsonl_writes_records_only_to_the_config_sinks(tmp_path: Path) -> None:
    import io

    from edge.service.daemon import run_service

    demo = demo_config().replace("roots: [..]", f"roots: [{ROOT}, {tmp_path}]")
    cfg = tmp_path / "run.yaml"
    cfg.write_text(f'sinks:\n  log: {{type: jsonl, path: "{tmp_path / "edge.jsonl"}"}}\n' + demo)
    stdout = io.StringIO()  # not a terminal: without --no-jsonl it would get every record
    assert run_service(str(cfg), duration=1.5, jsonl="", live_view=False, stdout=stdout) == 0
    assert stdout.getvalue() == ""
    rows = read_jsonl(tmp_path / "edge.jsonl")
    assert [r for r in rows if r["type"] == "prediction"]
