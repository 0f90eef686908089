"""The MQTT sink (paho-mqtt 2.x), with Home Assistant discovery.

Topics (``P`` = ``prefix``, ``D`` = ``device``, ``S`` = a stream)::

    P/D/availability       online (retained, on every connect) / offline (last will, and on close)
    P/D/S/state            {"t_end_ns", "states", "rules", "probs"}: at most 1 per state_interval
    P/D/S/event            each event record, QoS ``qos``
    P/D/health/SOURCE      each health record, QoS ``qos``, retained
    H/binary_sensor/D/S_class_C/config, H/binary_sensor/D/S_rule_R/config   (H = discovery_prefix)

Each model class is a binary sensor that is on while the class is committed (``states`` of the
prediction records), except the ``hide_classes`` (their retained configs are removed at every
connect); each rule is one that is on while the rule is active. Which ones: the
``streams``/``classes``/``rules`` of the sink's config, those the pipeline announces
(:meth:`MqttSink.announce`: every stream, model class and configured rule, at start and after
each reload) and any new one that shows up in the records. So Home Assistant knows every
sensor before it first turns on. Discovery configs are retained and sent on every connect (a
broker without persistence forgets them, and a reconnect may be to a restarted one) and when
one is added; a rule a reload removed gets an empty retained config, which removes it from
Home Assistant.

Delivery. paho's network thread connects, reconnects with ``reconnect_min..max`` delays and
keeps every QoS>0 message it was handed until the broker acknowledges it, resending on
reconnect in the order handed over. So ``send`` hands an event over only while connected
(otherwise it raises :class:`SinkUnavailable` and the worker keeps the event in its bounded
queue, retrying) and never hands the same event over twice: no loss while the broker is away,
no duplicate from us (QoS 1 itself may still duplicate when an acknowledgement is lost).
A prediction while disconnected is dropped (:class:`RecordDropped`, counted): the next one
supersedes it.

Order across a reconnect: paho calls ``on_connect`` *before* it resends what the last
connection left unacknowledged. ``send`` therefore waits until this connection's ``online``
message (published in ``on_connect``) is acknowledged; by then the resends are on the wire
ahead of anything new.

The password is read once (``password_env`` or ``password_file``) and only given to paho.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from edge import __version__
from edge.errors import ConfigError
from edge.files import read_secret
from edge.sinks.config import MqttSinkConfig
from edge.sinks.records import Record, encode_record, record_type
from edge.sinks.sink import RecordDropped, RecordRejected, Sink, SinkUnavailable

if TYPE_CHECKING:
    from paho.mqtt.client import Client, MQTTMessageInfo

log = logging.getLogger(__name__)

CLASS, RULE = "class", "rule"


def topic_part(name: str) -> str:
    """A name made safe as one topic level and a Home Assistant object id."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", name) or "_"


def state_payload(record: Record) -> bytes:
    """The per-stream state message of a prediction record."""
    return encode_record({
        "t_end_ns": record.get("t_end_ns"),
        "states": list(record.get("states") or []),
        "rules": list(record.get("rules") or []),
        "probs": dict(record.get("probs") or {}),
    })


def discovery_message(cfg: MqttSinkConfig, stream: str, kind: str, name: str) -> tuple[str, bytes]:
    """Topic and retained payload announcing one binary sensor to Home Assistant."""
    base = f"{cfg.prefix}/{cfg.device}"
    object_id = f"{topic_part(stream)}_{kind}_{topic_part(name)}"
    field = "states" if kind == CLASS else "rules"
    quoted = json.dumps(name)  # a JSON string is a valid Jinja string literal
    payload: dict[str, Any] = {
        "name": f"{stream} {name}",
        "unique_id": f"edge_{cfg.device}_{object_id}",
        "state_topic": f"{base}/{topic_part(stream)}/state",
        "value_template": f"{{{{ 'ON' if {quoted} in value_json.{field} else 'OFF' }}}}",
        "availability_topic": f"{base}/availability",
        "payload_available": "online",
        "payload_not_available": "offline",
        "device": {
            "identifiers": [f"edge_{cfg.device}"],
            "name": f"edge {cfg.device}",
            "model": "edge",
            "manufacturer": "edge",
            "sw_version": __version__,
        },
    }
    if kind == CLASS:
        payload["json_attributes_topic"] = payload["state_topic"]
        payload["json_attributes_template"] = (
            f"{{{{ {{'probability': value_json.probs.get({quoted})}} | tojson }}}}"
        )
    topic = f"{cfg.discovery_prefix}/binary_sensor/{cfg.device}/{object_id}/config"
    return topic, encode_record(payload)


