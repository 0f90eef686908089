"""The shipped front models as ``configs/driver.yaml`` and ``configs/home.yaml`` serve them (INT8,
the front ends, the rules), replayed on real recordings, each on two tick grids half a hop
apart: what they must show on the dev set, and no event in an empty room full of ordinary
sounds. A guard for retraining and for changes to the front ends, the features or the rules
(the README's "Scores, side by side" has the figures).

Needs ``../shared/realworld``, the imported front ends (``edge front-ends import``) and ffmpeg;
skips naming what is missing.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from edge.config import load_config
from edge.evaluate.eval import load_model
from edge.evaluate.evalrec import RecordingRun, run_recording
from edge.evaluate.metrics import prf
from tests.conftest import REQUIRE_SYSTEM, ROOT, need

REALWORLD = ROOT.parent / "shared" / "realworld"
FRONT = ROOT / "engines" / "front"
SR = 16000


def _need(*paths: Path) -> None:
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (edge front-ends import; ../shared/realworld)")


def _replay(config: str, folder: Path, grid: float = 0.0,
            perturb: tuple[str, ...] = ()) -> tuple[RecordingRun, list[str], np.ndarray]:
    """The served config on ``folder``, its tick grid moved by ``grid`` hops (0 or 0.5: where
    ticks fall against a short event is chance, and both grids must show it), its front-end
    features changed by ``perturb`` first (edge eval --perturb)."""
    from edge.evaluate.perturb import feature_hook, parse_changes
    from edge.front.features import FrontSpec

    _need(folder, FRONT / ".imported")
    cfg = load_config(ROOT / "configs" / config)
    engine = load_model(cfg)
    thresholds = np.array([c.threshold for c in engine.card.classes], np.float32)
    hook = (feature_hook(FrontSpec.from_dict(engine.card.front), parse_changes(perturb))
            if perturb else None)
    run = run_recording(cfg, folder, engine, phase_s=grid * float(cfg.window.hop),
                        feature_hook=hook)
    return run, list(engine.card.class_names), thresholds


def _starts(run: RecordingRun) -> list[tuple[str, float]]:
    return [(e["rule"], e["t_s"]) for e in run.events if e["event"] == "start"]


def _hidden(run: RecordingRun) -> list[float]:
    """When health said the camera's eyes were hidden (s)."""
    return [h["t_s"] for h in run.health if any(r.startswith("eyes hidden") for r in h["reasons"])]


def _frame_f1(run: RecordingRun, classes: list[str], thresholds: np.ndarray, cls: str) -> float:
    k = classes.index(cls)
    pred, lab = run.probs[:, k] >= thresholds[k], run.labels[:, k]
    return prf(int((pred & lab).sum()), int((pred & ~lab).sum()), int((~pred & lab).sum()))[2]


@pytest.mark.parametrize("grid", [0.0, 0.5])
def test_home_dev_1_person_speech_and_the_glass_break_with_no_false_event(grid: float) -> None:
    run, classes, thr = _replay("home.yaml", REALWORLD / "home-dev-1", grid)
    assert len(run.probs) > 250  # 139 s at a 0.5 s hop
    assert _frame_f1(run, classes, thr, "person") >= 0.90
    assert _frame_f1(run, classes, thr, "speech") >= 0.90
    labels = json.loads((REALWORLD / "home-dev-1" / "labels.json").read_text())["events"]
    people = [(e["start"], e["end"]) for e in labels if e["label"] == "person"]
    glass = [e["start"] for e in labels if e["label"] == "glass_break"]
    starts = _starts(run)
    assert {rule for rule, _ in starts} <= {"person_present", "glass_break"}, starts
    # The one glass break is found once, within a second and a half of its start.
    found = [t for rule, t in starts if rule == "glass_break"]
    assert len(found) == 1 and glass[0] <= found[0] <= glass[0] + 1.5, (found, glass)
    # Someone is present only while someone is in the room: each episode starts within a
    # labelled visit (the rule waits 1 s) and ends within 4 s of one's end (a 2 s window still
    # holds the person, and the class holds 2 s after its last tick: 2.3-3.3 s measured); each
    # of the six visits is seen.
    present = [t for rule, t in starts if rule == "person_present"]
    assert all(any(a <= t <= b + 0.5 for a, b in people) for t in present), present
    ends = [e["t_s"] for e in run.events if e["rule"] == "person_present" and e["event"] == "end"]
    assert all(any(a <= t <= b + 4.0 for a, b in people) for t in ends), ends
    assert all(any(a <= t <= b for t in present) for a, b in people), (present, people)
    # No alarm class on real speech, sounds and silence (the cadence rules need beeps anyway).
    for cls in ("smoke_alarm", "co_alarm"):
        assert not (run.probs[:, classes.index(cls)] >= thr[classes.index(cls)]).any(), cls


def _reencode(src: Path, out: Path, *args: str) -> None:
    """The recording folder ``src`` as ``out``: its video file through ffmpeg with ``args``
    (filters, codecs), its labels as they are."""
    _need(src)
    out.mkdir()
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(src / "video.mkv"), *args,
                    str(out / "video.mkv")], check=True)
    (out / "labels.json").write_bytes((src / "labels.json").read_bytes())


