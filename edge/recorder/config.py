"""The flight recorder's configuration and what a recording says about itself.

:class:`RecorderConfig` is the ``recorder:`` section of a config; :mod:`edge.recorder.checks`
checks it against a running spine (the rules it names, and whether the rings hold ``pre_roll``
plus one window); :func:`reloaded_text` is the config text recordings keep after a reload. The
manifest helpers describe a recording's inputs: :class:`ModelInfo` (the
model and its card, with their hashes) and :func:`fit_of` (a clock model's fit now, as the
manifest stores it).

Nothing here imports the recorder's machinery, the spine or the model card at import time (the
card is read when a :class:`ModelInfo` is made), so ``edge.config`` reads :class:`RecorderConfig`
from here without loading them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

if TYPE_CHECKING:
    from edge.config import Config
    from edge.timebase.clock import ClockModel


class RecorderConfig(BaseModel):
    """The flight recorder (``recorder:`` in a config).

    The rings must still hold the oldest data a recording needs when it starts: ``pre_roll``
    plus one window (its audio span, the larger max wait and two hops) — see
    :func:`ring_seconds_needed`; the caller checks the sources' ``buffer_seconds`` /
    ``audio_buffer_seconds`` with :func:`~edge.recorder.checks.check_ring_capacity`.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(True, description="Record on events; false keeps the section but records nothing.")
    out_dir: str = Field(
        "recordings", description="Folder of the recordings (created 0700), one folder per recording."
    )
    rules: list[str] = Field(
        default_factory=list,
        description="Rules whose start event triggers a recording; empty: every rule's start.",
    )
    pre_roll: float = Field(
        5.0, ge=0, le=300,
        description="Seconds of ticks before the triggering one to include, each with its whole "
        "window of data; the rings must hold pre_roll plus one window.",
    )
    post_roll: float = Field(
        5.0, ge=0, le=600,
        description="Seconds to go on recording after the last triggering event start.",
    )
    max_seconds: float = Field(
        120.0, gt=0, le=3600,
        description="Longest a recording runs after its first trigger, however often retriggered.",
    )
    quota_mb: float = Field(
        2048.0, gt=0,
        description="Disk quota of all recordings together (MiB): the oldest are deleted to stay "
        "under it; a recording that alone exceeds it is abandoned.",
    )
    max_recordings: int = Field(100, ge=1, description="Recordings kept; older ones are deleted.")
    queue_chunks: int = Field(
        64, ge=2, le=100_000,
        description="Ticks of data that may wait for the writer thread; when full, the recording "
        "is abandoned (one with a hole could not be replayed exactly).",
    )

    @model_validator(mode="after")
    def _post_roll_fits(self) -> "RecorderConfig":
        if self.post_roll > self.max_seconds:
            raise ValueError(f"max_seconds ({self.max_seconds:g}) must be >= post_roll ({self.post_roll:g})")
        return self


def ring_seconds_needed(
    config: RecorderConfig, window_s: float, audio_s: float, max_wait_s: float, hop_s: float
) -> float:
    """Seconds a ring must hold so that a recording reaches back ``pre_roll`` plus one window."""
    return config.pre_roll + max(window_s, audio_s) + max_wait_s + 2 * hop_s


@dataclass(frozen=True)
class ModelInfo:
    """Which model made the recorded predictions: its card's name, the files and their hashes."""

    name: str
    path: str | None
    sha256: str | None
    card_path: str | None = None
    card_sha256: str | None = None
    engine: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, name: str, path: str | Path | None, engine: Mapping[str, Any] | None = None) -> ModelInfo:
        from edge.runtime.card import card_path_for, sha256_file

        if path is None:
            return cls(name, None, None, engine=dict(engine or {}))
        p = Path(path).resolve()
        card = card_path_for(p)
        return cls(
            name, str(p), sha256_file(p) if p.is_file() else None,
            str(card), sha256_file(card) if card.is_file() else None, dict(engine or {}),
        )


def fit_of(clock: ClockModel | None) -> list[float] | None:
    """``[origin_ns, offset_ns, skew]`` of a clock model now (:meth:`ClockModel.params`, as
    JSON keeps it), or None when it is not ready."""
    fit = None if clock is None else clock.params()
    return None if fit is None else list(fit)


def reloaded_text(path: str, text: str, restart: list[str], running: Config) -> str:
    """The config a recording keeps after a reload of ``path`` (whose text was ``text``): that
    text when all of it applied; else the running config written out (``restart``'s sections
    as they were started, the rest as reloaded), under a comment that says so."""
    if not restart:
        return text
    head = (f"# {path} was reloaded, but these sections of it need a restart: "
            f"{', '.join(restart)}. This is the config that ran, written out (those sections "
            "as started).\n")
    return head + config_yaml(running)


def config_yaml(config: Config) -> str:
    """``config`` written out as YAML that parses back to it (what a recording keeps when no
    file's text is given)."""
    import yaml

    return yaml.safe_dump(config.model_dump(mode="json", by_alias=True), sort_keys=False)
