"""The exception tree.

Every error a user can cause (a bad config, a missing device, a broken model) is an
``EdgeError``; the CLI prints it as one line and exits with code 2. Anything else is a bug.
"""

from __future__ import annotations


class EdgeError(Exception):
    """Base of all errors that edge reports to a user as one line."""


class ConfigError(EdgeError):
    """A configuration or scenario file is malformed or inconsistent."""


class DeviceError(EdgeError):
    """A capture device or stream cannot be found, opened or read."""


class EngineError(EdgeError):
    """A model or engine cannot be loaded or run."""


class DeviceMissing(DeviceError):
    """A device, stream or file that is not there now and may appear later (a USB camera that
    enumerates late, a microphone unplugged). A daemon waits for it; ``--strict`` fails."""
