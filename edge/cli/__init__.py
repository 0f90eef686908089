"""The ``edge`` command: a thin shell over library calls.

Each subcommand parses its arguments, calls one library function and prints. Errors a user can
cause are :class:`EdgeError`: one line on stderr and exit code 2, never a traceback. The
subcommands live by group: :mod:`edge.cli.service` (validate-config, devices, sources, run,
install-service), :mod:`edge.cli.recordings` (record, label, replay), :mod:`edge.cli.models`
(sim, train, eval) and :mod:`edge.cli.int8` (calibrate, build, compare, front-ends).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from edge import __version__
from edge.cli import int8, models, recordings, service
from edge.cli.common import EXIT_USAGE, Parser
from edge.errors import EdgeError


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="edge", description="Streaming audio-visual perception for embedded devices.")
    p.add_argument("--version", action="version", version=f"edge {__version__}")
    p.add_argument(
        "-v", "--verbose", action="count", default=0, help="log more (-v: info, -vv: debug)"
    )
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser)
    for group in (service, models, int8, recordings):
        group.add_parsers(sub)
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
