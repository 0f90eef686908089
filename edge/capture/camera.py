"""Cameras through OpenCV: V4L2 devices, network streams, GStreamer pipelines and files.

The shell writes each frame straight into the next ring slot (``cap.read(image=slot)``, or a
resize into the slot when the camera's size differs from the ring's). Device time is the
stream's timestamp (``CAP_PROP_POS_MSEC``: PTS for files and RTSP, the driver's buffer time for
V4L2), or the arrival time where the stream has none worth using (MJPEG over HTTP); either way it goes through the source's
:class:`ClockModel`. Files are paced at their own speed, so a recording behaves like a camera.
"""

from __future__ import annotations

import logging
import os
import re
from typing import Any

import cv2
import numpy as np

from edge.timebase.buffers import FrameRing
from edge.capture.base import Backoff, CaptureSource, EndOfStream
from edge.timebase.clock import NS_PER_S, Clock, ClockModel
from edge.config import CameraSourceConfig
from edge.errors import DeviceError, DeviceMissing

log = logging.getLogger(__name__)

_URL = re.compile(r"^(rtsps?|https?|rtmp|udp|tcp|srt)://", re.IGNORECASE)


def classify(device: int | str) -> str:
    """Which kind of camera target ``device`` names: index, v4l2, url, gstreamer or file."""
    if isinstance(device, int) or (isinstance(device, str) and device.isdigit()):
        return "index"
    if device.startswith("/dev/video"):
        return "v4l2"
    if _URL.match(device):
        return "url"
    if "!" in device:
        return "gstreamer"
    return "file"


def has_gstreamer() -> bool:
    """True when this OpenCV build can open GStreamer pipelines."""
    info = cv2.getBuildInformation()
    return bool(re.search(r"GStreamer:\s+YES", info))


def redact(url: str) -> str:
    """A URL without its password, for messages and logs."""
    return re.sub(r"://([^:/@]+):[^@/]*@", r"://\1:***@", url)


