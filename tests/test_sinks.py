"""Output sinks: the queue policy, the worker's retries and bounds, JSONL files, webhooks, and
MQTT against a real mosquitto on loopback (killed and restarted mid-run)."""

from __future__ import annotations

import getpass
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from edge.capture.base import Backoff
from edge.errors import ConfigError
from edge.sinks.config import JsonlSinkConfig, MqttSinkConfig, SinkConfig, WebhookSinkConfig
from edge.sinks.record_queue import RecordQueue
from edge.sinks.sink import RecordDropped, RecordRejected, Sink
from edge.sinks.sinkset import SinkSet
from edge.sinks.worker import SinkWorker
from edge.sinks.jsonl import JsonlSink, rotated_name
from edge.sinks.mqtt import MqttSink, discovery_message
from edge.sinks.records import encode_record
from tests.conftest import _listening, free_port, need, wait_for

ROOT = Path(__file__).resolve().parent.parent
ADAPTER: TypeAdapter[Any] = TypeAdapter(SinkConfig)
# publish() only appends under a lock: it must stay far below any network timeout (seconds).
# 10 ms leaves room for one GIL switch interval (5 ms) on a busy two-core machine.
PUBLISH_BUDGET_S = 0.010


def cfg(**kw: Any) -> Any:
    return ADAPTER.validate_python(kw)


def event(i: int, stream: str = "s1", rule: str = "sleep_alert") -> dict[str, Any]:
    return {
        "type": "event", "stream": stream, "event": "start", "rule": rule, "t_ns": 1000 + i,
        "started_ns": 1000, "duration_s": 0.0, "peak": 0.9,
        "evidence": {"eyes_closed": "video"}, "flagged": False,
    }


def prediction(i: int, stream: str = "s1", on: bool = True) -> dict[str, Any]:
    return {
        "type": "prediction", "stream": stream, "t_end_ns": 1000 + i,
        "probs": {"eyes_closed": 0.8 if on else 0.1, "yawn": 0.05},
        "active": ["eyes_closed"] if on else [],
        "states": ["eyes_closed"] if on else [],
        "rules": ["sleep_alert"] if on else [],
    }


def health(i: int) -> dict[str, Any]:
    return {"type": "health", "source": "cam", "state": "degraded", "reasons": ["dark"],
            "t_ns": i}


def read_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(ln) for ln in path.read_text(encoding="utf-8").splitlines()]


# -- configuration ---------------------------------------------------------------------------


def test_sink_config_is_chosen_by_type_and_unknown_keys_are_errors() -> None:
    assert isinstance(cfg(type="jsonl", path="/tmp/x.jsonl"), JsonlSinkConfig)
    assert isinstance(cfg(type="mqtt", host="localhost"), MqttSinkConfig)
    hook = cfg(type="webhook", url="http://127.0.0.1:9/hook")
    assert isinstance(hook, WebhookSinkConfig)
    assert hook.records == ["event"]  # a webhook takes events unless told otherwise
    with pytest.raises(ValidationError, match="extra"):
        cfg(type="jsonl", path="x", colour="red")
    with pytest.raises(ValidationError):
        cfg(type="kafka", path="x")
    with pytest.raises(ValidationError, match="not both"):
        cfg(type="mqtt", host="h", username="u", password_env="A", password_file="/f")
    with pytest.raises(ValidationError):
        cfg(type="mqtt", host="h", device="has/slash")


def test_every_sink_config_field_has_a_description() -> None:
    from edge.sinks.config import MqttTlsConfig

    for model in (JsonlSinkConfig, MqttSinkConfig, MqttTlsConfig, WebhookSinkConfig):
        missing = [n for n, f in model.model_fields.items() if not f.description]
        assert missing == [], f"{model.__name__}: {missing}"


# -- the queue and the backoff (pure) ------------------------------------------------------------


def test_full_queue_drops_the_oldest_prediction_before_any_event() -> None:
    q = RecordQueue(3)
    assert q.push(prediction(1)) is None
    assert q.push(event(1)) is None
    assert q.push(prediction(2)) is None
    assert q.push(prediction(3)) == "prediction"  # p1 goes
    assert q.push(event(2)) == "prediction"  # p2 goes
    assert q.push(event(3)) == "prediction"  # p3 goes: now full of events
    assert q.push(prediction(4)) == "prediction"  # the newcomer itself is given up
    assert q.push(event(4)) == "event"  # only now an event goes, the oldest
    assert [q.pop()["t_ns"] for _ in range(3)] == [1002, 1003, 1004]  # type: ignore[index]
    assert q.pop() is None


def test_queue_pops_predictions_and_events_in_publish_order() -> None:
    q = RecordQueue(10)
    recs = [prediction(1), event(1), event(2), prediction(2), health(7), prediction(3)]
    for r in recs:
        q.push(r)
    assert [q.pop() for _ in recs] == recs


def test_a_queue_takes_older_records_ahead_of_its_own_within_its_policy() -> None:
    q = RecordQueue(3)
    q.push(event(5))
    q.push(prediction(6))
    assert q.prepend([event(1), prediction(2)]) == (1, 0)  # four for three: a prediction goes
    assert q.drain() == [event(1), event(5), prediction(6)] and len(q) == 0


