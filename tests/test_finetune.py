"""Fine-tuning (``edge train --recordings DIR --init MODEL``): a trained model adapted to
recordings, scored on a held-out recording before and after."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest

from edge.errors import ConfigError
from edge.sim.render import write_files
from edge.sim.scenario import Event, Scenario

torch = pytest.importorskip("torch")

# One room, four recordings: a smoke alarm and a dog at different times in each. The last one
# is held out (validation split by recording).
ROOM = [
    [("smoke_alarm", 1.0, 6.0), ("dog_bark", 8.0, 11.0)],
    [("dog_bark", 0.5, 4.0), ("smoke_alarm", 5.5, 11.5)],
    [("smoke_alarm", 3.0, 9.0)],
    [("dog_bark", 1.0, 5.0), ("smoke_alarm", 6.0, 11.5)],
]


def record_room(root: Path) -> None:
    for i, events in enumerate(ROOM):
        sc = Scenario(task="home", seconds=12.0, seed=40 + i,
                      events=tuple(Event(label=c, start=a, end=b) for c, a, b in events))
        write_files(sc, root / f"rec{i}", width=160, height=120, fps=15)


@pytest.mark.slow
def test_fine_tuning_beats_the_starting_model_on_a_held_out_recording(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from edge.runtime.card import load_card
    from edge.cli import main
    from edge.train.train import TrainSettings, train

    start = tmp_path / "start"
    train(TrainSettings(task="home", scenarios=2, val_scenarios=1, seconds=8.0, epochs=1),
          start, "home-start", log=io.StringIO())
    record_room(tmp_path / "recs")
    out = tmp_path / "tuned"
    assert main(["train", "--recordings", str(tmp_path / "recs"), "--init",
                 str(start / "home-start.onnx"), "--out", str(out), "--epochs", "6",
                 "--lr", "2e-3"]) == 0
    card = load_card(out / "home-start-tuned.yaml")
    held = card.metrics["finetune_heldout"]
    assert held["recordings"] == ["rec3"]
    assert held["after"]["macro_f1"] > held["before"]["macro_f1"] + 0.1
    assert held["after"]["f1"]["smoke_alarm"] > held["before"]["f1"]["smoke_alarm"]
    # the card records both data sources and the starting model
    assert "rec0, rec1, rec2" in card.provenance["data"]
    assert "edge.sim random home scenarios" in card.provenance["data"]
    assert card.provenance["init"]["card"] == "home-start"
    assert card.name == "home-start-tuned"
    # the fine-tuned model serves: edge eval --recordings reads it like any other
    cfg = tmp_path / "home.yaml"
    cfg.write_text(json.dumps({
        "sources": {"s": {"type": "scenario", "scenario": "home"}},
        "streams": {"s": {"video": "s", "audio": "s"}},
        "model": {"path": str(out / "home-start-tuned.onnx")},
    }))
    capsys.readouterr()
    assert main(["eval", "--config", str(cfg), "--recordings", str(tmp_path / "recs" / "rec3"),
                 "--json"]) == 0
    after = json.loads(capsys.readouterr().out)
    assert after["both"]["macro_f1"] == pytest.approx(held["after"]["macro_f1"], abs=1e-4)


def test_a_model_is_rebuilt_from_its_onnx_file_computing_the_same_function(
    tmp_path: Path,
) -> None:
    """Every layer, the batch norms the exporter folded into convolutions included, comes back
    from the ONNX file: the rebuilt network's logits match ONNX Runtime's."""
    from edge.runtime.base import load_engine
    from edge.train.finetune import model_from_onnx
    from edge.train.fit import build_model
    from edge.train.cards import make_card, make_front_card
    from edge.train.train import export_onnx

    full = make_front_card("home", "h1")  # log-mel at full resolution (edge train --audio-pool 1)
    full.provenance["audio_pool"] = 1
    ens = make_front_card("home", "h2")  # edge train --members 2
    ens.provenance["members"] = 2
    blind = make_front_card("driver", "d2")  # edge train --unread face.roll
    blind.provenance["unread"] = ["face.roll"]
    for card in (make_card("driver", "d"), make_front_card("home", "h"), full, ens, blind):
        torch.manual_seed(1)
        net = build_model(card)
        for m in net.modules():  # statistics that are not the identity, as after training
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.bias.data.uniform_(-0.2, 0.2)
        path = tmp_path / f"{card.name}.onnx"
        export_onnx(net.eval(), card, path)
        rebuilt = model_from_onnx(path, card).eval()
        rng = np.random.default_rng(0)
        x = {k: rng.standard_normal([2 if isinstance(d, str) else d for d in v.shape])
             .astype(np.float32) for k, v in card.inputs.items()}
        for k in x:
            if k.endswith("mask"):
                x[k] = np.ones_like(x[k])
        ref = next(iter(load_engine("onnx", path, card).infer(x).values()))
        with torch.no_grad():
            got = rebuilt(*[torch.from_numpy(x[k]) for k in card.inputs]).numpy()
        np.testing.assert_allclose(got, ref, atol=1e-4)
        assert np.abs(ref).max() > 1e-2  # not a trivial zero function


def test_fine_tuning_refuses_what_it_cannot_do(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from edge.cli import main
    from edge.train.finetune import FineTuneSettings, finetune

    assert main(["train", "--init", "engines/home-av.onnx"]) == 2
    assert "--recordings" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="INT8"):
        from edge.runtime.card import load_card
        from edge.train.finetune import model_from_onnx

        model_from_onnx(Path("engines/home-av.int8.onnx"), load_card("engines/home-av.yaml"))
    record_room(tmp_path / "recs")
    with pytest.raises(ConfigError, match="at least 2 recordings of task 'driver'"):
        finetune(FineTuneSettings(recordings=str(tmp_path / "recs"),
                                  init="engines/driver-av.onnx"), None, tmp_path, "x",
                 log=io.StringIO())


@pytest.mark.slow
def test_a_merged_model_is_fine_tuned_part_by_part_and_merged_again(tmp_path: Path) -> None:
    """``--init`` a merged model: each part is fine-tuned on the same recordings and split, and
    the tuned parts merged again with every class from the part it came from, and every
    threshold the merge set."""
    from edge.cli import main
    from edge.export.merge import merge_models
    from edge.runtime.card import load_card
    from edge.train.train import TrainSettings, train

    start = tmp_path / "start"
    for seed in (0, 1):
        train(TrainSettings(task="home", scenarios=2, val_scenarios=1, seconds=8.0, epochs=1,
                            seed=seed), start / "parts", f"home-{seed}", log=io.StringIO())
    merge_models(start / "parts" / "home-0.onnx", {"smoke_alarm": start / "parts" / "home-1.onnx"},
                 start / "home-merged.onnx", thresholds={"person": 0.57})
    record_room(tmp_path / "recs")
    out = tmp_path / "tuned"
    assert main(["train", "--recordings", str(tmp_path / "recs"), "--init",
                 str(start / "home-merged.onnx"), "--out", str(out), "--epochs", "2"]) == 0
    card = load_card(out / "home-merged-tuned.yaml")
    parts = card.provenance["parts"]
    assert [p["model"] for p in parts] == ["home-0-tuned.onnx", "home-1-tuned.onnx"]
    assert parts[1]["classes"] == ["smoke_alarm"] and "smoke_alarm" not in parts[0]["classes"]
    # the starting model's thresholds are kept, the one its merge set included
    assert {c.name: c.threshold for c in card.classes}["person"] == 0.57
    assert card.provenance["thresholds"]["person"]["set"] == 0.57
    for p in parts:  # each part was scored before and after on the held-out recording
        assert p["metrics"]["finetune_heldout"]["recordings"] == ["rec3"]
        assert p["provenance"]["init"]["card"] in ("home-0", "home-1")
        assert (out / p["path"]).is_file()
    # the merge's parts moved or changed: refused, not fine-tuned from something else
    (start / "parts" / "home-1.onnx").write_bytes(b"changed")
    with pytest.raises(ConfigError, match="changed since home-merged.onnx was merged"):
        from edge.train.finetune import FineTuneSettings, finetune

        finetune(FineTuneSettings(recordings=str(tmp_path / "recs"),
                                  init=str(start / "home-merged.onnx")), None, out, "x",
                 log=io.StringIO())
