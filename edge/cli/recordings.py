"""Commands on recordings: record a live stream, label it, replay a flight recording."""

from __future__ import annotations

import argparse
from typing import Any

from edge.errors import EdgeError
from edge.jsonout import dumps


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


def _cmd_replay(args: argparse.Namespace) -> int:
    from edge.recorder.replay import format_replay, replay_recording

    r = replay_recording(args.dir, model_path=args.model, verify=not args.no_verify)
    print(dumps(r.to_json(), indent=2) if args.json else format_replay(r))
    return 0 if r.identical else 1



def add_parsers(sub: Any) -> None:
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

    s = sub.add_parser("replay", help="re-run a flight recording; exit 1 unless it reproduces")
    s.add_argument("dir", help="a recording folder (recorder.out_dir/NAME)")
    s.add_argument("--model", default=None, help="model file (default: the one recorded)")
    s.add_argument("--no-verify", action="store_true", help="run without comparing")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=_cmd_replay)
