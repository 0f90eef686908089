"""The flight recorder and ``edge replay``: recordings around events, atomic and private on disk,
within their quota, failing without stopping the pipeline, and replayed bit for bit."""

from __future__ import annotations

import errno
import json
import os
import stat
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import edge.recorder.store as recorder_store
from edge.runtime.card import sha256_file
from edge.timebase.clock import NS_PER_S, FakeClock
from edge.config import parse_config
from edge.errors import ConfigError
from edge.join.spine import replay
from edge.recorder.checks import check_recorder, check_ring_capacity
from edge.recorder.config import RecorderConfig
from edge.recorder.core import FlightRecorder
from edge.recorder.journal import first_pre_roll_tick
from edge.recorder.replay import RecordingError, _arrays, format_replay, load_recording, replay_recording
from edge.service.run import Prediction, Runner
from edge.train.cards import make_card
from tests.conftest import wait_for
from tests.tiny_model import tiny_model

START_S = 100  # the FakeClock's start; the first tick is at 100.5 s, one every 0.5 s


@pytest.fixture
def model(tmp_path: Path) -> Path:
    return tiny_model(tmp_path, make_card("driver", "tiny"))


def config_text(model: Path, rules: str, seconds: float = 9, buffer_seconds: float = 6) -> str:
    # Thresholds so low that eyes_closed is on from the first tick: each rule starts exactly
    # `at_least` seconds after it (see test_run.py).
    return f"""
sources:
  sim: {{type: scenario, scenario: driver, seconds: {seconds}, seed: 3, width: 160, height: 120,
         fps: 10, loop: false, buffer_seconds: {buffer_seconds}}}
streams:
  cabin: {{video: sim, audio: sim}}
window: {{seconds: 2.0, frames: 8, hop: 0.5}}
model: {{path: "{model}"}}
decisions:
  defaults: {{tau: 0.0, on_threshold: 0.01, off_threshold: 0.0}}
  rules:
{rules}"""


ONE_RULE = "    - {name: held, duration: {class: eyes_closed, at_least: 4.0}}\n"  # starts at 104.5 s
THREE_RULES = (  # start at 101.5, 104.0 and 106.5 s
    "    - {name: r1, duration: {class: eyes_closed, at_least: 1.0}}\n"
    "    - {name: r2, duration: {class: eyes_closed, at_least: 3.5}}\n"
    "    - {name: r3, duration: {class: eyes_closed, at_least: 6.0}}\n"
)


@dataclass
class Run:
    runner: Runner
    recorder: FlightRecorder
    preds: list[Prediction] = field(default_factory=list)
    starts: list[tuple[str, int]] = field(default_factory=list)  # (rule, tick time)
    records: list[dict[str, Any]] = field(default_factory=list)


def run_recorded(
    model: Path, out: Path, decisions: str = ONE_RULE, close: bool = True,
    after_tick: Callable[[Run], None] | None = None, text: str | None = None,
    max_seconds: float | None = None, cap_s: float | None = None, **recorder: Any,
) -> Run:
    """A scenario through Runner -> decide -> recorder, as the run loop calls them (``text``:
    another config than ``config_text(model, decisions)``)."""
    text = config_text(model, decisions) if text is None else text
    clock = FakeClock(START_S * NS_PER_S)
    runner = Runner(parse_config(text), clock)
    rc = RecorderConfig(out_dir=str(out), **recorder,
                        **({} if cap_s is None else {"max_seconds": cap_s}))
    rec = FlightRecorder.for_runner(
        rc, runner, config_text=text, wall_clock=lambda: 1.7e9 + clock.now_ns() / NS_PER_S
    )
    rec.start()
    run = Run(runner, rec)

    def on_windows(ws: list[Any]) -> None:
        ps = runner.process(ws)
        events = runner.decide(ps)
        run.preds.extend(ps)
        run.starts.extend((e.rule, clock.now_ns()) for _, e in events if e.kind == "start")
        run.records.extend(rec.on_tick(clock.now_ns(), ws, ps, events))
        if after_tick is not None:
            after_tick(run)

    replay(runner.spine.sources["sim"], runner.spine, clock, on_windows, max_seconds)  # type: ignore[arg-type]
    if close:  # what the writer finished after the last tick comes with close()
        run.records.extend(rec.close(timeout_s=30))
    return run


def recordings(out: Path) -> list[Path]:
    return sorted(p for p in out.iterdir() if not p.name.startswith("."))


