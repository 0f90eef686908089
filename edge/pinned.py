"""Files pinned by SHA-256 (the front ends' wheels, the sound bank's Debian packages): each comes
from a file the user gives, a cached copy, or a fresh download into the cache, and is used only
when its SHA-256 is the pinned one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, Protocol, TypeVar

from edge.errors import ConfigError
from edge.runtime.card import sha256_file


class PinnedFile(Protocol):
    @property
    def filename(self) -> str: ...

    @property
    def sha256(self) -> str: ...


P = TypeVar("P", bound=PinnedFile)


@dataclass(frozen=True)
class Source(Generic[P]):
    """How one kind of pinned file is named and fetched.

    ``what`` names it in messages ("wheel"), ``option`` is the command-line option that gives
    one ("--wheel FILE"), ``key`` the name the result is keyed by, ``download`` fetches one into
    the cache folder (checked there), ``error`` the exception raised."""

    what: str
    option: str
    key: Callable[[P], str]
    download: Callable[[P, Path], Path]
    error: type[ConfigError] = ConfigError


def resolve(source: Source[P], needed: Iterable[P], pinned: Iterable[P],
            given: Sequence[str | Path], cache: Path, download: bool,
            progress: Callable[[str], None]) -> dict[str, Path]:
    """The file of each needed pin, by ``source.key``: a given file (matched by its SHA-256
    among ``pinned`` and ``needed``), a cached copy, or ``source.download`` into ``cache``."""
    needed = list(needed)
    by_digest = {p.sha256: p for p in [*pinned, *needed]}
    found: dict[str, Path] = {}
    for f in given:
        path = Path(f)
        if not path.is_file():
            raise source.error(f"{path}: no such {source.what} file")
        digest = sha256_file(path)
        pin = by_digest.get(digest)
        if pin is None:
            names = ", ".join(f"{p.filename} ({p.sha256[:12]}...)" for p in by_digest.values())
            raise source.error(f"{path}: SHA-256 {digest[:12]}... matches no pinned "
                               f"{source.what} (expected {names})")
        found[source.key(pin)] = path
        progress(f"{path.name}: given, SHA-256 ok")
    for pin in needed:
        if source.key(pin) in found:
            continue
        cached = cache / pin.filename
        if cached.is_file():
            if sha256_file(cached) == pin.sha256:
                found[source.key(pin)] = cached
                progress(f"{pin.filename}: cached in {cache}")
                continue
            progress(f"{cached}: SHA-256 differs from the pin; downloading it again")
        if not download:
            raise source.error(f"{pin.filename}: not in {cache}; give it with {source.option}")
        found[source.key(pin)] = source.download(pin, cache)
    return found