def _acked(info: MQTTMessageInfo) -> bool:
    try:
        return bool(info.is_published())
    except ValueError:  # refused for a full queue: nothing will ever be acknowledged
        return True
    except RuntimeError:  # queued while disconnected: paho never updates its status
        return False


class MqttSink(Sink):
    """Publishes records to an MQTT broker; see the module docstring."""

    type_key = "mqtt"

    POLL_S = 0.005  # how often a send waiting for this connection's first ack looks again

    def __init__(
        self,
        name: str,
        config: MqttSinkConfig,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(name, config)
        self.cfg = config
        where = f"sinks.{name}.password_{'env' if config.password_env else 'file'}"
        self._password = read_secret(where, config.password_env, config.password_file)
        self._monotonic = monotonic
        self.base = f"{config.prefix}/{config.device}"
        self.availability_topic = f"{self.base}/availability"
        self._client: Client | None = None
        # _lock guards _client and everything below. It is never held while calling the paho
        # client: paho calls on_connect/on_disconnect holding its own locks, and those take
        # _lock. (A message info's own condition is a leaf lock and may be taken under it.)
        self._lock = threading.Lock()
        self._connected = False
        self._gate: MQTTMessageInfo | None = None  # this connection's "online" message
        self._streams: dict[str, None] = dict.fromkeys(config.streams)  # ordered sets
        self._classes: dict[str, None] = dict.fromkeys(config.classes)
        self._rules: dict[str, None] = dict.fromkeys(config.rules)
        self._announced: tuple[list[str], list[str]] = ([], [])  # the pipeline's classes, rules
        self._unannounce: list[tuple[str, str, str]] = []  # removed while disconnected
        # classes and rules a reload removed: records still in the queue (a rule's end event
        # given out after the reload) do not bring them back until the pipeline names them
        self._retired: tuple[set[str], set[str]] = (set(), set())
        self._pending: deque[MQTTMessageInfo] = deque()  # handed over, maybe not yet acked
        self._last_state: dict[str, float] = {}
        self._problem: str | None = None  # last refusal or disconnect reason, for describe()
        self.connects = 0
        self.disconnects = 0
        self.events_published = 0
        self.states_published = 0
        self.states_coalesced = 0
        self.discovery_published = 0
        self.discovery_removed = 0
        self.handed_while_offline = 0

    # -- lifecycle ----------------------------------------------------------------------

    def open(self) -> None:
        if self._client is not None:
            return
        try:
            from paho.mqtt.client import Client, MQTTv311
            from paho.mqtt.enums import CallbackAPIVersion
        except ImportError:
            raise ConfigError(
                f"sinks.{self.name}: the mqtt sink needs paho-mqtt>=2.0 (pip install paho-mqtt)"
            ) from None
        cfg = self.cfg
        client = Client(
            CallbackAPIVersion.VERSION2,
            client_id=cfg.client_id or f"edge-{cfg.device}",
            clean_session=True,
            protocol=MQTTv311,
        )
        # paho's own logger is left off: while the broker is away it logs an ERROR on every
        # reconnect attempt. The callbacks below log each change once.
        client.will_set(self.availability_topic, "offline", qos=1, retain=cfg.retain_availability)
        if cfg.username:
            client.username_pw_set(cfg.username, self._password)
        if cfg.tls is not None:
            client.tls_set(
                ca_certs=cfg.tls.ca_file, certfile=cfg.tls.cert_file, keyfile=cfg.tls.key_file
            )
            if cfg.tls.insecure:
                client.tls_insecure_set(True)
        client.reconnect_delay_set(cfg.reconnect_min, cfg.reconnect_max)
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        # Asynchronous: a broker that is down at start-up must not hold the worker; paho's
        # thread keeps trying.
        client.connect_async(cfg.host, cfg.port, cfg.keepalive)
        with self._lock:
            self._client = client  # before loop_start: on_connect checks it
        client.loop_start()

    def close(self, timeout_s: float) -> None:
        client = self._client
        if client is None:
            return
        deadline = self._monotonic() + min(timeout_s, self.cfg.ack_timeout)
        self._wait_acked(deadline)
        with self._lock:
            connected = self._connected
        if connected:
            # The will is only sent on an unclean end: say offline ourselves.
            info = client.publish(self.availability_topic, "offline", qos=1,
                                  retain=self.cfg.retain_availability)
            with self._lock:
                self._pending.append(info)
            self._wait_acked(deadline)
        left = self._unacked()
        if left:
            log.warning("sink %s: closing with %d messages the broker has not acknowledged",
                        self.name, left)
        client.disconnect()
        # loop_stop() joins paho's thread without a timeout, and that thread may sit in a
        # connect() to an unreachable host: join it from a helper we can give up on.
        stopper = threading.Thread(target=client.loop_stop, name="edge-mqtt-stop", daemon=True)
        stopper.start()
        stopper.join(max(0.05, deadline - self._monotonic()))
        with self._lock:
            self._connected = False
            self._gate = None
            self._client = None

    def _wait_acked(self, deadline: float) -> None:
        while self._unacked() and self._monotonic() < deadline:
            with self._lock:
                if not self._connected:
                    return
            time.sleep(self.POLL_S)

    def _unacked(self) -> int:
        with self._lock:
            while self._pending and _acked(self._pending[0]):
                self._pending.popleft()
            return sum(1 for i in self._pending if not _acked(i))

    # -- paho callbacks (paho's network thread) ------------------------------------------

    def _on_connect(self, client: Client, userdata: Any, flags: Any, reason: Any,
                    properties: Any) -> None:
        try:
            with self._lock:
                if self._client is not client:
                    return  # a client being closed
            if reason.is_failure:
                with self._lock:
                    first = self._problem != f"refused: {reason}"
                    self._problem = f"refused: {reason}"
                if first:
                    log.warning("sink %s: broker %s:%d refused the connection: %s",
                                self.name, self.cfg.host, self.cfg.port, reason)
                return
            with self._lock:
                self._connected = True
                self._problem = None
                self.connects += 1
                entities = self._entities(self._streams, self._classes, self._rules)
                gone = [e for e in self._unannounce if e not in entities]
                if self.cfg.discovery:  # a config retained from before they were hidden
                    gone += [(s, CLASS, c) for s in self._streams for c in self.cfg.hide_classes]
                self._unannounce = []
            if gone:
                self._announce(client, gone, remove=True)
            self._announce(client, entities)
            gate = client.publish(self.availability_topic, "online", qos=1,
                                  retain=self.cfg.retain_availability)
            with self._lock:
                self._gate = gate
            log.info("sink %s: connected to %s:%d", self.name, self.cfg.host, self.cfg.port)
            self._wake()
        except Exception:  # noqa: BLE001 - an exception here would end paho's thread
            log.exception("sink %s: on_connect failed", self.name)

    def _on_connect_fail(self, client: Client, userdata: Any) -> None:
        try:
            with self._lock:
                first = self._problem != "cannot connect"
                self._problem = "cannot connect"
            if first:
                log.warning("sink %s: cannot connect to %s:%d; retrying", self.name,
                            self.cfg.host, self.cfg.port)
        except Exception:  # noqa: BLE001 - an exception here would end paho's thread
            log.exception("sink %s: on_connect_fail failed", self.name)

    def _on_disconnect(self, client: Client, userdata: Any, flags: Any, reason: Any,
                       properties: Any) -> None:
        try:
            with self._lock:
                was = self._connected
                self._connected = False
                self._gate = None
                if was:
                    self.disconnects += 1
                    self._problem = f"disconnected: {reason}"
            if was:
                log.warning("sink %s: lost the broker (%s); reconnecting", self.name, reason)
        except Exception:  # noqa: BLE001 - an exception here would end paho's thread
            log.exception("sink %s: on_disconnect failed", self.name)

    # -- discovery ------------------------------------------------------------------------

    def _entities(
        self, streams: Iterable[str], classes: Iterable[str], rules: Iterable[str]
    ) -> list[tuple[str, str, str]]:
        if not self.cfg.discovery:
            return []
        hidden = set(self.cfg.hide_classes)
        classes, rules = [c for c in classes if c not in hidden], list(rules)
        return [(s, CLASS, c) for s in streams for c in classes] + [
            (s, RULE, r) for s in streams for r in rules
        ]

    def announce(self, streams: list[str], classes: list[str], rules: list[str]) -> None:
        """The pipeline's streams, model classes and rules (see the module docstring); safe
        from any thread. Before the connection they wait for on_connect."""
        with self._lock:
            old_c, old_r = self._announced
            self._announced = (list(classes), list(rules))
            gone_c = [c for c in old_c if c not in classes and c not in self.cfg.classes]
            gone_r = [r for r in old_r if r not in rules and r not in self.cfg.rules]
            for c in gone_c:
                self._classes.pop(c, None)
            for r in gone_r:
                self._rules.pop(r, None)
            self._retired = ((self._retired[0] | set(gone_c)) - set(classes),
                             (self._retired[1] | set(gone_r)) - set(rules))
            gone = self._entities(self._streams, gone_c, gone_r)
            client = self._client if self._connected else None
            if client is None:  # a broker with persistence keeps them: removed on connect
                self._unannounce += gone
        if gone and client is not None:
            self._announce(client, gone, remove=True)
        self._learn(streams, classes, rules)

    def _learn(self, streams: Iterable[str], classes: Iterable[str], rules: Iterable[str],
               seen: bool = False) -> None:
        """Note new names; announce the entities they add if connected (else on_connect
        announces everything). Names ``seen`` in records are not those a reload removed."""
        with self._lock:
            if seen:
                classes = [c for c in classes if c not in self._retired[0]]
                rules = [r for r in rules if r not in self._retired[1]]
            new: list[tuple[str, str, str]] = []
            for stream in dict.fromkeys(streams):
                if stream not in self._streams:
                    self._streams[stream] = None
                    new += self._entities([stream], self._classes, self._rules)
            fresh_c = [c for c in dict.fromkeys(classes) if c not in self._classes]
            fresh_r = [r for r in dict.fromkeys(rules) if r not in self._rules]
            self._classes.update(dict.fromkeys(fresh_c))
            self._rules.update(dict.fromkeys(fresh_r))
            new += self._entities(self._streams, fresh_c, fresh_r)
            client = self._client if self._connected else None
        if new and client is not None:
            self._announce(client, new)

    def _announce(self, client: Client, entities: list[tuple[str, str, str]],
                  remove: bool = False) -> None:
        for stream, kind, name in entities:
            topic, payload = discovery_message(self.cfg, stream, kind, name)
            # an empty retained message deletes the retained config, and the sensor with it
            client.publish(topic, b"" if remove else payload, qos=1, retain=True)
        with self._lock:
            if remove:
                self.discovery_removed += len(entities)
            else:
                self.discovery_published += len(entities)

    # -- sending (worker thread) -----------------------------------------------------------

    def _ready(self, wait_s: float) -> Client | None:
        """The client once this connection's ``online`` is acknowledged, waiting up to
        ``wait_s`` for that; None when not connected."""
        end = self._monotonic() + wait_s
        while True:
            with self._lock:
                client, gate = (self._client, self._gate) if self._connected else (None, None)
            if client is None:
                return None
            if gate is not None and _acked(gate):
                return client
            if self._monotonic() >= end:
                return None
            time.sleep(self.POLL_S)

    def send(self, record: Record) -> None:
        kind = record_type(record)
        stream = record.get("stream")
        stream = str(stream) if stream is not None else None
        if kind == "prediction":
            self._learn([stream] if stream is not None else [],
                        [*(record.get("probs") or {}), *(record.get("states") or [])],
                        record.get("rules") or [], seen=True)
            self._send_state(stream or "default", record)
        elif kind == "event":
            self._learn([stream] if stream is not None else [], [],
                        [str(record["rule"])] if record.get("rule") else [], seen=True)
            topic = f"{self.base}/{topic_part(stream or 'default')}/event"
            self._send_reliable(topic, encode_record(record), retain=False)
            self.events_published += 1
        elif kind == "health":
            source = topic_part(str(record.get("source") or "pipeline"))
            self._send_reliable(f"{self.base}/health/{source}", encode_record(record), retain=True)
        else:
            raise RecordRejected(f"no topic for record type {kind!r}")

    def _send_state(self, stream: str, record: Record) -> None:
        now = self._monotonic()
        last = self._last_state.get(stream)
        if last is not None and now - last < self.cfg.state_interval:
            self.states_coalesced += 1  # the next prediction carries newer news
            return
        client = self._ready(self.cfg.ack_timeout)
        if client is None:
            raise RecordDropped("not connected to the broker")
        info = client.publish(f"{self.base}/{topic_part(stream)}/state", state_payload(record),
                              qos=self.cfg.state_qos, retain=self.cfg.retain_state)
        if info.rc != 0 and not (self.cfg.state_qos > 0 and self._is_no_conn(info.rc)):
            raise RecordDropped(f"publish failed (rc {int(info.rc)})")
        self._last_state[stream] = now
        self.states_published += 1

    @staticmethod
    def _is_no_conn(rc: Any) -> bool:
        from paho.mqtt.enums import MQTTErrorCode

        return bool(rc == MQTTErrorCode.MQTT_ERR_NO_CONN)

    def _send_reliable(self, topic: str, payload: bytes, retain: bool) -> None:
        # Right after a reconnect the worker is woken at once; the wait covers the one round
        # trip until the "online" message is acknowledged.
        client = self._ready(self.cfg.ack_timeout)
        if client is None:
            raise SinkUnavailable("not connected to the broker")
        if self._unacked() >= self.cfg.unacked_max:
            raise SinkUnavailable(f"{self.cfg.unacked_max} messages await acknowledgement")
        info = client.publish(topic, payload, qos=self.cfg.qos, retain=retain)
        if info.rc == 0:
            if self.cfg.qos > 0:
                with self._lock:
                    self._pending.append(info)
            return
        if self.cfg.qos > 0 and self._is_no_conn(info.rc):
            # Lost the connection since _ready: paho holds the message and sends it after the
            # reconnect. Handing it over again would duplicate it.
            self.handed_while_offline += 1
            return
        raise SinkUnavailable(f"publish failed (rc {int(info.rc)})")

    def describe(self) -> dict[str, Any]:
        unacked = self._unacked()
        with self._lock:
            return {
                "broker": f"{self.cfg.host}:{self.cfg.port}",
                "connected": self._connected,
                "problem": self._problem,
                "connects": self.connects,
                "disconnects": self.disconnects,
                "events_published": self.events_published,
                "states_published": self.states_published,
                "states_coalesced": self.states_coalesced,
                "discovery_published": self.discovery_published,
                "discovery_removed": self.discovery_removed,
                "unacked": unacked,
                "handed_while_offline": self.handed_while_offline,
                "streams": list(self._streams),
                "classes": list(self._classes),
                "rules": list(self._rules),
            }


SINK = MqttSink
