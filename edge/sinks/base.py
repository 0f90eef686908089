"""Sink configuration, the sink interface and registry, and the worker that feeds one sink.

A sink turns records (plain JSON-able dicts with a ``"type"``: ``prediction``, ``event``,
``health``) into something outside the process: a file, an MQTT broker, an HTTP endpoint. The
run loop must never wait on one, so each sink gets a :class:`SinkWorker`: a thread with its own
bounded :class:`RecordQueue`. :meth:`SinkWorker.publish` only appends under a lock; the thread
sends, and a send that fails is retried with capped exponential backoff until it succeeds or
the worker is stopped. :class:`SinkSet` owns the workers of a ``sinks:`` config mapping and fans
every record out to them.

The config models of every sink type live here (not beside each sink) so that the main config
can validate ``sinks:`` without importing paho-mqtt or any other sink dependency.
"""

from __future__ import annotations

import enum
import importlib
import itertools
import json
import logging
import math
import os
import re
import threading
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from edge.errors import ConfigError

log = logging.getLogger(__name__)

Record = Mapping[str, Any]
RecordType = Literal["prediction", "event", "health"]
ALL_RECORDS: list[RecordType] = ["prediction", "event", "health"]
EVENTS_ONLY: list[RecordType] = ["event"]

# -- configuration -----------------------------------------------------------------------


class _SinkModel(BaseModel):
    # Same rules as edge.config._Model; not imported from there because edge.config imports us.
    model_config = ConfigDict(extra="forbid", frozen=True)


class _SinkCommon(_SinkModel):
    """Fields every sink has: which records it takes, its queue and its retry schedule."""

    records: list[RecordType] = Field(
        default_factory=lambda: list(ALL_RECORDS),
        description="Record types this sink receives (prediction, event, health).",
    )
    queue_size: int = Field(
        1000, ge=1, le=1_000_000,
        description="Records the sink's queue holds; beyond it predictions are dropped first.",
    )
    retry_initial: float = Field(
        0.5, gt=0, le=60, description="First retry delay of a failed send (s); doubles per failure."
    )
    retry_max: float = Field(30.0, gt=0, le=3600, description="Cap of the retry delay (s).")
    failed_after: float = Field(
        30.0, gt=0,
        description="Seconds of consecutive failures after which the sink reports 'failed' "
        "instead of 'retrying' (it keeps retrying).",
    )

    @model_validator(mode="after")
    def _retry_order(self) -> "_SinkCommon":
        if self.retry_max < self.retry_initial:
            raise ValueError("retry_max: must be >= retry_initial")
        if not self.records:
            raise ValueError("records: must name at least one record type")
        return self


class JsonlSinkConfig(_SinkCommon):
    """Records as JSON lines in a file, rotated by size (``type: jsonl``)."""

    type: Literal["jsonl"] = Field(description="Sink kind.")
    path: str = Field(description="File to append to; missing folders are created (mode 0700).")
    max_bytes: int = Field(
        10 * 1024 * 1024, ge=1,
        description="Rotate before a line would make the file larger than this (bytes).",
    )
    backups: int = Field(
        5, ge=0, le=1000,
        description="Rotated files kept (file.1 newest ... file.N oldest); 0 keeps none.",
    )
    fsync_interval: float = Field(
        5.0, ge=0,
        description="Most seconds prediction lines wait for an fsync (event and health lines "
        "are fsynced one by one); 0 fsyncs every line.",
    )


class MqttTlsConfig(_SinkModel):
    """TLS towards the broker."""

    ca_file: str | None = Field(None, description="CA bundle (PEM); the system's when unset.")
    cert_file: str | None = Field(None, description="Client certificate (PEM) for mutual TLS.")
    key_file: str | None = Field(None, description="Private key of the client certificate.")
    insecure: bool = Field(
        False, description="Skip the broker hostname check (testing only; still encrypts)."
    )

    @model_validator(mode="after")
    def _key_needs_cert(self) -> "MqttTlsConfig":
        if self.key_file and not self.cert_file:
            raise ValueError("key_file: needs cert_file")
        return self


