"""Training and calibration windows from simulated scenarios, cut by the serving code.

Each scenario is replayed through a :class:`~edge.join.spine.Spine` on a :class:`FakeClock`
(as fast as the simulator renders) and every window goes through the same
:class:`~edge.features.serve.Featurizer` that serving uses. A window's label is the fraction of the last
hop that each class covers, thresholded at one half: the model answers "what is happening now".
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from edge.join.align import Window
from edge.capture.items import ItemSource
from edge.capture.scenario import ScenarioSource
from edge.runtime.card import ModelCard
from edge.timebase.clock import NS_PER_S, FakeClock
from edge.config import (
    Config,
    MediaSourceConfig,
    ScenarioSourceConfig,
    StreamConfig,
    WindowConfig,
    read_text,
)
from edge.errors import ConfigError
from edge.join.spine import Spine, replay
from edge.features.serve import Featurizer
from edge.sim.scenario import Event, Scenario, label_fraction

if TYPE_CHECKING:
    from edge.evaluate.evalrec import RecordingRun
    from edge.evaluate.perturb import FrontChange
    from edge.sim.frontaudio import SoundBank

MEDIA_SUFFIXES = (".mkv", ".mp4", ".mov", ".avi", ".webm")


@dataclass
class WindowSet:
    """Model inputs and labels of many windows (float16 to halve memory).

    A pixel model's windows carry ``video``; a model over front-end features carries ``front``
    and ``front_mask`` instead (its ``video`` is ``[n, 0]``). :meth:`inputs` gives exactly the
    tensors the model takes.
    """

    video: np.ndarray  # [n, T, C, H, W] float16 ([n, 0] for a front-feature model)
    video_mask: np.ndarray  # [n, T] float32 ([n, 0] for a front-feature model)
    audio: np.ndarray  # [n, 1, M, F] float16
    audio_mask: np.ndarray  # [n, F] float32
    labels: np.ndarray  # [n, classes] float32 (fraction of the last hop)
    scenario: np.ndarray  # [n] int, which scenario each window came from
    t_s: np.ndarray  # [n] scenario time of the window end
    front: np.ndarray | None = None  # [n, T, F] float32: per-frame front-end features
    front_mask: np.ndarray | None = None  # [n, T] float32

    def __len__(self) -> int:
        return len(self.labels)

    @staticmethod
    def concat(parts: Sequence["WindowSet"]) -> "WindowSet":
        def cat(f: str) -> np.ndarray | None:
            got = [getattr(p, f) for p in parts]
            if all(g is None for g in got):
                return None
            if any(g is None for g in got):
                raise ValueError(f"cannot join windows with and without {f}")
            return np.concatenate(got)

        return WindowSet(*(cat(f) for f in WindowSet.__dataclass_fields__))  # type: ignore[arg-type]

    def take(self, idx: np.ndarray | slice) -> "WindowSet":
        """The windows at ``idx``."""
        return WindowSet(*(None if getattr(self, f) is None else getattr(self, f)[idx]
                           for f in WindowSet.__dataclass_fields__))  # type: ignore[arg-type]

    @property
    def input_names(self) -> tuple[str, ...]:
        """The model inputs these windows hold, in the reference models' order."""
        if self.front is not None:
            return ("front", "front_mask", "audio", "audio_mask")
        return ("video", "video_mask", "audio", "audio_mask")

    def inputs(self, idx: np.ndarray | slice) -> dict[str, np.ndarray]:
        """The model's input tensors (float32) of the windows at ``idx``."""
        out: dict[str, np.ndarray] = {}
        for name in self.input_names:
            arr = getattr(self, name)
            assert arr is not None
            out[name] = arr[idx].astype(np.float32, copy=False)
        return out


