"""The flight recorder's configuration checked against a running spine.

:func:`check_recorder` and :func:`check_ring_capacity` refuse a ``recorder:`` section that cannot
work with the spine it records: a rule it names that ``decisions:`` does not have, or a ring too
short to hold ``pre_roll`` plus one window (:func:`~edge.recorder.config.ring_seconds_needed`).
They take a spine, so they live apart from :class:`~edge.recorder.config.RecorderConfig`, which
``edge.config`` reads.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from edge.errors import ConfigError
from edge.recorder.config import RecorderConfig, ring_seconds_needed

if TYPE_CHECKING:
    from edge.decisions.rules import DecisionsConfig
    from edge.capture.base import CaptureSource
    from edge.join.spine import Spine


def check_recorder(config: RecorderConfig, spine: Spine) -> None:
    """Raise :class:`ConfigError` when the recorder cannot work as configured: a ring too short
    for the pre-roll, or ``rules`` naming a rule that ``decisions:`` does not have."""
    if not config.enabled:
        return
    problems = rule_problems(config, spine.config.decisions)
    try:
        check_ring_capacity(config, spine)
    except ConfigError as exc:
        problems.append(str(exc))
    if problems:
        raise ConfigError("\n".join(problems))


def rule_problems(config: RecorderConfig, decisions: DecisionsConfig | None) -> list[str]:
    """What keeps an enabled recorder's rules from triggering under ``decisions`` (also
    checked on a reload: the recorder that will run against the decisions that will)."""
    if not config.enabled:
        return []
    problems = []
    known = [r.name for r in decisions.rules] if decisions is not None else []
    if not known:
        problems.append("recorder: nothing can trigger a recording (the config has no decisions rules)")
    for rule in config.rules:
        if known and rule not in known:
            problems.append(f"recorder.rules: no rule named {rule!r} (decisions has {', '.join(known)})")
    return problems


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
        for kind, held in ring_seconds(src):
            if held + 1e-9 < need:
                problems.append(
                    f"sources.{name}: the {kind} ring holds {held:g} s, the recorder's pre_roll of "
                    f"{config.pre_roll:g} s needs {need:g} s (raise its buffer_seconds"
                    f"{' or audio_buffer_seconds' if kind == 'audio' else ''})"
                )
    if problems:
        raise ConfigError("\n".join(problems))


def ring_seconds(src: CaptureSource) -> list[tuple[str, float]]:
    """``(kind, seconds)`` that each of ``src``'s rings holds (``video``, ``audio``)."""
    out = []
    if src.video is not None and src.nominal_fps > 0:
        out.append(("video", src.video.capacity / src.nominal_fps))
    if src.audio is not None and src.sample_rate > 0:
        out.append(("audio", src.audio.capacity / src.sample_rate))
    return out
