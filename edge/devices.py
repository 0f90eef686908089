"""Discovery of the cameras and microphones this machine has, for ``edge devices``."""

from __future__ import annotations

import glob
import os
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
        found.append(entry)
    return found


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
        out.append(
            {
                "index": i,
                "name": d["name"],
                "api": apis[d["hostapi"]]["name"],
                "channels": d["max_input_channels"],
                "default_rate": d["default_samplerate"],
            }
        )
    return out
