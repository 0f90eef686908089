"""Tick cost and data age with the front-end cascade, against the same run without it.

    python benchmarks/bench_cascade.py [--seconds 20] [--clip PATH] [--out-dir DIR]

A live run (real clock, capture thread) replays a real clip as a 640x480 camera with its audio
track (PyAV, paced in real time, looped) through the driver config's window and model: without
``front_ends``, with them run inside the tick (``workers: false``), and with each frame stage in
its own thread as frames arrive (``workers: true``, the default of ``edge run``), alternated in
the same process (face on every frame, detector every 10th; VAD). Reported: tick time p50/p99,
data age at decision (emitted time minus capture time of the window's newest frame / sample),
the cascade's CPU per stage and its share of one core.

Then ``configs/driver.yaml`` and ``configs/home.yaml`` as they are (window, model, front ends
in worker threads), their sources replaced by the clip: driver-front INT8 over face, hand and
VAD on the same clip, home-front INT8 over the person stage and the VAD on home-dev-1 (skipped
when absent).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, bar_chart, percentiles, write_result  # noqa: E402

from edge.timebase.clock import MonotonicClock
from edge.config import MediaSourceConfig, StreamConfig, load_config, parse_config
from edge.service.run import Runner
from edge.service.daemon import Service

ROOT = Path(__file__).resolve().parent.parent
REALWORLD = ROOT.parent / "shared" / "realworld"
CLIP = REALWORLD / "driver-dev-alert-blink" / "video.mkv"
HOME_CLIP = REALWORLD / "home-dev-1" / "video.mkv"
MODEL = ROOT / "engines" / "driver-av.int8.onnx"
FRONT = ROOT / "engines" / "front"
# The shipped configs, served as they are (window, model, front ends in workers) on a clip.
SERVED = {"driver served": ROOT / "configs" / "driver.yaml",
          "home served": ROOT / "configs" / "home.yaml"}


def config_text(clip: Path, cascade: bool, workers: bool = False) -> str:
    from edge.capture.media import probe_fps

    front = (f"front_ends: {{dir: \"{FRONT}\", workers: {str(workers).lower()}, "
             f"face: {{detect_every: 10}}, vad: {{}}}}\n" if cascade else "")
    fps = probe_fps(clip)
    return f"""
sources:
  cam: {{type: media, url: "{clip}", width: 640, height: 480, fps: {fps:g}, loop: true,
         sample_rate: 16000}}
streams:
  cabin: {{video: cam, audio: cam}}
