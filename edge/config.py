"""Configuration: YAML files validated into frozen pydantic models.

Unknown keys are errors, every field says what it is for, and a bad file is reported as one line
per problem with the key path and the YAML line: ``sources.cam0.fps: must be > 0 (line 7)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from edge.errors import ConfigError
from edge.front.config import FrontEndsConfig
from edge.status.config import HealthConfig
from edge.paths import PathsConfig, confine
from edge.recorder.config import RecorderConfig
from edge.sinks.config import SinkConfig
from edge.status.config import HttpConfig
from edge.decisions.rules import DecisionsConfig


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Reconnect(_Model):
    stall_timeout: float = Field(
        2.0, gt=0, description="Seconds without data after which the source reconnects."
    )
    backoff_initial: float = Field(
        0.25, gt=0, description="First reconnect delay in seconds; doubles on each failure."
    )
    backoff_max: float = Field(5.0, gt=0, description="Cap of the reconnect delay in seconds.")


class _VideoShape(_Model):
    width: int = Field(640, gt=0, le=8192, description="Frame width in the ring (pixels).")
    height: int = Field(480, gt=0, le=8192, description="Frame height in the ring (pixels).")
    fps: float = Field(30.0, gt=0, le=1000, description="Nominal frame rate.")
    buffer_seconds: float = Field(
        4.0, gt=0, description="Seconds of frames the ring holds (window + max wait + margin)."
    )


class AVSourceConfig(_VideoShape, _Reconnect):
    """Fields of a source that gives frames and audio on one device clock."""

    sample_rate: int = Field(16000, gt=0, le=384000, description="Audio sample rate in Hz.")
    audio_buffer_seconds: float = Field(10.0, gt=0, description="Seconds of audio the ring holds.")


class CameraSourceConfig(_VideoShape, _Reconnect):
    """A camera through OpenCV: V4L2 device, network URL, GStreamer pipeline or a file."""

    type: Literal["camera"] = Field(description="Source kind.")
    device: int | str = Field(
        description=(
            "Device index (0), /dev/videoN, a network URL (rtsp://, http://), a GStreamer "
            "pipeline (contains '!'), or a video file, which is paced in real time."
        )
    )
    loop: bool = Field(False, description="Files only: start again at the end.")
    open_timeout: float = Field(5.0, gt=0, description="Seconds to wait for a stream to open.")
    read_timeout: float = Field(3.0, gt=0, description="Seconds to wait for one frame.")


class MicrophoneSourceConfig(_Reconnect):
    """A microphone through sounddevice (PortAudio)."""

    type: Literal["microphone"] = Field(description="Source kind.")
    device: int | str | None = Field(
        None, description="PortAudio device index or name (substring); default input if unset."
    )
    sample_rate: int = Field(16000, gt=0, le=384000, description="Sample rate in Hz.")
    channels: int = Field(1, ge=1, le=32, description="Channels to capture.")
    block_seconds: float = Field(0.02, gt=0, le=1, description="Callback block length (s).")
    buffer_seconds: float = Field(10.0, gt=0, description="Seconds of audio the ring holds.")


class MediaSourceConfig(AVSourceConfig):
    """A file or network stream with video and audio tracks, demuxed by PyAV, stamped by PTS."""

    type: Literal["media"] = Field(description="Source kind.")
    url: str = Field(description="File path or stream URL (rtsp://, http://).")
    channels: int = Field(1, ge=1, le=8, description="Audio is remixed to this many channels.")
    loop: bool = Field(False, description="Files only: start again at the end.")
    open_timeout: float = Field(5.0, gt=0, description="Seconds to wait for the stream to open.")


class SyntheticSourceConfig(AVSourceConfig):
    """A generated test stream (moving bar and tone) with a device clock that drifts."""

    type: Literal["synthetic"] = Field(description="Source kind.")
    tone_hz: float = Field(440.0, gt=0, description="Frequency of the test tone.")
    block_seconds: float = Field(0.02, gt=0, le=1, description="Audio block length (s).")
    skew_ppm: float = Field(0.0, ge=-10000, le=10000, description="Device clock drift in ppm.")
    jitter_ms: float = Field(0.0, ge=0, le=1000, description="Delivery jitter in ms.")
    seed: int = Field(0, description="Seed of the jitter.")


class ScenarioSourceConfig(AVSourceConfig):
    """A simulated scene (edge.sim) rendered live: video and audio with exact ground truth."""

    type: Literal["scenario"] = Field(description="Source kind.")
    scenario: str = Field(
        description="'driver' or 'home' (a random timeline from the seed), or a scenario YAML."
    )
    seconds: float = Field(60.0, gt=0, description="Length of a random timeline (s).")
    seed: int = Field(0, ge=0, description="Seed of the random timeline and of the rendering.")
    block_seconds: float = Field(0.02, gt=0, le=1, description="Audio block length (s).")
    loop: bool = Field(True, description="Start the scenario again at its end.")


SourceConfig = Annotated[
    Union[
        CameraSourceConfig,
        MicrophoneSourceConfig,
        MediaSourceConfig,
        SyntheticSourceConfig,
        ScenarioSourceConfig,
    ],
    Field(discriminator="type"),
]

VIDEO_TYPES = ("camera", "media", "synthetic", "scenario")
AUDIO_TYPES = ("microphone", "media", "synthetic", "scenario")


class WindowConfig(_Model):
    """How windows are cut from the rings."""

    seconds: float = Field(2.0, gt=0, le=60, description="Window length W in seconds.")
    frames: int = Field(8, ge=1, le=256, description="Frames T per window, evenly spaced over W.")
    audio_seconds: float | None = Field(
        None,
        gt=0,
        le=60,
        description="Seconds of audio per window, ending with the frames; default: the model "
        "card's, else W.",
    )
    hop: float = Field(0.5, gt=0, le=60, description="Seconds between windows (the tick).")
    max_wait_video: float = Field(
        0.25, ge=0, le=10, description="Longest the window end trails the newest frame (s)."
    )
    max_wait_audio: float = Field(
        0.25, ge=0, le=10, description="Longest the window end trails the newest sample (s)."
    )
    tolerance: float | None = Field(
        None, gt=0, description="Nearest-frame tolerance in s; default 3/4 of a frame interval."
    )
    budget: float | None = Field(
        None, gt=0, le=60,
        description="Latency budget (s) from a window's end to its prediction: windows already "
        "older at the tick are skipped (counted), later predictions are counted over budget.",
    )


class StreamConfig(_Model):
    """One audio-visual stream: the sources whose data are joined into its windows."""

    video: str | None = Field(None, description="Name of the source that gives the frames.")
    audio: str | None = Field(None, description="Name of the source that gives the audio.")

    @model_validator(mode="after")
    def _one_modality(self) -> "StreamConfig":
        if self.video is None and self.audio is None:
            raise ValueError("a stream needs video, audio or both")
        return self


class EngineConfig(_Model):
    """Which runtime runs the model."""

    type: Literal["onnx", "tensorrt"] = Field(
        "onnx", description="Backend: onnx (ONNX Runtime) or tensorrt (a .plan, gpu extra)."
    )
    threads: int = Field(1, ge=1, le=64, description="Intra-op threads.")
    providers: list[str] = Field(
        default_factory=lambda: ["CPUExecutionProvider"],
        description="ONNX Runtime execution providers, in order of preference (e.g. "
        "TensorrtExecutionProvider, CUDAExecutionProvider, CPUExecutionProvider).",
    )
    cache_dir: str | None = Field(
        None, description="Engine cache of ONNX Runtime's TensorRT provider (default: beside the model)."
    )
    device: int = Field(0, ge=0, description="CUDA device index (tensorrt, GPU providers).")


class ModelConfig(_Model):
    """The model that turns windows into predictions."""

    path: str = Field(description="Model file (ONNX); its card NAME.yaml lies beside it.")
    engine: EngineConfig = Field(default_factory=EngineConfig, description="Runtime.")


class Config(_Model):
    """A whole edge configuration file."""

    sources: dict[str, SourceConfig] = Field(description="Capture sources by name.")
    streams: dict[str, StreamConfig] = Field(description="Streams by name.")
    window: WindowConfig = Field(default_factory=WindowConfig, description="Window cutting.")
    model: ModelConfig | None = Field(None, description="Model for predictions (edge run).")
    front_ends: FrontEndsConfig | None = Field(
        None, description="Pretrained front ends (face, person, speech activity) that run on new "
        "frames and audio before the model (edge/front; off when absent)."
    )
    decisions: DecisionsConfig | None = Field(
        None, description="Smoothing, states and rules that turn predictions into events."
    )
    health: HealthConfig = Field(
        default_factory=HealthConfig, description="Thresholds of the sensor health judgement."
    )
    http: HttpConfig | None = Field(
        None, description="The /healthz and /metrics endpoint (off when absent)."
    )
    sinks: dict[str, SinkConfig] = Field(
        default_factory=dict, description="Outputs by name: jsonl, mqtt, webhook (edge/sinks)."
    )
    recorder: RecorderConfig | None = Field(
        None, description="Flight recorder: synchronized data around events (off when absent)."
    )
    paths: PathsConfig = Field(
        default_factory=PathsConfig,
        description="Folders the files named here may lie in (edge/paths.py); default: this "
        "file's folder.",
    )

    @model_validator(mode="after")
    def _streams_name_sources(self) -> "Config":
        for name, stream in self.streams.items():
            for role, kinds in (("video", VIDEO_TYPES), ("audio", AUDIO_TYPES)):
                src = getattr(stream, role)
                if src is None:
                    continue
                if src not in self.sources:
                    raise ValueError(f"streams.{name}.{role}: no source named {src!r}")
                if self.sources[src].type not in kinds:
                    raise ValueError(
                        f"streams.{name}.{role}: source {src!r} is a {self.sources[src].type},"
                        f" which gives no {role}"
                    )
        return self


# -- loading with line numbers ---------------------------------------------------------


def _is_tag(node: yaml.Node | None, key: Any, seen: set[int]) -> bool:
    """Whether ``key`` is the tag a discriminated union inserts into the error path (the
    mapping's ``type`` value, e.g. 'camera'), met for the first time at this mapping. A tag
    may also be a real key ('scenario' sources have a `scenario:` field): the tag comes first."""
    if not isinstance(node, yaml.MappingNode) or id(node) in seen:
        return False
    if any(k.value == "type" and getattr(v, "value", None) == str(key) for k, v in node.value):
        seen.add(id(node))
        return True
    return False


def _node_at(node: yaml.Node | None, loc: tuple[Any, ...]) -> yaml.Node | None:
    """Follow a pydantic error location through the composed YAML tree."""
    seen: set[int] = set()
    for key in loc:
        if node is None:
            return None
        if _is_tag(node, key, seen):
            continue
        if isinstance(node, yaml.MappingNode):
            found = next((v for k, v in node.value if k.value == str(key)), None)
            if found is None:
                return node
            node = found
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int):
            node = node.value[key] if key < len(node.value) else node
        else:
            return node
    return node


def _path(loc: tuple[Any, ...], root: yaml.Node | None) -> str:
    parts: list[str] = []
    node = root
    seen: set[int] = set()
    for key in loc:
        if _is_tag(node, key, seen):
            continue  # discriminator tag, not a key of the file
        if isinstance(node, yaml.MappingNode):
            node = next((v for k, v in node.value if k.value == str(key)), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int):
            node = node.value[key] if key < len(node.value) else None
        else:
            node = None
        parts.append(str(key))
    return ".".join(parts)


def _message(err: dict[str, Any]) -> str:
    ctx = err.get("ctx") or {}
    kind = err["type"]
    if kind == "greater_than":
        return f"must be > {ctx['gt']:g}"
    if kind == "greater_than_equal":
        return f"must be >= {ctx['ge']:g}"
    if kind == "less_than_equal":
        return f"must be <= {ctx['le']:g}"
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required key is missing"
    if kind == "union_tag_invalid":
        return f"unknown type {ctx.get('tag')!r} (expected one of {ctx.get('expected_tags')})"
    if kind == "union_tag_not_found":
        return "needs a 'type'"
    msg = str(err["msg"])
    return msg[len("Value error, ") :] if msg.startswith("Value error, ") else msg


def read_yaml(text: str, filename: str, expected: str) -> tuple[yaml.Node | None, dict[str, Any]]:
    """Parse YAML into (node tree for line numbers, data); the top must be a mapping."""
    try:
        root = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{filename}: not valid YAML: {problem}{where}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{filename}: expected a mapping at the top ({expected})")
    return root, data


def line_of(root: yaml.Node | None, loc: tuple[Any, ...]) -> str:
    """`` (line N)`` of the YAML node at a pydantic error location, or nothing."""
    node = _node_at(root, loc)
    return f" (line {node.start_mark.line + 1})" if node is not None else ""


def parse_config(text: str, filename: str = "<config>") -> Config:
    """Validate YAML text into a :class:`Config`; raise :class:`ConfigError` with lines."""
    root, data = read_yaml(text, filename, "sources, streams, window")
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            loc = tuple(err["loc"])
            msg = _message(dict(err))
            if not loc and ": " in msg:
                # A whole-file check names its own key path ("streams.s.audio: ...").
                head, msg = msg.split(": ", 1)
                loc = tuple(head.split("."))
            path = _path(loc, root) or "<top>"
            lines.append(f"{path}: {msg}{line_of(root, loc)}")
        raise ConfigError("\n".join(f"{filename}: {ln}" for ln in lines)) from None


def read_text(path: str | Path, what: str) -> str:
    """A user's text file, or a :class:`ConfigError` that says which ``what`` is missing."""
    p = Path(path)
    try:
        return p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{p}: no such {what} file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{p}: cannot read {what}: {exc}") from None


def load_config(path: str | Path, text: str | None = None) -> Config:
    """Read and validate a config file; its file paths come back resolved and confined to
    ``paths.roots`` (:mod:`edge.paths`). ``text``: the file's text, already read (what a
    flight recording keeps is then exactly what was loaded)."""
    if text is None:
        text = read_text(path, "config")
    config = parse_config(text, str(path))
    root = yaml.compose(text)  # parsed once already: only for the line numbers of path errors
    return confine(config, path, lambda key: line_of(root, tuple(key.split("."))))
