"""Training and calibration windows from simulated scenarios, cut by the serving code.

Each scenario is replayed through a :class:`~edge.pipeline.Spine` on a :class:`FakeClock`
(as fast as the simulator renders) and every window goes through the same
:class:`~edge.serve.Featurizer` that serving uses. A window's label is the fraction of the last
hop that each class covers, thresholded at one half: the model answers "what is happening now".
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from edge.align import Window
from edge.capture.scenario import ScenarioSource
from edge.card import ModelCard
from edge.clock import NS_PER_S, FakeClock
from edge.config import Config, ScenarioSourceConfig, StreamConfig, WindowConfig
from edge.pipeline import Spine, replay
from edge.serve import Featurizer
from edge.sim.scenario import Scenario, label_fraction


@dataclass
class WindowSet:
    """Model inputs and labels of many windows (float16 to halve memory)."""

    video: np.ndarray  # [n, T, C, H, W] float16
    video_mask: np.ndarray  # [n, T] float32
    audio: np.ndarray  # [n, 1, M, F] float16
    audio_mask: np.ndarray  # [n, F] float32
    labels: np.ndarray  # [n, classes] float32 (fraction of the last hop)
    scenario: np.ndarray  # [n] int, which scenario each window came from
    t_s: np.ndarray  # [n] scenario time of the window end

    def __len__(self) -> int:
        return len(self.labels)

    @staticmethod
    def concat(parts: Sequence["WindowSet"]) -> "WindowSet":
        return WindowSet(
            *(np.concatenate([getattr(p, f) for p in parts]) for f in WindowSet.__dataclass_fields__)
        )

    def inputs(self, idx: np.ndarray | slice) -> dict[str, np.ndarray]:
        return {
            "video": self.video[idx].astype(np.float32),
            "video_mask": self.video_mask[idx],
            "audio": self.audio[idx].astype(np.float32),
            "audio_mask": self.audio_mask[idx],
        }


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
            seconds=float(card.window["seconds"]), frames=int(card.window["frames"]), hop=hop_s
        ),
    )


def scenario_windows(
    scenario: Scenario,
    card: ModelCard,
    index: int = 0,
    hop_s: float = 0.25,
    width: int = 160,
    height: int = 120,
    fps: float = 10.0,
    mask: Callable[[Window], Window] | None = None,
) -> WindowSet:
    """Replay one scenario and return every window's features and labels.

    Windows whose span starts before the scenario (the first ``seconds``) are skipped: their
    missing data is an artefact of starting, not something to learn.
    """
    cfg = scenario_config(card, hop_s, width, height, fps)
    clock = FakeClock(1_000 * NS_PER_S)
    src_cfg = cfg.sources["sim"]
    assert isinstance(src_cfg, ScenarioSourceConfig)
    source = ScenarioSource("sim", src_cfg, clock, scenario=scenario)
    hop = int(card.audio.get("hop_length", 160))
    spine = Spine(cfg, clock, sample_grid=hop, sources={"sim": source})
    feat = Featurizer(card, spine.aligners["s"])
    rows: list[tuple[object, ...]] = []
    span = float(card.window["seconds"])

    def collect(windows: list[Window]) -> None:
        for w in windows:
            t_end = source.scenario_time(w.t_end_ns)
            if t_end - span < -1e-6 or t_end > scenario.seconds + 1e-6:
                feat(w)  # keep the streaming front end fed
                continue
            f = feat(mask(w) if mask is not None else w)
            y = label_fraction(scenario, max(0.0, t_end - hop_s), t_end)
            rows.append((f.video, f.video_mask, f.audio, f.audio_mask, y, t_end))

    replay(source, spine, clock, collect)
    if not rows:
        raise ValueError(f"scenario of {scenario.seconds:g} s is shorter than one window")
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
