"""Supervision: a capture thread that died anyway is restarted, within a rate limit."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from edge.timebase.clock import NS_PER_S, MonotonicClock
from edge.config import parse_config
from edge.join.spine import Spine
from edge.service.supervise import Supervisor


class Crash(BaseException):
    """Not an Exception: the source's own fault handling does not catch it (as a bug would)."""


def test_a_dead_capture_thread_is_restarted_then_left_down_past_the_rate_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(threading, "excepthook", lambda args: None)  # the crash is the point
    spine = Spine(parse_config("""
sources:
  test: {type: synthetic, width: 64, height: 48, fps: 30, sample_rate: 16000}
streams:
  s: {video: test, audio: test}
"""), MonotonicClock())
    src: Any = spine.sources["test"]
    pump = src.pump
    crash_at = {"frames": 6}

    def flaky() -> bool:  # dies at 6, 12 and 18 frames
        if src.stats.frames >= crash_at["frames"]:
            crash_at["frames"] += 6
            raise Crash()
        return bool(pump())

    monkeypatch.setattr(src, "pump", flaky)
    sup = Supervisor(max_restarts=2, window_s=60.0)
    sup.watch_sources(spine.sources.values())
    spine.start()
    try:
        records: list[dict[str, Any]] = []
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not sup.snapshot()["given_up"]:
            time.sleep(0.05)
            records += sup.check(time.monotonic_ns())
        states = [(r["state"], r["reasons"][0].split(";")[0]) for r in records]
        assert states == [("degraded", "source thread died"), ("degraded", "source thread died"),
                          ("lost", "source thread died 3 times")]
        assert sup.snapshot() == {"restarts": 2, "given_up": ["test"]}
        assert not src._thread.is_alive()
        # before giving up, the restarts brought data back
        assert src.stats.frames >= 18
    finally:
        spine.stop()


def test_no_restart_for_a_stopped_or_finished_source() -> None:
    sup = Supervisor()
    calls: list[str] = []
    sup.watch("a", "source", alive=lambda: False, should_run=lambda: False,
              restart=lambda: calls.append("a"))
    assert sup.check(NS_PER_S) == [] and calls == []


def test_a_sink_left_down_is_reported_as_given_up() -> None:
    class Worker:  # a SinkWorker whose thread keeps dying
        name = "broker"
        thread_alive = False
        should_run = True

        def start(self) -> None:
            pass

    class Sinks:
        def __init__(self) -> None:
            self.worker = Worker()

        def workers(self) -> list[Worker]:
            return [self.worker]

    sup = Supervisor(max_restarts=1)
    sup.watch_sinks(Sinks())
    for k in range(1, 4):
        sup.check(k * NS_PER_S)
    assert sup.snapshot() == {"restarts": 1, "given_up": ["broker"]}