_TOPIC_PART = r"^[A-Za-z0-9_-]+$"  # also a Home Assistant node_id
_TOPIC_PREFIX = r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$"


class MqttSinkConfig(_SinkCommon):
    """An MQTT broker, with Home Assistant discovery (``type: mqtt``)."""

    type: Literal["mqtt"] = Field(description="Sink kind.")
    host: str = Field(description="Broker host name or address.")
    port: int = Field(1883, ge=1, le=65535, description="Broker port (8883 is usual with TLS).")
    client_id: str | None = Field(None, description="MQTT client id; default edge-DEVICE.")
    device: str = Field(
        "edge", pattern=_TOPIC_PART,
        description="Device id: a topic level and the Home Assistant device identifier.",
    )
    prefix: str = Field(
        "edge", pattern=_TOPIC_PREFIX, description="Topic prefix: PREFIX/DEVICE/STREAM/state."
    )
    qos: Literal[0, 1, 2] = Field(1, description="QoS of events and health records.")
    state_qos: Literal[0, 1, 2] = Field(0, description="QoS of the per-stream state messages.")
    state_interval: float = Field(
        1.0, ge=0, description="Least seconds between two state messages of one stream."
    )
    retain_state: bool = Field(True, description="Retain the state messages.")
    retain_availability: bool = Field(True, description="Retain online/offline availability.")
    keepalive: int = Field(30, ge=5, le=3600, description="MQTT keepalive (s).")
    reconnect_min: int = Field(1, ge=1, le=3600, description="First reconnect delay (s).")
    reconnect_max: int = Field(30, ge=1, le=3600, description="Cap of the reconnect delay (s).")
    ack_timeout: float = Field(
        5.0, gt=0, le=300,
        description="Seconds close() waits for the broker to acknowledge what was handed over.",
    )
    unacked_max: int = Field(
        1000, ge=1, le=100_000,
        description="QoS>0 messages handed to the MQTT client but not yet acknowledged; "
        "beyond it records wait in the sink's queue.",
    )
    username: str | None = Field(None, description="User name for the broker.")
    password_env: str | None = Field(None, description="Environment variable holding the password.")
    password_file: str | None = Field(None, description="File holding the password.")
    tls: MqttTlsConfig | None = Field(None, description="TLS settings (plain TCP when absent).")
    discovery: bool = Field(True, description="Publish Home Assistant MQTT discovery configs.")
    discovery_prefix: str = Field(
        "homeassistant", pattern=_TOPIC_PREFIX, description="Home Assistant discovery prefix."
    )
    streams: list[str] = Field(
        default_factory=list,
        description="Streams announced at connect; streams seen in records are added.",
    )
    classes: list[str] = Field(
        default_factory=list,
        description="Model classes announced as binary sensors at connect; classes seen in "
        "records are added.",
    )
    rules: list[str] = Field(
        default_factory=list,
        description="Rules announced as binary sensors at connect; rules seen are added.",
    )

    @model_validator(mode="after")
    def _credentials(self) -> "MqttSinkConfig":
        if self.password_env and self.password_file:
            raise ValueError("password_env: give password_env or password_file, not both")
        if (self.password_env or self.password_file) and not self.username:
            raise ValueError("username: a password needs a username")
        if self.reconnect_max < self.reconnect_min:
            raise ValueError("reconnect_max: must be >= reconnect_min")
        return self


