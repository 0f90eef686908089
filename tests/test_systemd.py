"""systemd: notify protocol, watchdog pings only while ticks advance, SIGTERM, the unit."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge.timebase.clock import NS_PER_S
from edge.service.systemd import Notifier, unit_text
from tests.conftest import ALWAYS_RULE, demo_daemon, read_jsonl, wait_for

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    path = str(tmp_path / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.bind(path)
        s.settimeout(0.2)
        yield s, path


def drain(s: socket.socket) -> list[str]:
    out = []
    while True:
        try:
            out.append(s.recv(4096).decode())
        except (socket.timeout, BlockingIOError):
            return out


def test_watchdog_is_pinged_at_half_its_period_and_only_when_ticks_advance(
    notify_socket: tuple[socket.socket, str],
) -> None:
    s, path = notify_socket
    n = Notifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "2000000"})
    assert n.active and n.watchdog_ns == 2 * NS_PER_S
    sent = [n.tick(int(t * NS_PER_S), ticks) for t, ticks in
            [(0.0, 1), (0.5, 2), (1.0, 3), (2.0, 3), (3.0, 3), (4.0, 3), (5.0, 4)]]
    # pings at 0 s and 1 s (half the period apart); from 2 to 4 s no tick runs (the loop is
    # stuck), so no ping however long it has been; at 5 s ticks advance again
    assert sent == [True, False, True, False, False, False, True]
    assert drain(s) == ["WATCHDOG=1"] * 3
    n.ready("ok")
    n.stopping()
    assert drain(s) == ["READY=1\nSTATUS=ok", "STOPPING=1"]
    assert not Notifier({}).active and Notifier({}).tick(0, 1) is False


def test_run_tells_systemd_ready_pings_while_running_and_exits_0_within_2_s_of_sigterm(
    tmp_path: Path, notify_socket: tuple[socket.socket, str],
) -> None:
    s, path = notify_socket
    env = dict(os.environ, NOTIFY_SOCKET=path, WATCHDOG_USEC="1000000")
    proc = subprocess.Popen(
        [sys.executable, "-m", "edge.cli", "run", "--config", "configs/demo.yaml", "--no-view",
         "--jsonl", str(tmp_path / "out.jsonl")],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    try:
        msgs: list[str] = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and msgs.count("WATCHDOG=1") < 3:
            msgs += drain(s)
        assert msgs[0].startswith("READY=1")
        assert msgs.count("WATCHDOG=1") >= 3
        proc.send_signal(signal.SIGTERM)
        t0 = time.monotonic()
        _, err = proc.communicate(timeout=5)
        elapsed = time.monotonic() - t0
        assert proc.returncode == 0 and elapsed < 2.0, (proc.returncode, elapsed, err)
        assert "STOPPING=1" in drain(s)
        lines = (tmp_path / "out.jsonl").read_text().splitlines()
        assert lines and all(line.endswith("}") for line in lines)
        assert (tmp_path / "out.jsonl").stat().st_mode & 0o777 == 0o600
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def test_install_service_prints_a_hardened_notify_unit() -> None:
    text = unit_text(ROOT / "configs" / "home.yaml")
    for line in ("Type=notify", "WatchdogSec=", "Restart=on-failure", "NoNewPrivileges=yes",
                 "ProtectSystem=strict", "SupplementaryGroups=video audio", "User=edge"):
        assert line in text
    assert f"--config {ROOT / 'configs' / 'home.yaml'}" in text
    shipped = (ROOT / "configs" / "edge.service").read_text()
    assert "Type=notify" in shipped and "WatchdogSec=" in shipped
    proc = subprocess.run([sys.executable, "-m", "edge.cli", "install-service", "--config",
                           "configs/home.yaml", "--print"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0 and "[Service]" in proc.stdout


def test_sighup_reloads_rules_without_stopping_capture_and_rejects_a_bad_config(tmp_path: Path) -> None:
    proc, cfg, out, demo = demo_daemon(tmp_path)

    def records() -> list[dict[str, object]]:
        return read_jsonl(out) if out.exists() else []

    try:
        assert wait_for(lambda: len(records()) >= 4, 20.0)
        # a new rule that holds while any class is on (the demo starts with talking)
        cfg.write_text(demo + ALWAYS_RULE)
        n_before = len(records())
        proc.send_signal(signal.SIGHUP)
        assert wait_for(
            lambda: any("always" in (r.get("rules") or []) for r in records()[n_before:]), 20.0
        )
        # a bad config: rejected, the running one stays, predictions keep coming
        cfg.write_text(demo.replace("class: eyes_closed", "class: eyes_shut"))
        proc.send_signal(signal.SIGHUP)
        n = len(records())
        assert wait_for(lambda: len(records()) >= n + 6, 20.0)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=5)
        assert proc.returncode == 0
        assert "reloaded decisions, health and sinks" in err
        assert "reload rejected" in err and "eyes_shut" in err
        preds = [r for r in records() if r["type"] == "prediction"]
        ticks = [int(r["t_end_ns"]) for r in preds]  # type: ignore[call-overload]
        gaps = [b - a for a, b in zip(ticks, ticks[1:])]
        assert max(gaps) < 1.5 * NS_PER_S  # no tick lost to the reloads: capture never stopped
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def test_the_unit_leaves_records_to_the_config_sinks_so_each_is_written_once() -> None:
    for text in (unit_text(ROOT / "configs" / "home.yaml"),
                 (ROOT / "configs" / "edge.service").read_text()):
        start = next(ln for ln in text.splitlines() if ln.startswith("ExecStart="))
        assert "--no-jsonl" in start and "--jsonl" not in start.replace("--no-jsonl", "")
