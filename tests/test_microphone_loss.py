"""The microphone's sound server dies and comes back: predictions never stop, health says so.

A private PulseAudio (its own socket, a null sink whose monitor is the microphone) so that
killing it cannot disturb any other test's audio.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge.timebase.clock import NS_PER_S
from tests.conftest import need, wait_for

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.system


class PrivatePulse:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.socket = root / "native"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = dict(os.environ, PULSE_RUNTIME_PATH=str(self.root / "run"), HOME=str(self.root))
        (self.root / "run").mkdir(exist_ok=True)
        self.proc = subprocess.Popen(
            [need("pulseaudio"), "-n", "--daemonize=no", "--exit-idle-time=-1", "--disallow-exit",
             "--use-pid-file=no",
             f"--load=module-native-protocol-unix socket={self.socket} auth-anonymous=1",
             "--load=module-null-sink sink_name=mic2"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while subprocess.run([need("pactl"), "info"], capture_output=True,
                             env=dict(os.environ, PULSE_SERVER=f"unix:{self.socket}")).returncode:
            if time.monotonic() > deadline:
                pytest.fail("the private PulseAudio did not start")
            time.sleep(0.1)

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None


def mic_config(mic_extra: str = "") -> str:
    """A cabin stream: the private sound server's microphone and a simulated camera."""
    extra = f", {mic_extra}" if mic_extra else ""
    return f"""
sources:
  mic: {{type: microphone, device: pulse, sample_rate: 16000, block_seconds: 0.02{extra}}}
  cam: {{type: scenario, scenario: driver, seconds: 60, width: 160, height: 120, fps: 10}}
streams:
  cabin: {{video: cam, audio: mic}}
window: {{seconds: 2.0, frames: 8, hop: 0.5}}
model: {{path: "{ROOT / 'engines' / 'driver-av.int8.onnx'}"}}
paths: {{roots: [{ROOT}]}}
health: {{horizon: 2.0}}
"""


@pytest.fixture
def pulse(tmp_path: Path) -> Iterator[PrivatePulse]:
    p = PrivatePulse(tmp_path)
    p.start()
    yield p
    p.kill()


def test_sound_server_killed_and_restarted_predictions_go_on_health_lost_then_ok(
    pulse: PrivatePulse, tmp_path: Path
) -> None:
    cfg = tmp_path / "mic.yaml"
    cfg.write_text(mic_config(
        "stall_timeout: 1.0, backoff_initial: 0.25, backoff_max: 1.0"))
    out = tmp_path / "out.jsonl"
    env = dict(os.environ, PULSE_SERVER=f"unix:{pulse.socket}", PULSE_SOURCE="mic2.monitor")
    run = subprocess.Popen(
        [sys.executable, "-m", "edge.cli", "run", "--config", str(cfg), "--no-view", "--jsonl",
         str(out)], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )

    def health() -> list[str]:
        rows = [json.loads(x) for x in out.read_text().splitlines()] if out.exists() else []
        return [r["state"] for r in rows if r["type"] == "health" and r["source"] == "mic"]


    try:
        time.sleep(6.0)  # running, microphone healthy
        assert health() == []
        pulse.kill()
        assert wait_for(lambda: "lost" in health(), 10.0), health()
        pulse.start()
        assert wait_for(lambda: health()[-1:] == ["ok"], 20.0), health()
        run.send_signal(signal.SIGTERM)
        _, err = run.communicate(timeout=5)
        assert run.returncode == 0, err
        rows = [json.loads(x) for x in out.read_text().splitlines()]
        ticks = [int(r["t_end_ns"]) for r in rows if r["type"] == "prediction"]
        assert max(b - a for a, b in zip(ticks, ticks[1:])) < 1.5 * NS_PER_S  # never stopped
        degraded = [r for r in rows if r["type"] == "prediction" and "audio" in r.get("degraded", [])]
        assert degraded  # predictions made while the microphone was down say so
    finally:
        if run.poll() is None:
            run.kill()
            run.communicate()


def test_input_overflows_mask_their_samples_count_and_degrade_the_microphone(
    pulse_null_sink: str,
) -> None:
    """Overflows injected into the real callback (as PortAudio reports them in its status):
    the lost blocks are masked, counted, and the microphone is reported degraded, while
    predictions keep coming."""
    import threading
    from types import SimpleNamespace
    from typing import Any

    from edge.timebase.clock import MonotonicClock
    from edge.config import parse_config
    from edge.service.run import Runner
    from edge.service.daemon import Service

    cfg = parse_config(mic_config())
    runner = Runner(cfg, MonotonicClock())
    mic: Any = runner.spine.sources["mic"]
    real = mic._callback
    blocks = {"n": 0}

    def flaky(indata: Any, frames: int, time_info: Any, status: Any) -> None:
        blocks["n"] += 1
        if 200 <= blocks["n"] < 225:  # half a second of overflows, 4 s in
            status = SimpleNamespace(input_overflow=True)
        real(indata, frames, time_info, status)

    mic._callback = flaky
    health: list[dict[str, Any]] = []
    service = Service(runner, publish=lambda r: health.append(r) if r["type"] == "health" else None)
    stop = threading.Event()
    runner.spine.start(require_open_s=5)
    try:
        runner.spine.run(9.0, service.on_windows, stop=stop)
    finally:
        runner.spine.stop()
    assert blocks["n"] > 300
    assert mic.stats.overflows == 25
    states = [(h["source"], h["state"]) for h in health]
    assert ("mic", "degraded") in states
    reasons = " ".join(r for h in health for r in h["reasons"])
    assert "drops/gaps/overflows" in reasons or "audio masked" in reasons
    assert runner.spine.ticks >= 16
