"""The simulator's front door: a scenario as frames and samples, windows, and files on disk.

This module owns the public way to render a scenario. :class:`Simulator` picks the task's scene
and serves any frame by time and any sample range by absolute index (a live source can stream it
in blocks of any size and get the same samples); :meth:`Simulator.window` cuts a training window
the way the aligner does; :func:`write_files` writes a media file with video and audio tracks
(PyAV), a WAV file, and the ground truth as JSON.
"""

from __future__ import annotations

import json
import wave
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from edge.sim.driver import DriverScene
from edge.sim.home import HomeScene
from edge.sim.scenario import Scenario, label_fraction, label_matrix
from edge.sim.sound import F32

U8 = NDArray[np.uint8]


class Scene(Protocol):
    """What a task's renderer provides."""

    def frame(self, t_s: float) -> U8: ...

    def audio(self, n0: int, n: int) -> F32: ...


@dataclass(frozen=True)
class SimWindow:
    """One training window cut like the aligner cuts a live one (all modalities valid)."""

    video: U8  # [T, H, W, 3] BGR
    frame_times: NDArray[np.float64]  # [T] s; evenly spaced, the last at t_end
    audio: F32  # [N] mono, samples [n0, n0 + N)
    n0: int
    labels: NDArray[np.float32]  # [n_classes] fraction of the window each class covers
    labels_end: NDArray[np.bool_]  # [n_classes] classes active at the last frame


class Simulator:
    """A scenario rendered on demand.

    Parameters
    ----------
    scenario
        The timeline and conditions.
    width, height
        Frame size in pixels.
    fps
        Frame rate used by :meth:`frame` and :func:`write_files`; :meth:`frame_at` takes any time.
    sample_rate
        Audio sample rate in Hz.

    Notes
    -----
    Output is a pure function of the scenario (its seed included), the frame size and the sample
    rate: the same arguments give identical frames and samples, in any order of calls.
    Not thread-safe: the audio page cache is unguarded; use one simulator per thread.
    """

    def __init__(self, scenario: Scenario, width: int = 128, height: int = 128, fps: float = 15.0,
                 sample_rate: int = 16000) -> None:
        if width < 16 or height < 16:
            raise ValueError(f"frame size must be at least 16x16, got {width}x{height}")
        if fps <= 0 or sample_rate < 8000:
            raise ValueError(f"need fps > 0 and sample_rate >= 8000, got {fps}, {sample_rate}")
        self.scenario, self.width, self.height = scenario, width, height
        self.fps, self.sample_rate = fps, sample_rate
        self.scene: Scene = (DriverScene if scenario.task == "driver" else HomeScene)(
            scenario, width, height, sample_rate)

    @property
    def classes(self) -> tuple[str, ...]:
        """Class names, in label column order."""
        return self.scenario.classes

    @property
    def n_frames(self) -> int:
        """Frames in the whole scenario at :attr:`fps`."""
        return int(round(self.scenario.seconds * self.fps))

    @property
    def n_samples(self) -> int:
        """Samples in the whole scenario at :attr:`sample_rate`."""
        return int(round(self.scenario.seconds * self.sample_rate))

    def frame_at(self, t_s: float) -> U8:
        """The frame at scenario time ``t_s``: ``height x width x 3`` BGR uint8."""
        return self.scene.frame(t_s)

    def frame(self, index: int) -> U8:
        """Frame ``index`` at :attr:`fps` (time ``index / fps``)."""
        return self.scene.frame(index / self.fps)

    def audio(self, n0: int, n: int) -> F32:
        """Samples ``[n0, n0 + n)`` (absolute indices, ``n0 >= 0``), float32 mono in [-1, 1].

        Rendering continues past the end of the scenario with background sound only.
        """
        return self.scene.audio(n0, n)

    def window(self, t_end_s: float, seconds: float, frames: int) -> SimWindow:
        """A window of ``frames`` frames and ``seconds`` of audio ending at ``t_end_s``.

        Frame targets are ``t_end - seconds + k * seconds / frames`` for ``k = 1..frames`` and
        the audio covers ``[t_end - seconds, t_end)``, as :class:`edge.join.align.WindowSpec` does.
        """
        t0 = t_end_s - seconds
        if t0 < 0 or frames < 1:
            raise ValueError(f"window [{t0:g}, {t_end_s:g}) with {frames} frames is out of range")
        times = t0 + np.arange(1, frames + 1, dtype=np.float64) * np.float64(seconds / frames)
        n0 = int(round(t0 * self.sample_rate))
        return SimWindow(
            video=np.stack([self.scene.frame(float(t)) for t in times]),
            frame_times=times,
            audio=self.scene.audio(n0, int(round(seconds * self.sample_rate))),
            n0=n0,
            labels=label_fraction(self.scenario, t0, t_end_s),
            labels_end=label_matrix(self.scenario, np.array([t_end_s]))[0],
        )


