"""Small file-system helpers shared by the outputs that must survive a crash."""

from __future__ import annotations

import os
from pathlib import Path


def sync_dir(folder: str | Path) -> None:
    """fsync a folder: a rename or a new file in it is durable only once the folder is synced."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