class WebhookSinkConfig(_SinkCommon):
    """HTTP POST of each record as JSON (``type: webhook``)."""

    type: Literal["webhook"] = Field(description="Sink kind.")
    records: list[RecordType] = Field(
        default_factory=lambda: list(EVENTS_ONLY),
        description="Record types posted (event by default; add health).",
    )
    url: str = Field(description="Endpoint (http:// or https://).")
    timeout: float = Field(5.0, gt=0, le=300, description="Socket timeout of one POST (s).")
    headers: dict[str, str] = Field(
        default_factory=dict, description="Extra request headers with literal values."
    )
    headers_env: dict[str, str] = Field(
        default_factory=dict,
        description="Extra request headers whose values are read from these environment "
        "variables (for tokens: Authorization: EDGE_HOOK_TOKEN).",
    )
    ca_file: str | None = Field(
        None, description="CA bundle (PEM) for https; the system's if unset."
    )

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        if not re.match(r"^https?://[^/\s?#]+", url):
            raise ValueError("must be an http:// or https:// URL with a host")
        return url


SinkConfig = Annotated[
    Union[JsonlSinkConfig, MqttSinkConfig, WebhookSinkConfig],
    Field(discriminator="type"),
]
AnySinkConfig = Union[JsonlSinkConfig, MqttSinkConfig, WebhookSinkConfig]


def read_secret(where: str, env: str | None, file: str | None) -> str | None:
    """A secret from an environment variable or a file, or None; a missing one is a
    :class:`ConfigError` that names ``where`` and the source, never the value."""
    if env:
        value = os.environ.get(env)
        if not value:
            raise ConfigError(f"{where}: environment variable {env} is not set")
        return value
    if file:
        try:
            return Path(file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"{where}: {exc.strerror}: {file}") from None
    return None


# -- sinks ---------------------------------------------------------------------------------


class RecordDropped(Exception):
    """Raised by ``send`` for a record the sink will not deliver now by design (a prediction
    while the broker is away): counted as a drop of its kind, not retried."""


class RecordRejected(Exception):
    """Raised by ``send`` for a record that can never be delivered (the receiver refuses the
    record itself): counted as rejected, not retried."""


class SinkUnavailable(Exception):
    """Raised by ``send`` when the destination is away; the worker retries the record."""


class Sink(ABC):
    """One destination. Only its worker thread calls ``open``, ``send``, ``flush`` and ``close``.

    ``send`` returns once the record is delivered (or handed to a client library that owns
    its delivery from then on) and raises on failure; the worker retries the same record.
    """

    type_key: ClassVar[str] = ""

    def __init__(self, name: str, config: Any) -> None:
        self.name = name
        self.config = config
        self._wake: Callable[[], None] = lambda: None

    def bind_wakeup(self, wake: Callable[[], None]) -> None:
        """Let the sink cut the worker's retry wait short when it becomes ready again."""
        self._wake = wake

    def open(self) -> None:
        """Acquire resources (files, connections); may raise, and is then retried."""

    @abstractmethod
    def send(self, record: Record) -> None:
        """Deliver one record, or raise."""

    def flush(self) -> None:
        """Called when the queue runs empty: make buffered output durable."""

    def close(self, timeout_s: float) -> None:
        """Release resources, delivering what is buffered within ``timeout_s``."""

    def secrets(self) -> tuple[str, ...]:
        """Strings that must never appear in ``last_error``."""
        return ()

    def describe(self) -> dict[str, Any]:
        """Sink-specific counters and state, for stats."""
        return {}


# type key -> module that defines the sink class as ``SINK``
SINKS = {
    "jsonl": "edge.sinks.jsonl",
    "mqtt": "edge.sinks.mqtt",
    "webhook": "edge.sinks.webhook",
}


def build_sink(name: str, config: AnySinkConfig) -> Sink:
    """The sink registered under ``config.type``, constructed (secrets resolved, nothing
    opened yet); its module is imported only now."""
    module_name = SINKS.get(config.type)
    if module_name is None:
        raise ConfigError(f"sinks.{name}.type: unknown sink type {config.type!r}")
    module = importlib.import_module(module_name)
    sink_cls: type[Sink] = module.SINK
    return sink_cls(name, config)


