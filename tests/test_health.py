"""Sensor health as an output: the judgement at its thresholds, /healthz and /metrics live."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from edge.join.align import Window
from edge.timebase.clock import NS_PER_S
from edge.status.config import HealthConfig
from edge.status.health import (
    DEGRADED,
    LOST,
    OK,
    HealthMonitor,
    TickStats,
    clipped_share,
    frame_stats,
    judge,
)
from tests.conftest import MjpegServer, free_port

ROOT = Path(__file__).resolve().parent.parent


def tick(t_s: float, **kw: object) -> TickStats:
    base: dict[str, object] = dict(
        t_ns=int(t_s * NS_PER_S), running=True, video_masked=0.0, audio_masked=0.0,
        video_age_ns=30_000_000, audio_age_ns=20_000_000, frame_mean=110.0, frame_std=40.0,
        clipped=0.0, faults=0,
    )
    base.update(kw)
    return TickStats(**base)  # type: ignore[arg-type]


CFG = HealthConfig()


def window(frames: Sequence[np.ndarray | None], audio: np.ndarray, mask: np.ndarray) -> Window:
    shape = next((f.shape for f in frames if f is not None), (4, 4, 3))
    return Window(
        stream="s", t_start_ns=0, t_end_ns=2 * NS_PER_S, cut_ns=2 * NS_PER_S,
        frames=tuple(frames), frame_shape=shape,
        video_mask=np.array([f is not None for f in frames]), video_t_ns=np.zeros(len(frames)),
        target_t_ns=np.zeros(len(frames)), audio=audio, audio_mask=mask, audio_n0=0,
        video_age_ns=None, audio_age_ns=None, av_offset_ns=None,
    )


def test_frame_statistics_are_the_newest_valid_frames_grey_level() -> None:
    half = np.zeros((480, 640, 3), np.uint8)
    half[:, 320:] = 255
    blue = np.zeros((480, 640, 3), np.uint8)
    blue[..., 0] = 255  # BGR: BT.601 luma of pure blue is 0.114 * 255
    silence = np.zeros((16, 1), np.float32)
    mean, std = frame_stats(window([blue, half, None], silence, np.ones(16, bool)))
    assert mean == pytest.approx(127.5) and std == pytest.approx(127.5)
    mean, std = frame_stats(window([half, blue], silence, np.ones(16, bool)))
    assert mean == pytest.approx(29.0, abs=0.5) and std == 0.0
    grey_camera = np.full((481, 643, 1), 200, np.uint8)
    assert frame_stats(window([grey_camera], silence, np.ones(16, bool))) == (200.0, 0.0)
    assert frame_stats(window([None, None], silence, np.ones(16, bool))) == (None, None)


def test_clipped_share_counts_valid_samples_of_every_channel() -> None:
    audio = np.zeros((10, 2), np.float32)
    audio[0, 0], audio[1, 1], audio[9, :] = 1.0, -0.9995, 1.0
    frame = [np.zeros((4, 4, 3), np.uint8)]
    assert clipped_share(window(frame, audio, np.ones(10, bool))) == pytest.approx(4 / 20)
    mask = np.ones(10, bool)
    mask[9] = False  # a gap's samples are not the microphone's
    assert clipped_share(window(frame, audio, mask)) == pytest.approx(2 / 18)
    assert clipped_share(window(frame, audio, np.zeros(10, bool))) is None


@pytest.mark.parametrize(
    ("changes", "state", "reason"),
    [
        ({}, OK, None),
        ({"video_masked": 0.19}, OK, None),
        ({"video_masked": 0.25}, DEGRADED, "video masked 25%"),
        ({"audio_masked": 0.95}, LOST, "audio masked 95%"),
        ({"video_age_ns": int(1.5 * NS_PER_S)}, DEGRADED, "video 1.5 s old"),
        ({"audio_age_ns": int(6 * NS_PER_S)}, LOST, "audio 6.0 s old"),
        ({"frame_mean": 5.0}, DEGRADED, "video dark"),
        ({"frame_mean": 250.0}, DEGRADED, "video overexposed"),
        ({"frame_std": 1.0}, DEGRADED, "video occluded"),
        ({"clipped": 0.02}, DEGRADED, "audio clipping"),
        ({"faults": 3}, DEGRADED, "3 drops/gaps/overflows"),
        ({"running": False}, LOST, "not capturing"),
    ],
)
def test_each_sign_of_trouble_has_its_threshold_and_its_reason(
    changes: dict[str, object], state: str, reason: str | None
) -> None:
    got, reasons = judge([tick(0.0, **changes)], CFG)
    assert got == state
    if reason is None:
        assert reasons == []
    else:
        assert any(r.startswith(reason) for r in reasons), reasons


def test_a_share_exactly_at_its_threshold_counts_over_a_whole_horizon() -> None:
    # Ten ticks of 0.2 masked average to 0.2 exactly (a naive sum / len gives 0.19999...).
    got, reasons = judge([tick(i * 0.5, video_masked=0.2, clipped=0.01) for i in range(10)], CFG)
    assert got == DEGRADED
    assert "video masked 20%" in reasons and "audio clipping 1.0%" in reasons


def test_one_late_tick_does_not_flap_but_a_lasting_fault_is_announced_once() -> None:
    mon = HealthMonitor(HealthConfig(horizon=5.0))
    records = []
    for i in range(20):  # 10 s of ticks at 0.5 s; one masked window at 3 s
        records += mon.update("cam", tick(i * 0.5, video_masked=1.0 if i == 6 else 0.0))
    assert records == [] and mon.state("cam") == OK
    for i in range(20, 40):  # then the video is gone for good
        records += mon.update("cam", tick(i * 0.5, video_masked=1.0))
    states = [(r["state"], r["t_ns"] / NS_PER_S) for r in records]
    assert [s for s, _ in states] == [DEGRADED, LOST]  # each change once, not every tick
    assert states[0][1] - 10.0 <= 2.0  # degraded within 2 s of the fault
    assert states[1][1] - 10.0 <= 5.0  # lost once the horizon is mostly masked
    for i in range(40, 60):  # it comes back
        records += mon.update("cam", tick(i * 0.5))
    assert records[-1]["state"] == OK and mon.snapshot()["cam"] == {"state": OK, "reasons": []}


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


@pytest.mark.system
def test_healthz_turns_degraded_within_10_s_of_killing_the_camera_and_metrics_parse(
    mjpeg_server: MjpegServer,
) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    from edge.timebase.clock import MonotonicClock
    from edge.config import parse_config
    from edge.service.run import Runner
    from edge.service.daemon import Service
    from edge.status.endpoint import StatusServer

    mjpeg_server.start()
    port = free_port()
    cfg = parse_config(f"""
