"""Per-window model cost on ONNX Runtime CPU, FP32 and INT8 side by side, and the feature stage.

    python benchmarks/bench_engine.py --model engines/driver-av.onnx --out benchmarks/results/engine.json

Runs the model (and its INT8 QDQ build ``X.int8.onnx`` where it exists) on real simulator
windows (features from the serving code) at batch 1 and 8, with 1 and 2 intra-op threads,
alternating all cases in rounds; reports medians in ms per window, each as a ratio to the FP32
1-thread batch-1 baseline measured in the same process, and the INT8 speed-up per case.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from edge.card import card_path_for, load_card
from edge.runtime.base import load_engine
from edge.sim.scenario import random_scenario
from edge.train.data import scenario_windows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--model", default="engines/driver-av.onnx")
    p.add_argument("--out", default="benchmarks/results/engine.json")
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
    engines = {
        (m, t): load_engine("onnx", path, card, {"threads": t})
        for m, path in models.items() for t in (1, 2)
    }
    cases = {f"{m} threads {t}, batch {b}": (m, t, b) for m in models for t in (1, 2) for b in (1, 8)}
    times: dict[str, list[float]] = {k: [] for k in cases}
    for _ in range(args.rounds):
        for name, (m, t, b) in cases.items():
            batch = data.inputs(slice(0, b))
            engines[m, t].infer(batch)
            n = max(3, 24 // b)
            s = time.perf_counter()
            for _ in range(n):
                engines[m, t].infer(batch)
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
        "simulate_and_featurize_ms_per_window": round(feat_ms, 2),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
