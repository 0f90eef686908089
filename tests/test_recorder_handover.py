"""A reload replaces the flight recorder without cutting a recording: the running one finishes
what it records, the new one, keeping every tick from the reload on, takes over with its whole
pre-roll, and a rejected recorder section changes nothing."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from edge.config import parse_config
from edge.join.spine import replay
from edge.recorder.config import RecorderConfig
from edge.recorder.core import FlightRecorder
from edge.recorder.handover import RecorderSlot, recorder_for, standby_journal
from edge.recorder.replay import replay_recording
from edge.service.daemon import reload_config
from edge.service.run import Runner
from edge.timebase.clock import NS_PER_S, FakeClock
from edge.train.cards import make_card
from tests.conftest import wait_for
from tests.test_recorder import START_S, THREE_RULES, config_text, recordings
from tests.tiny_model import tiny_model


class Notifier:
    def send(self, msg: str) -> None:
        pass


def manifests(out: Path) -> list[dict[str, Any]]:
    return [json.loads((d / "manifest.json").read_text()) for d in recordings(out)]


def run_with_slot(tmp_path: Path, first: RecorderConfig | None, then: RecorderConfig | None,
                  at_s: float, buffer_seconds: float = 6,
                  before_reload: Callable[[], object] | None = None,
                  standby: bool = False,
                  later: tuple[float, RecorderConfig | None] | None = None,
                  ) -> tuple[RecorderSlot, list[dict[str, Any]], list[Any]]:
    """THREE_RULES (r1 at 101.5 s, r2 at 104.0, r3 at 106.5) through a recorder slot whose
    recorder ``first`` is replaced by ``then`` at ``at_s`` s (and by ``later[1]`` at
    ``later[0]``), checked as the daemon checks it (``before_reload()`` is called just before);
    with ``standby``, the slot keeps a history while no recorder runs, as the daemon's does."""
    model = tiny_model(tmp_path, make_card("driver", "tiny"))
    clock = FakeClock(START_S * NS_PER_S)
    text = config_text(model, THREE_RULES, buffer_seconds=buffer_seconds)
    runner = Runner(parse_config(text), clock)
    slot = RecorderSlot(None if first is None else FlightRecorder.for_runner(first, runner))
    if standby:
        slot.keep_history(standby_journal(runner))
    reloads = {int(at_s * NS_PER_S): then}
    if later is not None:
        reloads[int(later[0] * NS_PER_S)] = later[1]
    records: list[dict[str, Any]] = []
    states: list[Any] = []

    def on_windows(ws: list[Any]) -> None:
        now = clock.now_ns()
        if now in reloads:
            if before_reload is not None:
                before_reload()
            slot.replace(recorder_for(reloads[now], runner, slot))
        ps = runner.process(ws)
        records.extend(slot.on_tick(now, ws, ps, runner.decide(ps)))
        states.append((now / NS_PER_S, slot.pending, (slot.stats() or {}).get("recorder_state")))

    replay(runner.spine.sources["sim"], runner.spine, clock, on_windows)  # type: ignore[arg-type]
    records.extend(slot.close(timeout_s=10))
    return slot, records, states


def test_a_replaced_recorder_finishes_its_recording_and_the_new_one_has_its_pre_roll(
    tmp_path: Path
) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    old = RecorderConfig(out_dir=str(a), rules=["r1"], pre_roll=0.5, post_roll=2.0)
    new = RecorderConfig(out_dir=str(b), rules=["r2"], pre_roll=2.5, post_roll=0.5)
    slot, records, states = run_with_slot(tmp_path, old, new, at_s=102.0)
    [ma] = manifests(a)  # r1's, whole: its post-roll ran past the reload
    assert ma["rule"] == "r1" and ma["truncated"] is False and ma["recorded_post_roll_s"] == 2.0
    [mb] = manifests(b)  # r2's, 0.5 s after the old one's ended: its whole pre-roll, kept
    assert mb["rule"] == "r2" and mb["recorded_pre_roll_s"] == 2.5  # from before the reload
    assert [(r["event"], r["rule"]) for r in records if r["event"] == "started"] == [
        ("started", "r1"), ("started", "r2")]
    assert sum(r["event"] == "saved" for r in records) == 2  # each said once, none lost
    waiting = [t for t, pending, _ in states if pending]
    assert waiting == [102.0, 102.5, 103.0, 103.5]  # until r1's recording ended
    assert replay_recording(recordings(b)[0]).identical
    assert slot.current is not None and slot.current.config.out_dir == str(b)


def test_a_longer_pre_roll_is_kept_from_the_reload_on(tmp_path: Path) -> None:
    """The running recorder's history is kept, from the reload, as long as the new pre-roll
    needs: the old one records r1 until 105.5 s, the new one takes over at 106.0 and r3 at
    106.5 gets 5 s of history, more than the old recorder kept for itself."""
    old = RecorderConfig(out_dir=str(tmp_path / "a"), rules=["r1"], pre_roll=0.5, post_roll=4.0)
    new = RecorderConfig(out_dir=str(tmp_path / "b"), rules=["r3"], pre_roll=5.0, post_roll=0.5)
    run_with_slot(tmp_path, old, new, at_s=102.0, buffer_seconds=12)
    [m] = manifests(tmp_path / "b")
    assert m["rule"] == "r3" and m["recorded_pre_roll_s"] == 5.0
    assert m["notes"] == []  # and the log-mel cache's warm-up before it, which the old lacked


