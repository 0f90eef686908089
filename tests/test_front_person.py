"""The person stage (mediapipe's BlazePose detector through our Engine and edge.front.ssd): its
feature vector, the body box from the keypoints, the letterbox mapping back to the frame, and on
real footage, person per 0.5 s tick against home-dev-1's labels at 4 frames per second.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edge.front.person import NO_PERSON, PERSON_FEATURES, PersonResult, PersonStage, body_boxes
from edge.front.ssd import Detections

ROOT = Path(__file__).resolve().parents[1]
FRONT = ROOT / "engines" / "front"
REALWORLD = Path(__file__).resolve().parents[2] / "shared" / "realworld"

needs_model = pytest.mark.skipif(
    not (FRONT / "person_detector.onnx").is_file(),
    reason=f"{FRONT}/person_detector.onnx absent (run: edge front-ends import)",
)


@pytest.fixture(scope="module")
def stage() -> PersonStage:
    return PersonStage(FRONT)


def _video(folder: str) -> Path:
    path = REALWORLD / folder / "video.mkv"
    if not path.is_file():
        pytest.skip(f"{path}: real-world recordings not here (shared/ beside the checkout)")
    return path


def _frame(folder: str, seconds: float) -> np.ndarray:
    import cv2

    cap = cv2.VideoCapture(str(_video(folder)))
    cap.set(cv2.CAP_PROP_POS_MSEC, seconds * 1000)
    ok, bgr = cap.read()
    cap.release()
    assert ok
    return np.ascontiguousarray(bgr)


# -- pure parts -------------------------------------------------------------------------------------
def test_vector_holds_presence_count_best_score_and_the_largest_box() -> None:
    r = PersonResult(True, 2, 0.9, boxes=[(0.1, 0.1, 0.3, 0.5), (0.5, 0.0, 1.0, 0.8)], scores=[0.9, 0.7])
    v = r.vector()
    assert v.dtype == np.float32 and v.shape == (len(PERSON_FEATURES),)
    np.testing.assert_allclose(v, [1, 2, 0.9, 0.4, 0.75, 0.4], rtol=1e-6)
    np.testing.assert_array_equal(NO_PERSON.vector(), np.zeros(len(PERSON_FEATURES), np.float32))


def test_body_box_is_a_pixel_square_on_the_hip_with_the_full_body_radius() -> None:
    kp = np.array([[[0.5, 0.5], [0.5, 0.25], [0.5, 0.4], [0.5, 0.3]],   # radius 0.25 * 400 px = 100
                   [[0.95, 0.5], [0.95, 0.25], [0, 0], [0, 0]]], np.float32)  # clipped at x = 1
    det = Detections(np.zeros((2, 4), np.float32), kp, np.array([0.9, 0.8], np.float32))
    a, b = body_boxes(det, 800, 400)
    np.testing.assert_allclose(a, (0.375, 0.25, 0.625, 0.75))
    np.testing.assert_allclose(b, (0.825, 0.25, 1.0, 0.75))


@needs_model
def test_empty_frames_find_no_one_and_bad_frames_are_refused(stage: PersonStage) -> None:
    assert stage.process(np.zeros((480, 640, 3), np.uint8)) == NO_PERSON
    assert stage.process(np.full((480, 640, 3), 128, np.uint8)) == NO_PERSON
    with pytest.raises(ValueError, match="HxWx3 uint8 BGR"):
        stage.process(np.zeros((480, 640), np.uint8))
    with pytest.raises(ValueError, match="HxWx3 uint8 BGR"):
        stage.process(np.zeros((480, 640, 3), np.float32))


class _SquareDetector:
    """Finds one person, in crop coordinates, only in a crop starting at ``x_person`` (the
    frame's pixels hold their column / 4 in the first channel, so a crop says where it starts),
    and logs where each call's crop starts (None: the whole frame)."""

    def __init__(self, x_person: int | None, score: float = 0.9) -> None:
        self.x_person = x_person
        self.score = score
        self.calls: list[int | None] = []

    def detect(self, rgb: np.ndarray, max_detections: int | None = None) -> Detections:
        whole = rgb.shape[1] > rgb.shape[0]
        x = None if whole else int(rgb[0, 0, 2]) * 4  # the stage swapped BGR to RGB
        self.calls.append(x)
        if whole or x != self.x_person:
            return Detections(np.zeros((0, 4), np.float32), np.zeros((0, 4, 2), np.float32),
                              np.zeros(0, np.float32))
        kp = np.array([[[0.5, 0.5], [0.5, 0.25], [0.5, 0.4], [0.5, 0.3]]], np.float32)
        return Detections(np.array([[0.25, 0.25, 0.75, 0.75]], np.float32), kp,
                          np.array([self.score], np.float32))


def _columns(w: int, h: int) -> np.ndarray:
    frame = np.zeros((h, w, 3), np.uint8)
    frame[:, :, 0] = (np.arange(w) // 4).astype(np.uint8)  # BGR: blue holds the column / 4
    return frame


@needs_model
def test_the_closer_look_takes_the_squares_in_turn_keeps_the_one_that_found_maps_back() -> None:
    """768 x 432: squares start at 0, 168 and 336. A person only the third square finds is
    found on the third frame, mapped from the crop to the frame; that square is looked at first
    for 8 frames after he was last found there, then the turn goes on; another frame size
    forgets it."""
    stage = PersonStage(FRONT)
    fake = _SquareDetector(336)
    stage.detector = fake  # type: ignore[assignment]
    frame = _columns(768, 432)
    r = [stage.process(frame) for _ in range(3)]
    assert [x.present for x in r] == [False, False, True]
    assert fake.calls == [None, 0, None, 168, None, 336]
    x0, y0, x1, y1 = (336 + 0.25 * 432) / 768, 0.25, (336 + 0.75 * 432) / 768, 0.75
    found = stage.process(frame)
    assert found.present and fake.calls[-1] == 336
    # the body box: a square on the hip (the crop's centre) of the full-body radius (108 px)
    hx, r_px = (336 + 216) / 768, 108
    np.testing.assert_allclose(found.boxes[0], (hx - r_px / 768, 0.25, hx + r_px / 768, 0.75),
                               atol=1e-5)
    assert x0 < hx < x1 and y0 < 0.5 < y1
    fake.x_person = None  # he is gone: his square is looked at for 8 frames, then the next
    fake.calls.clear()
    for _ in range(10):
        assert not stage.process(frame).present
    assert fake.calls[1::2] == [336] * 8 + [0, 168]
    fake.x_person = 0  # the turn goes on from the third square
    fake.calls.clear()
    assert [stage.process(frame).present for _ in range(2)] == [False, True]
    assert fake.calls == [None, 336, None, 0]
    fake.calls.clear()
    stage.process(_columns(640, 480))  # 4:3: squares at 0 and 160
    assert fake.calls == [None, 160]  # not the square at 0 that found him: the turn's next
    unsure = PersonStage(FRONT)  # a square's person must score ZOOM_MIN_SCORE (0.7), not 0.5
    unsure.detector = _SquareDetector(0, score=0.6)  # type: ignore[assignment]
    assert not any(unsure.process(frame).present for _ in range(6))


# -- real frames ------------------------------------------------------------------------------------
@needs_model
def test_a_standing_person_gets_a_body_box_around_them(stage: PersonStage) -> None:
    r = stage.process(_frame("home-dev-1", 30.0))  # a man at the table, centre right, head at the top
    assert r.present and r.count == 1 and r.score > 0.9
    x0, y0, x1, y1 = r.boxes[0]
    assert 0.45 < (x0 + x1) / 2 < 0.7 and y0 < 0.1 and y1 > 0.8


@needs_model
def test_letterbox_maps_back_to_the_frame(stage: PersonStage) -> None:
    frame = _frame("home-dev-1", 30.0)
    base = stage.process(frame).boxes[0]
    mirrored = stage.process(np.ascontiguousarray(frame[:, ::-1])).boxes[0]
    np.testing.assert_allclose([1 - mirrored[2], mirrored[1], 1 - mirrored[0], mirrored[3]], base, atol=0.03)
    # the same frame inside a black border of another shape: same box in its own coordinates
    h, w = frame.shape[:2]
    tall = np.zeros((h + 300, w, 3), np.uint8)
    tall[100:100 + h] = frame
    x0, y0, x1, y1 = stage.process(tall).boxes[0]
    y0, y1 = (y0 * (h + 300) - 100) / h, (y1 * (h + 300) - 100) / h
    np.testing.assert_allclose([x0, max(y0, 0.0), x1, min(y1, 1.0)], base, atol=0.05)


@needs_model
@pytest.mark.parametrize("folder", ["driver-dev-alert-blink", "driver-dev-head-turn"])
def test_a_driver_close_up_is_a_person(stage: PersonStage, folder: str) -> None:
    assert stage.process(_frame(folder, 2.0)).present


def _wider(frame: np.ndarray, k: int) -> np.ndarray:
    """The frame as a lens ``k`` times wider sees it at the same resolution: grey around it,
    scaled back (the room ``k`` times further away)."""
    import cv2

    if k == 1:
        return frame
    h, w = frame.shape[:2]
    canvas = np.full((h * k, w * k, 3), 96, np.uint8)
    y, x = (h * k - h) // 2, (w * k - w) // 2
    canvas[y:y + h, x:x + w] = frame
    return cv2.resize(canvas, (w, h), interpolation=cv2.INTER_AREA)


def _person_ticks(stage: PersonStage, fps: float,
                  k: int = 1) -> tuple[np.ndarray, np.ndarray, list[tuple[float, float]]]:
    """home-dev-1 at ``fps`` (as a lens ``k`` times wider sees it): person per 0.5 s tick (any
    processed frame in the tick found one), the labelled ticks, and (time, best score) per
    processed frame."""
    import cv2

    folder = REALWORLD / "home-dev-1"
    cap = cv2.VideoCapture(str(_video("home-dev-1")))
    labels = json.loads((folder / "labels.json").read_text())
    n = int(labels["seconds"] * 2)
    video_fps = cap.get(cv2.CAP_PROP_FPS)
    pred = np.zeros(n, bool)
    seen: list[tuple[float, float]] = []
    last, i = -1, 0
    while True:
        ok, bgr = cap.read()
        if not ok:
            break
        t = i / video_fps
        i += 1
        slot = int(t * fps + 1e-9)
        if slot == last:
            continue
        last = slot
        r = stage.process(_wider(bgr, k))
        seen.append((t, r.score))
        pred[min(int(t * 2), n - 1)] |= r.present
    cap.release()
    cov = np.zeros(n)
    for e in labels["events"]:
        if e["label"] == "person":
            for k in range(n):
                cov[k] += max(0.0, min((k + 1) * 0.5, e["end"]) - max(k * 0.5, e["start"]))
    return pred, cov >= 0.25, seen


@needs_model
@pytest.mark.slow
def test_home_dev_1_person_ticks_at_4_fps(stage: PersonStage) -> None:
    pred, truth, seen = _person_ticks(stage, 4.0)
    tp, fp, fn = int((pred & truth).sum()), int((pred & ~truth).sum()), int((~pred & truth).sum())
    f1 = 2 * tp / (2 * tp + fp + fn)
    # measured: F1 0.952 (tp 210, fp 19, fn 2), with zoom and without; the false ticks are the
    # empty room, where the table's base scores 0.45-0.56 (just over min_score 0.5), and the
    # misses are entries/exits
    assert f1 >= 0.93, (tp, fp, fn)
    assert fn <= 4 and fp <= 25, (tp, fp, fn)


@needs_model
def test_a_person_too_small_for_the_whole_frame_is_found_in_a_square_and_mapped_back() -> None:
    """The man at the table as a lens three times as wide sees him (a third of the frame high):
    the letterboxed whole frame finds nobody; looking at the frame's squares in turn finds him
    by the third frame, his body box centred where the whole frame put it as recorded, scaled
    into the middle third (its size, from the detector's body radius, is 1.37 times as big
    there: measured)."""
    frame = _frame("home-dev-1", 30.0)
    base = PersonStage(FRONT).process(frame).boxes[0]
    small = _wider(frame, 3)
    assert PersonStage(FRONT, zoom=False).process(small) == NO_PERSON
    stage = PersonStage(FRONT)
    results = [stage.process(small) for _ in range(3)]
    found = [r for r in results if r.present]
    assert found, results
    x0, y0, x1, y1 = found[0].boxes[0]
    bx0, by0, bx1, by1 = (1 / 3 + v / 3 for v in base)
    assert (x0 + x1) / 2 == pytest.approx((bx0 + bx1) / 2, abs=0.02)
    assert (y0 + y1) / 2 == pytest.approx((by0 + by1) / 2, abs=0.04)
    assert 0.7 < (y1 - y0) / (by1 - by0) < 1.6
    assert all(r.present for r in results[results.index(found[0]):])  # kept: the same square
    assert PersonStage(FRONT).process(np.full_like(small, 96)) == NO_PERSON  # an empty grey


@needs_model
@pytest.mark.slow
def test_home_dev_1_through_a_lens_three_times_as_wide_is_found_by_looking_closer() -> None:
    """The whole room a third of its size in the frame: the letterboxed whole frame finds the
    person on a fifth of his ticks; looking at the squares finds nearly all, with no more false
    ticks than as recorded (measured: F1 0.406 (tp 54, fp 0, fn 158) and 0.971 (200, 0, 12))."""
    scores = {}
    for zoom in (False, True):
        pred, truth, _ = _person_ticks(PersonStage(FRONT, zoom=zoom), 4.0, k=3)
        tp, fp, fn = (int((pred & truth).sum()), int((pred & ~truth).sum()),
                      int((~pred & truth).sum()))
        scores[zoom] = (2 * tp / (2 * tp + fp + fn), fp)
    assert scores[False][0] <= 0.5, scores
    assert scores[True][0] >= 0.95 and scores[True][1] <= 5, scores
