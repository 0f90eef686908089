"""The webhook sink: each record POSTed as a JSON body to one URL.

One connection per POST (``Connection: close``): a kept-alive connection that the server has
closed while idle fails the *next* POST after the body may have been read, and a POST cannot be
repeated safely. Events are rare enough that the handshake does not matter.

A 2xx answer is delivery. 400, 413, 415 and 422 say the record itself is unacceptable: it is
rejected (counted) rather than retried forever. Any other answer or a network error is
retried by the worker with its backoff, in order, so the receiver sees every event once and in
order unless it answered an error *after* acting on a POST.

Header values from ``headers_env`` are secrets: read once at construction, sent, never logged;
error messages name the host and port, never the path or query (webhook URLs often carry
tokens) or a header.
"""

from __future__ import annotations

import http.client
import ssl
from typing import Any
from urllib.parse import urlsplit

from edge import __version__
from edge.errors import ConfigError
from edge.files import read_secret
from edge.sinks.config import WebhookSinkConfig
from edge.sinks.records import Record, encode_record
from edge.sinks.sink import RecordRejected, Sink, SinkUnavailable

REJECT = frozenset({400, 413, 415, 422})


class WebhookSink(Sink):
    """POSTs records to ``config.url``."""

    type_key = "webhook"

    def __init__(self, name: str, config: WebhookSinkConfig) -> None:
        super().__init__(name, config)
        self.cfg = config
        url = urlsplit(config.url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ConfigError(f"sinks.{name}.url: not an http(s) URL")
        if url.username or url.password:
            raise ConfigError(
                f"sinks.{name}.url: no credentials in the URL; use headers_env for a token"
            )
        self._https = url.scheme == "https"
        self._host = url.hostname
        try:
            self._port = url.port or (443 if self._https else 80)
        except ValueError:
            raise ConfigError(f"sinks.{name}.url: bad port") from None
        self._target = (url.path or "/") + (f"?{url.query}" if url.query else "")
        self._where = f"{self._host}:{self._port}"
        headers = {
            "Content-Type": "application/json",
            "User-Agent": f"edge/{__version__}",
            "Connection": "close",
        }
        headers.update(config.headers)
        secret_values = []
        for header, env in config.headers_env.items():
            value = read_secret(f"sinks.{name}.headers_env.{header}", env, None)
            assert value is not None
            if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):  # http.client would refuse
                raise ConfigError(f"sinks.{name}.headers_env.{header}: {env} holds a control "
                                  "character (a line end?)")  # and show it in its error
            headers[header] = value
            secret_values.append(value)
        self._headers = headers
        self._secrets = tuple(secret_values) + ((self._target,) if len(self._target) > 1 else ())
        self._context: ssl.SSLContext | None = None
        if self._https:
            try:
                self._context = ssl.create_default_context(cafile=config.ca_file)
            except (OSError, ssl.SSLError) as exc:
                raise ConfigError(f"sinks.{name}.ca_file: cannot load: {exc}") from None
        self.posted = 0
        self.last_status: int | None = None

    def _connection(self) -> http.client.HTTPConnection:
        if self._https:
            return http.client.HTTPSConnection(
                self._host, self._port, timeout=self.cfg.timeout, context=self._context
            )
        return http.client.HTTPConnection(self._host, self._port, timeout=self.cfg.timeout)

    def send(self, record: Record) -> None:
        body = encode_record(record)
        conn = self._connection()
        try:
            conn.request("POST", self._target, body=body, headers=self._headers)
            resp = conn.getresponse()
            resp.read(65536)  # let the server finish; the answer is not used
            status = resp.status
        except (OSError, http.client.HTTPException) as exc:
            # The exception text never holds the path or the headers; keep only its kind and
            # the OS reason.
            reason = getattr(exc, "strerror", None) or type(exc).__name__
            raise SinkUnavailable(f"POST to {self._where} failed: {reason}") from None
        finally:
            conn.close()
        self.last_status = status
        if 200 <= status < 300:
            self.posted += 1
            return
        if status in REJECT:
            raise RecordRejected(f"{self._where} refused the record: HTTP {status}")
        raise SinkUnavailable(f"{self._where} answered HTTP {status}")

    def secrets(self) -> tuple[str, ...]:
        return self._secrets

    def describe(self) -> dict[str, Any]:
        return {"endpoint": self._where, "posted": self.posted, "last_status": self.last_status}


SINK = WebhookSink
