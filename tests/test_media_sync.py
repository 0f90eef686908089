"""A/V sync through the media source: flashes and beeps made together stay together."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from edge.join.align import Window
from edge.timebase.clock import NS_PER_S, FakeClock
from edge.config import parse_config
from edge.join.spine import Spine, replay
from tests.media_files import flash_beep_file

FPS = 30
EVENTS = (1.0, 2.5, 4.0)


def run_file(path: Path) -> tuple[Spine, list[Window]]:
    cfg = parse_config(
        f"""
sources:
  file: {{type: media, url: "{path}", width: 80, height: 60, fps: {FPS}, sample_rate: 16000}}
streams:
  s: {{video: file, audio: file}}
window: {{seconds: 1.0, frames: {FPS}, hop: 0.5}}
"""
    )
    clock = FakeClock(500 * NS_PER_S)
    spine = Spine(cfg, clock)
    windows: list[Window] = []
    replay(spine.sources["file"], spine, clock, windows.extend)  # type: ignore[arg-type]
    return spine, windows


def onsets(windows: list[Window], spine: Spine) -> tuple[list[int], list[int]]:
    """Pipeline times of flash onsets and beep onsets seen in the windows."""
    al = spine.aligners["s"]
    flashes: set[int] = set()
    beeps: set[int] = set()
    for w in windows:
        assert w.video is not None and w.audio is not None and w.audio_n0 is not None
        bright = w.video.reshape(len(w.video), -1).mean(axis=1) > 128
        for k in np.flatnonzero(bright & w.video_mask):
            if k > 0 and not bright[k - 1] and w.video_mask[k - 1]:
                flashes.add(int(w.video_t_ns[k]))
        loud = np.abs(w.audio[:, 0]) > 0.05
        for i in np.flatnonzero(loud[1:] & ~loud[:-1]) + 1:
            if not loud[max(0, i - 160) : i].any():  # a beep start, not a zero crossing
                beeps.add(al.time_of_sample(w.audio_n0 + int(i)))
    return sorted(flashes), sorted(beeps)


def cluster(ts: list[int], gap_ns: int = 200_000_000) -> list[int]:
    out: list[int] = []
    for t in ts:
        if not out or t - out[-1] > gap_ns:
            out.append(t)
    return out


@pytest.mark.parametrize(
    ("container", "audio_codec"), [("mkv", "pcm_s16le"), ("mp4", "aac")]
)
def test_flash_and_beep_made_together_are_within_one_frame(
    tmp_path: Path, container: str, audio_codec: str
) -> None:
    path = flash_beep_file(tmp_path / f"sync.{container}", events_s=EVENTS, audio_codec=audio_codec)
    spine, windows = run_file(path)
    flashes, beeps = onsets(windows, spine)
    flashes, beeps = cluster(flashes), cluster(beeps)
    assert len(flashes) == len(EVENTS), flashes
    assert len(beeps) == len(EVENTS), beeps
    for f, b in zip(flashes, beeps):
        assert abs(f - b) <= NS_PER_S / FPS, f"flash-beep offset {(f - b) / 1e6:.1f} ms"
    # and every window has exactly N samples
    assert {len(w.audio) for w in windows if w.audio is not None} == {16000}


def test_a_decoded_frame_is_not_held_back_behind_later_audio(tmp_path: Path) -> None:
    """Frame-threaded decoding returns each frame only once the next threads' frames are in:
    on 2 cores a 10 fps H.264 stream's frames came out 0.23-0.26 s behind the audio read with
    them (more cores, more frames held). Slice threading holds none: a frame comes out at most
    an audio packet after its own time, and the window's newest frame is that much fresher."""
    from edge.capture.items import VideoItem
    from edge.capture.media import MediaReader
    from tests.conftest import need

    path = tmp_path / "cam.mkv"
    subprocess.run([need("ffmpeg"), "-v", "error", "-f", "lavfi",
                    "-i", "testsrc=size=320x240:rate=10",
                    "-f", "lavfi", "-i", "sine=frequency=1000:sample_rate=16000", "-t", "6",
                    "-c:v", "libx264", "-bf", "0", "-pix_fmt", "yuv420p", "-c:a", "pcm_s16le",
                    str(path)], check=True)
    reader = MediaReader(str(path), 320, 240, 16000, 1)
    audio_end_s, behind = 0.0, []
    try:
        while (item := reader.read()) is not None:
            if isinstance(item, VideoItem):
                behind.append(audio_end_s - item.pts_ns / NS_PER_S)
            else:
                audio_end_s = max(audio_end_s, (item.n0 + len(item.samples)) / 16000)
    finally:
        reader.close()
    assert len(behind) == 60
    assert max(behind) <= 0.1, max(behind)  # one frame interval; 0.06 s measured


def test_a_file_holding_seconds_of_video_before_its_sound_is_read_in_time_order(
    tmp_path: Path,
) -> None:
    """The simulator's files are muxed frames first: a 16 s one holds 4.7 s of video ahead of
    its sound. In demux order the sound came that late, the time model took it for a device
    clock that jumped back and stopped the clock (`edge eval` fell on a division by zero). A
    file's tracks are read by a demuxer each and merged by start time: none lost, and a replay
    runs to the end with every window's sound and frames in."""
    from edge.capture.items import AudioItem, Item, VideoItem
    from edge.capture.media import MediaReader
    from edge.sim.render import write_files
    from edge.sim.scenario import parse_scenario

    files = write_files(parse_scenario("task: driver\nseconds: 16\nseed: 1\nevents: []\n"),
                        tmp_path, width=80, height=60, fps=15)

    def start_s(item: Item) -> float:
        if isinstance(item, VideoItem):
            return item.pts_ns / NS_PER_S
        assert isinstance(item, AudioItem)
        return item.n0 / 16000

    def read(by_time: bool) -> list[Item]:
        reader = MediaReader(str(files.media), 80, 60, 16000, 1, by_time=by_time)
        try:
            return list(iter(reader.read, None))
        finally:
            reader.close()

    demuxed, timed = read(False), read(True)
    latest = np.maximum.accumulate([start_s(x) for x in demuxed])
    lead = max(latest[i - 1] - start_s(x) for i, x in enumerate(demuxed) if i)
    assert lead > 2.0  # the file is what the test says: its sound stored seconds late
    starts = [start_s(x) for x in timed]
    assert starts == sorted(starts)
    for kind in (VideoItem, AudioItem):
        assert sum(isinstance(x, kind) for x in timed) == sum(isinstance(x, kind) for x in demuxed)
    cfg = parse_config(f"""
sources:
  file: {{type: media, url: "{files.media}", width: 80, height: 60, fps: 15, sample_rate: 16000}}
streams:
  s: {{video: file, audio: file}}
window: {{seconds: 2.0, frames: 8, hop: 0.5}}
""")
    clock = FakeClock(500 * NS_PER_S)
    spine = Spine(cfg, clock)
    windows: list[Window] = []
    replay(spine.sources["file"], spine, clock, windows.extend)  # type: ignore[arg-type]
    whole = windows[4:]  # from the first window the file fills
    assert len(whole) >= 26
    assert all(w.video_mask.all() and w.audio_mask.mean() > 0.99 for w in whole)
