"""Cost and real-data accuracy of the home front ends: the streaming VAD and the person stage.

    python benchmarks/bench_front_av.py [--rounds N] [--no-accuracy] [--out-dir DIR]

Cost (ONNX Runtime 1 intra-op thread, OpenCV 1 thread, medians over alternating rounds):

* **VAD per chunk** — :meth:`edge.front.vad.StreamingVad.push` of one 512-sample (32 ms) chunk,
  and the bare engine call it wraps;
* **VAD per 0.5 s** — one push of 8000 samples (15.6 chunks, what one pipeline tick hands over);
* **person per frame** — :meth:`edge.front.person.PersonStage.process` on a 640x480 BGR frame
  (home-dev-1 resized when ``../shared/realworld`` is there, else noise), split into letterbox,
  engine and decode + NMS (the whole frame only, ``zoom=False``); and the served stage (zoom
  on) on a frame of the empty room, where every processed frame takes a second detector run on
  one square (the runs are counted);
* **share of one core** — VAD at 31.25 chunks/s plus the person stage at 2 and 5 fps (the
  pipeline runs it on new frames at its own rate, not on every frame of a 15 fps camera), with
  a person in view and in the empty room.

Accuracy (``../shared/realworld``; skipped when absent): home-dev-1 per 0.5 s tick, speech from
the VAD alone and person from the person stage alone at 4 fps (a tick is person when any frame
processed in it found one), F1 against labels at least half covering the tick; the VAD's highest
chunk probability and speech-tick count on each file in ``sounds/``. A sweep of the person
``min_score`` is written for information only: the stage's default (0.5, mediapipe's) is not
chosen from it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import alternate, write_result  # noqa: E402

from edge.front.person import PersonStage  # noqa: E402
from edge.front.ssd import Detections, decode, letterbox, nms  # noqa: E402
from edge.front.vad import StreamingVad, any_per_tick, speech_flags  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
FRONT = ROOT / "engines" / "front"
REALWORLD = ROOT.parent / "shared" / "realworld"
SR = 16000
TICK = SR // 2
CHUNKS_PER_S = SR / 512
PERSON_FPS = (2.0, 5.0)
GOAL_CORE_SHARE = 0.10
EMPTY_AT_S = 2.0  # home-dev-1's labels: nobody until 6 s


def _decode_16k(path: Path) -> np.ndarray:
    import av

    out = []
    with av.open(str(path)) as c:
        rs = av.AudioResampler(format="flt", layout="mono", rate=SR)
        for frame in c.decode(c.streams.audio[0]):
            out += [f.to_ndarray().reshape(-1) for f in rs.resample(frame)]
        out += [f.to_ndarray().reshape(-1) for f in rs.resample(None)]
    return np.concatenate(out).astype(np.float32)


def _tick_truth(labels: dict[str, Any], label: str, n: int) -> np.ndarray:
    cov = np.zeros(n)
    for e in labels["events"]:
        if e["label"] == label:
            for k in range(n):
                cov[k] += max(0.0, min((k + 1) * 0.5, e["end"]) - max(k * 0.5, e["start"]))
    return cov >= 0.25


def _f1(pred: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    tp, fp, fn = int((pred & truth).sum()), int((pred & ~truth).sum()), int((~pred & truth).sum())
    return {"f1": 2 * tp / max(1, 2 * tp + fp + fn), "tp": tp, "fp": fp, "fn": fn}


def _vad_ticks(vad: StreamingVad, x: np.ndarray) -> tuple[np.ndarray, float]:
    vad.reset()
    got = vad.push(x, 0)
    starts = np.array([s for s, _ in got])
    probs = np.array([p for _, p in got])
    ticks = any_per_tick(starts, speech_flags(probs, vad.threshold, vad.neg_threshold), 512, TICK,
                         -(-x.size // TICK))
    return ticks, float(probs.max())


def _frame_at(video: Path, seconds: float) -> np.ndarray:
    import cv2

    cap = cv2.VideoCapture(str(video))
    cap.set(cv2.CAP_PROP_POS_MSEC, seconds * 1e3)
    ok, bgr = cap.read()
    cap.release()
    if not ok:
        raise SystemExit(f"bench_front_av: no frame at {seconds} s in {video}")
    return cv2.resize(bgr, (640, 480), interpolation=cv2.INTER_AREA)


def bench_cost(rounds: int) -> dict[str, Any]:
    """ms per call of the VAD and the person stage, and their share of one core."""
    import cv2

    cv2.setNumThreads(1)
    rng = np.random.default_rng(0)
    audio = (0.1 * rng.standard_normal(SR * 4)).astype(np.float32)
    vad = StreamingVad(FRONT)
    pos = {"n": 0}

    def push_chunk() -> None:
        n = pos["n"]
        i = n % audio.size  # audio holds a whole number of chunks
        vad.push(audio[i:i + 512], n)
        pos["n"] = n + 512

    def push_tick() -> None:
        n = pos["n"]
        i = n % (audio.size - TICK)
        vad.push(audio[i:i + TICK], n)
        pos["n"] = n + TICK

    inp: dict[str, np.ndarray] = {
        "input": np.zeros((1, 576), np.float32), "state": np.zeros((2, 1, 128), np.float32),
        "sr": np.array(SR, np.int64)}
    vad_ms = {k: v * 1e3 for k, v in alternate(
        {"push 1 chunk": push_chunk, "engine 1 chunk": lambda: vad.engine.infer(inp)},
        calls=200, rounds=rounds).items()}
    vad_ms["push 0.5 s"] = alternate({"t": push_tick}, calls=20, rounds=rounds)["t"] * 1e3

    video = REALWORLD / "home-dev-1" / "video.mkv"
    if video.is_file():
        frame = _frame_at(video, 30.0)
        empty = _frame_at(video, EMPTY_AT_S)
        frame_src = "home-dev-1 at 30 s, resized to 640x480"
        empty_src = f"home-dev-1 at {EMPTY_AT_S:g} s (the room empty), resized to 640x480"
    else:
        frame = rng.integers(0, 255, (480, 640, 3), dtype=np.uint8)
        empty = frame
        frame_src = empty_src = "uniform noise 640x480"
    stage = PersonStage(FRONT, zoom=False)  # one detector run a frame: its parts timed below
    det = stage.detector
    rgb = np.ascontiguousarray(frame[:, :, ::-1])
    x, _ = letterbox(rgb, det.width, det.height, det.value_range)
    raw = det.engine.infer({det.input_name: x})

    def post() -> None:
        b, k, s = decode(raw["boxes"], raw["scores"], det.anchors, det.decode_cfg)
        nms(b, k, s, det.nms_cfg, stage.max_people)

    # The served stage (zoom on) in an empty room: the whole frame finds nobody, so each
    # processed frame takes a second detector run on one square. Its runs are counted.
    served = PersonStage(FRONT)
    runs = {"n": 0}
    detect = served.detector.detect

    def counted(rgb: np.ndarray, max_detections: int | None = None,
                bgr: bool = False) -> Detections:
        runs["n"] += 1
        return detect(rgb, max_detections, bgr)

    served.detector.detect = counted  # type: ignore[method-assign]
    person_ms = {k: v * 1e3 for k, v in alternate({
        "process": lambda: stage.process(frame),
        "process, empty room, closer look": lambda: served.process(empty),
        "letterbox": lambda: letterbox(rgb, det.width, det.height, det.value_range),
        "engine": lambda: det.engine.infer({det.input_name: x}),
        "decode+nms": post,
    }, calls=10, rounds=rounds).items()}

    vad_share = vad_ms["push 0.5 s"] / 1e3 * 2  # two 0.5 s ticks per second
    shares = {f"vad + person {fps:g} fps": vad_share + person_ms["process"] / 1e3 * fps
              for fps in PERSON_FPS}
    empty_shares = {
        f"vad + person {fps:g} fps, empty room": vad_share
        + person_ms["process, empty room, closer look"] / 1e3 * fps for fps in PERSON_FPS}
    return {
        "vad_ms": vad_ms,
        "vad_ms_per_chunk_from_tick": vad_ms["push 0.5 s"] / (TICK / 512),
        "person_ms_640x480": person_ms,
        "person_frame": frame_src,
        "person_empty_frame": empty_src,
        "person_empty_detector_runs_per_frame": runs["n"] / max(served.frames, 1),
        "core_share": {"vad": vad_share, **shares, **empty_shares},
        "goal_core_share": GOAL_CORE_SHARE,
        "goal_met": all(v <= GOAL_CORE_SHARE for v in (*shares.values(), *empty_shares.values())),
    }


def bench_accuracy() -> dict[str, Any]:
    """F1 per 0.5 s tick on home-dev-1 (VAD alone, person stage alone) and the VAD on sounds/."""
    import cv2

    folder = REALWORLD / "home-dev-1"
    labels = json.loads((folder / "labels.json").read_text())
    n = int(labels["seconds"] * 2)
    vad = StreamingVad(FRONT)
    speech, _ = _vad_ticks(vad, _decode_16k(folder / "video.mkv"))
    out: dict[str, Any] = {"speech_home_dev_1": _f1(speech[:n], _tick_truth(labels, "speech", n))}
    sounds = {}
    for path in sorted((REALWORLD / "sounds").glob("*.flac")):
        ticks, top = _vad_ticks(vad, _decode_16k(path))
        sounds[path.name] = {"max_prob": top, "speech_ticks": int(ticks.sum()),
                             "ticks": int(ticks.size)}
    out["vad_sounds"] = sounds

    stage = PersonStage(FRONT, min_score=0.0)
    cap = cv2.VideoCapture(str(folder / "video.mkv"))
    fps = cap.get(cv2.CAP_PROP_FPS)
    best = np.zeros(n)
    last, i, t0 = -1, 0, time.perf_counter()
    while True:
        ok, bgr = cap.read()
        if not ok:
            break
        t = i / fps
        i += 1
        if int(t * 4 + 1e-9) == last:
            continue
        last = int(t * 4 + 1e-9)
        k = min(int(t * 2), n - 1)
        best[k] = max(best[k], stage.process(bgr).score)
    cap.release()
    truth = _tick_truth(labels, "person", n)
    out["person_home_dev_1_4fps"] = _f1(best >= 0.5, truth)
    out["person_min_score_sweep_information_only"] = {
        f"{m:.1f}": _f1(best >= m, truth) for m in (0.3, 0.4, 0.5, 0.6, 0.7)}
    out["person_frames"] = stage.frames
    out["person_pass_s"] = time.perf_counter() - t0
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--no-accuracy", action="store_true")
    ap.add_argument("--out-dir", type=Path, default=None)
    args = ap.parse_args()
    data: dict[str, Any] = {"cost": bench_cost(args.rounds)}
    if not args.no_accuracy and (REALWORLD / "home-dev-1").is_dir():
        data["accuracy"] = bench_accuracy()
    print(json.dumps(data, indent=2))
    write_result("bench_front_av", data, args.out_dir)


if __name__ == "__main__":
    main()
