"""Where the files a config names may lie: resolved once, confined to a few folders.

A config names files and folders: the model and its engine cache, scenario and media files, JSONL
sinks, the recorder's folder, TLS and secret files. When a config file is loaded, each of them is
resolved once — a relative path against the first of ``paths.roots``, ``~`` expanded, symlinks
followed — and must then lie inside one of the roots; anything else is a config error naming the
key. The roots default to the config file's own folder, so a config cannot reach beyond its
folder unless it says so::

    paths:
      roots: [.., /etc/edge/tls]     # relative roots are relative to the config file

Devices (``/dev/…``, indices), URLs (``rtsp://…``) and GStreamer pipelines are not files and are
left alone. A config built in code (:func:`edge.config.parse_config` without a file) is trusted
as it is: the boundary is the file a daemon reads.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from edge.errors import ConfigError

if TYPE_CHECKING:
    from edge.config import Config


class PathsConfig(BaseModel):
    """Folders the config's files may lie in."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    roots: list[str] = Field(
        default_factory=list,
        description="Folders every file the config names must lie in (symlinks followed); "
        "relative paths in the config are resolved against the first. Relative roots are "
        "relative to the config file; default: the config file's folder.",
    )


def is_file_path(value: str) -> bool:
    """Whether a source's device/url string names a file (not a URL, device or pipeline)."""
    return not ("://" in value or "!" in value or value.startswith("/dev/") or value.isdigit())


class _Confiner:
    def __init__(self, roots: Sequence[Path], filename: str, where: Callable[[str], str]) -> None:
        self.roots = list(roots)
        self.filename = filename
        self.where = where

    def __call__(self, key: str, value: str) -> str:
        p = Path(value).expanduser()
        if not p.is_absolute():
            p = self.roots[0] / p
        real = p.resolve()
        if not any(real == r or r in real.parents for r in self.roots):
            where = ", ".join(str(r) for r in self.roots)
            shown = value if str(real) == value else f"{value} (resolves to {real})"
            raise ConfigError(
                f"{self.filename}: {key}: {shown} lies outside the allowed folders ({where});"
                f" add its folder to paths.roots{self.where(key)}"
            )
        return str(real)


def _update(model: BaseModel, **changes: Any) -> Any:
    changes = {k: v for k, v in changes.items() if v is not None}
    return model.model_copy(update=changes) if changes else model


def confine(
    config: "Config", config_file: str | Path, where: Callable[[str], str] = lambda key: ""
) -> "Config":
    """``config`` with every file path resolved and checked against its roots.

    Raises :class:`ConfigError` (one line, naming the first offending key, and its line through
    ``where``) when a path escapes.
    """
    here = Path(config_file).resolve().parent
    raw = config.paths.roots or ["."]
    roots = [(here / Path(r).expanduser()).resolve() for r in raw]
    fix: Callable[[str, str], str] = _Confiner(roots, str(config_file), where)

    def opt(key: str, value: str | None) -> str | None:
        return None if value is None else fix(key, value)

    sources = {}
    for name, src in config.sources.items():
        key = f"sources.{name}"
        if src.type == "camera" and isinstance(src.device, str) and is_file_path(src.device):
            src = _update(src, device=fix(f"{key}.device", src.device))
        elif src.type == "media" and is_file_path(src.url):
            src = _update(src, url=fix(f"{key}.url", src.url))
        elif src.type == "scenario" and src.scenario not in ("driver", "home"):
            src = _update(src, scenario=fix(f"{key}.scenario", src.scenario))
        sources[name] = src

    model = config.model
    if model is not None:
        engine = _update(model.engine, cache_dir=opt("model.engine.cache_dir", model.engine.cache_dir))
        model = _update(model, path=fix("model.path", model.path), engine=engine)

    sinks = {}
    for name, sink in config.sinks.items():
        key = f"sinks.{name}"
        if sink.type == "jsonl":
            sink = _update(sink, path=fix(f"{key}.path", sink.path))
        elif sink.type == "mqtt":
            tls = sink.tls
            if tls is not None:
                tls = _update(
                    tls,
                    ca_file=opt(f"{key}.tls.ca_file", tls.ca_file),
                    cert_file=opt(f"{key}.tls.cert_file", tls.cert_file),
                    key_file=opt(f"{key}.tls.key_file", tls.key_file),
                )
            sink = _update(sink, tls=tls, password_file=opt(f"{key}.password_file", sink.password_file))
        elif sink.type == "webhook":
            sink = _update(sink, ca_file=opt(f"{key}.ca_file", sink.ca_file))
        sinks[name] = sink

    front = config.front_ends
    if front is not None:
        front = _update(front, dir=fix("front_ends.dir", front.dir))

    http = config.http
    if http is not None:
        http = _update(http, token_file=opt("http.token_file", http.token_file))
    recorder = config.recorder
    if recorder is not None:
        recorder = _update(recorder, out_dir=fix("recorder.out_dir", recorder.out_dir))

    return config.model_copy(update={
        "sources": sources, "model": model, "sinks": sinks, "http": http, "recorder": recorder,
        "front_ends": front,
        "paths": PathsConfig(roots=[str(r) for r in roots]),
    })