def _eyes_held_closed(folder: Path, hold_s: float, at_frame: int = 171,
                      src: Path = REALWORLD / "driver-dev-alert-blink" / "video.mkv",
                      seconds: float = 9.6) -> float:
    """driver-dev-alert-blink with one of its real frames, the man's eyes shut in a blink
    (frame 171, 5.70 s: eye aspect ratio 0.134 and 0.144), held ``hold_s`` seconds in the middle
    with a little sensor noise and silence, then the clip goes on: a real face with its eyes
    closed for as long as a microsleep or a sleep lasts, which no dev clip shows. Returns when
    the held frame starts (s).

    The label is where the eyes are shut, measured by the face stage frame by frame: frame 170
    (0.146, 0.156) is as shut as 171, and the clip goes on from frame 171, so 171 and 172
    (0.159, 0.170) come again after the hold; 169 and 173 are half open (0.195-0.207 and
    0.187-0.197), the open eye 0.22-0.30. So the eyes are shut from a frame before the hold to
    two frames after it (a hop ending 0.13 s after the hold is three quarters shut). ``src`` may
    be the clip looped (:func:`_looped`, ``seconds`` long), ``at_frame`` the same frame in a
    later pass."""
    folder.mkdir(parents=True)
    still = folder / "closed.png"
    ffmpeg = ["ffmpeg", "-v", "error", "-y"]
    subprocess.run([*ffmpeg, "-i", str(src), "-vf", f"select=eq(n\\,{at_frame})", "-frames:v", "1",
                    str(still)], check=True)
    t = at_frame / 30
    graph = (f"[0:v]split[va][vb];[0:a]asplit[aa][ab];"
             f"[va]trim=0:{t},setpts=PTS-STARTPTS,format=yuv420p[v0];"
             f"[aa]atrim=0:{t},asetpts=PTS-STARTPTS[a0];"
             f"[1:v]format=yuv420p,noise=alls=3:allf=t,setsar=1[v1];[2:a]anull[a1];"
             f"[vb]trim=start={t},setpts=PTS-STARTPTS,format=yuv420p[v2];"
             f"[ab]atrim=start={t},asetpts=PTS-STARTPTS[a2];"
             f"[v0][a0][v1][a1][v2][a2]concat=n=3:v=1:a=1[v][a]")
    subprocess.run([*ffmpeg, "-i", str(src), "-loop", "1", "-framerate", "30", "-t", str(hold_s),
                    "-i", str(still), "-f", "lavfi", "-t", str(hold_s), "-i", "anullsrc=r=16000:cl=mono",
                    "-filter_complex", graph, "-map", "[v]", "-map", "[a]", "-c:v", "libx264",
                    "-crf", "18", "-preset", "veryfast", "-r", "30", "-c:a", "flac", "-ar", str(SR),
                    str(folder / "video.mkv")], check=True)
    still.unlink()
    (folder / "labels.json").write_text(json.dumps({"task": "driver", "seconds": seconds + hold_s,
                                                    "events": [
        {"label": "eyes_closed", "start": t - 1 / 30, "end": t + hold_s + 2 / 30}]}))
    return t


@pytest.mark.parametrize(("hold_s", "rule"), [(1.5, "microsleep"), (4.0, "sleep")])
@pytest.mark.parametrize("grid", [0.0, 0.5])
def test_real_eyes_held_closed_start_a_microsleep_or_a_sleep(hold_s: float, rule: str,
                                                            grid: float, tmp_path: Path) -> None:
    """The eye rules on real closed eyes (above): 1.5 s shut is a microsleep (at its end), 4 s
    a sleep (3 s in), the other one never, and the eyes are read closed while they are."""
    need("ffmpeg")
    _need(REALWORLD / "driver-dev-alert-blink")
    folder = tmp_path / "closed"
    t0 = _eyes_held_closed(folder, hold_s)
    run, classes, thr = _replay("driver.yaml", folder, grid)
    starts = [(r, t) for r, t in _starts(run) if r in {"sleep", "microsleep", "unresponsive"}]
    assert [r for r, _ in starts] == [rule], starts
    due = t0 + (hold_s if rule == "microsleep" else 3.0)
    assert due <= starts[0][1] <= due + 1.0, starts  # measured 0.3-0.6 s after (smoothing)
    assert _frame_f1(run, classes, thr, "eyes_closed") >= 0.9  # measured 1.000 on each


#: Other microphones, as ffmpeg audio filter graphs on home-dev-1's sound (the video copied).
MICROPHONES = {
    "in a noisy room (pink noise, -34 dBFS)":
        "anoisesrc=c=pink:a=0.02:r=16000[n];[0:a][n]amix=inputs=2:duration=first:normalize=0[a]",
    "18 dB too loud, clipping": "[0:a]volume=18dB[a]",
}