@dataclass(frozen=True)
class SimFiles:
    """Paths written by :func:`write_files`."""

    media: Path
    wav: Path
    labels: Path


def write_files(scenario: Scenario, out_dir: str | Path, width: int = 320, height: int = 240,
                fps: int = 15, sample_rate: int = 16000, video_codec: str | None = None) -> SimFiles:
    """Render a whole scenario to ``video.mkv`` (video + audio), ``audio.wav``, ``labels.json``.

    Parameters
    ----------
    scenario
        What to render.
    out_dir
        Directory to write into (created if missing).
    width, height
        Frame size; must be even (the video is YUV 4:2:0).
    fps
        Integer frame rate of the file.
    sample_rate
        Audio rate; the tracks are 16-bit PCM mono.
    video_codec
        PyAV encoder name; default ``libx264`` where available, else ``mpeg4``.

    Returns
    -------
    SimFiles
        The three paths.
    """
    import av  # the only user of PyAV here; the rest of the simulator needs none

    if width % 2 or height % 2:
        raise ValueError(f"width and height must be even for YUV 4:2:0 video, got {width}x{height}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    sim = Simulator(scenario, width, height, fps, sample_rate)
    codec = video_codec or ("libx264" if "libx264" in av.codecs_available else "mpeg4")
    pcm = (np.clip(sim.audio(0, sim.n_samples), -1, 1) * 32767).astype(np.int16)
    media = out / "video.mkv"
    with av.open(str(media), "w") as box:
        v = box.add_stream(codec, rate=fps)
        if not isinstance(v, av.VideoStream):
            raise ValueError(f"{codec} is not a video encoder")
        v.width, v.height, v.pix_fmt = width, height, "yuv420p"
        if codec == "libx264":
            v.options = {"crf": "18", "preset": "veryfast"}
        else:
            v.bit_rate = max(1_000_000, width * height * fps * 2)
        a = box.add_stream("pcm_s16le", rate=sample_rate)
        assert isinstance(a, av.AudioStream)  # by its codec name
        a.layout = "mono"
        for i in range(sim.n_frames):
            vf = av.VideoFrame.from_ndarray(sim.frame(i), format="bgr24")
            vf.pts, vf.time_base = i, Fraction(1, fps)
            box.mux(v.encode(vf))
        box.mux(v.encode())
        block = 1024
        for n0 in range(0, len(pcm), block):
            af = av.AudioFrame.from_ndarray(pcm[None, n0 : n0 + block], format="s16", layout="mono")
            af.sample_rate, af.pts, af.time_base = sample_rate, n0, Fraction(1, sample_rate)
            box.mux(a.encode(af))
        box.mux(a.encode())
    wav_path = out / "audio.wav"
    with wave.open(str(wav_path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(pcm.astype("<i2").tobytes())
    labels_path = out / "labels.json"
    labels_path.write_text(json.dumps({
        "task": scenario.task, "classes": list(scenario.classes), "seconds": scenario.seconds,
        "seed": scenario.seed, "fps": fps, "sample_rate": sample_rate,
        "width": width, "height": height, "conditions": scenario.conditions.model_dump(),
        "events": [ev.model_dump() for ev in scenario.events],
    }, indent=2) + "\n", encoding="utf-8")
    return SimFiles(media, wav_path, labels_path)