def record_type(record: Record) -> str:
    return str(record.get("type", ""))


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def encode_record(record: Record) -> bytes:
    """One compact JSON document, UTF-8; NaN and infinities become null (JSON has none).

    JSON escapes newlines inside strings, so the result never contains a raw newline.
    """
    try:
        text = json.dumps(record, separators=(",", ":"), ensure_ascii=False, allow_nan=False,
                          default=str)
    except ValueError:
        text = json.dumps(_finite(record), separators=(",", ":"), ensure_ascii=False, default=str)
    return text.encode("utf-8")


def scrub(text: str, secrets: tuple[str, ...]) -> str:
    for s in secrets:
        if s:
            text = text.replace(s, "***")
    return text


# -- the queue: pure, no threads ---------------------------------------------------------


class DropPolicy(enum.Enum):
    """What a full sink queue gives up."""

    PREDICTIONS_FIRST = "predictions_first"
    """The oldest prediction goes first; events and health records are dropped (oldest first)
    only when the queue holds nothing else. A prediction is superseded by the next one within
    a hop; an event is a fact that happened once."""


class RecordQueue:
    """Bounded FIFO of records under :attr:`DropPolicy.PREDICTIONS_FIRST`. Not thread-safe.

    Predictions and the others sit in two deques stamped with one sequence, so the oldest
    prediction can be dropped in O(1) while ``pop`` still returns records in publish order.
    """

    policy = DropPolicy.PREDICTIONS_FIRST

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be >= 1")
        self.capacity = capacity
        self._seq = itertools.count()
        self._pred: deque[tuple[int, Record]] = deque()
        self._keep: deque[tuple[int, Record]] = deque()

    def __len__(self) -> int:
        return len(self._pred) + len(self._keep)

    def push(self, record: Record) -> str | None:
        """Append; return ``"prediction"`` or ``"event"`` when a record of that class was
        dropped to make room (possibly ``record`` itself), else None."""
        is_pred = record_type(record) == "prediction"
        dropped: str | None = None
        if len(self) >= self.capacity:
            if self._pred:
                self._pred.popleft()
                dropped = "prediction"
            elif is_pred:
                return "prediction"  # full of events: the newcomer is the one to give up
            else:
                self._keep.popleft()
                dropped = "event"
        (self._pred if is_pred else self._keep).append((next(self._seq), record))
        return dropped

    def pop(self) -> Record | None:
        if not self._pred and not self._keep:
            return None
        if not self._keep or (self._pred and self._pred[0][0] < self._keep[0][0]):
            return self._pred.popleft()[1]
        return self._keep.popleft()[1]

    def clear(self) -> tuple[int, int]:
        """Empty the queue; return (predictions, others) removed."""
        n = len(self._pred), len(self._keep)
        self._pred.clear()
        self._keep.clear()
        return n


def backoff_delay(failures: int, initial: float, cap: float) -> float:
    """Seconds to wait after the ``failures``-th consecutive failure (1, 2, ...)."""
    return float(min(cap, initial * 2.0 ** max(0, min(failures - 1, 60))))


# -- the worker: the thread shell around one sink ----------------------------------------

OK, RETRYING, FAILED, STOPPED = "ok", "retrying", "failed", "stopped"
StateCallback = Callable[[str, str, "str | None"], None]


