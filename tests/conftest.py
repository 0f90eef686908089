"""Shared fixtures: real software devices (ffmpeg streams, PulseAudio) and their skips.

Tests marked ``system`` need ffmpeg / PulseAudio. Where a tool is missing they skip with the
reason, except when ``EDGE_REQUIRE_SYSTEM=1`` (set by CI), where a missing tool is a failure.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

REQUIRE_SYSTEM = os.environ.get("EDGE_REQUIRE_SYSTEM") == "1"
ROOT = Path(__file__).resolve().parent.parent


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        msg = f"{tool} is not installed (Debian: see .ci/run)"
        if REQUIRE_SYSTEM:
            pytest.fail(msg)
        pytest.skip(msg)
    return path


def wait_for(cond: Callable[[], object], timeout_s: float, step_s: float = 0.05) -> bool:
    """Poll ``cond`` until it is true or ``timeout_s`` passes; whether it became true."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(step_s)
    return False


def demo_config(loop: bool = True) -> str:
    """``configs/demo.yaml`` with its scenario and model paths made absolute (it parses from any
    folder); ``loop=False``: the scripted drive plays once."""
    demo = (ROOT / "configs" / "demo.yaml").read_text()
    demo = demo.replace("configs/scenarios/", f"{ROOT}/configs/scenarios/")
    demo = demo.replace("engines/", f"{ROOT}/engines/")
    return demo if loop else demo.replace("loop: true", "loop: false")


#: A rule for ``decisions.rules``, on while any driver class is (the demo starts with talking).
ALWAYS_RULE = """    - name: always
      any_of:
        - {class: talking, at_least: 0.0}
        - {class: yawning, at_least: 0.0}
        - {class: eyes_closed, at_least: 0.0}
        - {class: distracted, at_least: 0.0}
        - {class: phone, at_least: 0.0}
"""


def demo_daemon(tmp_path: Path) -> tuple[subprocess.Popen[str], Path, Path, str]:
    """``edge run`` on the demo config written to ``tmp_path/run.yaml`` (its files may lie in
    ``tmp_path`` too), in a process of its own: the process, the config file, the JSONL file
    its records go to, and the config's text (stderr piped)."""
    import sys

    demo = demo_config().replace("roots: [..]", f"roots: [{ROOT}, {tmp_path}]")
    cfg, out = tmp_path / "run.yaml", tmp_path / "out.jsonl"
    cfg.write_text(demo)
    proc = subprocess.Popen(
        [sys.executable, "-m", "edge.cli", "run", "--config", str(cfg), "--no-view",
         "--jsonl", str(out)], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        text=True,
    )
    return proc, cfg, out, demo


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The records of a JSON-lines file, one per line."""
    return [json.loads(ln) for ln in path.read_text(encoding="utf-8").splitlines()]


def run_live(runner: Any, seconds: float, require_open_s: float | None = None, **service: Any) -> Any:
    """``seconds`` of the live loop on ``runner``'s spine through a ``Service(runner, **service)``,
    the spine stopped after; returns the service."""
    from edge.service.daemon import Service

    svc = Service(runner, **service)
    runner.spine.start(require_open_s=require_open_s)
    try:
        runner.spine.run(seconds, svc.on_windows)
    finally:
        runner.spine.stop()
    return svc


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class MjpegServer:
    """ffmpeg serving a test pattern as MJPEG over HTTP on loopback (one client per run)."""

    def __init__(self, fps: int = 30, size: str = "320x240") -> None:
        self.ffmpeg = need("ffmpeg")
        self.port = free_port()
        self.fps = fps
        self.size = size
        self.url = f"http://127.0.0.1:{self.port}/cam.mjpg"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                self.ffmpeg, "-loglevel", "error", "-re",
                "-f", "lavfi", "-i", f"testsrc=size={self.size}:rate={self.fps}",
                "-q:v", "5", "-f", "mpjpeg", "-listen", "1", self.url,
            ],
            stdin=subprocess.DEVNULL,
        )
        # Wait until it listens, so the test measures the camera, not ffmpeg's start-up (a
        # full run on 2 cores once saw it not listening after 5 s, with nothing on stderr).
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            # A probe connection would be the one client -listen 1 serves: read the socket
            # table instead.
            if _listening(self.port):
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"ffmpeg exited with {self.proc.returncode} before it "
                                   f"listened on {self.url}")
            time.sleep(0.05)
        raise RuntimeError(f"ffmpeg did not listen on {self.url} within 15 s")

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(5)
            self.proc = None


def _listening(port: int) -> bool:
    hexport = f":{port:04X}"
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table, encoding="ascii") as f:
                for line in f.readlines()[1:]:
                    parts = line.split()
                    if parts[1].endswith(hexport) and parts[3] == "0A":  # 0A = LISTEN
                        return True
        except OSError:
            continue
    return False


@pytest.fixture
def mjpeg_server() -> Iterator[MjpegServer]:
    server = MjpegServer()
    yield server
    server.kill()


def _pactl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["pactl", *args], capture_output=True, text=True, timeout=10)


@pytest.fixture(scope="session")
def pulse_null_sink() -> str:
    """A running PulseAudio with a null sink ``virtmic`` whose monitor is the default source."""
    need("pulseaudio")
    need("pactl")
    need("paplay")
    if _pactl("info").returncode != 0:
        subprocess.run(
            [
                "pulseaudio", "--daemonize=yes", "--exit-idle-time=-1", "--disallow-exit", "-n",
                "--load=module-native-protocol-unix", "--load=module-null-sink sink_name=virtmic",
            ],
            capture_output=True,
            timeout=20,
        )
        deadline = time.monotonic() + 10
        while _pactl("info").returncode != 0:
            if time.monotonic() > deadline:
                pytest.fail("PulseAudio did not start")
            time.sleep(0.1)
    if "virtmic" not in _pactl("list", "short", "sinks").stdout:
        _pactl("load-module", "module-null-sink", "sink_name=virtmic")
    _pactl("set-default-source", "virtmic.monitor")
    return "virtmic"
