"""The flight recorder's configuration and what a recording says about itself.

:class:`RecorderConfig` is the ``recorder:`` section of a config; :func:`check_recorder` and
:func:`check_ring_capacity` check it against a running spine (the rules it names, and whether
the rings hold ``pre_roll`` plus one window). The manifest helpers describe a recording's
inputs: :class:`ModelInfo` (the model and its card, with their hashes) and :func:`fit_of` (a clock
model's fit now, as the manifest stores it).

Nothing here imports :mod:`edge.config`, :mod:`edge.join.spine` or :mod:`edge.service.run` at run time, so
``edge.config`` can import :class:`RecorderConfig` from this package.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from edge.runtime.card import sha256_file
from edge.timebase.clock import ClockModel
from edge.errors import ConfigError

if TYPE_CHECKING:
    from edge.join.spine import Spine


class RecorderConfig(BaseModel):
    """The flight recorder (``recorder:`` in a config).

    The rings must still hold the oldest data a recording needs when it starts: ``pre_roll``
    plus one window (its audio span, the larger max wait and two hops) — see
    :func:`ring_seconds_needed`; the caller checks the sources' ``buffer_seconds`` /
    ``audio_buffer_seconds`` with :func:`check_ring_capacity`.
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


def check_recorder(config: RecorderConfig, spine: Spine) -> None:
    """Raise :class:`ConfigError` when the recorder cannot work as configured: a ring too short
    for the pre-roll, or ``rules`` naming a rule that ``decisions:`` does not have."""
    if not config.enabled:
        return
    problems = []
    decisions = spine.config.decisions
    known = [r.name for r in decisions.rules] if decisions is not None else []
    if not known:
        problems.append("recorder: nothing can trigger a recording (the config has no decisions rules)")
    for rule in config.rules:
        if known and rule not in known:
            problems.append(f"recorder.rules: no rule named {rule!r} (decisions has {', '.join(known)})")
    try:
        check_ring_capacity(config, spine)
    except ConfigError as exc:
        problems.append(str(exc))
    if problems:
        raise ConfigError("\n".join(problems))


def check_ring_capacity(config: RecorderConfig, spine: Spine) -> None:
    """Raise :class:`ConfigError` naming each source whose ring is too short for the pre-roll."""
    if not config.enabled:
        return
    w = spine.config.window
    need = max(
        ring_seconds_needed(config, a.spec.seconds, a.spec.audio_span_s, max(w.max_wait_video, w.max_wait_audio), w.hop)
        for a in spine.aligners.values()
    )
    problems = []
    for name, src in spine.sources.items():
        for kind, held in (
            ("video", src.video.capacity / src.nominal_fps if src.video is not None and src.nominal_fps > 0 else None),
            ("audio", src.audio.capacity / src.sample_rate if src.audio is not None and src.sample_rate > 0 else None),
        ):
            if held is not None and held + 1e-9 < need:
                problems.append(
                    f"sources.{name}: the {kind} ring holds {held:g} s, the recorder's pre_roll of "
                    f"{config.pre_roll:g} s needs {need:g} s (raise its buffer_seconds"
                    f"{' or audio_buffer_seconds' if kind == 'audio' else ''})"
                )
    if problems:
        raise ConfigError("\n".join(problems))


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
        from edge.runtime.card import card_path_for

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
