"""Sink configuration: a pydantic model per sink type, the :data:`SinkConfig` union that a
config's ``sinks:`` mapping is validated against.

The config models of every sink type live here (not beside each sink) so that the main config
can validate ``sinks:`` without importing paho-mqtt or any other sink dependency.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from edge.sinks.records import ALL_RECORDS, EVENTS_ONLY, RecordType


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
    hide_classes: list[str] = Field(
        default_factory=list,
        description="Model classes never announced as sensors (an alarm class that hears any "
        "beeping, whose rule is the answer); their retained configs are removed at connect. "
        "The state message still carries them.",
    )

    @model_validator(mode="after")
    def _credentials(self) -> "MqttSinkConfig":
        both = sorted(set(self.classes) & set(self.hide_classes))
        if both:
            raise ValueError(f"hide_classes: {', '.join(both)} also in classes")
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