@pytest.mark.parametrize("at_s", [103.0, 104.0])
def test_a_recorder_replaced_in_its_folder_takes_the_writer_over_and_misses_no_start(
    tmp_path: Path, at_s: float
) -> None:
    """The same ``out_dir``: the writer, the folder and the history go over, nothing closes or
    is rescanned, and a rule starting on the very tick of the reload is recorded."""
    a = tmp_path / "a"
    old = RecorderConfig(out_dir=str(a), rules=["r1"], pre_roll=0.5, post_roll=1.0)
    new = old.model_copy(update={"rules": ["r2", "r3"], "pre_roll": 1.5, "queue_chunks": 200})
    # a folder as the running writer leaves one it is still writing: a rescan would remove it
    writing = a / ".tmp-20260101T000000.000Z-r1"
    slot, records, _ = run_with_slot(tmp_path, old, new, at_s=at_s,
                                     before_reload=writing.mkdir)
    assert writing.is_dir()  # the folder was not rescanned under the running writer
    writing.rmdir()
    assert slot.current is not None
    assert slot.current._jobs.maxsize == 200  # the adopted writer's queue takes the new bound
    assert [m["rule"] for m in manifests(a)] == ["r1", "r2", "r3"]
    assert [m["recorded_pre_roll_s"] for m in manifests(a)] == [0.5, 1.5, 1.5]
    events = [(r["event"], r.get("rule")) for r in records]
    assert events.count(("started", "r2")) == 1 and sum(e == "saved" for e, _ in events) == 3
    assert all(replay_recording(d).identical for d in recordings(a))


def test_a_folder_the_new_recorder_cannot_use_rejects_the_reload(tmp_path: Path) -> None:
    model = tiny_model(tmp_path, make_card("driver", "tiny"))
    runner = Runner(parse_config(config_text(model, THREE_RULES)), FakeClock(START_S * NS_PER_S))
    (tmp_path / "file").write_text("not a folder")
    bad = RecorderConfig(out_dir=str(tmp_path / "file" / "rec"), rules=["r1"], pre_roll=0.5)
    from edge.errors import ConfigError

    with pytest.raises(ConfigError, match="recorder.out_dir: cannot use .*file/rec"):
        recorder_for(bad, runner)
    # a folder a replaced recorder's writer still writes in is not made over under it
    rec = RecorderConfig(out_dir=str(tmp_path / "x"), rules=["r1"], pre_roll=0.5)
    old = recorder_for(rec, runner)
    assert old is not None
    slot = RecorderSlot(old)
    slot.replace(None)
    old.writer_done = lambda: False  # type: ignore[method-assign]
    slot.on_tick(START_S * NS_PER_S, [], [], [])
    assert slot.current is None and slot.writing_in(str(tmp_path / "x"))
    with pytest.raises(ConfigError, match="still writing its last recording"):
        recorder_for(rec, runner, slot)


def test_a_reload_can_start_and_stop_the_recorder(tmp_path: Path) -> None:
    rec = RecorderConfig(out_dir=str(tmp_path / "r"), rules=["r2"], pre_roll=1.0, post_roll=0.5)
    slot, records, _ = run_with_slot(tmp_path, None, rec, at_s=101.0)  # started by a reload
    [m] = manifests(tmp_path / "r")
    assert m["rule"] == "r2" and m["recorded_pre_roll_s"] == 1.0
    s2 = tmp_path / "s2"
    s2.mkdir()
    rec2 = rec.model_copy(update={"out_dir": str(tmp_path / "r2")})
    slot, records, states = run_with_slot(s2, rec2, None, at_s=101.0)  # stopped by one
    assert slot.current is None and recordings(tmp_path / "r2") == []  # r2 at 104 s: none
    assert [state for t, _, state in states if t > 101.0] == [None] * 16  # no recorder since


def test_a_recorder_a_reload_adds_has_its_pre_roll_from_before_the_reload(
    tmp_path: Path
) -> None:
    """No recorder runs; one on r2 (104.0 s) with a 2.5 s pre-roll is added at 103.5 s. The
    slot's own history reaches back before the reload, log-mel warm-up included, and the
    recording replays exactly; without it the pre-roll starts at the reload."""
    rec = RecorderConfig(out_dir=str(tmp_path / "r"), rules=["r2"], pre_roll=2.5, post_roll=0.5)
    run_with_slot(tmp_path, None, rec, at_s=103.5, standby=True)
    [m] = manifests(tmp_path / "r")
    assert m["rule"] == "r2" and m["recorded_pre_roll_s"] == 2.5 and m["notes"] == []
    assert replay_recording(recordings(tmp_path / "r")[0]).identical
    s2 = tmp_path / "s2"
    s2.mkdir()
    bare = rec.model_copy(update={"out_dir": str(tmp_path / "bare")})
    run_with_slot(s2, None, bare, at_s=103.5)  # no history kept while none ran
    [m] = manifests(tmp_path / "bare")
    assert m["recorded_pre_roll_s"] < 1.0, m


