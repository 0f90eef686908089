"""The status endpoint: ``/healthz`` (JSON) and ``/metrics`` (Prometheus text format).

Binds 127.0.0.1 by default. Any other address requires a bearer token (from an environment
variable or a file, compared in constant time), so a device on a network never exposes its
state unasked. Metrics live in a registry of their own (not prometheus-client's global one):
counters and gauges that mirror the sources' own counters are read at scrape time by a
collector, histograms (data age, engine latency) are observed by the run loop, and events are
counted by rule and kind.
"""

from __future__ import annotations

import hmac
import logging
import threading
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from edge.errors import ConfigError
from edge.jsonout import dumps
from edge.status.config import HttpConfig

log = logging.getLogger(__name__)

LOOPBACK = ("127.0.0.1", "::1", "localhost")
AGE_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.0, 5.0)
LATENCY_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5)


class Metrics:
    """The run loop's metrics: observed per tick, plus a snapshot collector for counters."""

    def __init__(self, snapshot: Callable[[], dict[str, Any]]) -> None:
        self.registry = CollectorRegistry()
        self.data_age = Histogram(
            "edge_data_age_seconds", "Newest sample in the window to the prediction emitted.",
            ["stream", "modality"], buckets=AGE_BUCKETS, registry=self.registry,
        )
        self.engine_latency = Histogram(
            "edge_engine_latency_seconds", "One engine call (all streams of a tick).",
            buckets=LATENCY_BUCKETS, registry=self.registry,
        )
        self.events = Counter(
            "edge_events", "Decision events.", ["rule", "kind"], registry=self.registry
        )
        self.registry.register(_Snapshot(snapshot))

    def text(self) -> bytes:
        return generate_latest(self.registry)


class _Snapshot(Collector):
    """Counters and gauges read from the pipeline's own report at scrape time."""

    def __init__(self, snapshot: Callable[[], dict[str, Any]]) -> None:
        self.snapshot = snapshot

    def collect(self) -> Iterable[Metric]:
        s = self.snapshot()
        sources = s.get("sources", {})
        fams: list[Metric] = []
        g = GaugeMetricFamily("edge_source_fps", "Frames per second of a source.", labels=["source"])
        for n, v in sources.items():
            g.add_metric([n], float(v.get("fps") or 0.0))
        fams.append(g)
        for key, doc in (("drops", "Frames or blocks dropped."), ("gaps", "Gaps in the data."),
                         ("reconnects", "Reconnections."), ("overflows", "Audio input overflows.")):
            c = CounterMetricFamily(f"edge_source_{key}", doc, labels=["source"])
            for n, v in sources.items():
                c.add_metric([n], float(v.get(key) or 0))
            fams.append(c)
        skew = GaugeMetricFamily("edge_clock_skew_ppm", "Fitted device clock skew.", labels=["source"])
        for n, v in sources.items():
            if v.get("skew_ppm") is not None:
                skew.add_metric([n], float(v["skew_ppm"]))
        fams.append(skew)
        health = GaugeMetricFamily(
            "edge_source_health", "Source health: 0 ok, 1 degraded, 2 lost.", labels=["source"]
        )
        for n, h in s.get("health", {}).items():
            health.add_metric([n], float({"ok": 0, "degraded": 1, "lost": 2}[h["state"]]))
        fams.append(health)
        av = GaugeMetricFamily("edge_av_offset_ms", "Median A/V offset of a stream's windows.",
                               labels=["stream"])
        for n, st in s.get("streams", {}).items():
            if st.get("av_offset_ms"):
                av.add_metric([n], float(st["av_offset_ms"]["p50"]))
        fams.append(av)
        ticks = CounterMetricFamily("edge_ticks", "Ticks run, and skipped for lateness.",
                                    labels=["outcome"])
        ticks.add_metric(["run"], float(s.get("ticks", 0)))
        ticks.add_metric(["skipped"], float(s.get("skipped_ticks", 0)))
        budget = s.get("budget", {})
        ticks.add_metric(["late"], float(budget.get("late_windows", 0)))
        over = CounterMetricFamily("edge_predictions_over_budget",
                                   "Predictions emitted later than window.budget.")
        over.add_metric([], float(budget.get("over_budget", 0)))
        fams.append(over)
        fams.append(ticks)
        sinks = s.get("sinks", {})
        for key in ("sent", "failures", "retries", "rejected", "dropped_predictions",
                    "dropped_events", "abandoned"):  # one family per key, a sample per sink
            c = CounterMetricFamily(f"edge_sink_{key}", f"Sink records: {key}.", labels=["sink"])
            for name, st in sinks.items():
                if key in st:
                    c.add_metric([name], float(st[key]))
            fams.append(c)
        depth = GaugeMetricFamily("edge_sink_queue_depth", "Records waiting in a sink's queue.",
                                  labels=["sink"])
        for name, st in sinks.items():
            depth.add_metric([name], float(st.get("queue_depth", 0)))
        fams.append(depth)
        return fams


class StatusServer:
    """``/healthz`` and ``/metrics`` on a daemon thread; :meth:`stop` is bounded."""

    def __init__(self, config: HttpConfig, healthz: Callable[[], dict[str, Any]], metrics: Metrics) -> None:
        token = config.token()
        if config.host not in LOOPBACK and not token:
            raise ConfigError(
                f"http.host: {config.host} is not loopback; set http.token_env or http.token_file"
            )
        handler = _handler(healthz, metrics, token)
        try:
            self.server = ThreadingHTTPServer((config.host, config.port), handler)
        except OSError as exc:
            raise ConfigError(f"http: cannot listen on {config.host}:{config.port}: {exc.strerror}") from None
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self._thread = threading.Thread(target=self.server.serve_forever, name="edge-http", daemon=True)

    def start(self) -> None:
        if not self._thread.is_alive():
            self._thread.start()

    def stop(self) -> None:
        if self._thread.is_alive():
            self.server.shutdown()
        self.server.server_close()


def _handler(
    healthz: Callable[[], dict[str, Any]], metrics: Metrics, token: str | None
) -> type[BaseHTTPRequestHandler]:
    want = None if token is None else f"Bearer {token}".encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
            if want is not None:
                got = self.headers.get("Authorization", "").encode()
                if not hmac.compare_digest(got, want):
                    self._send(401, b'{"error": "unauthorized"}\n', "application/json")
                    return
            path = self.path.split("?")[0]
            if path == "/healthz":
                body = dumps(healthz()).encode() + b"\n"
                self._send(200, body, "application/json")
            elif path == "/metrics":
                self._send(200, metrics.text(), "text/plain; version=0.0.4; charset=utf-8")
            else:
                self._send(404, b'{"error": "not found"}\n', "application/json")

        def _send(self, code: int, body: bytes, ctype: str) -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            log.debug("http: " + format, *args)

    return Handler
