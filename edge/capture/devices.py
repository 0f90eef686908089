"""Discovery of the cameras and microphones this machine has, for ``edge devices``."""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
from typing import Any

from edge.errors import DeviceError


def list_cameras(max_probe: int = 16) -> list[dict[str, Any]]:
    """V4L2 video devices with the size and rate they open at (nothing when there are none)."""
    import cv2

    found = []
    for path in sorted(glob.glob("/dev/video*"))[:max_probe]:
        entry: dict[str, Any] = {"device": path}
        name_file = f"/sys/class/video4linux/{os.path.basename(path)}/name"
        if os.path.exists(name_file):
            with open(name_file, encoding="utf-8", errors="replace") as f:
                entry["name"] = f.read().strip()
        cap = cv2.VideoCapture(path, cv2.CAP_V4L2)
        if cap.isOpened():
            entry["width"] = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
            entry["height"] = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
            entry["fps"] = round(float(cap.get(cv2.CAP_PROP_FPS)), 2)
        else:
            entry["error"] = "cannot open (busy, or a metadata node)"
        cap.release()
        modes = v4l2_modes(path)
        if modes:
            entry["modes"] = modes
        found.append(entry)
    return found


def v4l2_modes(path: str) -> list[str]:
    """Formats, sizes and rates the driver offers (``v4l2-ctl`` from v4l-utils, if installed)."""
    tool = shutil.which("v4l2-ctl")
    if tool is None:
        return []
    try:
        out = subprocess.run(
            [tool, "-d", path, "--list-formats-ext"], capture_output=True, text=True, timeout=5
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    modes: list[str] = []
    fmt = size = ""
    for line in out.splitlines():
        if m := re.search(r"'(\w+)'", line):
            fmt = m.group(1)
        elif m := re.search(r"Size: \w+ (\d+x\d+)", line):
            size = m.group(1)
        elif m := re.search(r"\(([\d.]+) fps\)", line):
            modes.append(f"{fmt} {size}@{float(m.group(1)):g}")
    return modes


def list_microphones() -> list[dict[str, Any]]:
    """PortAudio input devices with channels and default rate."""
    from edge.capture.microphone import import_sounddevice

    sd = import_sounddevice()
    try:
        devices = sd.query_devices()
        apis = sd.query_hostapis()
    except sd.PortAudioError as exc:
        raise DeviceError(f"PortAudio cannot list devices: {exc}") from None
    out = []
    for i, d in enumerate(devices):
        if d["max_input_channels"] <= 0:
            continue
        rates = []
        for rate in (8000, 16000, 22050, 32000, 44100, 48000):
            try:
                sd.check_input_settings(device=i, channels=1, samplerate=rate)
                rates.append(rate)
            except Exception:  # PortAudio says no in several ways; all mean "not this rate"
                pass
        out.append(
            {
                "index": i,
                "name": d["name"],
                "api": apis[d["hostapi"]]["name"],
                "channels": d["max_input_channels"],
                "default_rate": d["default_samplerate"],
                "rates": rates,
            }
        )
    return out


def check_devices(config: Any) -> dict[str, str | None]:
    """Per configured source, what keeps it from opening now (None: it is there).

    Device files, files and microphones are looked up; a network or indexed camera is opened
    once (within its ``open_timeout``). Simulated sources are always there.
    """
    from edge.timebase.clock import MonotonicClock
    from edge.join.spine import make_source

    out: dict[str, str | None] = {}
    for name, cfg in config.sources.items():
        src = make_source(name, cfg, MonotonicClock())
        try:
            check = getattr(src, "check", None)
            if check is not None:
                check()
            if cfg.type == "camera" and getattr(src, "target", "") in ("url", "index", "gstreamer"):
                src.open()
            out[name] = None
        except DeviceError as exc:
            out[name] = str(exc)
        finally:
            src.close()
    return out
