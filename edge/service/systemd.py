"""systemd integration: ``sd_notify`` over ``$NOTIFY_SOCKET`` and the service unit.

``Type=notify`` services tell systemd ``READY=1`` once they serve, ``WATCHDOG=1`` within
``WatchdogSec`` (systemd passes it as ``$WATCHDOG_USEC``) and ``STOPPING=1`` on the way out.
The watchdog is pinged only while ticks really advance: a pipeline whose loop is stuck stops
pinging and systemd restarts it. No libsystemd needed: the protocol is one datagram per message.
"""

from __future__ import annotations

import os
import shutil
import socket
import sys
from pathlib import Path


UNIT = """\
[Unit]
Description=edge: audio-visual perception pipeline ({config})
Wants=network-online.target sound.target
After=network-online.target sound.target

[Service]
Type=notify
NotifyAccess=main
# Records go to the config's sinks only: stdout (the journal) gets none, no second copy.
ExecStart={exe} run --config {config} --no-view --no-jsonl
ExecReload=/bin/kill -HUP $MAINPID
WatchdogSec=10
Restart=on-failure
RestartSec=2
# Device faults are handled inside (reconnect with backoff); the process exits only when
# continuing would be wrong, and systemd restarts it, at most 10 times in 5 minutes.
StartLimitIntervalSec=300
StartLimitBurst=10
TimeoutStopSec=5
User={user}
Group={user}
SupplementaryGroups=video audio
WorkingDirectory={workdir}
StateDirectory=edge
LogsDirectory=edge
UMask=0077
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=read-only
PrivateTmp=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectControlGroups=yes
RestrictSUIDSGID=yes
LockPersonality=yes
ReadWritePaths=/var/lib/edge /var/log/edge

[Install]
WantedBy=multi-user.target
"""


def unit_text(config: str | Path, user: str = "edge") -> str:
    """The unit for this install: the ``edge`` executable beside the running Python."""
    exe = shutil.which("edge") or str(Path(sys.executable).with_name("edge"))
    cfg = Path(config).resolve()
    return UNIT.format(exe=exe, config=cfg, user=user, workdir=cfg.parent.parent)


class Notifier:
    """``sd_notify`` for one process; every method is a no-op outside systemd."""

    def __init__(self, environ: dict[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        addr = env.get("NOTIFY_SOCKET")
        self.address: str | None = None
        if addr:
            # An address starting with '@' is in the abstract namespace.
            self.address = "\0" + addr[1:] if addr.startswith("@") else addr
        usec = env.get("WATCHDOG_USEC")
        self.watchdog_ns = int(usec) * 1000 if usec and usec.isdigit() else None
        self._last_ping_ns: int | None = None
        self._last_tick_seen = -1

    @property
    def active(self) -> bool:
        return self.address is not None

    def send(self, message: str) -> bool:
        if self.address is None:
            return False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
                s.sendto(message.encode(), self.address)
            return True
        except OSError:
            return False  # systemd gone: nothing to tell

    def ready(self, status: str = "") -> None:
        self.send("READY=1" + (f"\nSTATUS={status}" if status else ""))

    def stopping(self) -> None:
        self.send("STOPPING=1")

    def tick(self, now_ns: int, ticks: int) -> bool:
        """Ping the watchdog at half its period, but only if ``ticks`` advanced since the last
        ping (a stuck loop must let the watchdog fire). Returns whether it pinged."""
        if self.watchdog_ns is None or ticks == self._last_tick_seen:
            return False
        if self._last_ping_ns is not None and now_ns - self._last_ping_ns < self.watchdog_ns // 2:
            return False
        self._last_ping_ns, self._last_tick_seen = now_ns, ticks
        return self.send("WATCHDOG=1")
