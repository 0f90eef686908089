"""Training data from recordings: a media file plus labels.json, through the media source."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge.errors import ConfigError
from edge.sim.render import write_files
from edge.sim.scenario import label_fraction, parse_scenario
from edge.train.cards import make_card
from edge.train.data import load_labels, recording_windows

SCENARIO = """
task: driver
seconds: 8
seed: 2
events:
  - {label: eyes_closed, start: 3.0, end: 5.5}
  - {label: talking, start: 5.0, end: 7.5}
"""


def test_a_recording_folder_gives_labelled_windows(tmp_path: Path) -> None:
    sc = parse_scenario(SCENARIO)
    write_files(sc, tmp_path / "rec1", width=160, height=120, fps=15)
    card = make_card("driver", "x")
    ws = recording_windows(tmp_path / "rec1", card, hop_s=0.5)
    # windows whose 2 s span lies inside the 8 s file, one per 0.5 s tick; a window ends on the
    # newest frame, so its end sits on the file's 15 fps grid, within a frame of the tick
    assert len(ws) >= 11
    assert np.all(np.abs(np.diff(ws.t_s) - 0.5) <= 1 / 15 + 1e-6)
    assert ws.video_mask.mean() > 0.95 and ws.audio_mask.mean() > 0.95
    for y, t in zip(ws.labels, ws.t_s):
        np.testing.assert_allclose(y, label_fraction(sc, t - 0.5, t), atol=0.05)
    assert (ws.labels[:, 0] >= 0.5).any() and (ws.labels[:, 4] >= 0.5).any()


def test_labels_json_is_checked(tmp_path: Path) -> None:
    bad = tmp_path / "labels.json"
    bad.write_text('{"task": "driver", "seconds": 5, "events": [{"label": "sneezing", "start": 1, "end": 2}]}')
    with pytest.raises(ConfigError, match="sneezing"):
        load_labels(bad)
    with pytest.raises(ConfigError, match="needs a video file"):
        recording_windows(tmp_path, make_card("driver", "x"))


def test_eval_recordings_scores_a_recording_with_the_serving_pipeline_and_its_rules(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``edge eval --recordings``: the recording replayed through the served model and the
    config's rules; scored per class in three modes, with per-recording activity and events."""
    import json

    from edge.cli import main
    from tests.conftest import ROOT, demo_config

    sc = parse_scenario(SCENARIO)
    write_files(sc, tmp_path / "recs" / "rec1", width=160, height=120, fps=15)
    (tmp_path / "recs" / "notes").mkdir()  # a folder without labels.json is not a recording
    cfg = tmp_path / "demo.yaml"
    cfg.write_text(demo_config().replace("roots: [..]", f"roots: [{ROOT}]"))
    assert main(["eval", "--config", str(cfg), "--recordings", str(tmp_path / "recs"),
                 "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["recordings"] == [str(tmp_path / "recs" / "rec1")]
    for mode in ("both", "video_masked", "audio_masked"):
        assert report[mode]["ticks"] >= 11
        assert set(report[mode]["classes"]) == {"eyes_closed", "yawning", "distracted", "phone",
                                                "talking"}
    rec = report["per_recording"]["rec1"]
    assert rec["seconds"] == 8 and rec["ticks"] >= 11
    labelled = rec["both"]["labelled"]
    assert labelled["eyes_closed"] > 0.2 and labelled["talking"] > 0.2 and labelled["phone"] == 0
    # The simulator's own footage: the model sees the eyes closing and the talking.
    assert report["both"]["classes"]["eyes_closed"]["recall"] > 0.5
    assert all(e["event"] in ("start", "end") for e in rec["both"]["events"])
    # Video masked: a class the card gives to video cannot be active.
    assert rec["video_masked"]["active"]["eyes_closed"] == 0
    # The same as a table, and a task mismatch is one line.
    assert main(["eval", "--config", str(cfg), "--recordings", str(tmp_path / "recs" / "rec1")]) == 0
    out = capsys.readouterr().out
    assert "rec1 (8 s," in out and "rule events:" in out
    home = tmp_path / "home.yaml"
    home.write_text(cfg.read_text().replace("driver-av", "home-av"))
    assert main(["eval", "--config", str(home), "--recordings", str(tmp_path / "recs")]) == 2
    assert "no recordings of task 'home'" in capsys.readouterr().err


@pytest.mark.system
def test_eval_recordings_reports_a_microphone_that_hears_nothing_above_4_khz(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A recording whose sound went through 8 kHz: its health turns `degraded`, band-limited,
    in the report and the table; the same recording at 16 kHz stays `ok`."""
    import json
    import subprocess

    from edge.cli import main
    from tests.conftest import ROOT, demo_config, need

    sc = parse_scenario(SCENARIO.replace("seconds: 8", "seconds: 16"))
    full, narrow = tmp_path / "full" / "rec", tmp_path / "narrow" / "rec"
    write_files(sc, full, width=160, height=120, fps=15)
    narrow.mkdir(parents=True)
    subprocess.run([need("ffmpeg"), "-v", "error", "-i", str(full / "video.mkv"), "-c:v", "copy",
                    "-af", "aresample=8000,aresample=16000", "-c:a", "flac",
                    str(narrow / "video.mkv")], check=True)
    (narrow / "labels.json").write_bytes((full / "labels.json").read_bytes())
    cfg = tmp_path / "demo.yaml"
    cfg.write_text(demo_config().replace("roots: [..]", f"roots: [{ROOT}]"))

    def health(folder: Path) -> list[dict[str, object]]:
        assert main(["eval", "--config", str(cfg), "--recordings", str(folder), "--json"]) == 0
        return list(json.loads(capsys.readouterr().out)["per_recording"]["rec"]["both"]["health"])

    assert not any("band-limited" in str(h["reasons"]) for h in health(full))
    changes = health(narrow)
    assert [h["state"] for h in changes] == ["degraded"], changes
    assert "audio band-limited: nothing above 4 kHz" in str(changes[0]["reasons"])
    assert 9.6 <= float(changes[0]["t_s"]) <= 16  # type: ignore[arg-type]
    assert main(["eval", "--config", str(cfg), "--recordings", str(narrow)]) == 0
    assert "  health: degraded @" in capsys.readouterr().out


def test_eval_recordings_scores_several_tick_grids(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--phases 2``: each recording replayed on a second tick grid half a hop later; the frame
    scores pool both grids' ticks and the rule events are listed per grid."""
    import json

    from edge.cli import main
    from edge.config import load_config
    from edge.evaluate.eval import load_model
    from edge.evaluate.evalrec import format_recordings, run_recording
    from tests.conftest import ROOT, demo_config

    sc = parse_scenario(SCENARIO)
    write_files(sc, tmp_path / "recs" / "rec1", width=160, height=120, fps=15)
    cfg = tmp_path / "demo.yaml"
    cfg.write_text(demo_config().replace("roots: [..]", f"roots: [{ROOT}]"))
    config = load_config(cfg)
    hop = float(config.window.hop)
    engine = load_model(config)
    first = run_recording(config, tmp_path / "recs" / "rec1", engine)
    later = run_recording(config, tmp_path / "recs" / "rec1", engine, phase_s=hop / 2)
    # each later tick's window ends half a hop from the first grid's, within the frame its end
    # snaps to (15 fps)
    nearest = np.abs(later.times[:, None] - first.times[None, :]).min(axis=1)
    assert len(later.times) >= 10 and np.all(np.abs(nearest - hop / 2) <= 1 / 15 + 1e-6)
    with pytest.raises(ValueError, match="phase_s"):
        run_recording(config, tmp_path / "recs" / "rec1", engine, phase_s=hop)

    assert main(["eval", "--config", str(cfg), "--recordings", str(tmp_path / "recs"),
                 "--phases", "2", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["phases_s"] == [0.0, hop / 2]
    assert report["both"]["ticks"] == len(first.times) + len(later.times)
    rec = report["per_recording"]["rec1"]
    assert rec["ticks"] == len(first.times) + len(later.times)
    assert any(e["event"] == "start" for e in first.events)  # the eyes rule fires on this file
    assert rec["both"]["events_by_phase"] == [first.events, later.events]
    out = format_recordings(report)
    assert f"rec1 (8 s, {rec['ticks']} ticks on 2 grids)" in out
    assert "rule events (grid +0 s):" in out and f"rule events (grid +{hop / 2:g} s):" in out
    assert main(["eval", "--config", str(cfg), "--scenario", "configs/scenarios",
                 "--phases", "2"]) == 2
    assert "--phases: with --recordings only" in capsys.readouterr().err
    assert main(["eval", "--config", str(cfg), "--recordings", str(tmp_path / "recs"),
                 "--phases", "0"]) == 2
    assert "1 or more replays" in capsys.readouterr().err
