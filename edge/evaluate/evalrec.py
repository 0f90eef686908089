"""``edge eval --recordings DIR``: real recordings through the serving pipeline, scored.

A recording folder holds one video file with its audio track and a ``labels.json`` (the form
``edge train --recordings`` reads and ``edge sim`` writes). Each is replayed through the same
media source, join, features, engine and decision layer as ``edge run`` on a
:class:`~edge.timebase.clock.FakeClock`, and scored like simulated scenarios: per class, frame level
(per tick) and event level, with the video masked and the audio masked too. Real recordings
often label only a few classes (a clip of an alert driver labels nothing), so the report also
gives, per recording, the share of ticks each class was active and every rule event the
decision layer raised: what a user would have seen.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TextIO, cast

import numpy as np

from edge.join.align import Window
from edge.timebase.clock import NS_PER_S, FakeClock
from edge.config import Config, MediaSourceConfig, StreamConfig
from edge.errors import ConfigError, DeviceError
from edge.evaluate.eval import load_model, mask_audio, mask_video
from edge.evaluate.metrics import score
from edge.features.serve import Features
from edge.join.spine import replay
from edge.service.run import Runner
from edge.runtime.base import Engine
from edge.sim.scenario import label_fraction

MODES: tuple[tuple[str, Callable[[Window], Window] | None], ...] = (
    ("both", None), ("video_masked", mask_video), ("audio_masked", mask_audio),
)


def recording_folders(root: str | Path) -> list[Path]:
    """``root`` itself when it is a recording folder, else the recording folders inside it
    (sorted); folders without ``labels.json`` (e.g. ``sounds/``) are not recordings."""
    p = Path(root)
    if not p.is_dir():
        raise ConfigError(f"{p}: no such folder")
    if (p / "labels.json").is_file():
        return [p]
    found = sorted(d for d in p.iterdir() if d.is_dir() and (d / "labels.json").is_file())
    if not found:
        raise ConfigError(f"{p}: no recording folders (each a video file + labels.json)")
    return found


def probe_size(path: Path) -> tuple[int, int]:
    """Width and height of a file's first video track."""
    import av

    try:
        with av.open(str(path)) as c:
            if not c.streams.video:
                raise DeviceError(f"{path}: no video track")
            s = c.streams.video[0]
            return int(s.codec_context.width), int(s.codec_context.height)
    except (av.FFmpegError, OSError) as exc:
        raise DeviceError(f"cannot open {path}: {exc}") from None


@dataclass
class RecordingRun:
    """What one replay of one recording gave."""

    name: str
    task: str
    seconds: float
    probs: np.ndarray  # [ticks, classes]
    labels: np.ndarray  # [ticks, classes] bool
    times: np.ndarray  # [ticks] seconds into the file
    events: list[dict[str, Any]] = field(default_factory=list)  # rule events (start and end)
    health: list[dict[str, Any]] = field(default_factory=list)  # the source's changes of state
    front: list[dict[str, Any]] = field(default_factory=list)  # per tick: what front ends said
    front_stats: dict[str, dict[str, Any]] = field(default_factory=dict)  # per stage counters
    features: list[Any] = field(default_factory=list)  # per tick model inputs (keep_features)
    fractions: list[np.ndarray] = field(default_factory=list)  # per tick label fractions (ditto)