class CameraSource(CaptureSource):
    """One OpenCV camera feeding a :class:`FrameRing`."""

    kind = "camera"

    def __init__(self, name: str, cfg: CameraSourceConfig, clock: Clock) -> None:
        super().__init__(
            name,
            clock,
            backoff=Backoff(cfg.backoff_initial, cfg.backoff_max),
            stall_timeout_s=cfg.stall_timeout,
        )
        self.cfg = cfg
        self.target = classify(cfg.device)
        self.nominal_fps = cfg.fps
        capacity = max(4, int(round(cfg.buffer_seconds * cfg.fps)))
        self.video = FrameRing(capacity, (cfg.height, cfg.width, 3))
        self.video_clock = ClockModel()
        self._cap: Any = None
        self._use_pts: bool | None = None
        self._shift_ns = 0
        self._rebase = False
        self._last_dev: tuple[int, int] | None = None  # (device ns, host ns) of the last frame
        self._pace_origin: tuple[int, int] | None = None  # (device ns, host ns) for files
        self._frame_ns = int(NS_PER_S / cfg.fps)

    def describe(self) -> str:
        dev = self.cfg.device
        return f"camera {self.name!r} ({redact(dev) if isinstance(dev, str) else dev})"

    def check(self) -> None:
        """Fail fast on targets that cannot open now: :class:`DeviceMissing` for a device file
        or file that is not there (yet), :class:`DeviceError` for what never can."""
        dev = self.cfg.device
        if self.target == "v4l2" and not os.path.exists(str(dev)):
            raise DeviceMissing(f"{self.describe()}: no such device")
        if self.target == "file" and not os.path.isfile(str(dev)):
            raise DeviceMissing(f"{self.describe()}: no such file")
        if self.target == "gstreamer" and not has_gstreamer():
            raise DeviceError(
                f"{self.describe()}: this OpenCV build has no GStreamer support "
                "(on a Jetson use the system python3-opencv, which has it)"
            )

    def open(self) -> None:
        self.check()
        dev = self.cfg.device
        params = [
            cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
            int(self.cfg.open_timeout * 1000),
            cv2.CAP_PROP_READ_TIMEOUT_MSEC,
            int(self.cfg.read_timeout * 1000),
        ]
        if self.target == "index":
            cap = cv2.VideoCapture(int(dev), cv2.CAP_ANY, params)
        elif self.target == "v4l2":
            cap = cv2.VideoCapture(str(dev), cv2.CAP_V4L2, params)
        elif self.target == "gstreamer":
            cap = cv2.VideoCapture(str(dev), cv2.CAP_GSTREAMER)
        else:
            cap = cv2.VideoCapture(str(dev), cv2.CAP_FFMPEG, params)
        if not cap.isOpened():
            cap.release()
            raise DeviceError(f"{self.describe()}: cannot open")
        if self.target in ("index", "v4l2"):
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.cfg.width)
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.cfg.height)
            cap.set(cv2.CAP_PROP_FPS, self.cfg.fps)
        self._cap = cap
        self._pace_origin = None
        self._rebase = True

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None

    def pump(self) -> bool:
        ring, model, cap = self.video, self.video_clock, self._cap
        assert ring is not None and model is not None
        if cap is None:
            raise DeviceError(f"{self.describe()}: not open")
        slot = ring.begin_write()
        ok, img = cap.read(image=slot)
        if not ok or img is None:
            ring.abort()
            if self.target == "file":
                if not self.cfg.loop:
                    raise EndOfStream()
                # Start over; PTS restart at zero and the timeline shift keeps them increasing.
                cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
                self._pace_origin = None
                self._rebase = True
            return False
        if not np.shares_memory(img, slot):
            self._fit_into(img, slot)
        arrival = self.clock.now_ns()
        pos_ns = int(cap.get(cv2.CAP_PROP_POS_MSEC) * 1_000_000)
        if self.target == "file":
            arrival = self._pace(pos_ns)
            if arrival < 0:
                ring.abort()
                return False
        device_ns = self._device_time(pos_ns, arrival)
        model.observe(device_ns, arrival)
        ring.commit(device_ns)
        self.frame_committed(arrival)
        return True

    def _device_time(self, pos_ns: int, arrival_ns: int) -> int:
        """The frame's time on a device timeline that runs on across reopens and loops."""
        if self._use_pts is None:
            # Decided once. Files, RTSP/RTMP/UDP/SRT (RTP/MPEG-TS clocks) and V4L2 buffers carry
            # real timestamps; MJPEG over HTTP gets invented ones (the demuxer assumes 25 fps),
            # so an HTTP stream is stamped on arrival.
            url = isinstance(self.cfg.device, str) and self.cfg.device.lower().startswith("http")
            self._use_pts = self.target == "file" or (pos_ns > 0 and not url)
        if not self._use_pts:
            return arrival_ns
        if self._rebase:
            # The device restarted its timestamps: continue after the last frame, plus the
            # host time that passed meanwhile, so the ring's times stay increasing.
            if self._last_dev is not None:
                target = self._last_dev[0] + max(self._frame_ns, arrival_ns - self._last_dev[1])
                self._shift_ns = target - pos_ns
            self._rebase = False
        dev = pos_ns + self._shift_ns
        if self._last_dev is not None:
            last = self._last_dev[0]
            if dev <= last:  # a repeated timestamp: assume one nominal frame interval
                dev = last + self._frame_ns
            elif dev - last > 1.5 * self._frame_ns:
                self.stats.drops += int(round((dev - last) / self._frame_ns)) - 1
        self._last_dev = (dev, arrival_ns)
        return dev

    def _fit_into(self, img: np.ndarray, slot: np.ndarray) -> None:
        if img.ndim == 2:
            img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
        elif img.shape[2] == 4:
            img = cv2.cvtColor(img, cv2.COLOR_BGRA2BGR)
        if img.shape[:2] == slot.shape[:2]:
            np.copyto(slot, img)
        else:
            cv2.resize(img, (slot.shape[1], slot.shape[0]), dst=slot, interpolation=cv2.INTER_AREA)

    def _pace(self, pos_ns: int) -> int:
        """Sleep until a file's frame is due; return its host time (-1 when stopping)."""
        now = self.clock.now_ns()
        if self._pace_origin is None or pos_ns < self._pace_origin[0]:
            self._pace_origin = (pos_ns, now)
        due = self._pace_origin[1] + (pos_ns - self._pace_origin[0])
        if not self.clock.sleep_until(due, self._stop):
            return -1
        return self.clock.now_ns()
