"""Small file-system helpers: folder syncs for the outputs that must survive a crash, and
secrets (passwords, tokens) a config names by environment variable or file."""

from __future__ import annotations

import os
from pathlib import Path

from edge.errors import ConfigError


def sync_dir(folder: str | Path) -> None:
    """fsync a folder: a rename or a new file in it is durable only once the folder is synced."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_secret(where: str, env: str | None, file: str | None) -> str | None:
    """A secret from an environment variable or a file, or None; a missing one is a
    :class:`ConfigError` that names ``where`` and the source, never the value."""
    if env:
        value = os.environ.get(env)
        if not value:
            raise ConfigError(f"{where}: environment variable {env} is not set")
        return value
    if file:
        try:
            return Path(file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"{where}: {exc.strerror}: {file}") from None
        except UnicodeError:
            raise ConfigError(f"{where}: not UTF-8 text: {file}") from None
    return None