def run_recording(
    config: Config,
    folder: Path,
    engine: Engine,
    mask: Callable[[Window], Window] | None = None,
    keep_features: bool = False,
    phase_s: float = 0.0,
    feature_hook: Callable[[Features], Features] | None = None,
) -> RecordingRun:
    """Replay one recording folder through a :class:`Runner` of ``config`` (its sources
    replaced by the recording) and collect per-tick probabilities, labels and rule events
    (and with ``keep_features`` each tick's model inputs and label fractions: training data
    cut by the serving code, front ends included). ``phase_s`` delays the tick grid (less
    than one hop). ``feature_hook`` changes each window's features before the model reads them
    (:mod:`edge.evaluate.perturb`)."""
    from edge.capture.media import MediaSource, probe_fps
    from edge.train.data import load_labels, recording_files

    media, labels_path = recording_files(folder)
    truth = load_labels(labels_path)
    if truth.task != engine.card.task:
        raise ConfigError(f"{labels_path}: task {truth.task!r}, the model is for {engine.card.task!r}")
    width, height = probe_size(media)
    src_cfg = MediaSourceConfig(
        type="media", url=str(media), width=width, height=height, fps=probe_fps(media),
        sample_rate=int(engine.card.audio.get("sample_rate", 16000)),
        buffer_seconds=max(4.0, float(engine.card.window["seconds"]) + 2.0),
    )
    cfg = config.model_copy(update={
        "sources": {"rec": src_cfg}, "streams": {"s": StreamConfig(video="rec", audio="rec")},
    })
    clock = FakeClock(1_000 * NS_PER_S)
    source = MediaSource("rec", src_cfg, clock)
    runner = Runner(cfg, clock, engine=engine, sources={"rec": source})
    runner.feature_hook = feature_hook
    hop_s = runner.spine.hop_ns / NS_PER_S
    span = float(runner.card.window["seconds"])
    classes = list(runner.classes)
    unknown = sorted({e.label for e in truth.events} - set(classes))
    if unknown:
        raise ConfigError(f"{labels_path}: labels {unknown} are not classes of the model ({classes})")
    probs: list[list[float]] = []
    labels: list[np.ndarray] = []
    times: list[float] = []
    events: list[dict[str, Any]] = []
    health: list[dict[str, Any]] = []
    front: list[dict[str, Any]] = []
    features: list[Any] = []
    fractions: list[np.ndarray] = []

    def file_s(t_ns: int) -> float:
        assert source.video_clock is not None
        return source.video_clock.to_device(t_ns) / NS_PER_S

    def on_windows(windows: list[Window]) -> None:
        ws = [mask(w) for w in windows] if mask is not None else windows
        preds = runner.process(ws)
        for _, ev in runner.decide(preds):
            if ev.kind != "update":
                events.append({"event": ev.kind, "rule": ev.rule, "t_s": round(file_s(ev.t_ns), 2),
                               "duration_s": round(ev.duration_s, 2)})
        health.extend({"state": h["state"], "reasons": h["reasons"],
                       "t_s": round(file_s(h["t_ns"]), 2)} for h in runner.health_records)
        for w, p in zip(ws, preds):
            t_end = file_s(w.t_end_ns)
            if t_end - span < -1e-6 or t_end > truth.seconds + 1e-6:
                continue
            probs.append([p.probs[c] for c in classes])
            front.append(dict(cast(dict[str, Any], p.extra.get("front", {}))))
            frac = label_fraction(truth, max(0.0, t_end - hop_s), t_end)
            frac = frac[[truth.classes.index(c) for c in classes]]
            labels.append(frac >= 0.5)
            times.append(t_end)
            if keep_features:
                features.append(runner.last_features(w.stream))
                fractions.append(frac.astype(np.float32))

    replay(source, runner.spine, clock, on_windows, phase_s=phase_s)
    return RecordingRun(
        name=folder.name, task=truth.task, seconds=truth.seconds,
        probs=np.asarray(probs, np.float32).reshape(-1, len(classes)),
        labels=np.asarray(labels, bool).reshape(-1, len(classes)),
        times=np.asarray(times, np.float64), events=events, health=health, front=front,
        front_stats=runner.cascade.stats() if runner.cascade is not None else {},
        features=features, fractions=fractions,
    )


def stage_scores(run: RecordingRun, classes: list[str]) -> dict[str, Any]:
    """How each front end did alone on one recording: the face found in what share of the
    frames it ran on; the person detector and the VAD per tick against the ``person`` and
    ``speech`` labels (frame F1), where the task has those classes."""
    from edge.evaluate.metrics import prf

    out: dict[str, Any] = {}
    for key, s in run.front_stats.items():
        kind = key.split(":")[0]
        entry: dict[str, Any] = {"processed": s["processed"], "ms_per_item": s["ms_per_item"]}
        if kind == "face":
            entry["found"] = round(s["present"] / s["processed"], 4) if s["processed"] else None
        out[key] = entry
    for stage, cls in (("person", "person"), ("speech", "speech")):
        said = [f.get(stage) for f in run.front]
        if cls not in classes or not said or any(x is None for x in said):
            continue
        pred = np.array(said, bool)
        lab = run.labels[:, classes.index(cls)]
        tp, fp = int((pred & lab).sum()), int((pred & ~lab).sum())
        fn = int((~pred & lab).sum())
        p, r, f1 = prf(tp, fp, fn)
        out[f"{stage}_ticks"] = {"f1": round(f1, 4), "precision": round(p, 4),
                                 "recall": round(r, 4), "false_ticks": fp, "ticks": len(pred)}
    return out


