"""``edge label``: spans added, merged, cut out and listed; checked against the task; atomic."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edge.cli import main
from edge.recording.label import add_span, remove_span
from edge.sim.render import write_files
from edge.sim.scenario import parse_scenario


def test_adding_merges_with_the_class_and_removing_cuts_or_splits() -> None:
    ev = [{"label": "talking", "start": 1.0, "end": 3.0, "source": "me"}]
    ev = add_span(ev, ("talking", 2.5, 4.0))
    assert ev == [{"label": "talking", "start": 1.0, "end": 4.0, "source": "me"}]
    ev = add_span(ev, ("yawning", 5.0, 6.0))
    ev = remove_span(ev, ("talking", 2.0, 2.5))  # splits
    assert sorted((e["label"], e["start"], e["end"]) for e in ev) == [
        ("talking", 1.0, 2.0), ("talking", 2.5, 4.0), ("yawning", 5.0, 6.0)]
    assert remove_span(ev, ("phone", 0.0, 9.0)) == ev


def test_edge_label_edits_a_recording_and_refuses_what_the_task_cannot_hold(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sc = parse_scenario("task: driver\nseconds: 6\nseed: 1\nevents: []\n")
    rec = tmp_path / "rec"
    write_files(sc, rec, width=160, height=120, fps=15)
    (rec / "labels.json").unlink()
    # No labels yet: the task is needed, the length comes from the video.
    assert main(["label", str(rec), "--add", "talking", "1", "2"]) == 2
    assert "say which task" in capsys.readouterr().err
    assert main(["label", str(rec), "--task", "driver", "--add", "talking", "1", "2",
                 "--add", "eyes_closed", "3", "4.5"]) == 0
    data = json.loads((rec / "labels.json").read_text())
    assert data["task"] == "driver" and 5.9 <= data["seconds"] <= 6.1
    assert [(e["label"], e["start"], e["end"]) for e in data["events"]] == [
        ("talking", 1.0, 2.0), ("eyes_closed", 3.0, 4.5)]
    before = (rec / "labels.json").read_bytes()
    for bad, msg in (
        (["--add", "sneezing", "1", "2"], "unknown class 'sneezing'"),
        (["--add", "talking", "5", "9"], "9"),  # past the end of the recording
        (["--add", "talking", "3", "2"], "must be after"),
        (["--add", "yawning", "1.5", "1.8"], "yawning"),  # one mouth: not while talking
        (["--add", "talking", "x", "2"], "START and END are seconds"),
    ):
        capsys.readouterr()
        assert main(["label", str(rec), *bad]) == 2, bad
        err = capsys.readouterr().err
        assert err.startswith("edge: error: ") and msg in err and err.count("\n") == 1, err
        assert (rec / "labels.json").read_bytes() == before  # nothing half-written
    assert main(["label", str(rec), "--remove", "eyes_closed", "3.5", "4", "--list"]) == 0
    head, *rows = capsys.readouterr().out.splitlines()
    assert head.startswith("task driver, ") and head.endswith(" s, 3 events")
    assert rows == [
        "  talking            1.00     2.00  (1.00 s)",
        "  eyes_closed        3.00     3.50  (0.50 s)",
        "  eyes_closed        4.00     4.50  (0.50 s)",
    ]
    assert not list(rec.glob(".labels.*"))