window: {{seconds: 2.0, frames: 8, hop: 0.5}}
model: {{path: "{MODEL}", engine: {{type: onnx, threads: 1}}}}
{front}"""


def served_config(name: str, clip: Path) -> Any:
    """``SERVED[name]`` with its sources replaced by ``clip`` as a 640x480 camera at the clip's
    own rate, audio from the same file."""
    from edge.capture.media import probe_fps

    cam = MediaSourceConfig(type="media", url=str(clip), width=640, height=480,
                            fps=probe_fps(clip), loop=True, sample_rate=16000,
                            buffer_seconds=10)
    return load_config(SERVED[name]).model_copy(update={
        "sources": {"cam": cam}, "streams": {"cabin": StreamConfig(video="cam", audio="cam")}})


def at_most_15_fps(clip: Path, tmp: Path) -> Path:
    """``clip`` as a 15 fps camera sends it: a faster file re-encoded at 15 fps (ffmpeg, the
    sound copied). A media source passes on every frame a file holds and sizes its ring by the
    configured fps, so the 30 fps alert-blink clip declared 15 fed the stages twice the frames
    and held half the seconds (``edge run`` names such a mismatch at start)."""
    from edge.capture.media import probe_fps

    if probe_fps(clip) <= 15.5:
        return clip
    out = tmp / f"{clip.parent.name}-15fps.mkv"
    try:
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(clip), "-vf", "fps=15",
                        "-c:v", "libx264", "-preset", "veryfast", "-crf", "18", "-c:a", "copy",
                        str(out)], check=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        sys.exit(f"cannot re-encode {clip} at 15 fps with ffmpeg: {exc}")
    return out


def live(clip: Path, cascade: bool, seconds: float, workers: bool = False,
         served: str | None = None) -> dict[str, Any]:
    clock = MonotonicClock()
    config = (parse_config(config_text(clip, cascade, workers)) if served is None
              else served_config(served, clip))
    runner = Runner(config, clock)
    runner.engine.warmup()
    service = Service(runner)
    ticks: list[float] = []
    ages: dict[str, list[float]] = {"video": [], "audio": []}

    def on_windows(ws: list[Any]) -> None:
        t0 = time.perf_counter_ns()
        service.on_windows(ws)
        ticks.append((time.perf_counter_ns() - t0) / 1e6)
        now = clock.now_ns()
        for w in ws:
            if w.video_age_ns is not None:
                ages["video"].append((w.video_age_ns + now - w.cut_ns) / 1e6)
            if w.audio_age_ns is not None:
                ages["audio"].append((w.audio_age_ns + now - w.cut_ns) / 1e6)

    runner.start_front_workers()  # as edge run does (with workers: true)
    runner.spine.start(require_open_s=10.0)
    cpu0 = time.process_time()
    t0 = time.monotonic()
    try:
        time.sleep(2.5)  # the rings hold a whole window
        runner.spine.run(seconds, on_windows, stop=threading.Event())
    finally:
        runner.spine.stop()
        runner.stop_front_workers()
    wall = time.monotonic() - t0
    out: dict[str, Any] = {
        "tick_ms": percentiles(ticks[2:]),
        "age_ms": {k: percentiles(v[2:]) for k, v in ages.items()},
        "process_cpu_share_of_one_core": (time.process_time() - cpu0) / wall,
        "skipped_ticks": runner.spine.skipped_ticks,
    }
    if runner.cascade is not None:
        stats = runner.cascade.stats()
        c = runner.cascade
        busy = sum(st.stats.busy_ns for g in (c.face, c.person, c.hand, c.vad) for st in g.values())
        out["stages"] = stats
        out["cascade_share_of_one_core"] = busy / 1e9 / wall
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--clip", type=Path, default=CLIP)
    p.add_argument("--out-dir", type=Path, default=RESULTS)
    args = p.parse_args()
    if not args.clip.is_file() or not (FRONT / "face_detector.onnx").is_file():
        sys.exit(f"needs {args.clip} and the front ends (edge front-ends import)")
    with tempfile.TemporaryDirectory() as tmp:
        run_all(args, at_most_15_fps(args.clip, Path(tmp)))


def run_all(args: argparse.Namespace, camera: Path) -> None:
    """Every variant on ``camera`` (the clip at 15 fps at most), alternated, then the summary."""
    runs: dict[str, list[dict[str, Any]]] = {
        "without": [], "cascade in the tick": [], "cascade in workers": []}
    for _ in range(args.rounds):  # alternated: the machine's noise hits all alike
        runs["without"].append(live(camera, False, args.seconds))
        runs["cascade in the tick"].append(live(camera, True, args.seconds))
        runs["cascade in workers"].append(live(camera, True, args.seconds, workers=True))
        for name in SERVED:
            clip = HOME_CLIP if name.startswith("home") else camera
            if clip.is_file():
                runs.setdefault(name, []).append(
                    live(clip, True, args.seconds, workers=True, served=name))
    from edge.capture.media import probe_fps

    result: dict[str, Any] = {"clip": str(args.clip), "camera_fps": probe_fps(camera),
                              "home_clip": str(HOME_CLIP),
                              "seconds": args.seconds, "runs": runs}
    summary = {}
    for name, rs in runs.items():
        summary[name] = {
            "tick_ms_p50": float(np.median([r["tick_ms"]["p50"] for r in rs])),
            "tick_ms_p99": float(np.median([r["tick_ms"]["p99"] for r in rs])),
            "video_age_ms_p50": float(np.median([r["age_ms"]["video"]["p50"] for r in rs])),
            "audio_age_ms_p50": float(np.median([r["age_ms"]["audio"]["p50"] for r in rs])),
            "process_cpu_share": float(np.median([r["process_cpu_share_of_one_core"] for r in rs])),
        }
        if name != "without":
            summary[name]["cascade_share_of_one_core"] = float(
                np.median([r["cascade_share_of_one_core"] for r in rs]))
    result["summary"] = summary
    write_result("cascade", result, args.out_dir)
    bar_chart("cascade", "A tick with and without the front-end cascade (p50, ms)",
              {n: {"tick p50": s["tick_ms_p50"], "tick p99": s["tick_ms_p99"]}
               for n, s in summary.items()}, "ms", args.out_dir)
    for n, s in summary.items():
        print(n, {k: round(v, 3) for k, v in s.items()})


if __name__ == "__main__":
    main()