def evaluate_recordings(
    config: Config,
    root: str | Path,
    log: TextIO | None | Literal["stderr"] = "stderr",
    phases: int = 1,
    perturb: Sequence[str] = (),
) -> dict[str, Any]:
    """Scores over every recording under ``root`` of the model's task, in three modes.

    With ``phases`` above 1 each recording is replayed that many times, the tick grid moved by
    ``hop / phases`` each time: the frame scores pool the ticks of every grid (where ticks fall
    against a short event is chance, and one grid can move a class's F1 by points), and the
    rule events are listed per grid (``events_by_phase``; ``events`` and the front ends' own
    scores are the first grid's). ``perturb`` changes the model's front-end features first
    (``FEATURE*VALUE``, ``FEATURE+VALUE``; :mod:`edge.evaluate.perturb`): what-if replays."""
    log = sys.stderr if log == "stderr" else log  # looked up now: stderr may be swapped
    if phases < 1:
        raise ConfigError(f"phases: 1 or more replays per recording, not {phases}")
    offsets = [k * float(config.window.hop) / phases for k in range(phases)]
    engine = load_model(config)
    classes = engine.card.class_names
    thresholds = np.array([c.threshold for c in engine.card.classes], np.float32)
    hook = None
    if perturb:
        from edge.evaluate.perturb import feature_hook, parse_changes
        from edge.front.features import FrontSpec

        if not engine.card.front:
            raise ConfigError(f"--perturb changes front-end features; {engine.card.name} reads "
                              "pixels")
        changes = parse_changes(perturb)
        hook = feature_hook(FrontSpec.from_dict(engine.card.front), changes)
    folders = recording_folders(root)
    from edge.train.data import load_labels, recording_files

    mine = [f for f in folders if load_labels(recording_files(f)[1]).task == engine.card.task]
    if not mine:
        raise ConfigError(f"{root}: no recordings of task {engine.card.task!r}")
    report: dict[str, Any] = {"recordings": [str(f) for f in mine], "model": engine.card.name}
    if phases > 1:
        report["phases_s"] = [round(o, 4) for o in offsets]
    if perturb:
        report["perturb"] = [str(c) for c in changes]
    per: dict[str, dict[str, Any]] = {}
    for mode, mask in MODES:
        grids: list[list[RecordingRun]] = []  # per recording, one run per phase
        for i, folder in enumerate(mine):
            if log is not None:
                print(f"\r  {mode}: recording {i + 1}/{len(mine)}", end="", file=log, flush=True)
            grids.append([run_recording(config, folder, engine, mask, phase_s=o, feature_hook=hook)
                          for o in offsets])
        if log is not None:
            print(file=log)
        runs = [r for g in grids for r in g]
        segs, n = [], 0
        for r in runs:
            segs.append((n, n + len(r.probs)))
            n += len(r.probs)
        report[mode] = score(
            np.concatenate([r.probs for r in runs]), np.concatenate([r.labels for r in runs]),
            np.concatenate([r.times for r in runs]), classes, thresholds, segs,
        )
        report[mode]["ticks"] = n
        for g in grids:
            r = g[0]
            probs = np.concatenate([x.probs for x in g])
            labels = np.concatenate([x.labels for x in g])
            active = probs >= thresholds
            entry = per.setdefault(r.name, {"seconds": r.seconds, "ticks": len(probs)})
            entry[mode] = {
                "active": {c: round(float(active[:, k].mean()), 4) if len(active) else 0.0
                           for k, c in enumerate(classes)},
                "labelled": {c: round(float(labels[:, k].mean()), 4) if len(labels) else 0.0
                             for k, c in enumerate(classes)},
                "events": r.events,
                "health": r.health,
            }
            if phases > 1:
                entry[mode]["events_by_phase"] = [x.events for x in g]
            if mode == "both" and r.front_stats:
                entry["front_ends"] = stage_scores(r, classes)
    report["per_recording"] = per
    return report


def format_recordings(report: dict[str, Any]) -> str:
    """The per-class table of :func:`edge.evaluate.eval.format_report`, then per recording the share
    of ticks each class was active (labelled share in brackets) and the rule events."""
    from edge.evaluate.eval import format_report

    lines = [format_report(report), ""]
    if report.get("perturb"):
        lines += [f"front-end features changed before the model: {' '.join(report['perturb'])}",
                  "  (the labels are as recorded: where a change moves a class's own cue, a head "
                  "turned onto or off the road, eyes narrowed to shut, F1 scores the model "
                  "against what the replay no longer shows; read the active shares and the "
                  "rule events)", ""]
    for name, r in report["per_recording"].items():
        both = r["both"]
        grids = len(report.get("phases_s", [0.0]))
        lines.append(f"{name} ({r['seconds']:g} s, {r['ticks']} ticks"
                     + (f" on {grids} grids)" if grids > 1 else ")"))
        cells = [f"{c} {a:.0%} [{both['labelled'][c]:.0%}]" for c, a in both["active"].items()]
        lines.append("  active [labelled]: " + ", ".join(cells))
        for key, s in r.get("front_ends", {}).items():
            if "found" in s:
                lines.append(f"  {key}: face found in {s['found']:.1%} of {s['processed']} frames"
                             f" ({s['ms_per_item']} ms each)")
            elif "f1" in s:
                lines.append(f"  {key}: F1 {s['f1']:.3f} (P {s['precision']:.3f}, "
                             f"R {s['recall']:.3f}; {s['false_ticks']} false of {s['ticks']})")
        by_grid = both.get("events_by_phase", [both["events"]])
        for k, events in enumerate(by_grid):
            starts = [e for e in events if e["event"] == "start"]
            fired = ", ".join(f"{e['rule']} @{e['t_s']:.1f} s" for e in starts) or "none"
            where = f" (grid +{report['phases_s'][k]:g} s)" if len(by_grid) > 1 else ""
            lines.append(f"  rule events{where}: {fired}")
        changes = [f"{h['state']} @{h['t_s']:.1f} s" + (f" ({'; '.join(h['reasons'])})"
                                                        if h["reasons"] else "")
                   for h in both.get("health", [])]
        lines.append("  health: " + (", ".join(changes) if changes else "ok throughout"))
    return "\n".join(lines)