def test_backoff_doubles_from_initial_up_to_the_cap() -> None:
    backoff = Backoff(0.5, 3.0)  # the sinks' retries wait delay_s(failures - 1)
    assert [backoff.delay_s(k - 1) for k in (1, 2, 3, 4, 5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert backoff.delay_s(10_000 - 1) == 3.0


def test_encoded_records_are_one_line_of_strict_json() -> None:
    line = encode_record({"type": "event", "note": "a\nb", "peak": float("nan")})
    assert b"\n" not in line
    assert json.loads(line) == {"type": "event", "note": "a\nb", "peak": None}


# -- the worker, with fake sinks ------------------------------------------------------------------


class FakeSink(Sink):
    """Records what it is sent; fails the first ``fail_first`` calls, or hangs, or is slow."""

    type_key = "fake"

    def __init__(self, fail_first: int = 0, hang: threading.Event | None = None,
                 delay_s: float = 0.0, error: str = "boom") -> None:
        super().__init__("fake", None)
        self.fail_first = fail_first
        self.hang = hang
        self.delay_s = delay_s
        self.error = error
        self.calls = 0
        self.got: list[dict[str, Any]] = []
        self.closed = False

    def send(self, record: Any) -> None:
        self.calls += 1
        if self.hang is not None:
            self.hang.wait()
        if self.delay_s:
            time.sleep(self.delay_s)
        if self.calls <= self.fail_first:
            raise ConnectionError(self.error)
        self.got.append(dict(record))

    def close(self, timeout_s: float) -> None:
        self.closed = True

    def secrets(self) -> tuple[str, ...]:
        return ("hunter2",)


def worker(sink: Sink, **kw: Any) -> SinkWorker:
    base = {"type": "jsonl", "path": "unused", "retry_initial": 0.01, "retry_max": 0.05}
    base.update(kw)
    return SinkWorker(sink, cfg(**base))


def test_publish_never_waits_on_a_hanging_send_and_counts_drops_by_policy() -> None:
    release = threading.Event()
    sink = FakeSink(hang=release)
    w = worker(sink, queue_size=50)
    w.start()
    w.publish(event(-1))
    try:
        assert wait_for(lambda: sink.calls == 1, 2)  # that record is stuck in send
        worst = 0.0
        for i in range(500):
            t0 = time.perf_counter()
            w.publish(prediction(i))
            if i % 25 == 0:
                w.publish(event(i))
            worst = max(worst, time.perf_counter() - t0)
        assert worst < PUBLISH_BUDGET_S
        st = w.stats()
        assert st["queue_depth"] == 50
        assert st["dropped_predictions"] == 500 - (50 - 20)  # 20 events kept, 30 newest preds
        assert st["dropped_events"] == 0
    finally:
        release.set()
        assert w.stop(2.0)
    assert [r["t_ns"] for r in sink.got if r["type"] == "event"] == [999] + [
        1000 + i for i in range(0, 500, 25)
    ]


def test_failing_sends_are_retried_with_backoff_then_delivered_in_order() -> None:
    sink = FakeSink(fail_first=3)
    w = worker(sink)
    states: list[str] = []
    w._on_state = lambda name, state, err: states.append(state)
    w.start()
    for i in range(5):
        w.publish(event(i))
    assert wait_for(lambda: len(sink.got) == 5, 3)
    assert [r["t_ns"] for r in sink.got] == [1000, 1001, 1002, 1003, 1004]
    assert wait_for(lambda: w.stats()["sent"] == 5, 3)  # counted after send() returns
    st = w.stats()
    assert (st["sent"], st["failures"], st["retries"]) == (5, 3, 3)
    assert st["state"] == "ok"
    assert st["last_error"] == "ConnectionError: boom"
    assert states == ["retrying", "ok"]
    assert w.stop(1.0)
    assert sink.closed and w.stats()["state"] == "stopped"


def test_a_sink_failing_longer_than_failed_after_reports_failed_and_keeps_retrying() -> None:
    sink = FakeSink(fail_first=10**9)
    w = worker(sink, failed_after=0.1, retry_max=0.02)
    w.start()
    w.publish(event(1))
    assert wait_for(lambda: w.stats()["state"] == "failed", 3)
    n = sink.calls
    assert wait_for(lambda: sink.calls > n + 2, 2)
    assert w.stop(0.5)
    st = w.stats()
    assert st["abandoned"] == 1 and st["sent"] == 0 and st["failures"] >= 4


def test_a_worker_told_to_stop_while_waiting_to_retry_does_not_send_again() -> None:
    """Failing with a 10 s backoff, told to stop with 0.3 s to go: no further try (it would
    start past the deadline, keep the thread and skip the sink's close); the held record is
    counted as abandoned."""
    sink = FakeSink(fail_first=100)
    w = worker(sink, retry_initial=10.0, retry_max=10.0)
    w.start()
    w.publish(event(1))
    assert wait_for(lambda: sink.calls == 1, 2)
    assert w.stop(0.3)
    assert sink.calls == 1 and sink.closed and w.stats()["abandoned"] == 1


def test_a_worker_stuck_past_its_deadline_hands_its_backlog_over_when_it_ends() -> None:
    """A send hangs through the stop's deadline (join gives up): when it returns, the records
    still queued go to the worker replacing it, not lost; that one takes only the record
    types its config takes."""
    release = threading.Event()
    stuck = worker(FakeSink(hang=release))
    successor = worker(FakeSink(), records=["event"])
    stuck.start()
    stuck.publish(event(1))
    assert wait_for(lambda: stuck.sink.calls == 1, 2)  # type: ignore[attr-defined]
    for r in (event(2), prediction(3), event(4)):
        stuck.publish(r)
    stuck.request_stop(time.monotonic() + 0.1, successor)
    assert not stuck.join(time.monotonic() + 0.2)
    release.set()
    assert stuck.join(time.monotonic() + 2.0)
    successor.start()
    assert wait_for(lambda: len(successor.sink.got) == 2, 2)  # type: ignore[attr-defined]
    assert [r["t_ns"] for r in successor.sink.got] == [1002, 1004]  # type: ignore[attr-defined]
    assert stuck.stats()["abandoned"] == 0
    successor.stop(1.0)


def test_last_error_never_shows_a_secret() -> None:
    sink = FakeSink(fail_first=1, error="auth failed for password hunter2")
    w = worker(sink)
    w.start()
    w.publish(event(1))
    assert wait_for(lambda: len(sink.got) == 1, 2)
    w.stop(1.0)
    assert w.stats()["last_error"] == "ConnectionError: auth failed for password ***"


def test_a_secret_with_a_line_end_or_not_utf8_is_a_config_error_that_never_shows_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A token read with its line end (``export TOK=$(cat file)`` keeps a CR) would make every
    POST fail with the token in the error; a password file that is no text would stop the
    daemon on SIGHUP: both are config errors naming where, not what."""
    from edge.sinks.webhook import WebhookSink

    monkeypatch.setenv("EDGE_TEST_TOK", "Bearer s3cr3t-token\r")
    with pytest.raises(ConfigError, match="EDGE_TEST_TOK holds a control character") as err:
        WebhookSink("w", cfg(type="webhook", url="http://127.0.0.1:9/x",
                             headers_env={"Authorization": "EDGE_TEST_TOK"}))
    assert "s3cr3t" not in str(err.value)
    (tmp_path / "pw").write_bytes(b"\xff\xfepass")
    with pytest.raises(ConfigError, match="not UTF-8 text"):
        MqttSink("m", cfg(type="mqtt", host="h", username="u", password_file=str(tmp_path / "pw")))


def test_dropped_and_rejected_records_are_counted_and_not_retried() -> None:
    class Picky(FakeSink):
        def send(self, record: Any) -> None:
            self.calls += 1
            if record["type"] == "prediction":
                raise RecordDropped("offline")
            if record["t_ns"] == 1001:
                raise RecordRejected("malformed")
            self.got.append(dict(record))

    sink = Picky()
    w = worker(sink)
    w.start()
    for r in (prediction(1), event(1), event(2), event(3)):
        w.publish(r)
    assert wait_for(lambda: sink.calls == 4, 2)
    w.stop(1.0)
    st = w.stats()
    assert (st["dropped_predictions"], st["rejected"], st["sent"], st["failures"]) == (1, 1, 2, 0)
    assert [r["t_ns"] for r in sink.got] == [1002, 1003]


def test_stop_sends_what_it_can_within_the_timeout_and_counts_the_rest() -> None:
    sink = FakeSink(delay_s=0.02)
    w = worker(sink)
    w.start()
    for i in range(100):
        w.publish(event(i))
    t0 = time.monotonic()
    assert w.stop(0.3)
    took = time.monotonic() - t0
    st = w.stats()
    assert took < 0.6
    assert st["sent"] + st["abandoned"] == 100
    assert 3 <= st["sent"] < 100
    assert st["queue_depth"] == 0


def test_stop_is_bounded_even_when_a_send_never_returns() -> None:
    never = threading.Event()
    sink = FakeSink(hang=never)
    w = worker(sink)
    w.start()
    w.publish(event(1))
    assert wait_for(lambda: sink.calls == 1, 2)
    t0 = time.monotonic()
    assert w.stop(0.2) is False
    assert time.monotonic() - t0 < 0.5
    never.set()  # let the thread end


def test_start_and_stop_are_idempotent() -> None:
    sink = FakeSink()
    w = worker(sink)
    assert w.stop(0.1)  # never started
    w.start()
    w.start()
    w.publish(event(1))
    assert wait_for(lambda: len(sink.got) == 1, 2)
    assert w.stop(1.0)
    assert w.stop(1.0)
    assert w.stats()["state"] == "stopped"


# -- JSONL ----------------------------------------------------------------------------------------


def fixed(i: int) -> dict[str, Any]:
    """An event whose line is the same length for i in 10..99."""
    return {"type": "event", "i": i}


LINE = len(encode_record(fixed(10))) + 1


def jsonl(path: Path, **kw: Any) -> JsonlSink:
    sink = JsonlSink("log", cfg(type="jsonl", path=str(path), **kw))
    sink.open()
    return sink


def test_jsonl_rotates_before_a_line_would_pass_max_bytes(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    sink = jsonl(path, max_bytes=3 * LINE, backups=2)
    for i in range(10, 20):
        sink.send(fixed(i))
    sink.close(1.0)
    # exactly three lines fit; lines 10-12 were rotated out past .2
    assert [r["i"] for r in read_lines(path)] == [19]
    assert [r["i"] for r in read_lines(rotated_name(path, 1))] == [16, 17, 18]
    assert [r["i"] for r in read_lines(rotated_name(path, 2))] == [13, 14, 15]
    assert not rotated_name(path, 3).exists()
    assert path.stat().st_size == LINE and rotated_name(path, 1).stat().st_size == 3 * LINE
    assert sink.rotations == 3

    # One byte less and only two lines fit.
    path2 = tmp_path / "two.jsonl"
    sink = jsonl(path2, max_bytes=3 * LINE - 1, backups=1)
    for i in range(10, 15):
        sink.send(fixed(i))
    sink.close(1.0)
    assert [r["i"] for r in read_lines(path2)] == [14]
    assert [r["i"] for r in read_lines(rotated_name(path2, 1))] == [12, 13]


def test_jsonl_line_longer_than_max_bytes_gets_a_file_of_its_own(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    sink = jsonl(path, max_bytes=LINE, backups=3)
    sink.send(fixed(10))
    sink.send({"type": "event", "blob": "x" * 300})
    sink.send(fixed(11))
    sink.close(1.0)
    assert [r["i"] for r in read_lines(path)] == [11]
    assert read_lines(rotated_name(path, 1))[0]["blob"] == "x" * 300
    assert [r["i"] for r in read_lines(rotated_name(path, 2))] == [10]


def test_jsonl_with_no_backups_keeps_only_the_current_file(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    sink = jsonl(path, max_bytes=2 * LINE, backups=0)
    for i in range(10, 15):
        sink.send(fixed(i))
    sink.close(1.0)
    assert [r["i"] for r in read_lines(path)] == [14]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl"]


def test_jsonl_cuts_a_torn_last_line_when_it_reopens(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    good = encode_record(event(1)) + b"\n" + encode_record(event(2)) + b"\n"
    path.write_bytes(good + b'{"type":"event","str')
    sink = jsonl(path)
    assert path.read_bytes() == good
    assert sink.repaired_bytes == len(b'{"type":"event","str')
    sink.send(event(3))
    sink.close(1.0)
    assert [r["t_ns"] for r in read_lines(path)] == [1001, 1002, 1003]

    # A power cut can leave zeros past the last line instead.
    path.write_bytes(good + b"\0" * 100)
    sink = jsonl(path)
    sink.close(1.0)
    assert path.read_bytes() == good

    # A file that is nothing but a torn line becomes empty.
    path.write_bytes(b'{"ty')
    jsonl(path).close(1.0)
    assert path.read_bytes() == b""


_WRITER = """
import sys
from edge.sinks.config import JsonlSinkConfig
from edge.sinks.jsonl import JsonlSink
sink = JsonlSink("w", JsonlSinkConfig(type="jsonl", path=sys.argv[1], fsync_interval=60,
                                      max_bytes=1 << 20, backups=1))
sink.open()
print("ready", flush=True)
i = 0
while True:
    sink.send({"type": "prediction", "i": i, "pad": "p" * 7000})
    i += 1
"""


def test_jsonl_after_sigkill_mid_write_has_only_whole_lines(tmp_path: Path) -> None:
    path = tmp_path / "crash.jsonl"
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(path)], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        time.sleep(0.3)  # lines of 7 kB span page boundaries: a kill can land mid-line
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(5)
        if proc.stdout is not None:
            proc.stdout.close()
    sink = jsonl(path)  # reopening is where a torn tail would be cut
    sink.close(1.0)
    # rotation (1 MiB, one backup) keeps the disk use small; the kill may follow one closely
    older = rotated_name(path, 1)
    data = (older.read_bytes() if older.exists() else b"") + path.read_bytes()
    assert data.endswith(b"\n")
    rows = [json.loads(ln) for ln in data.splitlines()]
    assert len(rows) > 10
    first = rows[0]["i"]
    assert [r["i"] for r in rows] == list(range(first, first + len(rows)))


def test_jsonl_file_is_0600_and_created_folders_0700(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "out.jsonl"
    sink = jsonl(path)
    sink.send(event(1))
    sink.close(1.0)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "a").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "a" / "b").stat().st_mode) == 0o700


def test_jsonl_fsyncs_each_event_and_batches_predictions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    syncs: list[int] = []
    real = os.fdatasync
    monkeypatch.setattr(os, "fdatasync", lambda fd: (syncs.append(fd), real(fd))[1])
    now = [100.0]
    sink = JsonlSink("log", cfg(type="jsonl", path=str(tmp_path / "o.jsonl"), fsync_interval=5),
                     monotonic=lambda: now[0])
    sink.open()
    for i in range(3):
        sink.send(prediction(i))
    assert len(syncs) == 0  # predictions wait for the interval
    sink.send(event(1))
    assert len(syncs) == 1  # an event is durable before send returns
    sink.send(health(1))
    assert len(syncs) == 2
    sink.send(prediction(4))
    sink.flush()
    assert len(syncs) == 2
    now[0] += 5
    sink.flush()
    assert len(syncs) == 3  # the batch is synced once the interval has passed
    sink.send(prediction(5))
    sink.close(1.0)
    assert len(syncs) == 4  # and on close


def test_sinkset_fans_records_out_by_type_and_reports_stats(tmp_path: Path) -> None:
    sinks = SinkSet({
        "all": cfg(type="jsonl", path=str(tmp_path / "all.jsonl")),
        "events": cfg(type="jsonl", path=str(tmp_path / "ev.jsonl"), records=["event"]),
    })
    sinks.start()
    for r in (prediction(1), event(1), health(1), event(2)):
        sinks.publish(r)
    assert sinks.stop(2.0)
    assert [r["type"] for r in read_lines(tmp_path / "all.jsonl")] == [
        "prediction", "event", "health", "event"]
    assert [r["t_ns"] for r in read_lines(tmp_path / "ev.jsonl")] == [1001, 1002]
    st = sinks.stats()
    assert st["all"]["sent"] == 4 and st["events"]["sent"] == 2
    assert st["all"]["state"] == "stopped" and st["all"]["detail"]["lines"] == 4


def test_reconfigure_keeps_unchanged_sinks_and_replaces_changed_ones(tmp_path: Path) -> None:
    a = cfg(type="jsonl", path=str(tmp_path / "a.jsonl"))
    sinks = SinkSet({"a": a, "b": cfg(type="jsonl", path=str(tmp_path / "b.jsonl"))})
    sinks.start()
    sinks.publish(event(1))
    before = sinks._workers["a"]
    sinks.reconfigure({"a": a, "c": cfg(type="jsonl", path=str(tmp_path / "c.jsonl"))})
    assert sinks._workers["a"] is before and sinks.names == ["a", "c"]
    sinks.publish(event(2))
    assert sinks.stop(2.0)
    assert [r["t_ns"] for r in read_lines(tmp_path / "a.jsonl")] == [1001, 1002]
    assert [r["t_ns"] for r in read_lines(tmp_path / "b.jsonl")] == [1001]
    assert [r["t_ns"] for r in read_lines(tmp_path / "c.jsonl")] == [1002]


def test_a_sink_whose_config_a_reload_changes_keeps_what_it_had_not_sent() -> None:
    """A webhook down with 5 events queued; a reload fixes its URL (a config change): the 5
    go to the new sink ahead of the next event, in order, none counted abandoned."""
    hook = HookServer([])
    down = cfg(type="webhook", url=f"http://127.0.0.1:{free_port()}/x", retry_initial=0.05,
               retry_max=0.1)
    sinks = SinkSet({"w": down})
    sinks.start()
    for i in range(5):
        sinks.publish(event(i))
    assert wait_for(lambda: sinks.stats()["w"]["failures"] >= 1, 3)
    old = sinks._workers["w"]
    sinks.reconfigure({"w": down.model_copy(update={"url": f"http://127.0.0.1:{hook.port}/x"})},
                     timeout_s=0.3)
    sinks.publish(event(5))
    assert wait_for(lambda: len(hook.bodies) == 6, 5), hook.bodies
    assert [b["t_ns"] for b in hook.bodies] == [1000 + i for i in range(6)]
    assert old.stats()["abandoned"] == 0
    assert sinks.stop(2.0)
    hook.close()


# -- webhook --------------------------------------------------------------------------------------


class HookServer:
    """A stdlib HTTP server on 127.0.0.1 that answers ``fail`` codes first, then 200."""

    def __init__(self, fail: list[int]) -> None:
        self.fail = list(fail)
        self.bodies: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.attempts = 0
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (the stdlib's name)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hook.attempts += 1
                code = hook.fail.pop(0) if hook.fail else 200
                if code == 200:
                    hook.bodies.append(json.loads(body))
                    hook.headers.append(dict(self.headers))
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hook_server(request: pytest.FixtureRequest) -> Iterator[HookServer]:
    server = HookServer(getattr(request, "param", [503, 503]))
    yield server
    server.close()


def test_webhook_retries_failed_posts_and_delivers_each_event_once_in_order(
    hook_server: HookServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EDGE_TEST_HOOK_TOKEN", "Bearer s3cret-token")
    sinks = SinkSet({"hook": cfg(
        type="webhook", url=f"http://127.0.0.1:{hook_server.port}/hooks/edge?k=1",
        headers={"X-Device": "cab"}, headers_env={"Authorization": "EDGE_TEST_HOOK_TOKEN"},
        retry_initial=0.05, retry_max=0.2, timeout=2,
    )})
    sinks.start()
    for i in range(5):
        sinks.publish(event(i))
        sinks.publish(prediction(i))  # not taken: a webhook takes events by default
    assert wait_for(lambda: len(hook_server.bodies) == 5, 5)
    assert sinks.stop(2.0)
    assert [b["t_ns"] for b in hook_server.bodies] == [1000, 1001, 1002, 1003, 1004]
    assert hook_server.bodies[0] == event(0)
    assert hook_server.attempts == 7  # two refused, five accepted
    assert hook_server.headers[0]["Authorization"] == "Bearer s3cret-token"
    assert hook_server.headers[0]["X-Device"] == "cab"
    st = sinks.stats()["hook"]
    assert (st["sent"], st["failures"], st["retries"]) == (5, 2, 2)
    assert st["last_error"] == f"SinkUnavailable: 127.0.0.1:{hook_server.port} answered HTTP 503"
    assert "s3cret" not in json.dumps(st)


@pytest.mark.parametrize("hook_server", [[400]], indirect=True)
def test_webhook_drops_a_record_the_server_calls_malformed_and_goes_on(
    hook_server: HookServer,
) -> None:
    sinks = SinkSet({"hook": cfg(type="webhook", url=f"http://127.0.0.1:{hook_server.port}/",
                                 records=["event", "health"])})
    sinks.start()
    sinks.publish(event(1))
    sinks.publish(health(2))
    assert wait_for(lambda: len(hook_server.bodies) == 1, 5)
    sinks.stop(1.0)
    assert hook_server.bodies == [health(2)]
    st = sinks.stats()["hook"]
    assert (st["rejected"], st["sent"], st["failures"]) == (1, 1, 0)


def test_webhook_to_a_closed_port_is_retried_without_blocking_publish() -> None:
    port = free_port()
    sinks = SinkSet({"hook": cfg(type="webhook", url=f"http://127.0.0.1:{port}/x",
                                 retry_initial=0.02, retry_max=0.05)})
    sinks.start()
    t0 = time.perf_counter()
    for i in range(50):
        sinks.publish(event(i))
    assert time.perf_counter() - t0 < 0.05
    assert wait_for(lambda: sinks.stats()["hook"]["failures"] >= 3, 3)
    st = sinks.stats()["hook"]
    assert st["state"] == "retrying" and st["sent"] == 0 and st["queue_depth"] >= 49
    assert st["last_error"].startswith(f"SinkUnavailable: POST to 127.0.0.1:{port} failed")
    sinks.stop(0.3)
    assert sinks.stats()["hook"]["abandoned"] == 50


def test_webhook_header_from_a_missing_variable_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("EDGE_TEST_NOPE", raising=False)
    with pytest.raises(ConfigError, match=r"sinks\.hook\.headers_env\.Authorization: "
                                          r"environment variable EDGE_TEST_NOPE is not set"):
        SinkSet({"hook": cfg(type="webhook", url="http://127.0.0.1:9/",
                             headers_env={"Authorization": "EDGE_TEST_NOPE"})})


# -- MQTT without a broker ------------------------------------------------------------------------


def test_discovery_announces_a_class_and_a_rule_as_binary_sensors() -> None:
    c = cfg(type="mqtt", host="h", device="cab")
    topic, payload = discovery_message(c, "s1", "class", "eyes_closed")
    assert topic == "homeassistant/binary_sensor/cab/s1_class_eyes_closed/config"
    doc = json.loads(payload)
    assert doc["state_topic"] == "edge/cab/s1/state"
    assert doc["availability_topic"] == "edge/cab/availability"
    assert doc["unique_id"] == "edge_cab_s1_class_eyes_closed"
    assert doc["device"]["identifiers"] == ["edge_cab"]
    topic, payload = discovery_message(c, "s1", "rule", "sleep_alert")
    assert topic == "homeassistant/binary_sensor/cab/s1_rule_sleep_alert/config"
    assert '"sleep_alert" in value_json.rules' in json.loads(payload)["value_template"]


def test_discovery_templates_turn_on_and_off_with_the_state_message() -> None:
    jinja2 = pytest.importorskip("jinja2")
    from edge.sinks.mqtt import state_payload

    c = cfg(type="mqtt", host="h", device="cab")
    env = jinja2.Environment()
    for kind, name in (("class", "eyes_closed"), ("rule", "sleep_alert")):
        doc = json.loads(discovery_message(c, "s1", kind, name)[1])
        tpl = env.from_string(doc["value_template"])
        for on in (True, False):
            value = json.loads(state_payload(prediction(1, on=on)))
            assert tpl.render(value_json=value) == ("ON" if on else "OFF")
    doc = json.loads(discovery_message(c, "s1", "class", "eyes_closed")[1])
    attrs = env.from_string(doc["json_attributes_template"]).render(
        value_json=json.loads(state_payload(prediction(1))))
    assert json.loads(attrs) == {"probability": 0.8}


def test_mqtt_announced_names_are_kept_for_connect_and_a_removed_rule_is_dropped() -> None:
    sink = MqttSink("m", cfg(type="mqtt", host="h", streams=["s0"], rules=["pinned"]))
    sink.announce(["s1"], ["eyes_closed", "yawn"], ["sleep", "microsleep"])
    d = sink.describe()  # not connected: on_connect announces all of these
    assert d["streams"] == ["s0", "s1"] and d["classes"] == ["eyes_closed", "yawn"]
    assert d["rules"] == ["pinned", "sleep", "microsleep"]
    sink.announce(["s1"], ["eyes_closed", "yawn"], ["sleep", "pinned"])  # a reload
    assert sink.describe()["rules"] == ["pinned", "sleep"]  # the config's own rule stays
    sink.announce(["s1"], ["eyes_closed", "yawn"], ["sleep"])
    assert sink.describe()["rules"] == ["pinned", "sleep"]
    # records still queued at the reload (the removed rule's end, given out on the next tick)
    # do not bring it back; the pipeline naming it again does
    sink._learn(["s1"], ["yawn"], ["microsleep", "sleep"], seen=True)
    assert sink.describe()["rules"] == ["pinned", "sleep"]
    sink.announce(["s1"], ["eyes_closed", "yawn"], ["sleep", "microsleep"])
    assert sink.describe()["rules"] == ["pinned", "sleep", "microsleep"]
    sink._learn(["s1"], [], ["brand_new"], seen=True)  # a name never removed is learnt
    assert sink.describe()["rules"][-1] == "brand_new"


def test_mqtt_password_comes_from_the_environment_and_never_shows(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("EDGE_TEST_MQTT_PW", "pa55word")
    sink = MqttSink("m", cfg(type="mqtt", host="h", username="u", password_env="EDGE_TEST_MQTT_PW"))
    assert sink._password == "pa55word"
    assert "pa55word" not in json.dumps(sink.describe())
    (tmp_path / "pw").write_text("filepass\n")
    sink = MqttSink("m", cfg(type="mqtt", host="h", username="u",
                             password_file=str(tmp_path / "pw")))
    assert sink._password == "filepass"
    monkeypatch.delenv("EDGE_TEST_MQTT_PW")
    with pytest.raises(ConfigError, match="EDGE_TEST_MQTT_PW is not set"):
        MqttSink("m", cfg(type="mqtt", host="h", username="u", password_env="EDGE_TEST_MQTT_PW"))


def test_mqtt_with_no_broker_keeps_events_queued_and_never_blocks_publish() -> None:
    port = free_port()  # nothing listens there
    sinks = SinkSet({"m": cfg(type="mqtt", host="127.0.0.1", port=port, queue_size=20,
                              retry_initial=0.02, retry_max=0.05)})
    for i in range(40):  # 10 events, 30 predictions, room for 20
        sinks.publish(event(i) if i % 4 == 0 else prediction(i))
    assert sinks.stats()["m"]["dropped_predictions"] == 20
    sinks.start()
    assert wait_for(lambda: sinks.stats()["m"]["failures"] >= 2, 3)
    worst = 0.0
    for i in range(100):
        t0 = time.perf_counter()
        sinks.publish(prediction(100 + i))
        worst = max(worst, time.perf_counter() - t0)
    assert worst < PUBLISH_BUDGET_S
    st = sinks.stats()["m"]
    # the oldest event is held for retry; the other nine wait in the queue
    assert st["sent"] == 0 and st["dropped_events"] == 0 and st["queue_depth"] == 20
    assert st["dropped_predictions"] == 20 + 99
    assert st["last_error"] == "SinkUnavailable: not connected to the broker"
    t0 = time.monotonic()
    sinks.stop(0.5)
    assert time.monotonic() - t0 < 1.0
    assert sinks.stats()["m"]["abandoned"] == 21


# -- MQTT against mosquitto -----------------------------------------------------------------------


def mosquitto_exe() -> str:
    # Debian installs the broker in /usr/sbin, which a user's PATH may lack.
    found = shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if os.access("/usr/sbin/mosquitto", os.X_OK) else None
    )
    return found or need("mosquitto")


class Broker:
    """mosquitto on a free loopback port, from a generated config; killable and restartable.

    A restart can be *gated*: anonymous clients (the sink) are refused until :meth:`open_gate`,
    while the test's ``watcher`` user gets in, so the watcher is subscribed again before the
    sink can publish anything.
    """

    def __init__(self, folder: Path) -> None:
        self.exe = mosquitto_exe()
        self.folder = folder
        self.port = free_port()
        self.conf = folder / "mosquitto.conf"
        self.passwd = folder / "passwd"
        subprocess.run([need("mosquitto_passwd"), "-c", "-b", str(self.passwd), "watcher", "pw"],
                       check=True, capture_output=True, timeout=10)
        self.passwd.chmod(0o600)
        self.proc: subprocess.Popen[bytes] | None = None

    def _write(self, anonymous: bool) -> None:
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\n"
            f"allow_anonymous {'true' if anonymous else 'false'}\n"
            f"password_file {self.passwd}\n"
            f"user {getpass.getuser()}\n"  # as root it would switch to 'mosquitto' otherwise
        )

    def start(self, gated: bool = False) -> None:
        self._write(anonymous=not gated)
        log = open(self.folder / "mosquitto.log", "ab")
        self.proc = subprocess.Popen([self.exe, "-c", str(self.conf)], stdout=log, stderr=log,
                                     stdin=subprocess.DEVNULL)
        log.close()
        if not wait_for(lambda: _listening(self.port), 5):
            raise RuntimeError("mosquitto did not start listening")

    def open_gate(self) -> None:
        assert self.proc is not None
        self._write(anonymous=True)
        self.proc.send_signal(signal.SIGHUP)

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(5)
            self.proc = None


class Watcher:
    """A paho subscriber to everything the sink publishes; resubscribes on every connect."""

    def __init__(self, port: int) -> None:
        from paho.mqtt.client import Client
        from paho.mqtt.enums import CallbackAPIVersion

        self.lock = threading.Lock()
        self.msgs: list[tuple[str, bytes, bool]] = []
        self.subscribed = 0
        c = Client(CallbackAPIVersion.VERSION2, client_id="watcher")
        c.username_pw_set("watcher", "pw")
        c.reconnect_delay_set(1, 1)
        c.on_connect = lambda cl, ud, fl, rc, pr: cl.subscribe(
            [("edge/#", 1), ("homeassistant/#", 1)])
        c.on_subscribe = self._on_subscribe
        c.on_message = self._on_message
        c.connect("127.0.0.1", port, keepalive=5)
        c.loop_start()
        self.client = c

    def _on_subscribe(self, *args: Any) -> None:
        with self.lock:
            self.subscribed += 1

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        with self.lock:
            self.msgs.append((msg.topic, msg.payload, bool(msg.retain)))

    def on(self, topic: str) -> list[bytes]:
        with self.lock:
            return [p for t, p, _ in self.msgs if t == topic]

    def events(self) -> list[int]:
        return [json.loads(p)["t_ns"] for p in self.on("edge/cab/s1/event")]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    b = Broker(tmp_path)
    b.start()
    yield b
    b.kill()


def mqtt_sinks(port: int, **kw: Any) -> SinkSet:
    conf = dict(type="mqtt", host="127.0.0.1", port=port, device="cab", streams=["s1"],
                classes=["eyes_closed"], rules=["sleep_alert"], state_interval=0.2,
                retry_initial=0.05, retry_max=0.2, reconnect_min=1, reconnect_max=1, keepalive=5)
    conf.update(kw)
    return SinkSet({"mqtt": cfg(**conf)})


@pytest.mark.system
def test_mqtt_announces_discovery_availability_states_and_events(broker: Broker) -> None:
    watcher = Watcher(broker.port)
    assert wait_for(lambda: watcher.subscribed >= 1, 5)
    sinks = mqtt_sinks(broker.port)
    sinks.start()
    try:
        assert wait_for(lambda: watcher.on("edge/cab/availability") == [b"online"], 5)
        for i in range(6):
            sinks.publish(prediction(i))
            time.sleep(0.05)
        sinks.publish(event(1))
        assert wait_for(lambda: watcher.events() == [1001], 5)
        # 6 predictions over ~0.3 s at most 1 per 0.2 s: two or three states
        assert wait_for(lambda: len(watcher.on("edge/cab/s1/state")) >= 2, 2)
        states = [json.loads(p) for p in watcher.on("edge/cab/s1/state")]
        assert len(states) <= 3
        assert states[0] == {"t_end_ns": 1000, "states": ["eyes_closed"],
                             "rules": ["sleep_alert"], "probs": {"eyes_closed": 0.8, "yawn": 0.05}}
        assert json.loads(watcher.on("edge/cab/s1/event")[0]) == event(1)
        # 'yawn' was only seen in the records: announced too
        yawn = "homeassistant/binary_sensor/cab/s1_class_yawn/config"
        assert wait_for(lambda: len(watcher.on(yawn)) == 1, 2)
        assert sinks.stats()["mqtt"]["detail"]["classes"] == ["eyes_closed", "yawn"]

        # A client that comes later gets the discovery configs and availability as retained.
        sub = subprocess.run(
            [need("mosquitto_sub"), "-h", "127.0.0.1", "-p", str(broker.port), "-v",
             "--retained-only", "-W", "1", "-t", "homeassistant/#", "-t", "edge/cab/availability"],
            capture_output=True, text=True, timeout=10,
        )
        retained = dict(ln.split(" ", 1) for ln in sub.stdout.splitlines())
        cls = json.loads(retained["homeassistant/binary_sensor/cab/s1_class_eyes_closed/config"])
        rule = json.loads(retained["homeassistant/binary_sensor/cab/s1_rule_sleep_alert/config"])
        assert cls["state_topic"] == rule["state_topic"] == "edge/cab/s1/state"
        assert '"eyes_closed" in value_json.states' in cls["value_template"]
        assert '"sleep_alert" in value_json.rules' in rule["value_template"]
        assert yawn in retained
        assert retained["edge/cab/availability"] == "online"

        assert sinks.stop(2.0)
        # A clean stop says offline itself (the will is only for an unclean end).
        assert wait_for(lambda: watcher.on("edge/cab/availability")[-1:] == [b"offline"], 3)
    finally:
        sinks.stop(2.0)
        watcher.close()
    st = sinks.stats()["mqtt"]
    assert st["sent"] == 7 and st["failures"] == 0 and st["dropped_events"] == 0


@pytest.mark.system
def test_mqtt_hidden_classes_are_never_sensors_and_lose_a_config_retained_before(
    broker: Broker,
) -> None:
    """An alarm class hears any beeping; with ``hide_classes`` only its rule is a sensor. A
    config retained from a run before it was hidden is removed at connect."""
    yawn = "homeassistant/binary_sensor/cab/s1_class_yawn/config"
    watcher = Watcher(broker.port)
    assert wait_for(lambda: watcher.subscribed >= 1, 5)

    def retained() -> dict[str, str]:
        sub = subprocess.run(
            [need("mosquitto_sub"), "-h", "127.0.0.1", "-p", str(broker.port), "-v",
             "--retained-only", "-W", "1", "-t", "homeassistant/#"],
            capture_output=True, text=True, timeout=10,
        )
        return dict(ln.split(" ", 1) for ln in sub.stdout.splitlines())

    try:
        for hide in ([], ["yawn"]):
            sinks = mqtt_sinks(broker.port, hide_classes=hide)
            sinks.start()
            assert wait_for(lambda: sinks.stats()["mqtt"]["detail"]["connected"], 5)
            sinks.publish(prediction(0))  # 'yawn' in its probabilities
            assert wait_for(lambda: len(watcher.on("edge/cab/s1/state")) >= 1, 5)
            time.sleep(0.3)
            assert sinks.stop(2.0)
            if not hide:
                assert yawn in retained()
        assert watcher.on(yawn)[1:] == [b""] and watcher.on(yawn)[0]  # announced, removed
        kept = retained()
        assert yawn not in kept
        assert "homeassistant/binary_sensor/cab/s1_class_eyes_closed/config" in kept
        assert "homeassistant/binary_sensor/cab/s1_rule_sleep_alert/config" in kept
    finally:
        watcher.close()
    with pytest.raises(ValidationError, match="hide_classes: eyes_closed also in classes"):
        cfg(type="mqtt", host="h", classes=["eyes_closed"], hide_classes=["eyes_closed"])


@pytest.mark.system
def test_mqtt_delivers_every_event_published_while_the_broker_was_down(broker: Broker) -> None:
    watcher = Watcher(broker.port)
    assert wait_for(lambda: watcher.subscribed >= 1, 5)
    sinks = mqtt_sinks(broker.port, queue_size=40)
    sinks.start()
    try:
        assert wait_for(lambda: watcher.on("edge/cab/availability") == [b"online"], 5)
        for i in range(5):
            sinks.publish(event(i))
        assert wait_for(lambda: watcher.events() == [1000 + i for i in range(5)], 5)

        broker.kill()
        took: list[float] = []
        for i in range(5, 30):  # 25 events and 50 predictions over ~1.5 s without a broker
            for rec in (event(i), prediction(2 * i), prediction(2 * i + 1)):
                t0 = time.perf_counter()
                sinks.publish(rec)
                took.append(time.perf_counter() - t0)
            time.sleep(0.02)
        assert wait_for(lambda: not sinks.stats()["mqtt"]["detail"]["connected"], 5)
        down = sinks.stats()["mqtt"]
        assert down["state"] in ("retrying", "failed") and down["failures"] >= 1

        subscribed = watcher.subscribed
        broker.start(gated=True)  # the watcher gets in first; the sink is refused
        assert wait_for(lambda: watcher.subscribed > subscribed, 5)
        assert watcher.events() == [1000 + i for i in range(5)]
        broker.open_gate()
        expected = [1000 + i for i in range(30)]
        assert wait_for(lambda: len(watcher.events()) >= 30, 10), watcher.events()
        time.sleep(0.3)  # room for a duplicate to show up
        assert watcher.events() == expected  # none lost, none doubled, in order
        # After the restart (no persistence) discovery and availability were published again.
        assert watcher.on("edge/cab/availability")[-1] == b"online"
        cls = "homeassistant/binary_sensor/cab/s1_class_eyes_closed/config"
        assert len(watcher.on(cls)) >= 2
    finally:
        sinks.stop(2.0)
        watcher.close()
    assert max(took) < PUBLISH_BUDGET_S, f"slowest publish(): {max(took):.4f} s"
    st = sinks.stats()["mqtt"]
    assert st["dropped_events"] == 0
    assert st["dropped_predictions"] > 0  # the queue of 40 made room for the events
    assert st["detail"]["connects"] == 2 and st["detail"]["events_published"] == 30
