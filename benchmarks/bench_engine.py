"""Per-window model cost: ONNX Runtime FP32 and INT8 QDQ, and PyTorch eager, side by side.

    python benchmarks/bench_engine.py --model engines/driver-av.onnx --name engine-driver

Runs the model (and its INT8 QDQ build ``X.int8.onnx`` where it exists) on real simulator
windows (features from the serving code) at batch 1 and 8, with 1 and 2 intra-op threads,
alternating all cases in rounds; reports medians in ms per window, each as a ratio to the FP32
1-thread batch-1 baseline measured in the same process, and the INT8 speed-up per case.

PyTorch eager (train extra) runs the same architecture (``edge.train.model.FusionNet`` built
from the card, eval mode, ``torch.inference_mode``) on the same windows. Its weights are fresh,
not the trained ones (the ONNX export folds BatchNorm into the convolutions, so its weights do
not load back): the figure is the runtime's cost for this network, not its predictions.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, bar_chart, write_result  # noqa: E402

from edge.runtime.card import card_path_for, load_card
from edge.runtime.base import load_engine
from edge.sim.scenario import random_scenario
from edge.train.data import scenario_windows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--model", default="engines/driver-av.onnx")
    p.add_argument("--name", default="engine", help="results/NAME.json and NAME.png")
    p.add_argument("--out-dir", type=Path, default=RESULTS)
    p.add_argument("--rounds", type=int, default=7)
    args = p.parse_args()
    card = load_card(card_path_for(args.model))
    scenario = random_scenario(card.task, 12.0, np.random.default_rng(5))  # type: ignore[arg-type]
    t0 = time.perf_counter()
    data = scenario_windows(scenario, card)
    feat_ms = (time.perf_counter() - t0) / len(data) * 1e3
    models = {"fp32": args.model}
    int8 = Path(args.model).with_name(Path(args.model).name.replace(".onnx", ".int8.onnx"))
    if int8.is_file():
        models["int8"] = str(int8)
    engines: dict[tuple[str, int], Any] = {
        (m, t): load_engine("onnx", path, card, {"threads": t})
        for m, path in models.items() for t in (1, 2)
    }
    runs: dict[tuple[str, int], Callable[[dict[str, np.ndarray]], Any]] = {
        k: e.infer for k, e in engines.items()}
    torch_net = pytorch_model(card)
    if torch_net is not None:
        for t in (1, 2):
            runs["pytorch", t] = torch_net(t)
    kinds = list(models) + (["pytorch"] if torch_net is not None else [])
    cases = {f"{m} threads {t}, batch {b}": (m, t, b) for m in kinds for t in (1, 2) for b in (1, 8)}
    times: dict[str, list[float]] = {k: [] for k in cases}
    for _ in range(args.rounds):
        for name, (m, t, b) in cases.items():
            batch = data.inputs(slice(0, b))
            runs[m, t](batch)
            n = max(3, 24 // b)
            s = time.perf_counter()
            for _ in range(n):
                runs[m, t](batch)
            times[name].append((time.perf_counter() - s) / (n * b) * 1e3)
    med = {k: float(np.median(v)) for k, v in times.items()}
    base = med["fp32 threads 1, batch 1"]
    result = {
        "model": args.model,
        "int8_model": models.get("int8"),
        "rounds": args.rounds,
        "per_window_ms": {k: round(v, 3) for k, v in med.items()},
        "ratio_to_fp32_1thread_batch1": {k: round(v / base, 3) for k, v in med.items()},
        "int8_speedup": {
            k[len("fp32 "):]: round(v / med["int8 " + k[len("fp32 "):]], 2)
            for k, v in med.items() if k.startswith("fp32 ") and "int8 " + k[len("fp32 "):] in med
        },
        "onnxruntime_fp32_speedup_over_pytorch": {
            k[len("fp32 "):]: round(med["pytorch " + k[len("fp32 "):]] / v, 2)
            for k, v in med.items() if k.startswith("fp32 ") and "pytorch " + k[len("fp32 "):] in med
        },
        "simulate_and_featurize_ms_per_window": round(feat_ms, 2),
    }
    write_result(args.name, result, args.out_dir)
    groups: dict[str, dict[str, float]] = {}
    for name, (m, t, b) in cases.items():
        groups.setdefault(f"{t} thread{'s' if t > 1 else ''}, batch {b}", {})[m] = med[name]
    bar_chart(args.name, f"{card.name}: ms per window", groups, "ms per window", args.out_dir)
    print(json.dumps(result, indent=2))


def pytorch_model(card: Any) -> Callable[[int], Callable[[dict[str, np.ndarray]], Any]] | None:
    """A runner factory (threads -> infer) for the card's network in PyTorch eager, or None
    without torch."""
    try:
        import torch
    except ImportError:
        print("torch not installed (train extra): PyTorch cases skipped", file=sys.stderr)
        return None
    from edge.features.frames import VideoSpec
    from edge.train.model import FusionNet

    vs = VideoSpec.from_dict(card.video)
    torch.manual_seed(0)
    net = FusionNet(len(card.class_names), vs.channels, vs.height, int(card.audio["n_mels"]),
                    modalities=[c.modality for c in card.classes]).eval()

    def runner(threads: int) -> Callable[[dict[str, np.ndarray]], Any]:
        def infer(batch: dict[str, np.ndarray]) -> Any:
            torch.set_num_threads(threads)
            with torch.inference_mode():
                return net(*(torch.from_numpy(batch[k]) for k in
                             ("video", "video_mask", "audio", "audio_mask")))

        return infer

    return runner


if __name__ == "__main__":
    main()