@pytest.mark.parametrize("mic", list(MICROPHONES))
def test_home_dev_1_through_other_microphones_finds_the_glass_and_no_false_event(
    mic: str, tmp_path: Path
) -> None:
    """home-dev-1's sound as a noisy room or a clipping microphone gives it: the glass break
    still found once, speech still heard, no other event than someone present. (docs/perception.md,
    "Other microphones", has these and more, on both grids.)"""
    need("ffmpeg")
    src, out = REALWORLD / "home-dev-1", tmp_path / "home-dev-1"
    _reencode(src, out, "-filter_complex", MICROPHONES[mic], "-map", "0:v", "-map", "[a]",
              "-c:v", "copy", "-c:a", "flac", "-ar", str(SR), "-sample_fmt", "s16")
    run, classes, thr = _replay("home.yaml", out)
    assert _frame_f1(run, classes, thr, "speech") >= 0.90
    starts = _starts(run)
    assert {rule for rule, _ in starts} <= {"person_present", "glass_break"}, starts
    labels = json.loads((src / "labels.json").read_text())["events"]
    [glass] = [e["start"] for e in labels if e["label"] == "glass_break"]
    found = [t for rule, t in starts if rule == "glass_break"]
    assert len(found) == 1 and glass <= found[0] <= glass + 1.5, (found, glass)


@pytest.mark.parametrize("grid", [0.0, 0.5])
def test_driver_dev_clips_alert_no_face_and_glances(grid: float) -> None:
    eyes = {"sleep", "microsleep", "unresponsive"}
    alert, classes, thr = _replay("driver.yaml", REALWORLD / "driver-dev-alert-blink", grid)
    assert len(alert.probs) > 20 and not _starts(alert), _starts(alert)
    k = classes.index("eyes_closed")
    assert not (alert.probs[:, k] >= thr[k]).any()  # blinks are not closed eyes
    empty, _, _ = _replay("driver.yaml", REALWORLD / "driver-dev-no-face", grid)
    assert len(empty.probs) > 20 and not _starts(empty), _starts(empty)
    assert not (empty.probs >= thr).any(), "a class active with no face in view"
    assert any("face absent" in r for h in empty.health for r in h["reasons"]), empty.health
    turns, _, _ = _replay("driver.yaml", REALWORLD / "driver-dev-head-turn", grid)
    assert alert.health == [] and turns.health == [], (alert.health, turns.health)
    assert len(turns.probs) > 20 and turns.labels[:, classes.index("distracted")].any()
    assert not {rule for rule, _ in _starts(turns)} & (eyes | {"long_distraction"}), _starts(turns)
    assert _frame_f1(turns, classes, thr, "distracted") >= 0.6  # the glances, seen


@pytest.mark.parametrize("change", ["face.yaw+15", "face.roll+10", "face.pitch+-15"])
@pytest.mark.parametrize("grid", [0.0, 0.5])
def test_head_turn_glances_stay_short_with_the_camera_mounted_otherwise(change: str,
                                                                        grid: float) -> None:
    """driver-dev-head-turn's face rows with the head's pose moved as a camera mounted 15
    degrees aside, 10 degrees rolled or 15 degrees higher would see it (edge eval --perturb):
    the swing back between glances reads as distracted more, and the glances must still not
    add up to a long distraction (with distracted's min_off at 0.5 s each of these fired one
    on a grid or both)."""
    run, classes, thr = _replay("driver.yaml", REALWORLD / "driver-dev-head-turn", grid, (change,))
    k = classes.index("distracted")
    assert (run.probs[:, k] >= thr[k]).mean() > 0.25  # glances seen
    assert not {r for r, _ in _starts(run)} & {"long_distraction", "unresponsive"}, _starts(run)


@pytest.mark.parametrize("pitch", [-15, -25, -30])
@pytest.mark.parametrize("grid", [0.0, 0.5])
def test_an_alert_driver_seen_from_above_is_in_no_state(pitch: int, grid: float) -> None:
    """driver-dev-alert-blink's face rows pitched down as a camera on the mirror or a pillar,
    above the eyes, sees the face (edge eval --perturb face.pitch+-15): no class is active on
    any tick. When the simulator's heads sat at -5..+24 degrees a lower pitch was only ever a
    phone in the hand, and the model read `phone` on 77 % of these ticks at -15 (all at -25);
    now pitch is measured from the driver's own (front.road_pitch)."""
    run, classes, thr = _replay("driver.yaml", REALWORLD / "driver-dev-alert-blink", grid,
                                (f"face.pitch+{pitch}",))
    assert len(run.probs) > 20
    on = {c: float((run.probs[:, k] >= thr[k]).mean()) for k, c in enumerate(classes)}
    assert not any(on.values()), on
    assert not _starts(run), _starts(run)


@pytest.mark.parametrize("pitch", [-15, 15])
def test_head_turn_reads_as_recorded_from_a_camera_higher_or_lower(pitch: int) -> None:
    """driver-dev-head-turn watches the road at +22 degrees of pitch (a camera below his eyes);
    seen 15 degrees higher or lower, the card's road_pitch takes the driver's own pitch off, so
    every class is on for as many ticks as recorded (within a tick: the first 1.25 s, before
    the baseline has samples, read the pitch as measured) and no rule starts."""
    clip = REALWORLD / "driver-dev-head-turn"
    base, classes, thr = _replay("driver.yaml", clip)
    run, _, _ = _replay("driver.yaml", clip, 0.0, (f"face.pitch+{pitch}",))
    assert len(run.probs) == len(base.probs) > 20
    on = (run.probs >= thr).sum(axis=0)
    assert np.abs(on - (base.probs >= thr).sum(axis=0)).max() <= 1, (on, classes)
    assert on[classes.index("distracted")] > 0
    assert not _starts(run), _starts(run)


