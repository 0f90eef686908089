"""Media files made in the tests with PyAV: known flashes and beeps at known instants."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np


def flash_beep_file(
    path: Path,
    seconds: float = 6.0,
    fps: int = 30,
    sample_rate: int = 48000,
    events_s: tuple[float, ...] = (1.0, 2.5, 4.0),
    audio_codec: str = "pcm_s16le",
    video_codec: str = "mpeg4",
) -> Path:
    """A file whose frames are black except white flashes, and whose audio is silent except
    1 kHz beeps of 100 ms, flash and beep starting together at each of ``events_s``."""
    import av

    with av.open(str(path), "w") as out:
        v = out.add_stream(video_codec, rate=fps)
        v.width, v.height, v.pix_fmt = 160, 120, "yuv420p"
        a = out.add_stream(audio_codec, rate=sample_rate)
        a.layout = "mono"
        n_frames = int(seconds * fps)
        flash_frames = {int(round(t * fps)) + k for t in events_s for k in range(3)}
        for i in range(n_frames):
            img = np.full((120, 160, 3), 255 if i in flash_frames else 0, np.uint8)
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts = i
            frame.time_base = Fraction(1, fps)
            for packet in v.encode(frame):
                out.mux(packet)
        for packet in v.encode():
            out.mux(packet)
        total = int(seconds * sample_rate)
        t = np.arange(total) / sample_rate
        sig = np.zeros(total, np.float32)
        for e in events_s:
            on = (t >= e) & (t < e + 0.1)
            sig[on] = 0.5 * np.sin(2 * np.pi * 1000 * (t[on] - e))
        pcm = (sig * 32767).astype(np.int16)
        block = 1024
        for n0 in range(0, total, block):
            chunk = pcm[n0 : n0 + block]
            af = av.AudioFrame.from_ndarray(chunk.reshape(1, -1), format="s16", layout="mono")
            af.sample_rate = sample_rate
            af.pts = n0
            af.time_base = Fraction(1, sample_rate)
            for packet in a.encode(af):
                out.mux(packet)
        for packet in a.encode():
            out.mux(packet)
    return path
