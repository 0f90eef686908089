"""``edge record``: live sources into a recording folder that ``edge eval/train --recordings``
read, with both tracks on one timeline, a clean stop on SIGTERM, and the device timestamps kept.

The deterministic tests drive synthetic sources on a :class:`FakeClock` straight into
:class:`RecordingCore` (no system tools); the system tests run the CLI as a subprocess on an
ffmpeg MJPEG camera and a PulseAudio microphone.
"""

from __future__ import annotations

import json
import math
import signal
import subprocess
import sys
import time
import wave
from pathlib import Path

import av
import numpy as np
import pytest

from edge.timebase.buffers import FrameRing
from edge.capture.items import AudioItem, Item, VideoItem
from edge.capture.media import MediaReader
from edge.capture.simulated import SyntheticSource
from edge.cli import main
from edge.timebase.clock import NS_PER_S, ClockModel, FakeClock
from edge.config import SyntheticSourceConfig
from edge.recording.core import GAP_INVALID, RecordingCore
from edge.recording.keys import LabelToggles
from edge.recording.sheet import ContactSheet, open_speech_activity
from edge.recording.writer import AudioTrack, MediaWriter, VideoTrack
from tests.conftest import MjpegServer, need, wait_for

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "engines" / "driver-av.int8.onnx"
FPS = 15
SR = 16000


class FlashBeep(SyntheticSource):
    """Dark frames with a white flash, silence with a 1 kHz beep, both at each whole second of
    *host* time from the second one on: on a device clock ``skew_ppm`` fast, an event at host
    second ``k`` is at device second ``k * (1 + skew)``."""

    def next_item(self) -> Item:
        item = super().next_item()
        cfg = self.cfg
        rate = 1.0 + cfg.skew_ppm * 1e-6
        if isinstance(item, VideoItem):
            host_s = item.pts_ns / NS_PER_S / rate
            near = round(host_s)
            flash = near >= 1 and abs(host_s - near) < 0.5 / cfg.fps
            img = np.full((cfg.height, cfg.width, 3), 235 if flash else 20, np.uint8)
            return VideoItem(item.pts_ns, img)
        n = np.arange(item.n0, item.n0 + len(item.samples))
        host_s = n / cfg.sample_rate / rate
        on = (host_s >= 1.0) & (host_s % 1.0 < 0.1)
        tone = 0.5 * np.sin(2 * np.pi * 1000.0 * n / cfg.sample_rate)
        return AudioItem(item.n0, np.where(on, tone, 0.0).astype(np.float32))


def synthetic(name: str, clock: FakeClock, skew_ppm: float, seed: int) -> FlashBeep:
    cfg = SyntheticSourceConfig(type="synthetic", width=160, height=120, fps=FPS, sample_rate=SR,
                                skew_ppm=skew_ppm, jitter_ms=3.0, seed=seed)
    return FlashBeep(name, cfg, clock)


def drive(sources: list[FlashBeep], core: RecordingCore, clock: FakeClock, seconds: float,
          poll_s: float = 0.05, lose_audio: tuple[float, float] | None = None) -> None:
    """Deliver every source's items at their (jittered, skewed) host times, polling the core
    every ``poll_s`` as the recorder's main loop does; audio items due inside ``lose_audio``
    (host seconds) never arrive."""
    start = clock.now_ns()
    for s in sources:
        s.open()

    def upcoming(s: FlashBeep) -> tuple[int, Item]:
        item = s.next_item()
        return start + s.pace_delay_ns(s.device_due_ns(item)), item

    queue = [upcoming(s) for s in sources]
    next_poll, end = start + int(poll_s * NS_PER_S), start + int(seconds * NS_PER_S)
    while True:
        i = min(range(len(queue)), key=lambda j: queue[j][0])
        due, item = queue[i]
        if due > end:
            break
        while next_poll <= due:
            clock.set_ns(max(next_poll, clock.now_ns()))
            core.poll(clock.now_ns())
            next_poll += int(poll_s * NS_PER_S)
        clock.set_ns(max(due, clock.now_ns()))
        lost = lose_audio is not None and isinstance(item, AudioItem) and \
            lose_audio[0] <= (due - start) / NS_PER_S < lose_audio[1]
        if not lost:
            sources[i].write_item(item, clock.now_ns())
        queue[i] = upcoming(sources[i])
    core.poll(end)