@pytest.mark.parametrize("yaw", [15, 25, -25, 30])
@pytest.mark.parametrize("grid", [0.0, 0.5])
def test_an_alert_driver_seen_from_a_camera_aside_is_in_no_state(yaw: int, grid: float) -> None:
    """driver-dev-alert-blink's face rows turned as a camera 15-30 degrees aside, on the mirror
    or a pillar, sees the face (edge eval --perturb face.yaw+25): the card's road_yaw
    (edge.front.roadbase) measures yaw from the driver's own straight-ahead, and no class is
    active on any tick. Without it the model read `distracted` on 58 % of the ticks at +25.
    Past its max_offset of 35 degrees a resting head is taken to look away: at +35 the model
    reads `distracted` on every tick, with or without it."""
    run, classes, thr = _replay("driver.yaml", REALWORLD / "driver-dev-alert-blink", grid,
                                (f"face.yaw+{yaw}",))
    assert len(run.probs) > 20
    on = {c: float((run.probs[:, k] >= thr[k]).mean()) for k, c in enumerate(classes)}
    assert not any(on.values()), on
    assert not _starts(run), _starts(run)


@pytest.mark.parametrize(("clip", "factor"), [("driver-dev-alert-blink", 0.7),
                                              ("driver-dev-head-turn", 0.85)])
@pytest.mark.parametrize("grid", [0.0, 0.5])
def test_narrower_eyes_start_no_eye_rule(clip: str, factor: float, grid: float) -> None:
    """Both eyes' openness scaled by ``factor`` before the model reads them (edge eval
    --perturb), as a driver with narrower eyes: the eye baseline (edge.front.eyebase) brings
    them back up, and no eye rule starts (without it, x 0.75 started a microsleep on
    head-turn, and x 0.65 one on alert-blink on both grids)."""
    change = (f"face.eye_open_left*{factor}", f"face.eye_open_right*{factor}")
    run, _, _ = _replay("driver.yaml", REALWORLD / clip, grid, change)
    assert len(run.probs) > 20
    assert not {r for r, _ in _starts(run)} & {"sleep", "microsleep", "unresponsive"}, _starts(run)


def _looped(clip: str, times: int, out: Path) -> Path:
    """The dev clip ``clip`` played ``times`` times over into one video file (a longer drive)."""
    src = REALWORLD / clip / "video.mkv"
    _need(src)
    listing = out.with_suffix(".txt")
    listing.write_text(f"file '{src}'\n" * times)
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "concat", "-safe", "0", "-i",
                    str(listing), "-c:v", "libx264", "-crf", "18", "-preset", "veryfast",
                    "-c:a", "flac", str(out)], check=True)
    return out


def test_eyes_narrower_than_the_floor_read_open_after_ten_seconds_and_still_sleep(
    tmp_path: Path
) -> None:
    """alert-blink three times over (28.8 s) with both eyes' openness halved (open 0.11-0.15,
    under the eye baseline's floor of 0.15 nearly throughout; edge eval --perturb), and its
    shut frame held 4 s in the third pass: the floor comes down once 40 targets looking ahead
    are held (edge.front.eyebase, ``narrow_after``), and from there no eye rule starts but the
    sleep (docs/perception.md, "Eyes that never reach the floor"). As measured before, halved
    eyes started a microsleep about every 2.4 s for the whole drive."""
    need("ffmpeg")
    looped = _looped("driver-dev-alert-blink", 3, tmp_path / "looped.mkv")
    t0 = _eyes_held_closed(tmp_path / "closed", 4.0, 171 + 2 * 288, looped, 28.8)
    change = ("face.eye_open_left*0.5", "face.eye_open_right*0.5")
    run, classes, thr = _replay("driver.yaml", tmp_path / "closed", 0.0, change)
    late = [(r, t) for r, t in _starts(run) if t > 12.0]
    assert [r for r, _ in late] == ["sleep"], _starts(run)
    assert t0 + 3.0 <= late[0][1] <= t0 + 4.0, late
    k = classes.index("eyes_closed")
    after = (run.times >= 12.0) & (run.times < t0 - 0.5)
    assert after.sum() > 40
    assert (run.probs[after, k] >= thr[k]).mean() <= 0.05  # the blinks at most


#: Other cameras, as ffmpeg filters on the dev clips' pixels (the sound is copied as it is).
CAMERAS = {
    "grey, as an infrared cabin camera gives": "format=gray,eq=contrast=1.4:gamma=1.2,format=yuv420p",
    "half the size, as a camera further away": "scale=trunc(iw/4)*2:trunc(ih/4)*2",
    "dim and noisy": "eq=gamma=0.45:brightness=-0.05,noise=alls=6:allf=t",
    # head-turn's far eye fell to 0.08-0.11 on two frames running: a microsleep, before the
    # face stage read a turned head's eyes from the one facing the camera (FAR_EYE_YAW)
    "6 frames a second": "fps=6",
}


