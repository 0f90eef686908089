"""The benchmark table of the README, from ``benchmarks/results/*.json``.

    python benchmarks/report.py > benchmarks/results/summary.md

Every figure comes from the JSON files the benchmarks wrote; a missing file leaves its rows out.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from common import RESULTS


def load(name: str) -> dict[str, Any] | None:
    p = RESULTS / f"{name}.json"
    return json.loads(p.read_text()) if p.is_file() else None


def ok(met: bool) -> str:
    return "met" if met else "**missed**"


def pipeline(d: dict[str, Any]) -> list[str]:
    rows = ["### Pipeline (`benchmarks/bench_pipeline.py`)", "",
            "| case | tick p50 | tick p99 | CPU of one core (ticks + capture) | largest stage (p50) "
            "| INT8 engine per tick (baseline) | goal (1 stream): p99 <= 1 ms, <= 5 % |",
            "|---|---|---|---|---|---|---|"]
    for name, r in d["overhead"].items():
        stages = r["stages_ms_p50"]
        top = max(stages, key=stages.__getitem__)
        cpu = r["cpu_share_of_one_core_ticks"] + r["cpu_share_of_one_core_capture_ingest"]
        goal = ""
        if name == "1 stream":
            goal = f"p99 {ok(r['tick_ms']['p99'] <= 1.0)}, CPU {ok(cpu <= 0.05)}"
        rows.append(
            f"| {name} ({r['frame_size']}) | {r['tick_ms']['p50']:.2f} ms | {r['tick_ms']['p99']:.2f} ms"
            f" | {100 * r['cpu_share_of_one_core_ticks']:.2f} % + {100 * r['cpu_share_of_one_core_capture_ingest']:.2f} %"
            f" | {top} {stages[top]:.2f} ms | {r['engine_int8_1thread_ms_per_tick']:.2f} ms"
            f" ({r['overhead_p50_over_engine']:.1f}x overhead) | {goal} |")
    stage = d["overhead"]["1 stream"]["stages_ms_p50"]
    rows += ["", "Stages of one 640x480 stream, p50 ms: "
             + ", ".join(f"{k} {v:.3f}" for k, v in stage.items()) + ".", ""]
    a = d["data_age"]
    rows += ["| data age at decision (live, real clock) | p50 | p99 | floor: hop + engine p50 "
             "| one delivery period + engine p50 | goal: p99 <= floor + 5 ms |",
             "|---|---|---|---|---|---|"]
    for m in ("video", "audio"):
        r = a[m]
        floor = r["issue_floor_hop_plus_engine_ms"]
        rows.append(f"| {m} | {r['p50']:.1f} ms | {r['p99']:.1f} ms | {floor:.1f} ms"
                    f" | {r['floor_ms']:.1f} ms (p99 {r['p99_minus_floor_ms']:+.1f} ms)"
                    f" | {ok(r['p99'] <= floor + 5.0)} |")
    rows += ["", "| streams (INT8, 1 thread) | batched ms per stream | per-stream calls ms per stream "
             "| batched speed-up |", "|---|---|---|---|"]
    for n, r in d["scaling_ms_per_stream"].items():
        rows.append(f"| {n} | {r['batched']:.2f} | {r['per-stream calls']:.2f} | {r['batched_speedup']:.2f}x |")
    return rows


def logmel(d: dict[str, Any]) -> list[str]:
    rows = ["### Log-mel front end (`benchmarks/bench_logmel.py`)", "",
            "| card | streaming ms per 0.5 s hop | log_mel recompute | librosa recompute "
            "| torch recompute | max abs diff vs librosa | goal: >= 10x, <= 1e-3 |",
            "|---|---|---|---|---|---|---|"]
    for card, r in d["cards"].items():
        ms = r["ms_per_hop"]
        sp = r["speedup_vs_streaming"]
        worst = d["goals"][card]["worst_vs_librosa_f32"]
        fast = all(d["goals"][card]["streaming_10x_faster_than"].values())
        rows.append(
            f"| {card} ({r['window_s']:g} s) | {ms['streaming (20 ms blocks)']:.3f}"
            f" | {ms['log_mel recompute']:.3f} ({sp['log_mel recompute']:.1f}x)"
            f" | {ms['librosa recompute']:.3f} ({sp['librosa recompute']:.1f}x)"
            f" | {ms['torch recompute']:.3f} ({sp['torch recompute']:.1f}x)"
            f" | {worst:.1e} | speed {ok(fast)} (ceiling {r['speedup_ceiling_same_arithmetic']:.1f}x),"
            f" diff {ok(worst <= 1e-3)} |")
    return rows


def buffers(d: dict[str, Any]) -> list[str]:
    rows = ["### Ring buffers (`benchmarks/bench_buffers.py`)", "",
            "| frame ingest | FrameRing / raw copy | deque of copies / raw copy | goal <= 1.2x |",
            "|---|---|---|---|"]
    for size, r in d["ingest"].items():
        rows.append(f"| {size} | {r['ratio']:.2f}x ({r['ring_ms']:.3f} ms) | {r['deque_ratio']:.2f}x"
                    f" | {ok(r['ratio'] <= 1.2)} |")
    a = d["audio_16khz_20ms_blocks_2s_window"]["per_0.5s_hop_ms"]
    rows += ["", "Audio, 25 blocks of 20 ms in + the last 2 s out per 0.5 s hop (ms): "
             + ", ".join(f"{k} {v:.3f}" for k, v in a.items()) + "."]
    j = d["join_30fps_16khz_2s_8frames"]["ring 640x480"]
    rows += ["", "Window join at 640x480 (8 frames + 2 s of audio), against copying them with "
             f"`np.copyto` ({j['raw_copy_ms']:.3f} ms): a stream's first window "
             f"{j['first_window_ms']:.3f} ms ({j['first_ratio']:.2f}x), the next hop "
             f"{j['next_hop_ms']:.3f} ms ({j['hop_ratio']:.2f}x: 6 of 8 frames are the last "
             "window's, shared, not copied)."]
    return rows


def engines(d: dict[str, Any]) -> list[str]:
    ms = d["per_window_ms"]
    rows = [f"### Engine `{Path(d['model']).name}` (`benchmarks/bench_engine.py`), ms per window", "",
            "| threads, batch | ORT FP32 | ORT INT8 | PyTorch eager | INT8 speed-up | ORT FP32 vs PyTorch |",
            "|---|---|---|---|---|---|"]
    for t in (1, 2):
        for b in (1, 8):
            k = f"threads {t}, batch {b}"
            rows.append(f"| {t}, {b} | {ms.get('fp32 ' + k, float('nan')):.2f} | {ms.get('int8 ' + k, float('nan')):.2f}"
                        f" | {ms.get('pytorch ' + k, float('nan')):.2f} | {d['int8_speedup'].get(k, float('nan')):.2f}x"
                        f" | {d.get('onnxruntime_fp32_speedup_over_pytorch', {}).get(k, float('nan')):.2f}x |")
    return rows


def clock(d: dict[str, Any]) -> list[str]:
    rows = ["### Clock model (`benchmarks/bench_clock.py`), timestamp error p99 (ms)", "",
            "| source, skew, jitter | after 10 s: edge / arrival | 60 s | 1 h | skew error at 1 h |",
            "|---|---|---|---|---|"]
    by: dict[tuple[str, float, float], dict[float, Any]] = {}
    for r in d["rows"]:
        by.setdefault((r["source"], r["ppm"], r["jitter_ms"]), {})[r["seconds"]] = r
    for (src, ppm, jit), rs in by.items():
        cells = [f"{rs[s]['edge_ms']['p99']:.2f} / {rs[s]['arrival_ms']['p99']:.1f}" if s in rs else "-"
                 for s in (10.0, 60.0, 3600.0)]
        skew = f"{rs[3600.0]['skew_error_ppm']:+.2f} ppm" if 3600.0 in rs else "-"
        rows.append(f"| {src}, {ppm:g} ppm, {jit:g} ms | " + " | ".join(cells) + f" | {skew} |")
    return rows


SECTIONS = (("pipeline", pipeline), ("logmel", logmel), ("buffers", buffers),
            ("engine-driver", engines), ("engine-home", engines), ("clock", clock))


def main() -> None:
    out: list[str] = []
    for name, fn in SECTIONS:
        d = load(name)
        if d is not None:
            out += fn(d) + [""]
    sys.stdout.write("\n".join(out))


if __name__ == "__main__":
    main()