def flashes_and_beeps(path: Path) -> tuple[list[float], list[float], np.ndarray]:
    """File times of the flash frames and beep onsets, as the media source reads them back."""
    reader = MediaReader(str(path), 160, 120, SR, 1)
    flashes: list[float] = []
    audio = []
    first_n: int | None = None
    try:
        while (item := reader.read()) is not None:
            if isinstance(item, VideoItem):
                if item.image.mean() > 128:
                    flashes.append(item.pts_ns / NS_PER_S)
            else:
                first_n = item.n0 if first_n is None else first_n
                audio.append(item.samples[:, 0])
    finally:
        reader.close()
    assert first_n is not None
    x = np.concatenate(audio)
    loud = np.abs(x) > 0.05
    onsets = [(first_n + i) / SR for i in np.flatnonzero(loud[1:] & ~loud[:-1]) + 1
              if not loud[max(0, i - SR // 2) : i].any()]
    return flashes, onsets, x


def pairs(flashes: list[float], beeps: list[float]) -> list[float]:
    """Beep minus flash, per event (matched within half a second)."""
    out = []
    for f in flashes:
        near = min(beeps, key=lambda b: abs(b - f))
        if abs(near - f) < 0.5:
            out.append(near - f)
    return out


def test_two_clocks_5000_ppm_apart_stay_in_sync_in_the_file_and_the_sidecar_keeps_device_times(
    tmp_path: Path,
) -> None:
    """Camera and microphone on separate device clocks, the microphone's 5000 ppm fast (100 ms
    over 20 s, more than a frame): the file's flash and beep, read back by the media source,
    are within a frame (in fact a few ms), also after half a second of lost audio, which is
    silence in the file and a gap in the sidecar."""
    clock = FakeClock(1_000 * NS_PER_S)
    cam = synthetic("cam", clock, skew_ppm=0.0, seed=1)
    mic = synthetic("mic", clock, skew_ppm=5000.0, seed=2)
    assert cam.video is not None and mic.audio is not None
    writer = MediaWriter(tmp_path / "video.mkv", VideoTrack(160, 120, FPS), AudioTrack(SR, 1))
    core = RecordingCore(writer, frames=cam.video, video_clock=cam.video_clock, samples=mic.audio,
                         audio_clock=mic.audio_clock, sample_rate=SR, fps=FPS)
    core.begin()
    drive([cam, mic], core, clock, seconds=20.0, lose_audio=(12.2, 12.7))
    writer.close()
    assert not (tmp_path / "video.mkv.part").exists()

    flashes, beeps, samples = flashes_and_beeps(tmp_path / "video.mkv")
    assert len(flashes) == 19 and len(beeps) >= 18  # seconds 1..19; one beep may fall in the loss
    offsets = pairs(flashes, beeps)
    assert len(offsets) >= 18
    assert max(abs(o) for o in offsets) < 1.0 / FPS  # within one frame
    assert max(abs(o) for o in offsets) < 0.01  # and in fact within 10 ms
    # the lost half second is silence where it belongs (12.2-12.7 s in host time)
    t0_s = core.t0_ns / NS_PER_S - 1_000 if core.t0_ns is not None else 0.0
    side = core.sidecar()
    gaps = side["audio_gaps"]
    assert len(gaps) == 1 and gaps[0, 3] == GAP_INVALID
    gap_start_s, gap_len_s = gaps[0, 1] / SR, gaps[0, 2] / SR
    assert abs(gap_start_s + t0_s - 12.2) < 0.05 and abs(gap_len_s - 0.5) < 0.05
    lo = int((gap_start_s - core.audio_f0 / SR) * SR)
    assert not samples[lo + 10 : lo + int(gap_len_s * SR) - 10].any()

    # Sidecar: every frame's ring seq, device and pipeline time behind its file time.
    assert side["frame_seq"].tolist() == list(range(len(side["frame_seq"])))
    assert len(side["frame_seq"]) == core.stats.frames == 20 * FPS
    pts = (side["frame_pipeline_ns"] - side["t0_ns"]) / 1e6
    assert np.abs(side["frame_pts_ms"] - pts).max() <= 1.0
    assert np.abs(side["frame_device_ns"] - np.arange(20 * FPS) * NS_PER_S // FPS).max() <= 1
    # The drift was taken out: ~0.5 % fewer samples written than the fast card delivered.
    read, written = side["audio_device_n"].sum(), side["audio_file_n"].sum()
    assert abs((read - written) / read - 5000e-6 / 1.005) < 1e-3
    assert side["audio_device_n0"][0] == 0 and side["audio_file_f0"][0] == core.audio_f0
    assert {0, 1} <= set(side["clock_fit_kind"].tolist())
    assert core.stats.lost_frames == 0


def test_frames_overwritten_before_the_loop_reads_them_are_counted() -> None:
    class Sink:
        def __init__(self) -> None:
            self.pts: list[int] = []

        def write_frame(self, image: np.ndarray, pts_ms: int) -> None:
            self.pts.append(pts_ms)

        def write_audio(self, samples: np.ndarray, f0: int) -> None:
            raise AssertionError("no audio here")

    ring, model = FrameRing(4, (8, 8, 3)), ClockModel()
    sink = Sink()
    core = RecordingCore(sink, frames=ring, video_clock=model, fps=10)
    core.begin()
    for i in range(2):
        model.observe(i * 100_000_000, i * 100_000_000)
        ring.write(np.zeros((8, 8, 3), np.uint8), i * 100_000_000)
    core.poll(0)
    for i in range(2, 12):  # ten frames while the loop was away; the ring holds four
        model.observe(i * 100_000_000, i * 100_000_000)
        ring.write(np.zeros((8, 8, 3), np.uint8), i * 100_000_000)
    core.poll(0)
    assert core.stats.lost_frames == 6 and core.stats.frames == 6
    assert sink.pts == [0, 100, 800, 900, 1000, 1100]


class _AudioSink:
    def __init__(self) -> None:
        self.blocks: list[tuple[int, np.ndarray]] = []

    def write_frame(self, image: np.ndarray, pts_ms: int) -> None:
        raise AssertionError("no video here")

    def write_audio(self, samples: np.ndarray, f0: int) -> None:
        self.blocks.append((f0, samples.copy()))


def test_an_audio_clock_that_jumps_is_bridged_with_silence_or_by_dropping_samples() -> None:
    """A device clock that restarts moves its mapping by whole seconds: the file's audio follows
    at once (silence ahead, samples left out behind) instead of stretching for minutes."""
    from edge.timebase.buffers import SampleRing
    from edge.timebase.clock import FrozenClock
    from edge.recording.core import GAP_DROPPED, GAP_RESYNC

    ring, model, sink = SampleRing(SR * 4), FrozenClock(), _AudioSink()
    model.set_fit((0, 0.0, 0.0))
    core = RecordingCore(sink, samples=ring, audio_clock=model, sample_rate=SR)
    core.begin()
    block = np.full(SR // 10, 0.25, np.float32)
    for i in range(10):
        ring.write(block)
        core.poll(0)
    assert core.stats.samples_written == SR
    model.set_fit((0, 0.5 * NS_PER_S, 0.0))  # the same samples are now half a second later
    ring.write(block)
    core.poll(0)
    assert core.stats.samples_written == SR + SR // 2 + SR // 10
    model.set_fit((0, 0.2 * NS_PER_S, 0.0))  # and back by 0.3 s: that much was already written
    for _ in range(4):
        ring.write(block)
        core.poll(0)
    gaps = core.sidecar()["audio_gaps"]
    assert gaps[:, 3].tolist() == [GAP_RESYNC, GAP_DROPPED]
    assert gaps[0, 1:3].tolist() == [SR, SR // 2] and gaps[1, 2] == int(0.3 * SR)
    f_end = sink.blocks[-1][0] + len(sink.blocks[-1][1])
    assert f_end == round((15 * SR // 10) + 0.2 * SR)  # on the new mapping again
    assert core.stats.resyncs == 2


def test_keys_toggle_classes_and_end_the_ones_they_cannot_overlap() -> None:
    t = LabelToggles("driver")
    assert t.key_map().startswith("keys: 1 eyes_closed, 2 yawning")
    assert t.press("1", 1.0) == "eyes_closed on at 00:01.0"
    assert t.press("2", 2.0) == "yawning on at 00:02.0"
    assert t.press("5", 3.5) == "talking on at 00:03.5 (ends yawning)"  # one mouth
    assert t.press("1", 4.0) == "eyes_closed off at 00:04.0 (3.0 s)"
    assert t.press("x", 4.5) is None and t.press("9", 4.5) is None
    assert t.events(6.0) == [
        {"label": "eyes_closed", "start": 1.0, "end": 4.0},
        {"label": "yawning", "start": 2.0, "end": 3.5},
        {"label": "talking", "start": 3.5, "end": 6.0},
    ]


def test_contact_sheet_has_a_thumbnail_per_second_and_level_and_speech_strips(tmp_path: Path) -> None:
    speech, note = open_speech_activity(ROOT / "engines" / "front", SR)
    if speech is None:
        assert note.startswith("speech activity not shown")
    sheet = ContactSheet(160, 120, SR, speech)
    for i in range(12 * FPS):
        sheet.add_frame(np.full((120, 160, 3), i % 255, np.uint8), i / FPS)
    tone = (0.5 * np.sin(np.arange(12 * SR) * 2 * np.pi * 440 / SR)).astype(np.float32)[:, None]
    valid = np.ones(len(tone), bool)
    valid[5 * SR : 6 * SR] = False
    for f0 in range(0, len(tone), 800):
        sheet.add_audio(tone[f0 : f0 + 800], f0, valid[f0 : f0 + 800])
    db, gap = sheet.levels_db()
    assert len(sheet.thumbs) == 12 and sorted(sheet.thumbs) == list(range(12))
    assert np.allclose(db[:50], 20 * math.log10(0.5 / math.sqrt(2)), atol=0.1)
    assert gap[50:60].all() and not gap[:50].any()
    paths = sheet.render(tmp_path / "sheet.png", 12.0, ["test", note])
    assert paths == [tmp_path / "sheet.png"]
    import cv2

    img = cv2.imread(str(paths[0]))
    assert img is not None and img.shape[1] == 64 + 10 * 160 + 8  # ten seconds per row
    assert img.shape[0] > 2 * 120  # two rows


def test_an_out_folder_holding_a_recording_is_refused_unless_forced(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "synth.yaml"
    cfg.write_text("sources: {s: {type: synthetic, width: 64, height: 48, fps: 10}}\n"
                   "streams: {st: {video: s, audio: s}}\n")
    out = tmp_path / "rec"
    out.mkdir()
    (out / "labels.json").write_text("{}")
    assert main(["record", "--config", str(cfg), "--out", str(out), "--task", "driver"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"edge: error: {out}: already holds a recording (labels.json); use --force to replace it"
    assert main(["record", "--config", str(cfg), "--out", str(tmp_path / "r2")]) == 2
    assert "say --task" in capsys.readouterr().err
    assert main(["record", "--config", str(cfg), "--out", str(tmp_path / "r2"), "--task", "home",
                 "--stream", "nope"]) == 2
    assert "no stream 'nope' in the config (streams: st)" in capsys.readouterr().err
    assert not (tmp_path / "r2").exists()
    # --force replaces it: a short real-time recording of the synthetic source, in process.
    assert main(["record", "--config", str(cfg), "--out", str(out), "--task", "home", "--force",
                 "--seconds", "1.5", "--no-sheet"]) == 0
    labels = json.loads((out / "labels.json").read_text())
    assert labels["task"] == "home" and labels["events"] == [] and labels["seconds"] == 1.5
    assert sorted(p.name for p in out.iterdir()) == ["labels.json", "timestamps.npz", "video.mkv"]


def test_keys_from_a_terminal_label_the_recording_and_q_stops_it(tmp_path: Path) -> None:
    """stdin a terminal (a pty): the key map is printed, 1 toggles eyes_closed on and off, q
    stops; the span is an event of labels.json."""
    import os
    import pty

    cfg = tmp_path / "synth.yaml"
    cfg.write_text("sources: {s: {type: synthetic, width: 64, height: 48, fps: 10}}\n"
                   "streams: {st: {video: s, audio: s}}\n")
    out, log = tmp_path / "rec", tmp_path / "stderr.txt"
    master, slave = pty.openpty()
    with log.open("w") as err:
        run = subprocess.Popen(
            [sys.executable, "-m", "edge.cli", "record", "--config", str(cfg), "--out", str(out),
             "--task", "driver", "--no-sheet"], cwd=ROOT, stdin=slave, stdout=subprocess.PIPE,
            stderr=err, text=True,
        )
    os.close(slave)
    try:
        assert wait_for(lambda: "edge record: 00:01" in log.read_text(), 30.0), log.read_text()
        os.write(master, b"1")
        assert wait_for(lambda: "eyes_closed on at" in log.read_text(), 5.0), log.read_text()
        time.sleep(1.2)
        os.write(master, b"1")
        assert wait_for(lambda: "eyes_closed off at" in log.read_text(), 5.0), log.read_text()
        os.write(master, b"q")
        stdout, _ = run.communicate(timeout=20)
    finally:
        os.close(master)
        if run.poll() is None:
            run.kill()
            run.communicate()
    assert run.returncode == 0, log.read_text()
    text = log.read_text()
    assert "edge record: keys: 1 eyes_closed, 2 yawning, 3 distracted, 4 phone, 5 talking" in text
    assert "stopped by q" in stdout and "1 events" in stdout
    labels = json.loads((out / "labels.json").read_text())
    (event,) = labels["events"]
    assert event["label"] == "eyes_closed" and 1.0 <= event["end"] - event["start"] < 2.5
    assert 0.5 < event["start"] and event["end"] <= labels["seconds"]


def _probe(path: Path) -> dict[str, float]:
    """Frames, last frame time, audio samples and rate, by decoding everything."""
    with av.open(str(path)) as c:
        v, a = c.streams.video[0], c.streams.audio[0]
        times = [f.time for f in c.decode(v)]
    with av.open(str(path)) as c:
        frames = list(c.decode(c.streams.audio[0]))
    samples = sum(f.samples for f in frames)
    return {"frames": len(times), "last_frame_s": times[-1], "samples": samples,
            "audio_end_s": frames[0].time + samples / a.rate, "rate": a.rate,
            "width": v.codec_context.width, "codec": v.codec_context.name == "mjpeg"}


def test_sigterm_mid_recording_leaves_a_playable_file_and_labels(tmp_path: Path) -> None:
    """SIGTERM while recording (no --seconds): the encoders are flushed, the container closed
    and renamed; every frame decodes and the file is as long as what was recorded."""
    cfg = tmp_path / "synth.yaml"
    cfg.write_text("sources: {s: {type: synthetic, width: 320, height: 240, fps: 15, "
                   "jitter_ms: 2, skew_ppm: 100}}\nstreams: {st: {video: s, audio: s}}\n")
    out, log = tmp_path / "rec", tmp_path / "stderr.txt"
    with log.open("w") as err:
        run = subprocess.Popen(
            [sys.executable, "-m", "edge.cli", "record", "--config", str(cfg), "--out", str(out),
             "--task", "driver"], cwd=ROOT, stdout=subprocess.PIPE, stderr=err, text=True,
        )
        try:
            assert wait_for(lambda: "edge record: 00:04" in log.read_text(), 30.0), log.read_text()
            assert (out / "video.mkv.part").exists() and not (out / "video.mkv").exists()
            t_term = time.monotonic()
            run.send_signal(signal.SIGTERM)
            shown = [ln.split()[2] for ln in log.read_text().splitlines() if "edge record: 0" in ln]
            stdout, _ = run.communicate(timeout=20)
            assert time.monotonic() - t_term < 10
        finally:
            if run.poll() is None:
                run.kill()
                run.communicate()
    assert run.returncode == 0, log.read_text()
    assert "stopped by SIGTERM" in stdout
    assert not (out / "video.mkv.part").exists()
    labels = json.loads((out / "labels.json").read_text())
    side = np.load(out / "timestamps.npz")
    got = _probe(out / "video.mkv")
    assert got["frames"] == len(side["frame_seq"]) >= 4 * 15 - 5  # every frame written decodes
    assert got["codec"] and got["width"] == 320 and got["rate"] == 16000
    minutes, secs = shown[-1].split(":")  # the last progress line before SIGTERM
    shown_s = 60 * int(minutes) + float(secs)  # rounded to 0.1 s
    assert shown_s - 0.05 <= labels["seconds"] < shown_s + 2
    assert abs(got["last_frame_s"] + 1 / 15 - labels["seconds"]) < 0.1
    assert abs(got["audio_end_s"] - labels["seconds"]) < 0.1
    assert json.loads(str(side["meta"]))["stopped_by"] == "SIGTERM"


def _tone_wav(path: Path, seconds: float, rate: int = 16000) -> None:
    t = np.arange(int(seconds * rate)) / rate
    pcm = (0.3 * 32767 * np.sin(2 * np.pi * 440 * t)).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())


@pytest.mark.system
def test_live_camera_and_microphone_record_a_folder_that_edge_eval_scores(
    tmp_path: Path, pulse_null_sink: str
) -> None:
    """An ffmpeg MJPEG camera (640x480, 15 fps) and the PulseAudio null sink's monitor with a
    tone playing, recorded for 10 s by the CLI; ``edge eval --recordings`` runs on the folder."""
    need("paplay")
    server = MjpegServer(fps=15, size="640x480")
    server.start()
    wav = tmp_path / "tone.wav"
    _tone_wav(wav, 40.0)
    player = subprocess.Popen([need("paplay"), f"--device={pulse_null_sink}", str(wav)])
    cfg = tmp_path / "live.yaml"
    cfg.write_text(f"""
sources:
  cam: {{type: camera, device: "{server.url}", width: 640, height: 480, fps: 15}}
  mic: {{type: microphone, device: pulse, sample_rate: 16000, block_seconds: 0.02}}
streams:
  cabin: {{video: cam, audio: mic}}
window: {{seconds: 2.0, frames: 8, hop: 0.5}}
model: {{path: "{MODEL}"}}
paths: {{roots: ["{ROOT}", "{tmp_path}"]}}
""")
    out = tmp_path / "rec"
    try:
        r = subprocess.run([sys.executable, "-m", "edge.cli", "record", "--config", str(cfg),
                            "--out", str(out), "--seconds", "10"],
                           cwd=ROOT, capture_output=True, text=True, timeout=90)
    finally:
        player.kill()
        player.wait()
        server.kill()
    assert r.returncode == 0, r.stderr
    assert r.stderr.count("edge record: 00:") >= 8  # progress about once a second
    assert "stopped by --seconds" in r.stdout
    labels = json.loads((out / "labels.json").read_text())
    assert labels == {**labels, "task": "driver", "seconds": 10.0, "events": []}
    got = _probe(out / "video.mkv")
    assert got["codec"] and got["width"] == 640 and got["rate"] == 16000
    assert 10.0 - 1 / 15 - 0.1 < got["last_frame_s"] < 10.0
    assert got["frames"] > 10 * 15 * 0.8  # a loaded CI machine may drop a few at the server
    assert abs(got["audio_end_s"] - 10.0) < 0.01 and got["samples"] > 9.7 * 16000
    # The tone was heard: most 100 ms stretches are far above silence.
    with av.open(str(out / "video.mkv")) as c:
        x = np.concatenate([f.to_ndarray().reshape(-1) for f in c.decode(audio=0)]) / 32768.0
    rms = np.sqrt((x[: len(x) // 1600 * 1600].reshape(-1, 1600) ** 2).mean(axis=1))
    assert (rms > 0.05).mean() > 0.7, rms
    side = np.load(out / "timestamps.npz")
    assert len(side["frame_seq"]) == got["frames"]
    assert (out / "sheet.png").is_file()
    ev = subprocess.run([sys.executable, "-m", "edge.cli", "eval", "--config", str(cfg),
                         "--recordings", str(out)], cwd=ROOT, capture_output=True, text=True,
                        timeout=300)
    assert ev.returncode == 0, ev.stderr
    assert "rec (10 s," in ev.stdout and "rule events:" in ev.stdout