class SinkWorker:
    """One sink on its own thread with its own bounded queue.

    ``publish`` never blocks beyond a short lock; ``stop(timeout_s)`` sends what it can within
    the timeout, counts the rest as ``abandoned`` and closes the sink. A send that raises is
    retried (same record, same order) after ``retry_initial * 2**k`` seconds, capped at
    ``retry_max``; while a failure streak lasts the state is ``retrying``, past
    ``failed_after`` seconds ``failed``. ``on_state(name, state, last_error)`` is called on
    each change of state, from the worker thread.
    """

    IDLE_FLUSH_S = 1.0  # how often an idle worker lets the sink make buffered output durable
    JOIN_GRACE_S = 0.1  # a send that started before the deadline may end a little after it

    def __init__(
        self,
        sink: Sink,
        config: AnySinkConfig,
        on_state: StateCallback | None = None,
    ) -> None:
        self.sink = sink
        self.name = sink.name
        self.config = config
        self._records = frozenset(config.records)
        self._on_state = on_state
        # _cond guards the queue, the counters, _state, _last_error, _stopping and _deadline;
        # the worker waits on it for records, for retry delays and for stop.
        self._cond = threading.Condition()
        self._queue = RecordQueue(config.queue_size)
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._deadline = math.inf
        self._state = OK
        self._last_error: str | None = None
        self._woken = False
        self._streak = 0  # consecutive failures (worker thread only)
        self._streak_t0 = 0.0
        self.sent = 0
        self.dropped_predictions = 0
        self.dropped_events = 0
        self.rejected = 0
        self.failures = 0
        self.retries = 0
        self.abandoned = 0
        sink.bind_wakeup(self._wakeup)

    # -- caller side ------------------------------------------------------------------

    def accepts(self, record: Record) -> bool:
        return record_type(record) in self._records

    def publish(self, record: Record) -> None:
        """Queue ``record`` if this sink takes its type; never waits on the sink.

        The record is serialized later on the worker thread: do not mutate it afterwards.
        """
        if record_type(record) not in self._records:
            return
        with self._cond:
            dropped = self._queue.push(record)
            if dropped == "prediction":
                self.dropped_predictions += 1
            elif dropped == "event":
                self.dropped_events += 1
            self._cond.notify()

    def start(self) -> None:
        """Start the thread; a no-op while it runs."""
        with self._cond:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stopping = False
            self._deadline = math.inf
            self._streak = 0
            if self._state == STOPPED:
                self._state = OK
            self._thread = threading.Thread(
                target=self._run, name=f"edge-sink-{self.name}", daemon=True
            )
            self._thread.start()

    @property
    def thread_alive(self) -> bool:
        t = self._thread
        return t is not None and t.is_alive()

    @property
    def should_run(self) -> bool:
        """Started and not asked to stop (a supervisor restarts a thread that died anyway)."""
        return self._thread is not None and not self._stopping

    def request_stop(self, deadline: float) -> None:
        """Ask the thread to drain until ``deadline`` (time.monotonic()) and then close."""
        with self._cond:
            self._stopping = True
            self._deadline = min(self._deadline, deadline)
            self._cond.notify_all()

    def join(self, deadline: float) -> bool:
        """Wait for the thread until ``deadline`` (plus :attr:`JOIN_GRACE_S` for it to close
        the sink and return); False when it is still running (a send stuck in a system call:
        the thread is a daemon and dies with the process)."""
        t = self._thread
        if t is None:
            return True
        t.join(max(0.0, deadline + self.JOIN_GRACE_S - time.monotonic()))
        if t.is_alive():
            log.warning("sink %s: did not stop in time (a send is stuck)", self.name)
            return False
        return True

    def stop(self, timeout_s: float = 1.0) -> bool:
        """Flush what can be sent within ``timeout_s``, then close; idempotent. Returns within
        ``timeout_s + JOIN_GRACE_S``."""
        deadline = time.monotonic() + timeout_s
        self.request_stop(deadline)
        return self.join(deadline)

    def stats(self) -> dict[str, Any]:
        with self._cond:
            st: dict[str, Any] = {
                "type": self.sink.type_key,
                "state": self._state,
                "sent": self.sent,
                "dropped_predictions": self.dropped_predictions,
                "dropped_events": self.dropped_events,
                "rejected": self.rejected,
                "failures": self.failures,
                "retries": self.retries,
                "abandoned": self.abandoned,
                "queue_depth": len(self._queue),
                "last_error": self._last_error,
            }
        try:
            st["detail"] = self.sink.describe()
        except Exception as exc:  # noqa: BLE001 - stats must not fail because a sink does
            st["detail"] = {"error": type(exc).__name__}
        return st

    # -- worker thread ----------------------------------------------------------------

    def _wakeup(self) -> None:
        with self._cond:
            self._woken = True
            self._cond.notify_all()

    def _set_state(self, state: str, error: str | None) -> None:
        with self._cond:
            changed = state != self._state
            self._state = state
            if error is not None:
                self._last_error = error
        if changed and self._on_state is not None:
            try:
                self._on_state(self.name, state, error)
            except Exception:  # noqa: BLE001 - an observer must not kill the worker
                log.exception("sink %s: state callback failed", self.name)

    def _wait(self, seconds: float) -> None:
        """Sleep ``seconds``, cut short by stop (to the deadline) or by the sink's wakeup."""
        with self._cond:
            end = time.monotonic() + seconds
            while not self._woken:
                limit = self._deadline if self._stopping else end
                left = min(end, limit) - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            self._woken = False

    def _next(self, dirty: bool) -> tuple[Record | None, bool]:
        """The next record, waiting for one; (None, flush_first) when idle or finished."""
        with self._cond:
            while True:
                if self._stopping and time.monotonic() >= self._deadline:
                    return None, False
                rec = self._queue.pop()
                if rec is not None:
                    return rec, False
                if self._stopping:
                    return None, False
                if dirty:
                    return None, True
                self._cond.wait(self.IDLE_FLUSH_S)
                if not len(self._queue) and not self._stopping:
                    return None, True

    def _describe(self, exc: BaseException) -> str:
        text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        return scrub(text, self.sink.secrets())[:500]

    def _run(self) -> None:
        opened = False
        held: Record | None = None  # the record being tried; retried until it goes
        dirty = False  # sent something since the last flush
        while True:
            try:
                if not opened:
                    # Opened before the first record arrives: an MQTT sink announces itself.
                    self.sink.open()
                    opened = True
                    self._recovered()
                if held is None:
                    held, flush = self._next(dirty)
                    if held is None:
                        if not flush:
                            break
                        self._guard(self.sink.flush)
                        dirty = False
                        continue
                self.sink.send(held)
            except RecordDropped as exc:
                with self._cond:
                    if record_type(held or {}) == "prediction":
                        self.dropped_predictions += 1
                    else:
                        self.dropped_events += 1
                log.debug("sink %s: dropped a %s: %s", self.name, record_type(held or {}), exc)
                held = None
                continue
            except RecordRejected as exc:
                msg = self._describe(exc)
                with self._cond:
                    self.rejected += 1
                    self._last_error = msg
                log.warning("sink %s: rejected a %s record: %s", self.name,
                            record_type(held or {}), msg)
                held = None
                continue
            except Exception as exc:  # noqa: BLE001 - a failing sink never stops the pipeline
                if self._failed(exc, "send" if opened else "open"):
                    break
                continue
            with self._cond:
                self.sent += 1
            dirty = True
            held = None
            self._recovered()
        with self._cond:
            preds, others = self._queue.clear()
            if held is not None:
                if record_type(held) == "prediction":
                    preds += 1
                else:
                    others += 1
            self.abandoned += preds + others
            left = self._deadline - time.monotonic()
        if preds + others:
            log.warning("sink %s: stopped with %d predictions and %d other records unsent",
                        self.name, preds, others)
        if opened:
            self._guard(lambda: self.sink.close(max(0.05, left)))
        self._set_state(STOPPED, None)

    def _failed(self, exc: BaseException, what: str) -> bool:
        """Count a failure, report the state, wait the backoff; True: give up (stopping and
        the next try would come after the deadline)."""
        msg = self._describe(exc)
        now = time.monotonic()
        if self._streak == 0:
            self._streak_t0 = now
            log.warning("sink %s: %s failed, retrying: %s", self.name, what, msg)
        self._streak += 1
        delay = backoff_delay(self._streak, self.config.retry_initial, self.config.retry_max)
        with self._cond:
            self.failures += 1
            give_up = self._stopping and now + delay >= self._deadline
        failed = now - self._streak_t0 >= self.config.failed_after
        self._set_state(FAILED if failed else RETRYING, msg)
        if give_up:
            return True
        self._wait(delay)
        with self._cond:
            self.retries += 1
        return False

    def _recovered(self) -> None:
        if self._streak:
            log.info("sink %s: delivering again after %d failures", self.name, self._streak)
            self._streak = 0
            self._set_state(OK, None)

    def _guard(self, fn: Callable[[], None]) -> None:
        try:
            fn()
        except Exception as exc:  # noqa: BLE001 - flush/close problems are reported, not fatal
            msg = self._describe(exc)
            with self._cond:
                self._last_error = msg
            log.warning("sink %s: %s", self.name, msg)


