"""The worker that feeds one sink: its thread, queue, retries with capped backoff, states
and counters (:class:`SinkWorker`).

A sink turns records (plain JSON-able dicts with a ``"type"``: ``prediction``, ``event``,
``health``) into something outside the process: a file, an MQTT broker, an HTTP endpoint. The
run loop must never wait on one, so each sink gets a :class:`SinkWorker`: a thread with its own
bounded :class:`RecordQueue`. :meth:`SinkWorker.publish` only appends under a lock; the thread
sends, and a send that fails is retried with capped exponential backoff until it succeeds or
the worker is stopped.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from typing import Any

from edge.capture.base import Backoff
from edge.sinks.config import AnySinkConfig
from edge.sinks.record_queue import RecordQueue
from edge.sinks.records import Record, record_type
from edge.sinks.sink import RecordDropped, RecordRejected, Sink

log = logging.getLogger("edge.sinks")


def scrub(text: str, secrets: tuple[str, ...]) -> str:
    for s in secrets:
        if s:
            text = text.replace(s, "***")
    return text


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
        self._successor: SinkWorker | None = None  # replacing this one: takes what is left
        self._state = OK
        self._last_error: str | None = None
        self._woken = False
        self._streak = 0  # consecutive failures (worker thread only)
        self._backoff = Backoff(config.retry_initial, config.retry_max)
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

    def take(self, records: list[Record]) -> None:
        """Queue ``records`` (those of the types this sink takes), published before anything
        queued here, ahead of it: what a worker this one replaces could not send."""
        records = [r for r in records if record_type(r) in self._records]
        with self._cond:
            preds, others = self._queue.prepend(records)
            self.dropped_predictions += preds
            self.dropped_events += others
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

    def request_stop(self, deadline: float, successor: SinkWorker | None = None) -> None:
        """Ask the thread to drain until ``deadline`` (time.monotonic()) and then close; what
        it could not send goes to ``successor`` (the worker replacing it) when it ends, not
        abandoned, however late that is; at once if it never ran."""
        left: list[Record] = []
        with self._cond:
            self._successor = successor
            if successor is not None and self._thread is None:
                left = self._queue.drain()
            self._stopping = True
            self._deadline = min(self._deadline, deadline)
            self._cond.notify_all()
        if left and successor is not None:
            successor.take(left)

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
        handed: list[Record] = []
        with self._cond:
            successor = self._successor
            if successor is not None:  # for the sink replacing this one, the held record first
                handed = ([held] if held is not None else []) + self._queue.drain()
                preds = others = 0
            else:
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
        if handed and successor is not None:
            successor.take(handed)
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
        delay = self._backoff.delay_s(self._streak - 1)  # the first retry waits retry_initial
        with self._cond:
            self.failures += 1
            give_up = self._stopping and now + delay >= self._deadline
        failed = now - self._streak_t0 >= self.config.failed_after
        self._set_state(FAILED if failed else RETRYING, msg)
        if give_up:
            return True
        self._wait(delay)
        with self._cond:
            if self._stopping and time.monotonic() >= self._deadline:
                return True  # told to stop while waiting: no try past the deadline
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