@pytest.mark.parametrize("camera", list(CAMERAS))
def test_the_driver_clips_through_other_cameras_start_no_eye_rule(camera: str,
                                                                  tmp_path: Path) -> None:
    """alert-blink and head-turn re-encoded as another camera would see them: the face stage
    still finds the face, no eye rule starts and the glances stay short. (docs/perception.md, "Other
    cameras", has these and more, on the home room too.)"""
    need("ffmpeg")
    for clip in ("driver-dev-alert-blink", "driver-dev-head-turn"):
        src, out = REALWORLD / clip, tmp_path / clip
        _reencode(src, out, "-vf", CAMERAS[camera], "-c:v", "libx264", "-crf", "18",
                  "-preset", "veryfast", "-c:a", "copy")
        run, classes, thr = _replay("driver.yaml", out)
        assert len(run.probs) > 20
        [face] = [s for k, s in run.front_stats.items() if k.startswith("face")]
        assert face["present"] >= 0.95 * face["processed"], face  # measured 100 % under each
        starts = {r for r, _ in _starts(run)}
        assert not starts & {"sleep", "microsleep", "unresponsive", "long_distraction"}, starts
        assert not _hidden(run), run.health  # the eyes still show
        if clip.endswith("head-turn"):
            assert _frame_f1(run, classes, thr, "distracted") >= 0.6  # the glances, seen
        else:
            k = classes.index("eyes_closed")
            assert not (run.probs[:, k] >= thr[k]).any()  # blinks are not closed eyes


@pytest.mark.parametrize("grid", [0.0, 0.5])
def test_head_turn_compressed_hard_starts_no_eye_rule(grid: float, tmp_path: Path) -> None:
    """H.264 CRF 38 at x264's default preset smears head-turn's lids shut while the head swings
    (docs/perception.md, "Hard compression can close the eyes"): the eyes read closed on a few
    ticks, never for a microsleep. Encoded on one thread (so that the encode is the same anywhere),
    the card's 0.8 reads them closed on 3 % of the ticks of each grid (3 and 7 % with the eyes
    from one network); with that network at the threshold validation picked (0.6), 3 and 10 %,
    and a microsleep at 9.33 s on the second."""
    need("ffmpeg")
    out = tmp_path / "crf38"
    _reencode(REALWORLD / "driver-dev-head-turn", out, "-c:v", "libx264", "-crf", "38",
              "-threads", "1", "-c:a", "copy")
    run, classes, thr = _replay("driver.yaml", out, grid)
    starts = {r for r, _ in _starts(run)}
    assert not starts & {"sleep", "microsleep", "unresponsive", "long_distraction"}, starts
    k = classes.index("eyes_closed")
    assert (run.probs[:, k] >= thr[k]).mean() <= 0.12  # the smear, a few ticks


@pytest.mark.parametrize("glasses", ["dark", "tinted", "clear"])
def test_glasses_over_the_real_eyes_start_no_rule_and_dark_ones_are_reported_hidden(
    glasses: str, tmp_path: Path,
) -> None:
    """alert-blink and head-turn with glasses drawn where the face stage finds the eyes
    (tests/lenses.py). Dark or tinted lenses (15 or 30 % transmission, sunglasses of category 3
    or 2): the mesh still reads the eyes open, so
    nothing tells closed eyes from open there; health says so (the camera degraded, 'eyes
    hidden'), from its first judgement (5.2 s measured on both: a source is judged once its
    first windows are full). Clear lenses in dark frames (90 %): the eyes are seen, health stays
    ok. Neither starts a rule, nor reads a blink as closed eyes."""
    from tests.lenses import lensed_recording

    need("ffmpeg")
    for clip in ("driver-dev-alert-blink", "driver-dev-head-turn"):
        _need(REALWORLD / clip, FRONT / ".imported")
        out = tmp_path / clip
        if glasses != "clear":
            lensed_recording(REALWORLD / clip, out, 0.15 if glasses == "dark" else 0.3, tint=30.0)
        else:
            lensed_recording(REALWORLD / clip, out, 0.9, tint=220.0, rim=0.12)
        run, classes, thr = _replay("driver.yaml", out)
        assert not {r for r, _ in _starts(run)} & {"sleep", "microsleep", "unresponsive",
                                                   "long_distraction"}, _starts(run)
        if clip.endswith("alert-blink"):
            k = classes.index("eyes_closed")
            assert not (run.probs[:, k] >= thr[k]).any()
        if glasses == "clear":
            assert run.health == [], run.health
            continue
        assert run.health and run.health[0]["state"] == "degraded", run.health
        assert _hidden(run) == [run.health[0]["t_s"]] and run.health[0]["t_s"] <= 6.0, run.health


#: Light from one side: the frame's left dark (a fifth) to 45 % of its width, full from 55 %.
HALF_LIT = ("format=yuv420p,geq=lum='lum(X,Y)*(0.2+0.8*clip((X-0.45*W)/(0.1*W),0,1))'"
            ":cb='128+(cb(X,Y)-128)*(0.2+0.8*clip((X-0.45*W)/(0.1*W),0,1))'"
            ":cr='128+(cr(X,Y)-128)*(0.2+0.8*clip((X-0.45*W)/(0.1*W),0,1))'")


