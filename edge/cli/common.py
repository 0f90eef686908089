"""What every ``edge`` subcommand module shares: the exit code of a usage error and the parser
class that reports argparse's own errors as one line."""

from __future__ import annotations

import argparse
from typing import Any

EXIT_USAGE = 2


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # argparse's own usage errors: one line, exit 2
        self.exit(EXIT_USAGE, f"edge: error: {message}\n")
