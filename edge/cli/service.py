"""Commands around a running pipeline: check a config, list devices, run the sources or the
whole pipeline, install it as a service."""

from __future__ import annotations

import argparse
from typing import Any

from edge.errors import DeviceError, EdgeError
from edge.jsonout import dumps


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



def add_parsers(sub: Any) -> None:
    s = sub.add_parser("validate-config", help="check a config file")
    s.add_argument("file")
    s.add_argument("--devices", action="store_true",
                   help="also check that every configured camera and microphone is there now")
    s.set_defaults(func=_cmd_validate_config)

    s = sub.add_parser("devices", help="list cameras and microphones")
    s.add_argument("--json", action="store_true", help="print JSON")
    s.set_defaults(func=_cmd_devices)

    s = sub.add_parser("sources", help="run the sources and the window join, print statistics")
    s.add_argument("--config", required=True)
    s.add_argument("--seconds", type=float, default=10.0)
    s.add_argument("--json", action="store_true", help="print JSON")
    s.set_defaults(func=_cmd_sources)

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

    s = sub.add_parser("install-service", help="write (or --print) the systemd unit for a config")
    s.add_argument("--config", required=True)
    s.add_argument("--print", action="store_true", help="print the unit instead of writing it")
    s.add_argument("--user", default="edge", help="service user (in the video and audio groups)")
    s.add_argument("--name", default="edge", help="unit name")
    s.add_argument("--unit-dir", default="/etc/systemd/system")
    s.set_defaults(func=_cmd_install_service)