def test_a_half_lit_face_starts_no_false_rule_and_its_eyes_held_shut_a_sleep(
    tmp_path: Path,
) -> None:
    """The shadow edge down the face: alert-blink's eyes never read closed, head-turn's glances
    are seen and start no rule though the turned face is lost on its dark side now and then
    (face found in 81 % of its frames, 100 % of alert-blink's), and the real shut eyes held
    4 s under the same light still start a sleep."""
    need("ffmpeg")
    args = ("-vf", HALF_LIT, "-c:v", "libx264", "-crf", "18", "-preset", "veryfast",
            "-c:a", "copy")
    for clip, least in (("driver-dev-alert-blink", 0.95), ("driver-dev-head-turn", 0.75)):
        out = tmp_path / clip
        _reencode(REALWORLD / clip, out, *args)
        run, classes, thr = _replay("driver.yaml", out)
        [face] = [s for k, s in run.front_stats.items() if k.startswith("face")]
        assert face["present"] >= least * face["processed"], face
        assert not {r for r, _ in _starts(run)} & {"sleep", "microsleep", "unresponsive",
                                                   "long_distraction"}, _starts(run)
        if clip.endswith("head-turn"):
            assert _frame_f1(run, classes, thr, "distracted") >= 0.6  # measured 0.849
        else:
            k = classes.index("eyes_closed")
            assert not (run.probs[:, k] >= thr[k]).any()
    t0 = _eyes_held_closed(tmp_path / "closed", 4.0)
    _reencode(tmp_path / "closed", tmp_path / "closed-half-lit", *args)
    run, classes, thr = _replay("driver.yaml", tmp_path / "closed-half-lit")
    starts = [(r, t) for r, t in _starts(run) if r in {"sleep", "microsleep", "unresponsive"}]
    assert [r for r, _ in starts] == ["sleep"], starts
    assert t0 + 3.0 <= starts[0][1] <= t0 + 4.0, starts  # 9.0 s measured
    assert _frame_f1(run, classes, thr, "eyes_closed") >= 0.9  # measured 1.000


def _ordinary_sounds(folder: Path) -> list[tuple[str, float, float]]:
    """An empty room (home-dev-1's frame at 72 s, a still camera) under 175 s of ordinary
    sounds in a room of RT60 0.4 s over a -60 dBFS floor: an alarm clock, a phone ringing and
    trilling, a melody, the real rain, robin, camera shutter and telephone speech, babble, a
    doorbell, a church bell, a cat, a bicycle bell and a song with drums.
    Written as a recording folder with no labels; returns what plays when."""
    from tests import test_alarm_cadence as a

    rng = np.random.default_rng(0)
    more = np.random.default_rng(1)  # the bells, the cat, the song: drawn apart from the rest

    def real(name: str) -> np.ndarray:
        return a.decode(REALWORLD / "sounds" / name)

    shutter = np.pad(real("freedesktop_camera-shutter.flac"), (0, 2 * SR))
    parts: list[tuple[str, np.ndarray, float]] = [
        ("alarm clock", a.NEAR_MISSES["alarm-clock-4-per-second"](rng)[: 12 * SR], -20),
        ("phone ring", a.NEAR_MISSES["phone-ring-uk"](rng)[: 12 * SR], -20),
        ("phone trill", a.NEAR_MISSES["phone-trill"](rng)[: 12 * SR], -20),
        ("melody", a.NEAR_MISSES["melody"](rng)[: 16 * SR], -18),
        ("rain", real("wikimedia_Bertof_rain_via_ahnlich.flac"), -25),  # 9 s
        ("robin", real("librosa_robin_inspectorj.flac"), -22),  # 2.7 s
        ("camera shutter x4", np.concatenate([shutter] * 4), -15),
        ("telephone speech", real("asterisk_allison_demo-instruct_8k.flac")[: 14 * SR], -20),
        ("babble", a.babble(10.0, rng), -25),
        ("doorbell", a.doorbell(10.0, more), -18),
        ("church bell", a.church_bell(10.0, more), -20),
        ("cat", a.meow(10.0, more), -18),
        ("bicycle bell", a.bicycle_bell(10.0, more), -18),
        ("song with drums", a.drum_song(20.0, more, 120.0), -15),
    ]
    return _write_room(folder, parts, rng)