sources:
  cam: {{type: camera, device: "{mjpeg_server.url}", width: 320, height: 240, fps: 30,
         stall_timeout: 1.0, backoff_initial: 0.2, backoff_max: 2.0, open_timeout: 2.0,
         read_timeout: 1.0}}
streams:
  cabin: {{video: cam}}
window: {{seconds: 2.0, frames: 8, hop: 0.25, max_wait_video: 0.3}}
model: {{path: "{ROOT / 'engines' / 'driver-av.onnx'}"}}
http: {{port: {port}}}
""")
    assert cfg.http is not None
    runner = Runner(cfg, MonotonicClock())
    service = Service(runner)
    server = StatusServer(cfg.http, service.healthz, service.metrics)
    server.start()
    stop = threading.Event()
    runner.spine.start(require_open_s=5)
    loop = threading.Thread(target=runner.spine.run, args=(float("inf"), service.on_windows, stop))
    loop.start()
    base = f"http://127.0.0.1:{port}"
    try:
        # The first windows reach back before the first frame: ok once the horizon is past them.
        deadline = time.monotonic() + 12.0
        while time.monotonic() < deadline:
            code, body = get(base + "/healthz")
            h = json.loads(body)
            if h["sources"]["cam"]["health"] == OK:
                break
            time.sleep(0.2)
        assert code == 200 and h["sources"]["cam"]["health"] == OK and h["status"] == OK
        assert h["engine"]["type"] == "onnx" and h["last_tick_age_s"] < 1.0
        code, text = get(base + "/metrics")
        fams = {f.name: f for f in text_string_to_metric_families(text)}
        assert code == 200
        fps = {s.labels["source"]: s.value for s in fams["edge_source_fps"].samples}
        assert fps["cam"] == pytest.approx(30, rel=0.2)
        assert any(s.value > 0 for s in fams["edge_engine_latency_seconds"].samples
                   if s.name.endswith("_count"))
        assert "edge_data_age_seconds" in fams and "edge_source_health" in fams
        assert get(base + "/nope")[0] == 404

        mjpeg_server.kill()
        killed = time.monotonic()
        state = OK
        while time.monotonic() - killed < 10.0 and state == OK:
            time.sleep(0.2)
            state = json.loads(get(base + "/healthz")[1])["sources"]["cam"]["health"]
        assert state in (DEGRADED, LOST)
        assert time.monotonic() - killed < 10.0
        fams = {f.name: f for f in text_string_to_metric_families(get(base + "/metrics")[1])}
        health = {s.labels["source"]: s.value for s in fams["edge_source_health"].samples}
        assert health["cam"] >= 1.0
    finally:
        stop.set()
        loop.join(5)
        runner.spine.stop()
        server.stop()


def test_a_non_loopback_bind_needs_a_token_and_checks_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from edge.errors import ConfigError
    from edge.status.config import HttpConfig
    from edge.status.endpoint import Metrics, StatusServer

    with pytest.raises(ConfigError, match="not loopback; set http.token_env"):
        StatusServer(HttpConfig(host="0.0.0.0", port=0), dict, Metrics(dict))
    monkeypatch.setenv("EDGE_TOKEN", "s3cret")
    server = StatusServer(HttpConfig(host="0.0.0.0", port=0, token_env="EDGE_TOKEN"),
                          lambda: {"status": "ok"}, Metrics(dict))
    server.start()
    try:
        url = f"http://127.0.0.1:{server.port}/healthz"
        assert get(url)[0] == 401
        req = urllib.request.Request(url, headers={"Authorization": "Bearer s3cret"})
        with urllib.request.urlopen(req, timeout=2) as r:
            assert json.loads(r.read()) == {"status": "ok"}
    finally:
        server.stop()