def scenario_config(card: ModelCard, hop_s: float, width: int, height: int, fps: float) -> Config:
    """The config of one simulated camera+mic stream shaped for ``card``."""
    src = ScenarioSourceConfig(
        type="scenario",
        scenario="driver",  # replaced by the Scenario object passed to the source
        width=width,
        height=height,
        fps=fps,
        sample_rate=int(card.audio.get("sample_rate", 16000)),
        loop=False,
        buffer_seconds=max(4.0, card.window["seconds"] + 2.0),
    )
    return Config(
        sources={"sim": src},
        streams={"s": StreamConfig(video="sim", audio="sim")},
        window=WindowConfig(
            seconds=float(card.window["seconds"]),
            frames=int(card.window["frames"]),
            audio_seconds=card.window.get("audio_seconds"),
            hop=hop_s,
        ),
    )


def scenario_windows(
    scenario: Scenario,
    card: ModelCard,
    index: int = 0,
    hop_s: float = 0.25,
    width: int = 320,
    height: int = 240,
    fps: float = 15.0,
) -> WindowSet:
    """Replay one simulated scenario and return every window's features and labels."""
    cfg = scenario_config(card, hop_s, width, height, fps)
    clock = FakeClock(1_000 * NS_PER_S)
    src_cfg = cfg.sources["sim"]
    assert isinstance(src_cfg, ScenarioSourceConfig)
    source = ScenarioSource("sim", src_cfg, clock, scenario=scenario)
    return _replay_windows(cfg, source, clock, scenario, card, index, hop_s, source.scenario_time)


def load_labels(path: str | Path) -> Scenario:
    """A recording's ``labels.json``: ``task``, ``seconds`` and ``events`` [{label, start, end}]
    (the file ``edge sim`` writes beside its media has this form)."""
    p = Path(path)
    text = read_text(p, "labels")
    try:
        data = json.loads(text)
        events = tuple(
            Event(label=e["label"], start=e["start"], end=e["end"]) for e in data.get("events", [])
        )
        return Scenario(task=data["task"], seconds=data["seconds"], events=events)
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{p}: bad labels: {str(exc).splitlines()[0]}") from None


def recording_files(folder: str | Path) -> tuple[Path, Path]:
    """The media file (video with an audio track) and ``labels.json`` of a recording folder."""
    f = Path(folder)
    labels = f / "labels.json"
    media = sorted(p for p in f.iterdir() if p.suffix.lower() in MEDIA_SUFFIXES) if f.is_dir() else []
    if not media or not labels.is_file():
        raise ConfigError(f"{f}: a recording folder needs a video file ({', '.join(MEDIA_SUFFIXES)}) and labels.json")
    return media[0], labels


def recording_windows(
    folder: str | Path, card: ModelCard, index: int = 0, hop_s: float = 0.25
) -> WindowSet:
    """Replay a recorded file (video + audio) through the media source and label its windows."""
    from edge.capture.media import MediaSource, probe_fps

    media, labels_path = recording_files(folder)
    scenario = load_labels(labels_path)
    if scenario.task != card.task:
        raise ConfigError(f"{labels_path}: task {scenario.task!r}, the model is for {card.task!r}")
    src_cfg = MediaSourceConfig(
        type="media",
        url=str(media),
        width=320,
        height=240,
        fps=probe_fps(media),
        sample_rate=int(card.audio.get("sample_rate", 16000)),
        buffer_seconds=max(4.0, card.window["seconds"] + 2.0),
    )
    cfg = scenario_config(card, hop_s, 320, 240, src_cfg.fps).model_copy(
        update={"sources": {"sim": src_cfg}}
    )
    clock = FakeClock(1_000 * NS_PER_S)
    source = MediaSource("sim", src_cfg, clock)

    def file_time(t_ns: int) -> float:
        assert source.video_clock is not None
        return source.video_clock.to_device(t_ns) / NS_PER_S

    return _replay_windows(cfg, source, clock, scenario, card, index, hop_s, file_time)