def _write_room(folder: Path, parts: list[tuple[str, np.ndarray, float]],
                rng: np.random.Generator, gap_s: float = 1.0,
                lead_s: float = 1.0) -> list[tuple[str, float, float]]:
    """``parts`` (name, sound, peak dBFS) one after another from ``lead_s``, ``gap_s`` apart,
    in a room of RT60 0.4 s over a -60 dBFS floor, under home-dev-1's empty room at 72 s (a
    still camera): written as a recording folder with no labels; returns what plays when."""
    import wave

    from tests import test_alarm_cadence as a

    placed, spans, t = [], [], lead_s
    for name, x, db in parts:
        x = a.at_peak(a.room(x, 0.4, -3.0, rng), db)
        placed.append((t, x))
        spans.append((name, t, t + len(x) / SR))
        t += len(x) / SR + gap_s
    seconds = t + 1.0
    audio = a.mix(seconds, placed) + a.at_rms(a.pink(seconds, rng), -60)
    folder.mkdir(parents=True)
    with wave.open(str(folder / "audio.wav"), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SR)
        w.writeframes((np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes())
    ffmpeg = ["ffmpeg", "-v", "error", "-y"]
    subprocess.run([*ffmpeg, "-ss", "72", "-i", str(REALWORLD / "home-dev-1" / "video.mkv"),
                    "-frames:v", "1", str(folder / "frame.png")], check=True)
    subprocess.run([*ffmpeg, "-loop", "1", "-framerate", "10", "-i", str(folder / "frame.png"),
                    "-i", str(folder / "audio.wav"), "-t", f"{seconds:.2f}", "-c:v", "libx264",
                    "-pix_fmt", "yuv420p", "-c:a", "flac", "-ar", str(SR), "-ac", "1",
                    str(folder / "video.mkv")], check=True)
    (folder / "audio.wav").unlink()
    (folder / "frame.png").unlink()
    (folder / "labels.json").write_text(json.dumps(
        {"task": "home", "seconds": round(seconds, 2), "events": []}))
    return spans


def test_an_empty_room_full_of_ordinary_sounds_starts_no_event(tmp_path: Path) -> None:
    _need(REALWORLD / "home-dev-1", REALWORLD / "sounds")
    need("ffmpeg")
    spans = _ordinary_sounds(tmp_path / "ordinary")
    run, classes, thr = _replay("home.yaml", tmp_path / "ordinary")
    assert len(run.probs) > 280
    # No alarm, no glass break, nobody: the beeping and ringing have no alarm's rhythm, and a
    # camera shutter or a melody's note is one tick of the glass class at most.
    assert not _starts(run), (_starts(run), spans)
    assert not (run.probs[:, classes.index("person")] >= thr[classes.index("person")]).any()


BANK = ROOT / "data" / "sounds"  # edge sounds fetch (make test fetches it)


def _bank_entries(split: str) -> list[dict[str, str]]:
    if not (BANK / "bank.json").is_file():
        msg = f"{BANK} is not there (edge sounds fetch; make test fetches it)"
        if REQUIRE_SYSTEM:
            pytest.fail(msg)
        pytest.skip(msg)
    return [e for e in json.loads((BANK / "bank.json").read_text())["sounds"]
            if e["split"] == split]


def _bank_room(folder: Path, split: str = "heldout") -> list[tuple[str, float, float]]:
    """The ``split`` sounds of the fetched bank (edge.sim.debsounds: real glass shatters,
    cymbals, drums, alerts, a cat...) one by one, 2.5 s apart, at -18 dBFS peak in the room of
    :func:`_write_room`; a span's name is the bank's kind and file. The music and the ringing
    have a room of their own (:func:`_everyday_room`)."""
    from tests import test_alarm_cadence as a

    parts = [(f"{e['kind']}:{e['file']}", a.decode(BANK / e["file"])[: 8 * SR], -18.0)
             for e in _bank_entries(split) if not _everyday(e)]
    return _write_room(folder, parts, np.random.default_rng(2), gap_s=2.5, lead_s=3.0)


def _everyday(entry: dict[str, str]) -> bool:
    """A bank entry of the everyday room: a desktop sound theme's alarm clock, ringtones and
    chimes, or music."""
    return entry["package"] == "sound-theme-freedesktop" or entry["kind"] == "music"


def _everyday_room(folder: Path) -> list[tuple[str, float, float]]:
    """The bank's alarm clock, ringtones and dial tones looped end to end for 12 s and more
    each (each file holds its own rhythm), its chimes twice, and its held-out music (nine game
    soundtracks and four songs of a metal band, 30 s each, at -12 dBFS peak, louder than the
    rest), in the room of :func:`_write_room`."""
    from tests import test_alarm_cadence as a

    parts = []
    for e in _bank_entries("heldout"):
        if not _everyday(e):
            continue
        x = a.decode(BANK / e["file"])
        if e["kind"] == "music":
            parts.append((e["file"], x, -12.0))
            continue
        if any(k in e["file"] for k in ("alarm-clock", "phone-")):  # looped as a phone does
            parts.append((e["file"], np.tile(x, int(np.ceil(12 * SR / len(x)))), -18.0))
        else:
            parts.append((e["file"], np.concatenate([x, np.zeros(SR), x]), -18.0))
    return _write_room(folder, parts, np.random.default_rng(5), gap_s=2.0, lead_s=3.0)


def test_a_room_of_held_out_real_sounds_starts_glass_break_on_a_shatter_only(
        tmp_path: Path) -> None:
    """The held-out split of the fetched bank, recordings no model trained on: two games'
    glass shatters (one recorded at 8 kHz) among other drum kits' crash cymbals, rides, hi-hats
    and claps, a game's meow, pops and whacks, a cat, desktop alerts and a screen reader's
    earcons. Before the rule's impact check the shipped model started glass_break on two
    crash cymbals and two rides; now nothing but a shatter starts anything, and the 44.1 kHz
    shatter is found on both grids (the 8 kHz one, with nothing above 4 kHz, is not:
    docs/perception.md)."""
    _need(REALWORLD / "home-dev-1")
    need("ffmpeg")
    spans = _bank_room(tmp_path / "bank")
    shatters = [(a0, b0) for name, a0, b0 in spans if name.startswith("glass:")]
    assert len(shatters) == 2 and len(spans) >= 20
    for grid in (0.0, 0.5):
        run, _, _ = _replay("home.yaml", tmp_path / "bank", grid)
        starts = _starts(run)
        on_glass = [t for r, t in starts if r == "glass_break"
                    and any(a0 <= t <= b0 + 1.0 for a0, b0 in shatters)]
        assert len(on_glass) == len(starts), (grid, starts, spans)
        assert on_glass, (grid, starts)


def test_real_shatters_at_a_quiet_level_each_start_one_glass_break(tmp_path: Path) -> None:
    """Five real shatters (sounds/'s, home-dev-1's, two of the bank's training split and its
    held-out 44.1 kHz one), each alone at -24 dBFS peak in the room of :func:`_write_room`:
    the first four start glass_break once on both grids, nothing else starts. A quiet shatter
    is sure on one tick only, so the rule of two ticks found 5 of the 10 (docs/perception.md, "Real
    shatters, served"); its one-tick condition needs the sharp rise above 4 kHz that these
    have. The held-out one is not asserted: in this room its class peaks at 0.96-0.98, under
    the 0.99 the rule starts at (found on both grids in another draw of the room)."""
    from tests import test_alarm_cadence as a

    _need(REALWORLD / "home-dev-1", REALWORLD / "sounds")
    need("ffmpeg")
    train = {e["file"] for e in _bank_entries("train") if e["kind"] == "glass"}
    held = [e["file"] for e in _bank_entries("heldout")
            if e["kind"] == "glass" and e["file"].startswith("brainparty")]
    assert len(train) == 2 and len(held) == 1
    home = a.decode(REALWORLD / "home-dev-1" / "video.mkv")[int(30.9 * SR):int(32.6 * SR)]
    shatters = [("sounds/minetest 1", a.decode(REALWORLD / "sounds" / "minetest_default_break_glass.1.flac")),
                ("home-dev-1", home)] + [(f, a.decode(BANK / f)) for f in sorted(train) + held]
    spans = _write_room(tmp_path / "shatters", [(n, x, -24.0) for n, x in shatters],
                        np.random.default_rng(11), gap_s=3.0, lead_s=3.0)
    found = []
    for grid in (0.0, 0.5):
        run, _, _ = _replay("home.yaml", tmp_path / "shatters", grid)
        starts = _starts(run)
        assert {r for r, _ in starts} == {"glass_break"}, (grid, starts)
        on = [[t for _, t in starts if a0 <= t <= b0 + 1.0] for _, a0, b0 in spans]
        assert all(len(f) <= 1 for f in on) and sum(map(len, on)) == len(starts), (grid, starts)
        found.append([len(f) for f in on])
    assert [f[:4] for f in found] == [[1, 1, 1, 1]] * 2, (found, spans)


def test_speech_read_over_real_music_a_tv_starts_no_event(tmp_path: Path) -> None:
    """A TV: a LibriSpeech reader and telephone prompts read over each of the nine held-out game
    soundtracks (30 s each, the speech's peak 6 dB over the music's, at -12 dBFS). Before the
    rule's check above 4 kHz (edge.features.rise.HighRise) the shipped model started
    glass_break twice on one grid and three times on the other: a word's onset breaks the
    music's beat and stands out of the 2-8 kHz band, and the glass class reaches 0.99 on the
    mix though on neither part alone. (Telephone speech over the four held-out metal songs and
    the nine tracks still starts one on one grid: docs/perception.md.)"""
    from tests import test_alarm_cadence as a

    _need(REALWORLD / "home-dev-1")
    need("ffmpeg")
    sounds = REALWORLD / "sounds"
    speech = np.concatenate([a.decode(sounds / "librosa_libri2_3436-172162-0000_male.flac"),
                             a.decode(sounds / "asterisk_allison_demo-instruct_8k.flac")])
    rng = np.random.default_rng(7)
    parts = []
    for e in _bank_entries("heldout"):
        if "supertux2/music/" not in e["member"]:
            continue
        m = a.at_peak(a.decode(BANK / e["file"]), -18)
        i = int(rng.integers(0, len(speech) - len(m)))
        parts.append((e["file"], m + a.at_peak(speech[i:i + len(m)], -12), -12.0))
    assert len(parts) >= 6
    spans = _write_room(tmp_path / "tv", parts, rng, gap_s=2.0, lead_s=3.0)
    for grid in (0.0, 0.5):
        run, _, _ = _replay("home.yaml", tmp_path / "tv", grid)
        assert not _starts(run), (grid, _starts(run), spans)


def test_a_room_of_real_music_ringtones_and_an_alarm_clock_starts_no_event(
        tmp_path: Path) -> None:
    """Held-out real everyday sounds of the bank: a desktop's alarm clock, a phone ringing, dial
    and busy tones, chimes and alerts, nine game soundtracks (drums, bells, synths) and four
    songs of a metal band (drums, distorted guitars), none of which any model heard. Without
    the rule's checks of what played before (edge.features.rise) the shipped model started
    glass_break three times a grid in three soundtracks (with the band rise alone once a grid:
    a new section after a steady beat); the ringtone has the smoke_alarm class on for most of
    its ticks, and its rhythm is no alarm's."""
    _need(REALWORLD / "home-dev-1")
    need("ffmpeg")
    spans = _everyday_room(tmp_path / "everyday")
    assert len(spans) >= 24 and sum(n.startswith("supertux-data") for n, _, _ in spans) >= 6
    assert sum(n.startswith("fretsonfire-songs-sectoid") for n, _, _ in spans) == 4
    for grid in (0.0, 0.5):
        run, classes, thr = _replay("home.yaml", tmp_path / "everyday", grid)
        assert not _starts(run), (grid, _starts(run), spans)
        assert not (run.probs[:, classes.index("person")] >= thr[classes.index("person")]).any()