def test_an_event_writes_one_private_recording_spanning_pre_and_post_roll(model: Path, tmp_path: Path) -> None:
    out = tmp_path / "rec"
    run = run_recorded(model, out, pre_roll=1.5, post_roll=1.0)
    trigger = 104_500_000_000
    assert run.starts == [("held", trigger)]
    assert len(run.preds) == 18  # the whole 9 s scenario: the recorder never held a tick back
    [d] = recordings(out)
    assert d.name == "20231114T221504.500Z-held"  # sortable: UTC time of the trigger, then rule
    assert not any(p.name.startswith(".tmp-") for p in out.iterdir())
    assert [r["event"] for r in run.records] == ["started", "saved"]

    m = json.loads((d / "manifest.json").read_text())
    assert m["rule"] == "held" and m["trigger_ns"] == trigger and m["truncated"] is False
    assert m["recorded_pre_roll_s"] == 1.5 and m["recorded_post_roll_s"] == 1.0
    assert (m["compared_ticks"], m["warmup_ticks"]) == (6, 3)
    assert m["model"]["name"] == "tiny" and m["model"]["path"] == str(model.resolve())
    assert m["model"]["sha256"] == sha256_file(model)
    assert m["model"]["card_sha256"] == sha256_file(model.with_suffix(".yaml"))
    assert m["trigger_utc"] == "2023-11-14T22:15:04.500+00:00"
    assert (d / "config.yaml").read_text() == config_text(model, ONE_RULE)

    rec = load_recording(d)  # also checks every file against its sha256 in the manifest
    compared = [t for t in rec.ticks if t["compare"]]
    assert [t["now_ns"] - trigger for t in compared] == [k * NS_PER_S // 2 for k in range(-3, 3)]
    assert [t["role"] for t in rec.ticks] == ["warmup"] * 3 + ["pre"] * 3 + ["trigger", "post", "post"]
    # frames: from before the first compared window (103.0 - 2 s) through the last tick, none lost
    v = rec.data["sim"]
    pipe = np.concatenate([_arrays(d / f)["pipeline_ns"] for f in sorted(m["files"]) if f.startswith("video/")])
    assert pipe.min() <= 101_000_000_000 and pipe.max() == 105_500_000_000
    assert np.array_equal(v.seq, np.arange(v.seq[0], v.seq[0] + len(v.seq)))
    assert v.frames.dtype == np.uint8 and v.frames.shape[1:] == (120, 160, 3)
    # audio: from the first compared window's n0 (or earlier) to what the last tick fed
    first_n0 = compared[0]["windows"][0]["audio_n0"]
    assert v.samples is not None and v.mask is not None
    assert v.n0 <= first_n0 and v.n0 + len(v.samples) >= rec.ticks[-1]["feeds"]["cabin"]["to"]
    assert v.samples.dtype == np.float32 and v.mask.all()
    assert (d / "audio" / "sim.wav").stat().st_size == 44 + 2 * len(v.samples)
    # the recorded probabilities are the live ones, to the bit
    live = {(p.t_end_ns, c): p.probs[c] for p in run.preds for c in p.probs}
    assert all(live[(p["t_end_ns"], c)] == x for p in rec.predictions for c, x in p["probs"].items())
    assert [e["event"] for e in rec.events].count("start") == 1

    # private, and the manifest is the last file written
    assert stat.S_IMODE(out.stat().st_mode) == 0o700
    files = [p for p in d.rglob("*") if p.is_file()]
    assert {stat.S_IMODE(p.stat().st_mode) for p in d.rglob("*") if p.is_dir()} | {
        stat.S_IMODE(d.stat().st_mode)} == {0o700}
    assert {stat.S_IMODE(p.stat().st_mode) for p in files} == {0o600}
    assert set(m["files"]) | {"manifest.json"} == {str(p.relative_to(d)) for p in files}
    assert (d / "manifest.json").stat().st_mtime_ns >= max(p.stat().st_mtime_ns for p in files)
    st = run.recorder.stats()
    assert (st["recorder_state"], st["saved"], st["abandoned"], st["last_error"]) == ("stopped", 1, 0, None)


def test_replay_reproduces_every_recorded_prediction_bit_for_bit(model: Path, tmp_path: Path) -> None:
    out = tmp_path / "rec"
    run_recorded(model, out, pre_roll=1.5, post_roll=1.0)
    [d] = recordings(out)
    result = replay_recording(d)
    assert result.identical
    assert len(result.comparisons) == 6 and result.warmup_ticks == 3 and result.uncovered_ticks == 0
    assert all(c.max_abs_diff == 0.0 and c.aligned for c in result.comparisons)
    assert result.max_abs_diff == 0.0 and result.model_matches is True
    text = format_replay(result)
    assert text.splitlines()[-1] == "identical: all 6 predictions reproduced bit for bit"
    assert "     6     +0.000 s  cabin                 0  same" in text

    # The comparison has teeth: one recorded probability off by 1e-6 is found, and the
    # manifest's hashes catch the edit unless verification is skipped.
    lines = (d / "predictions.jsonl").read_text().splitlines()
    row = json.loads(lines[-1])
    cls = sorted(row["probs"])[0]
    row["probs"][cls] += 1e-6
    os.chmod(d / "predictions.jsonl", 0o600)
    (d / "predictions.jsonl").write_text("\n".join(lines[:-1] + [json.dumps(row)]) + "\n")
    with pytest.raises(RecordingError, match="predictions.jsonl does not match its sha256"):
        replay_recording(d)
    tampered = replay_recording(d, verify=False)
    assert not tampered.identical
    assert tampered.comparisons[-1].max_abs_diff == pytest.approx(1e-6, rel=1e-6)
    assert all(c.max_abs_diff == 0.0 for c in tampered.comparisons[:-1])
    assert format_replay(tampered).splitlines()[-1].startswith("DIFFERENT: 1 of 6 predictions differ")


def test_replay_follows_a_drifting_clock_fit_exactly(model: Path, tmp_path: Path) -> None:
    # A device clock 300 ppm fast with 3 ms delivery jitter: the clock model refits during the
    # recording, and the replay must map every tick through the fit it had then.
    out = tmp_path / "rec"
    text = config_text(model, ONE_RULE).replace(
        "type: scenario, scenario: driver, seconds: 9, seed: 3,", "type: synthetic, skew_ppm: 300, jitter_ms: 3, seed: 4,"
    ).replace("loop: false, ", "")
    run_recorded(model, out, text=text, max_seconds=9, pre_roll=1.5, post_roll=1.0)
    [d] = recordings(out)
    fits = {tuple(t["clocks"]["sim"]["video"]) for t in load_recording(d).ticks}
    assert len(fits) >= 3  # the fit changed while recording
    result = replay_recording(d)
    assert result.identical and len(result.comparisons) == 6


def test_a_trigger_during_the_post_roll_extends_the_recording(model: Path, tmp_path: Path) -> None:
    rules = ("    - {name: a, duration: {class: eyes_closed, at_least: 1.0}}\n"  # 101.5 s
             "    - {name: b, duration: {class: eyes_closed, at_least: 1.5}}\n")  # 102.0 s
    out = tmp_path / "rec"
    run_recorded(model, out, rules, pre_roll=0.5, post_roll=1.0)
    [d] = recordings(out)
    m = json.loads((d / "manifest.json").read_text())
    assert [(t["rule"], t["now_ns"]) for t in m["triggers"]] == [("a", 101_500_000_000), ("b", 102_000_000_000)]
    assert m["recorded_post_roll_s"] == 1.0 and m["last_trigger_ns"] == 102_000_000_000
    assert load_recording(d).ticks[-1]["now_ns"] == 103_000_000_000
    assert replay_recording(d).identical


def test_a_post_roll_the_length_cap_cuts_short_is_noted(model: Path, tmp_path: Path) -> None:
    """A second trigger 0.5 s after the first, with ``max_seconds`` 1.0: its post-roll ends at
    the cap, 0.5 s instead of 1.0 s, and the manifest says so."""
    rules = ("    - {name: a, duration: {class: eyes_closed, at_least: 1.0}}\n"  # 101.5 s
             "    - {name: b, duration: {class: eyes_closed, at_least: 1.5}}\n")  # 102.0 s
    out = tmp_path / "rec"
    run_recorded(model, out, rules, pre_roll=0.5, post_roll=1.0, cap_s=1.0)
    [d] = recordings(out)
    m = json.loads((d / "manifest.json").read_text())
    assert m["recorded_post_roll_s"] == 0.5
    assert "max_seconds (1 s from the first trigger) cuts the post-roll of b at 0.50 s to 0.50 s" in m["notes"]


def test_only_the_configured_rules_trigger(model: Path, tmp_path: Path) -> None:
    out = tmp_path / "rec"
    run_recorded(model, out, THREE_RULES, pre_roll=0.5, post_roll=0.5, rules=["r2"])
    assert [p.name for p in recordings(out)] == ["20231114T221504.000Z-r2"]


def test_closing_mid_recording_saves_it_truncated_and_replayable(model: Path, tmp_path: Path) -> None:
    # What SIGTERM does: the run stops half a second into a 3 s post-roll.
    def stop_soon(run: Run) -> None:
        if run.starts and run.runner.clock.now_ns() == run.starts[0][1] + NS_PER_S // 2:
            run.records.extend(run.recorder.close(timeout_s=30))

    out = tmp_path / "rec"
    run = run_recorded(model, out, close=False, after_tick=stop_soon, pre_roll=1.5, post_roll=3.0)
    assert run.recorder.stats()["recorder_state"] == "stopped"
    [d] = recordings(out)
    # the truncated recording's "saved" is not lost: close() hands it over, for the sinks
    assert [(r["event"], r.get("recording")) for r in run.records] == [("started", d.name), ("saved", d.name)]
    m = json.loads((d / "manifest.json").read_text())
    assert m["truncated"] is True and m["recorded_post_roll_s"] == 0.5
    result = replay_recording(d)
    assert result.identical and len(result.comparisons) == 5


def test_quota_deletes_the_oldest_recordings_first(model: Path, tmp_path: Path) -> None:
    # Three recordings of about 1.4, 2.2 and 2.2 MB: 5 MiB holds the newest two only.
    out = tmp_path / "rec"
    run = run_recorded(model, out, THREE_RULES, pre_roll=0.5, post_roll=0.5, quota_mb=5)
    assert [r for r, _ in run.starts] == ["r1", "r2", "r3"]
    kept = recordings(out)
    assert [p.name.split("-", 1)[1] for p in kept] == ["r2", "r3"]
    assert sum(f.stat().st_size for p in kept for f in p.rglob("*") if f.is_file()) <= 5 * 2**20
    deleted = [r for r in run.records if r["event"] == "deleted"]
    assert [(r["recording"].split("-", 1)[1], r["reason"]) for r in deleted] == [("r1", "quota")]
    st = run.recorder.stats()
    assert (st["saved"], st["deleted"]) == (3, 1) and st["disk_mb"] <= 5
    assert all(replay_recording(p).identical for p in kept)


def test_max_recordings_keeps_the_newest(model: Path, tmp_path: Path) -> None:
    out = tmp_path / "rec"
    run_recorded(model, out, THREE_RULES, pre_roll=0.5, post_roll=0.5, max_recordings=1)
    assert [p.name.split("-", 1)[1] for p in recordings(out)] == ["r3"]


def test_a_full_disk_abandons_the_recording_and_the_pipeline_goes_on(
    model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(path: Path, data: bytes) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(recorder_store, "write_private", full)
    out = tmp_path / "rec"
    run = run_recorded(model, out, close=False, pre_roll=1.5, post_roll=1.0)
    assert len(run.preds) == 18  # every tick predicted, before and after the failure
    rec = run.recorder
    assert wait_for(lambda: rec.stats()["abandoned"] == 1, 20.0)
    st = rec.stats()
    assert st["recorder_state"] == "error" and st["saved"] == 0
    assert st["last_error"].startswith("20231114T221504.500Z-held: No space left on device")
    rec.close(timeout_s=30)
    assert list(out.iterdir()) == []  # neither a recording nor a .tmp- folder
    assert rec.stats()["last_error"] == st["last_error"]


def test_a_stalled_writer_never_blocks_the_tick(model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The writer hangs on its first file; with room for 2 chunks the recording is abandoned
    # (named and counted), while every tick goes on at once.
    release = threading.Event()
    real = recorder_store.write_private

    def stalled(path: Path, data: bytes) -> None:
        release.wait(30)
        real(path, data)

    monkeypatch.setattr(recorder_store, "write_private", stalled)
    out = tmp_path / "rec"
    run = run_recorded(model, out, close=False, pre_roll=1.5, post_roll=1.0, queue_chunks=2)
    assert len(run.preds) == 18
    st = run.recorder.stats()
    assert st["abandoned"] == 1 and st["last_error"] == "20231114T221504.500Z-held: the writer fell 2 ticks behind"
    assert [r["event"] for r in run.records] == ["started", "abandoned"]
    assert st["tick_ms"]["max"] < 1000
    release.set()
    run.recorder.close(timeout_s=30)
    assert list(out.iterdir()) == []  # the half-written folder was removed


def test_leftovers_of_a_crash_are_removed_at_start(model: Path, tmp_path: Path) -> None:
    out = tmp_path / "rec"
    (out / ".tmp-x" / "video").mkdir(parents=True)
    (out / ".tmp-x" / "video" / "000000.npz").write_bytes(b"half")
    done = out / "20230101T000000.000Z-old"
    done.mkdir()
    (done / "manifest.json").write_text("{}")
    (out / "notes").mkdir()  # not ours: left alone
    runner = Runner(parse_config(config_text(model, ONE_RULE)), FakeClock())
    rec = FlightRecorder(RecorderConfig(out_dir=str(out)), runner.spine)
    rec.start()
    rec.close()
    assert sorted(p.name for p in out.iterdir()) == ["20230101T000000.000Z-old", "notes"]


def test_the_pre_roll_keeps_its_oldest_tick_when_ticks_jitter() -> None:
    hop, pre, T = NS_PER_S // 2, NS_PER_S // 2, 10 * NS_PER_S
    # a loaded daemon had the tick before the trigger 10 us more than a hop before it: a
    # pre-roll of one hop keeps that tick, early or late, and never one from two hops back
    for jitter in (-10_000, 0, 10_000, hop // 5):
        ticks = [T - 2 * hop, T - hop - jitter, T]
        assert first_pre_roll_tick(ticks, T, pre, hop) == 1, jitter
    assert first_pre_roll_tick([T - 2 * hop, T - hop - hop // 3, T], T, pre, hop) == 2
    assert first_pre_roll_tick([T - hop, T], T, 0, hop) == 1  # no pre-roll: the trigger alone
    assert first_pre_roll_tick([T], T, 3 * pre, hop) == 0  # history shorter than the pre-roll


def test_rings_too_short_for_the_pre_roll_are_a_config_error(model: Path) -> None:
    rc = RecorderConfig(pre_roll=1.5)
    ok = Runner(parse_config(config_text(model, ONE_RULE, buffer_seconds=6)), FakeClock())
    check_ring_capacity(rc, ok.spine)  # 1.5 + 2 + 0.25 + 2 * 0.5 = 4.75 s fit into 6 s
    short = Runner(parse_config(config_text(model, ONE_RULE, buffer_seconds=4)), FakeClock())
    with pytest.raises(ConfigError, match=r"sources.sim: the video ring holds 4 s, the recorder's "
                                          r"pre_roll of 1.5 s needs 4.75 s \(raise its buffer_seconds\)"):
        check_ring_capacity(rc, short.spine)


def test_recorder_rules_must_name_decision_rules(model: Path) -> None:
    runner = Runner(parse_config(config_text(model, ONE_RULE)), FakeClock())
    check_recorder(RecorderConfig(rules=["held"], pre_roll=1.5), runner.spine)
    with pytest.raises(ConfigError, match=r"recorder.rules: no rule named 'sleep' \(decisions has held\)"):
        check_recorder(RecorderConfig(rules=["sleep"]), runner.spine)


def test_recorder_config_refuses_unknown_keys_and_a_post_roll_past_the_cap() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="extra"):
        RecorderConfig.model_validate({"pre_rol": 3})
    with pytest.raises(ValidationError, match=r"max_seconds \(10\) must be >= post_roll \(20\)"):
        RecorderConfig(post_roll=20, max_seconds=10)
    assert all(f.description for f in RecorderConfig.model_fields.values())


def test_edge_run_publishes_the_saved_record_of_a_recording_cut_short_at_shutdown(
    model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``edge run`` stops 2.5 s into a scenario, in a 10 s post-roll: the recording is saved
    truncated and its ``saved`` record is in the JSONL, written after the last tick. (The
    writer's shutdown budget is widened here: what is checked is the order, not the disk.)"""
    from edge.service import daemon

    monkeypatch.setattr(daemon, "RECORDER_CLOSE_S", 30.0)

    cfg = tmp_path / "run.yaml"
    cfg.write_text(config_text(model, "    - {name: held, duration: {class: eyes_closed, at_least: 0.5}}\n")
                   + f'recorder: {{out_dir: "{tmp_path / "rec"}", pre_roll: 0.5, post_roll: 10.0}}\n')
    lines = tmp_path / "edge.jsonl"
    assert daemon.run_service(str(cfg), duration=2.5, jsonl=str(lines), live_view=False) == 0
    rows = [json.loads(line) for line in lines.read_text().splitlines()]
    recs = [(r["event"], r["recording"]) for r in rows if r["type"] == "recorder"]
    [d] = recordings(tmp_path / "rec")
    assert recs == [("started", d.name), ("saved", d.name)]
    assert rows[-1]["type"] == "recorder"  # after every prediction: it came with close()
    assert json.loads((d / "manifest.json").read_text())["truncated"] is True
