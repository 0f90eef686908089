"""A simulated scene as a live source: :mod:`edge.sim` renders frames and audio on demand.

Content is a pure function of scenario time, so a replay on a :class:`FakeClock` (training data,
``edge eval``) sees exactly what a real-time run would, and the ground truth of any window is
known: :meth:`ScenarioSource.scenario_time` maps a pipeline time back to scenario seconds.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edge.capture.base import EndOfStream
from edge.capture.items import AudioItem, Item, ItemSource, VideoItem
from edge.timebase.clock import NS_PER_S, Clock
from edge.config import ScenarioSourceConfig
from edge.errors import DeviceError
from edge.sim.render import Simulator
from edge.sim.scenario import Scenario, Task, labels_at, load_scenario, random_scenario


def scenario_from_config(cfg: ScenarioSourceConfig) -> Scenario:
    """The scenario a config names: a task (random timeline) or a file."""
    if cfg.scenario in ("driver", "home"):
        task: Task = "driver" if cfg.scenario == "driver" else "home"
        return random_scenario(task, cfg.seconds, np.random.default_rng(cfg.seed))
    path = Path(cfg.scenario)
    if not path.is_file():
        raise DeviceError(f"scenario {cfg.scenario!r}: no such file (or use 'driver' / 'home')")
    return load_scenario(path)


class ScenarioSource(ItemSource):
    """Renders a :class:`Scenario` block by block, paced by the clock."""

    kind = "scenario"

    def __init__(
        self, name: str, cfg: ScenarioSourceConfig, clock: Clock, scenario: Scenario | None = None
    ) -> None:
        self.cfg = cfg
        super().__init__(name, clock, cfg, channels=1, paced=True)
        self.scenario = scenario if scenario is not None else scenario_from_config(cfg)
        self.sim = Simulator(self.scenario, cfg.width, cfg.height, cfg.fps, cfg.sample_rate)
        self._block = max(1, int(round(cfg.block_seconds * cfg.sample_rate)))
        self._frame = 0
        self._n = 0
        self._loops = 0

    def describe(self) -> str:
        return f"scenario {self.name!r} ({self.scenario.task}, {self.scenario.seconds:g} s)"

    def open(self) -> None:
        pass

    def close(self) -> None:
        pass

    def scenario_time(self, pipeline_ns: int) -> float:
        """Scenario seconds at a pipeline time (within the current pass of a looping scenario)."""
        assert self.video_clock is not None
        device_s = self.video_clock.to_device(pipeline_ns) / NS_PER_S
        return device_s - self._loops * self.scenario.seconds

    def truth_at(self, pipeline_ns: int) -> list[str] | None:
        if self.video_clock is None or not self.video_clock.ready:
            return None
        active = labels_at(self.scenario, self.scenario_time(pipeline_ns))
        return [c for c, on in active.items() if on]

    def next_item(self) -> Item:
        cfg, length = self.cfg, self.scenario.seconds
        inf = float("inf")
        frame_t = self._frame / cfg.fps
        frame_due = frame_t if frame_t < length else inf
        audio_due = (self._n + self._block) / cfg.sample_rate if self._n / cfg.sample_rate < length else inf
        if frame_due == inf and audio_due == inf:
            if not cfg.loop:
                raise EndOfStream()
            # The device timeline runs on; the scenario starts again.
            self._loops += 1
            self._frame, self._n = 0, 0
            frame_t, frame_due, audio_due = 0.0, 0.0, self._block / cfg.sample_rate
        loop_start_s = self._loops * length
        if frame_due <= audio_due:
            pts = int(round((loop_start_s + frame_t) * NS_PER_S))
            item: Item = VideoItem(pts, self.sim.frame_at(frame_t))
            self._frame += 1
        else:
            n0 = int(round(loop_start_s * cfg.sample_rate)) + self._n
            item = AudioItem(n0, self.sim.audio(self._n, self._block))
            self._n += self._block
        return item