def test_a_recorder_a_reload_removes_leaves_its_history_to_the_next_one(tmp_path: Path) -> None:
    """r1's recorder is removed at 102.5 s and one on r3 (106.5 s) with a 3 s pre-roll added at
    104.5: its pre-roll reaches back past the second reload, from the history the removed
    recorder kept and the slot kept on."""
    first = RecorderConfig(out_dir=str(tmp_path / "a"), rules=["r1"], pre_roll=0.5, post_roll=0.5)
    rec = RecorderConfig(out_dir=str(tmp_path / "b"), rules=["r3"], pre_roll=3.0, post_roll=0.5)
    slot, _, states = run_with_slot(tmp_path, first, None, at_s=102.5, buffer_seconds=12,
                                    standby=True, later=(104.5, rec))
    assert [m["rule"] for m in manifests(tmp_path / "a")] == ["r1"]
    assert [state for t, _, state in states if 102.5 <= t < 104.5] == [None] * 4  # none ran
    [m] = manifests(tmp_path / "b")
    assert m["rule"] == "r3" and m["recorded_pre_roll_s"] == 3.0 and m["notes"] == []
    assert replay_recording(recordings(tmp_path / "b")[0]).identical


def test_the_daemons_reload_replaces_the_recorder_or_rejects_it_whole(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = tiny_model(tmp_path, make_card("driver", "tiny"))
    cfg = tmp_path / "run.yaml"
    base = config_text(model, THREE_RULES) + f"paths: {{roots: [{tmp_path}]}}\n"
    cfg.write_text(base + f"recorder: {{out_dir: {tmp_path / 'a'}, rules: [r1], pre_roll: 1}}\n")
    from edge.config import load_config

    conf = load_config(cfg)
    runner = Runner(conf, FakeClock(START_S * NS_PER_S))
    assert conf.recorder is not None
    slot = RecorderSlot(FlightRecorder.for_runner(conf.recorder, runner))
    running = slot.current
    cfg.write_text(base + f"recorder: {{out_dir: {tmp_path / 'a'}, rules: [nope]}}\n")
    reload_config(str(cfg), runner, Notifier(), None, slot)
    err = capsys.readouterr().err
    assert "reload rejected" in err and "recorder.rules: no rule named 'nope'" in err
    assert not slot.pending and slot.current is running
    cfg.write_text(base + f"recorder: {{out_dir: {tmp_path / 'a'}, rules: [r3], pre_roll: 9}}\n")
    reload_config(str(cfg), runner, Notifier(), None, slot)
    assert "the recorder's pre_roll of 9 s needs" in capsys.readouterr().err  # rings too short
    assert not slot.pending
    cfg.write_text(base + f"recorder: {{out_dir: {tmp_path / 'a'}, rules: [r3], pre_roll: 1}}\n")
    reload_config(str(cfg), runner, Notifier(), None, slot)
    assert "the flight recorder is replaced once it has no recording" in capsys.readouterr().err
    assert slot.pending and runner.config.recorder is not None
    assert runner.config.recorder.rules == ["r3"]
    slot.close(timeout_s=2)


def test_sighup_starts_a_recorder_in_a_running_daemon(tmp_path: Path) -> None:
    import signal

    from tests.conftest import ALWAYS_RULE, demo_daemon, read_jsonl

    proc, cfg, out, demo = demo_daemon(tmp_path)

    def records(kind: str) -> list[dict[str, Any]]:
        return [r for r in (read_jsonl(out) if out.exists() else []) if r["type"] == kind]

    try:
        assert wait_for(lambda: len(records("prediction")) >= 4, 20.0)
        rec = tmp_path / "recordings"  # a rule and a recorder on it, both new
        cfg.write_text(demo + ALWAYS_RULE + f"recorder: {{out_dir: {rec}, rules: [always], "
                       "pre_roll: 0.5, post_roll: 0.5, max_seconds: 1.0}\n")
        proc.send_signal(signal.SIGHUP)
        assert wait_for(lambda: any(r["event"] == "saved" for r in records("recorder")), 20.0)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=5)
        assert proc.returncode == 0, err
        assert "reloaded decisions, health and sinks" in err and "the flight recorder starts" in err
        saved = recordings(rec)
        assert saved and "recorder: {out_dir:" in (saved[0] / "config.yaml").read_text()
        manifest = json.loads((saved[0] / "manifest.json").read_text())
        assert manifest["rule"] == "always"
        # beside it, the config that ran with every setting written out: the reloaded one
        from edge.config import parse_config

        ran = parse_config((saved[0] / manifest["settings"]).read_text())
        assert [r.name for r in ran.decisions.rules][-1] == "always"
        assert ran.recorder is not None and ran.recorder.rules == ["always"]
        # it started on the reload's first tick, its pre-roll from before: the daemon's history
        assert manifest["recorded_pre_roll_s"] >= 0.45, manifest  # 0.4998 measured; 0.0 without
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
