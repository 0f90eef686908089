"""What every benchmark shares: alternating timing, machine facts, JSON results and one chart.

Machines here are noisy, so no figure stands alone: each case is timed in rounds that alternate
with its baseline in the same process, and results are medians and ratios. Each benchmark writes
``benchmarks/results/NAME.json`` and ``benchmarks/results/NAME.png``.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"


def per_call_s(fn: Callable[[], Any], calls: int) -> float:
    """Mean seconds per call of ``fn`` over ``calls`` calls."""
    t0 = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - t0) / calls


def alternate(cases: Mapping[str, Callable[[], Any]], calls: int, rounds: int) -> dict[str, float]:
    """Median seconds per call of each case, the cases run in turn in every round."""
    for fn in cases.values():
        fn()  # warm caches, page tables and lazy initialisation
    times: dict[str, list[float]] = {k: [] for k in cases}
    for _ in range(rounds):
        for name, fn in cases.items():
            times[name].append(per_call_s(fn, calls))
    return {k: float(np.median(v)) for k, v in times.items()}


def machine() -> dict[str, Any]:
    """Facts that explain a figure: the CPU (its model and whether it has an int8 dot product,
    which decides how ONNX Runtime runs INT8), CPU count, Python and library versions."""
    import onnxruntime

    from edge.runtime.onnx import cpu_int8_dot, cpuinfo_values

    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "onnxruntime": onnxruntime.__version__,
        "cpu": platform.processor() or platform.machine(),
        # x86-64 Linux names it; elsewhere None
        "cpu_model": next(iter((cpuinfo_values() or {}).get("model name", [])), None),
        "cpu_int8_dot_product": cpu_int8_dot(),
        "cpus": os.cpu_count(),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
    }


def write_result(name: str, data: Mapping[str, Any], out_dir: Path | None = None) -> Path:
    """Write ``NAME.json`` (with the machine facts) and return its path."""
    folder = out_dir or RESULTS
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    path.write_text(json.dumps({"machine": machine(), **data}, indent=2) + "\n")
    print(f"wrote {path}", file=sys.stderr)
    return path


def bar_chart(
    name: str,
    title: str,
    groups: Mapping[str, Mapping[str, float]],
    ylabel: str,
    out_dir: Path | None = None,
    log: bool = False,
    line: float | None = None,
) -> Path:
    """One PNG: bars of ``groups[group][series]``, groups along x, series side by side.

    ``line`` draws a dashed reference (a goal or a ratio of 1).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder = out_dir or RESULTS
    folder.mkdir(parents=True, exist_ok=True)
    labels = list(groups)
    series: list[str] = []
    for g in groups.values():
        series += [s for s in g if s not in series]
    width = 0.8 / max(1, len(series))
    wide = len(series) > 1
    fig, ax = plt.subplots(figsize=(max(6.0, 1.3 * len(labels) + 2) + (3.0 if wide else 0.0), 4.0))
    x = np.arange(len(labels))
    for i, s in enumerate(series):
        ys = [groups[g].get(s, np.nan) for g in labels]
        ax.bar(x + (i - (len(series) - 1) / 2) * width, ys, width, label=s)
    if line is not None:
        ax.axhline(line, color="k", linestyle="--", linewidth=1)
    ax.set_xticks(x, labels, rotation=20 if max(len(lb) for lb in labels) > 12 else 0,
                  ha="right" if max(len(lb) for lb in labels) > 12 else "center")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if log:
        ax.set_yscale("log")
    if wide:
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    path = folder / f"{name}.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    print(f"wrote {path}", file=sys.stderr)
    return path


def percentiles(xs: Sequence[float]) -> dict[str, float]:
    """p50 / p99 / max of a sample."""
    a = np.asarray(xs, float)
    return {"p50": float(np.percentile(a, 50)), "p99": float(np.percentile(a, 99)),
            "max": float(a.max()), "n": int(a.size)}
