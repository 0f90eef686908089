"""``edge eval``: replay scenarios through the serving pipeline and score it against the truth.

Each scenario runs through the same :class:`~edge.service.run.Runner` as ``edge run`` (sources, rings,
join, features, engine) on a :class:`FakeClock`, as fast as the simulator renders. Scores are
per class, frame level (per tick) and event level, with detection latency; then again with the
video masked and with the audio masked, to show what each modality carries alone.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, TextIO

import numpy as np

from edge.join.align import Window
from edge.capture.scenario import ScenarioSource
from edge.timebase.clock import NS_PER_S, FakeClock
from edge.config import Config, ScenarioSourceConfig, StreamConfig
from edge.errors import ConfigError
from edge.evaluate.metrics import score
from edge.join.spine import replay
from edge.runtime.card import card_path_for, load_card
from edge.service.run import Runner
from edge.runtime.base import Engine, open_engine
from edge.sim.scenario import Scenario, label_fraction, load_scenario

def mask_video(w: Window) -> Window:
    w.mask_video()
    return w


def mask_audio(w: Window) -> Window:
    w.mask_audio()
    return w


def scenario_files(path: str | Path) -> list[Path]:
    """One scenario file, or every ``*.yaml`` in a folder (sorted)."""
    p = Path(path)
    if p.is_dir():
        files = sorted(p.glob("*.yaml"))
        if not files:
            raise ConfigError(f"{p}: no scenario files (*.yaml)")
        return files
    if not p.is_file():
        raise ConfigError(f"{p}: no such scenario file or folder")
    return [p]


def eval_config(config: Config) -> tuple[Config, ScenarioSourceConfig]:
    """The config with its sources replaced by one simulated camera+mic stream."""
    shape = next((s for s in config.sources.values() if s.type == "scenario"), None)
    src = ScenarioSourceConfig(
        type="scenario",
        scenario="driver",
        width=getattr(shape, "width", 320),
        height=getattr(shape, "height", 240),
        fps=getattr(shape, "fps", 15.0),
        loop=False,
    )
    cfg = config.model_copy(
        update={"sources": {"sim": src}, "streams": {"s": StreamConfig(video="sim", audio="sim")}}
    )
    return cfg, src


def load_model(config: Config) -> Engine:
    """The engine a config names, loaded once for many scenarios."""
    if config.model is None:
        raise ConfigError("the config has no `model:` section (which model to evaluate)")
    path = Path(config.model.path)  # resolved by load_config (edge.paths)
    card = load_card(card_path_for(path))
    ec = config.model.engine
    return open_engine(ec.type, path, card, ec.model_dump())


def run_scenario(
    config: Config,
    scenario: Scenario,
    engine: Engine | None = None,
    mask: Callable[[Window], Window] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str], np.ndarray]:
    """Probabilities, labels and tick times of one scenario (and classes, thresholds)."""
    cfg, src_cfg = eval_config(config)
    clock = FakeClock(1_000 * NS_PER_S)
    source = ScenarioSource("sim", src_cfg, clock, scenario=scenario)
    runner = Runner(cfg, clock, engine=engine, sources={"sim": source})
    if list(runner.classes) != list(scenario.classes):
        raise ConfigError(
            f"model classes {runner.classes} are not the scenario's ({scenario.task}: "
            f"{list(scenario.classes)})"
        )
    hop_s = runner.spine.hop_ns / NS_PER_S
    span = float(runner.card.window["seconds"])
    probs, labels, times = [], [], []

    def on_windows(windows: list[Window]) -> None:
        ws = [mask(w) for w in windows] if mask is not None else windows
        for w, p in zip(ws, runner.process(ws)):
            t_end = source.scenario_time(w.t_end_ns)
            if t_end - span < -1e-6 or t_end > scenario.seconds + 1e-6:
                continue
            probs.append([p.probs[c] for c in runner.classes])
            labels.append(label_fraction(scenario, max(0.0, t_end - hop_s), t_end) >= 0.5)
            times.append(t_end)

    replay(source, runner.spine, clock, on_windows)
    return (
        np.asarray(probs, np.float32),
        np.asarray(labels, bool),
        np.asarray(times, np.float64),
        list(runner.classes),
        runner.thresholds,
    )


def evaluate(
    config: Config,
    scenarios: list[Path],
    log: TextIO | None | Literal["stderr"] = "stderr",
) -> dict[str, Any]:
    """Scores over all scenarios: both modalities, video masked, audio masked."""
    log = sys.stderr if log == "stderr" else log  # looked up now: stderr may be swapped
    loaded = [load_scenario(p) for p in scenarios]
    engine = load_model(config)
    report: dict[str, Any] = {"scenarios": [str(p) for p in scenarios]}
    for mode, mask in (("both", None), ("video_masked", mask_video), ("audio_masked", mask_audio)):
        P, L, T, segs = [], [], [], []
        classes: list[str] = []
        thresholds = np.zeros(0)
        n = 0
        for i, sc in enumerate(loaded):
            if log is not None:
                print(f"\r  {mode}: scenario {i + 1}/{len(loaded)}", end="", file=log, flush=True)
            probs, labels, times, classes, thresholds = run_scenario(
                config, sc, engine=engine, mask=mask
            )
            P.append(probs)
            L.append(labels)
            T.append(times)
            segs.append((n, n + len(probs)))
            n += len(probs)
        if log is not None:
            print(file=log)
        report[mode] = score(
            np.concatenate(P), np.concatenate(L), np.concatenate(T), classes, thresholds, segs
        )
        report[mode]["ticks"] = n
    return report


def format_report(report: dict[str, Any]) -> str:
    """A per-class table: F1 with both modalities and with each one masked, events, latency."""
    both = report["both"]["classes"]
    lines = [
        f"{'class':<14} {'F1':>6} {'P':>6} {'R':>6} {'F1 -video':>10} {'F1 -audio':>10} "
        f"{'ev P':>6} {'ev R':>6} {'lat p50':>8}"
    ]
    for name, s in both.items():
        nv = report["video_masked"]["classes"][name]["f1"]
        na = report["audio_masked"]["classes"][name]["f1"]
        lat = "-" if s["latency_s_p50"] is None else f"{s['latency_s_p50']:.2f} s"
        lines.append(
            f"{name:<14} {s['f1']:>6.3f} {s['precision']:>6.3f} {s['recall']:>6.3f} {nv:>10.3f} "
            f"{na:>10.3f} {s['event_precision']:>6.3f} {s['event_recall']:>6.3f} {lat:>8}"
        )
    lines.append(
        f"{'macro':<14} {report['both']['macro_f1']:>6.3f} {'':>6} {'':>6} "
        f"{report['video_masked']['macro_f1']:>10.3f} {report['audio_masked']['macro_f1']:>10.3f}"
    )
    return "\n".join(lines)


def card_metrics(report: dict[str, Any], scenarios: str) -> dict[str, Any]:
    """The compact form of a report that a model card keeps."""
    out: dict[str, Any] = {"scenarios": scenarios, "ticks": report["both"]["ticks"]}
    for mode in ("both", "video_masked", "audio_masked"):
        out[mode] = {
            "macro_f1": report[mode]["macro_f1"],
            "f1": {k: v["f1"] for k, v in report[mode]["classes"].items()},
        }
    out["event_recall"] = {k: v["event_recall"] for k, v in report["both"]["classes"].items()}
    out["latency_s_p50"] = {k: v["latency_s_p50"] for k, v in report["both"]["classes"].items()}
    return out