class SinkSet:
    """The workers of a ``sinks:`` mapping; fans each record out to the sinks that take it.

    Every sink is constructed (secrets resolved, config problems raised as
    :class:`ConfigError`) before any is started.
    """

    def __init__(
        self,
        configs: Mapping[str, AnySinkConfig],
        on_state: StateCallback | None = None,
    ) -> None:
        self._on_state = on_state
        # _lock guards _workers against reconfigure() running beside publish()/stats().
        self._lock = threading.Lock()
        self._workers: dict[str, SinkWorker] = self._build(configs)
        self._started = False

    def _build(self, configs: Mapping[str, AnySinkConfig]) -> dict[str, SinkWorker]:
        workers = {}
        for name, cfg in configs.items():
            if not re.match(r"^[A-Za-z0-9_.-]+$", name):
                raise ConfigError(f"sinks.{name}: a sink name is letters, digits, _ . -")
            workers[name] = SinkWorker(build_sink(name, cfg), cfg, self._on_state)
        return workers

    @property
    def names(self) -> list[str]:
        return list(self._workers)

    def workers(self) -> list[SinkWorker]:
        """The running workers (for a supervisor)."""
        return list(self._workers.values())

    def start(self) -> None:
        with self._lock:
            self._started = True
            for w in self._workers.values():
                w.start()

    def publish(self, record: Record) -> None:
        """Hand ``record`` to every sink that takes its type; never blocks on a sink."""
        for w in self._workers.values():  # a dict read; reconfigure swaps the dict whole
            w.publish(record)

    def stop(self, timeout_s: float = 1.5) -> bool:
        """Stop all sinks against one deadline; True when every worker finished in time."""
        with self._lock:
            self._started = False
            return _stop_all(list(self._workers.values()), timeout_s)

    def reconfigure(self, configs: Mapping[str, AnySinkConfig], timeout_s: float = 1.5) -> None:
        """Apply a new ``sinks:`` mapping (SIGHUP): unchanged sinks keep running with their
        queues, changed and removed ones are stopped (flushed within ``timeout_s``), new ones
        started. A config error raises before anything is changed."""
        with self._lock:
            old = self._workers
            keep = {n: w for n, w in old.items() if n in configs and configs[n] == w.config}
            fresh = self._build({n: c for n, c in configs.items() if n not in keep})
            # Records go to the new workers' queues at once; they start only after the old
            # ones closed, so two writers never share a file or a client id.
            self._workers = {n: keep[n] if n in keep else fresh[n] for n in configs}
            _stop_all([w for n, w in old.items() if n not in keep], timeout_s)
            if self._started:
                for w in fresh.values():
                    w.start()

    def stats(self) -> dict[str, dict[str, Any]]:
        """Per sink: state, counters, queue depth, last error (for /healthz and metrics)."""
        return {n: w.stats() for n, w in self._workers.items()}


def _stop_all(workers: list[SinkWorker], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    for w in workers:
        w.request_stop(deadline)
    return all([w.join(deadline) for w in workers])
