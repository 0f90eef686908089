"""What the driver baselines (:mod:`edge.front.eyebase`, :mod:`edge.front.roadbase`) share: the
newest samples kept in order and sorted, and their card sections read from a dict."""

from __future__ import annotations

import bisect
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import fields
from typing import Any, TypeVar

from edge.errors import EngineError

S = TypeVar("S")


class RollingSamples:
    """The newest ``capacity`` values, oldest first, and the same sorted (for quantiles)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._order: deque[float] = deque()
        self.sorted: list[float] = []

    def __len__(self) -> int:
        return len(self._order)

    def values(self) -> list[float]:
        """The values held, oldest first (what :meth:`restore` takes back)."""
        return list(self._order)

    def restore(self, values: Sequence[float]) -> None:
        """Hold exactly ``values`` (the newest ``capacity`` of them), as if they had been added."""
        kept = [float(v) for v in values][-self.capacity:]
        self._order = deque(kept)
        self.sorted = sorted(kept)

    def clear(self) -> None:
        self.restore(())

    def add(self, value: float) -> None:
        self._order.append(value)
        bisect.insort(self.sorted, value)
        if len(self._order) > self.capacity:
            old = self._order.popleft()
            del self.sorted[bisect.bisect_left(self.sorted, old)]


def section_from_dict(cls: type[S], data: Mapping[str, Any], section: str) -> S:
    """A card section's dataclass from its dict: unknown keys refused, values cast to the
    type of each field's default."""
    known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    extra = sorted(set(data) - known)
    if extra:
        raise EngineError(f"{section}: unknown keys {extra} (known: {sorted(known)})")
    try:
        return cls(**{k: type(getattr(cls, k))(v) for k, v in data.items()})
    except (TypeError, ValueError) as exc:
        raise EngineError(f"{section}: {exc}") from None