def _replay_windows(
    cfg: Config,
    source: ItemSource,
    clock: FakeClock,
    scenario: Scenario,
    card: ModelCard,
    index: int,
    hop_s: float,
    timeline_s: Callable[[int], float],
) -> WindowSet:
    """Every window of one replay with its features and labels.

    Windows whose span starts before the timeline (the first ``seconds``) are skipped: their
    missing data is an artefact of starting, not something to learn.
    """
    hop = int(card.audio.get("hop_length", 160))
    spine = Spine(cfg, clock, sample_grid=hop, sources={"sim": source})
    feat = Featurizer(card, spine.aligners["s"])
    rows: list[tuple[object, ...]] = []
    span = float(card.window["seconds"])

    def collect(windows: list[Window]) -> None:
        for w in windows:
            t_end = timeline_s(w.t_end_ns)
            if t_end - span < -1e-6 or t_end > scenario.seconds + 1e-6:
                feat(w)  # keep the streaming front end fed
                continue
            f = feat(w)
            y = label_fraction(scenario, max(0.0, t_end - hop_s), t_end)
            rows.append((f.video, f.video_mask, f.audio, f.audio_mask, y, t_end))

    replay(source, spine, clock, collect)
    if not rows:
        raise ConfigError(f"a timeline of {scenario.seconds:g} s is shorter than one window")
    cols = list(zip(*rows))
    return WindowSet(
        video=np.stack(cols[0]).astype(np.float16),
        video_mask=np.stack(cols[1]).astype(np.float32),
        audio=np.stack(cols[2]).astype(np.float16),
        audio_mask=np.stack(cols[3]).astype(np.float32),
        labels=np.stack(cols[4]).astype(np.float32),
        scenario=np.full(len(rows), index, np.int32),
        t_s=np.asarray(cols[5], np.float64),
    )


def front_scenario_windows(
    scenario: Scenario,
    card: ModelCard,
    bank: "SoundBank",
    vad: object,
    index: int = 0,
    hop_s: float = 0.25,
    change: FrontChange | None = None,
    fps: tuple[float, ...] = (),
    eye_glances: float = 0.0,
) -> WindowSet:
    """Windows of one scenario simulated at feature level (:mod:`edge.sim.frontsim`): what the
    front ends and the log-mel would give serving for the model of ``card`` (``change``: see
    :func:`~edge.sim.frontsim.simulate_windows`; ``fps``: the camera rates drawn from, empty
    for the task's own; ``eye_glances``: the share of glances away the eyes lead)."""
    from edge.features.logmel import LogMelSpec
    from edge.front.features import FrontSpec
    from edge.sim.frontsim import Layout, simulate_windows

    layout = Layout(
        seconds=float(card.window["seconds"]),
        frames=int(card.window["frames"]),
        audio_seconds=float(card.window.get("audio_seconds", card.window["seconds"])),
        hop_s=hop_s,
        camera_fps=tuple(fps),
        eye_glances=eye_glances,
    )
    w = simulate_windows(scenario, FrontSpec.from_dict(card.front),
                         LogMelSpec.from_dict(card.audio), layout, bank, vad, change)
    n = len(w.labels)
    return WindowSet(
        video=np.zeros((n, 0), np.float16),
        video_mask=np.zeros((n, 0), np.float32),
        audio=w.audio.astype(np.float16),
        audio_mask=w.audio_mask.astype(np.float32),
        labels=w.labels.astype(np.float32),
        scenario=np.full(n, index, np.int32),
        t_s=w.t_end,
        front=w.front.astype(np.float32),
        front_mask=w.front_mask.astype(np.float32),
    )


def windows_of(run: "RecordingRun", index: int) -> WindowSet:
    """A recording's ticks as training windows (model inputs and label fractions)."""
    f = run.features
    if not f:
        raise ConfigError(f"{run.name}: no window lies inside the recording")
    front = f[0].front is not None
    n = len(f)
    return WindowSet(
        video=np.stack([x.video for x in f]).astype(np.float16) if not front
        else np.zeros((n, 0), np.float16),
        video_mask=np.stack([x.video_mask for x in f]).astype(np.float32) if not front
        else np.zeros((n, 0), np.float32),
        audio=np.stack([x.audio for x in f]).astype(np.float16),
        audio_mask=np.stack([x.audio_mask for x in f]).astype(np.float32),
        labels=np.stack(run.fractions).astype(np.float32),
        scenario=np.full(n, index, np.int32),
        t_s=run.times.copy(),
        front=np.stack([x.front for x in f]).astype(np.float32) if front else None,
        front_mask=np.stack([x.front_mask for x in f]).astype(np.float32) if front else None,
    )
