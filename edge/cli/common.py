"""What every ``edge`` subcommand module shares: the exit code of a usage error, the parser
class that reports argparse's own errors as one line, and ``CLASS=NUMBER`` options."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Sequence
from typing import Any

from edge.errors import ConfigError

EXIT_USAGE = 2


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # argparse's own usage errors: one line, exit 2
        self.exit(EXIT_USAGE, f"edge: error: {message}\n")


def class_values(items: Sequence[str], flag: str, form: str,
                 ok: Callable[[float], bool] = math.isfinite) -> dict[str, float]:
    """``CLASS=NUMBER`` items of option ``flag`` -> {class: number}, each number passing ``ok``;
    ``form`` is what an item must look like, as an error says it (e.g. ``CLASS=P (a
    probability)``). Whether the classes exist is for the command to say."""
    out: dict[str, float] = {}
    for item in items:
        name, sep, text = item.partition("=")
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not name or not sep or not ok(value):
            raise ConfigError(f"{flag}: {item!r} is not {form}")
        if name in out:
            raise ConfigError(f"{flag}: {name} given twice")
        out[name] = value
    return out
