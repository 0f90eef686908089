"""Training data from recordings: a media file plus labels.json, through the media source."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge.errors import ConfigError
from edge.sim.render import write_files
from edge.sim.scenario import label_fraction, parse_scenario
from edge.train.data import load_labels, recording_windows
from edge.train.train import make_card

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
