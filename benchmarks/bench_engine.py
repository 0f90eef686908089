"""Per-window model cost on ONNX Runtime CPU, and the feature stage beside it.

    python benchmarks/bench_engine.py --model engines/driver-av.onnx --out benchmarks/results/engine.json

Runs the model on real simulator windows (features from the serving code) at batch 1 and 8,
with 1 and 2 intra-op threads, alternating runs in rounds; reports medians in ms per window and
each as a ratio to the 1-thread batch-1 baseline measured in the same process.
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
    engines = {t: load_engine("onnx", args.model, card, {"threads": t}) for t in (1, 2)}
    cases = {f"threads {t}, batch {b}": (t, b) for t in (1, 2) for b in (1, 8)}
    times: dict[str, list[float]] = {k: [] for k in cases}
    for _ in range(args.rounds):
        for name, (t, b) in cases.items():
            batch = data.inputs(slice(0, b))
            engines[t].infer(batch)
            n = max(3, 24 // b)
            s = time.perf_counter()
            for _ in range(n):
                engines[t].infer(batch)
            times[name].append((time.perf_counter() - s) / (n * b) * 1e3)
    med = {k: float(np.median(v)) for k, v in times.items()}
    base = med["threads 1, batch 1"]
    result = {
        "model": args.model,
        "per_window_ms": {k: round(v, 3) for k, v in med.items()},
        "ratio_to_1thread_batch1": {k: round(v / base, 3) for k, v in med.items()},
        "simulate_and_featurize_ms_per_window": round(feat_ms, 2),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
