"""The bounded record queue of one sink and what a full queue gives up
(:class:`DropPolicy`). Pure: no threads, no locks; the worker holds the lock.
"""

from __future__ import annotations

import enum
import itertools
from collections import deque

from edge.sinks.records import Record, record_type


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

    def drain(self) -> list[Record]:
        """Empty the queue; return its records in publish order."""
        out = []
        while (r := self.pop()) is not None:
            out.append(r)
        return out

    def prepend(self, records: list[Record]) -> tuple[int, int]:
        """Put ``records`` (older ones, in order) ahead of what the queue holds, within its
        capacity and policy; return (predictions, others) dropped to make room."""
        everything = records + self.drain()
        dropped = {"prediction": 0, "event": 0}
        for r in everything:
            d = self.push(r)
            if d is not None:
                dropped[d] += 1
        return dropped["prediction"], dropped["event"]
