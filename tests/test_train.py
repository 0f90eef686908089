"""The reference network and `edge train` (torch extra): modality routing, export, card."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")


def test_each_class_answers_from_the_modality_its_card_names() -> None:
    from edge.train.model import FusionNet

    torch.manual_seed(0)
    net = FusionNet(3, 1, 64, 64, modalities=["video", "audio", "both"]).eval()
    v, vm = torch.randn(2, 8, 1, 64, 64), torch.ones(2, 8)
    a, am = torch.randn(2, 1, 64, 197), torch.ones(2, 197)
    with torch.no_grad():
        base = net(v, vm, a, am)
        other_audio = net(v, vm, torch.randn(2, 1, 64, 197), am)
        other_video = net(torch.randn(2, 8, 1, 64, 64), vm, a, am)
    # the video class ignores the audio, the audio class ignores the video
    assert torch.equal(base[:, 0], other_audio[:, 0])
    assert torch.equal(base[:, 1], other_video[:, 1])
    # the fused class listens to both
    assert not torch.equal(base[:, 2], other_audio[:, 2])
    assert not torch.equal(base[:, 2], other_video[:, 2])
    with pytest.raises(ValueError, match="video, audio or both"):
        FusionNet(2, 1, 64, 64, modalities=["video", "smell"])


@pytest.mark.slow
def test_train_exports_a_model_its_card_and_the_serving_code_accept(tmp_path: Path) -> None:
    from edge.runtime.card import load_card
    from edge.runtime.base import load_engine
    from edge.train.train import TrainSettings, train
    from edge.runtime.trt import check_trt

    settings = TrainSettings(task="home", scenarios=2, val_scenarios=1, seconds=8.0, epochs=1)
    card = train(settings, tmp_path, "tiny-home", log=io.StringIO())
    onnx_path = tmp_path / "tiny-home.onnx"
    assert load_card(tmp_path / "tiny-home.yaml") == card
    assert card.window["audio_seconds"] == 6.0 and card.inputs["audio"].shape[-1] == 597
    assert card.provenance["epochs"] == 1 and "validation_macro_f1" in card.metrics
    engine = load_engine("onnx", onnx_path, card)  # checks every tensor against the card
    batch = {k: np.zeros([2 if isinstance(d, str) else d for d in v.shape], np.float32)
             for k, v in card.inputs.items()}
    assert engine.infer(batch)["logits"].shape == (2, len(card.classes))
    assert [f for f in check_trt(onnx_path) if f.severity == "error"] == []
