"""What a record is and how it is encoded: the record types, :func:`record_type` and
:func:`encode_record` (one compact JSON document, UTF-8).

A record is a plain JSON-able mapping with a ``"type"``: ``prediction``, ``event`` or
``health``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any, Literal

Record = Mapping[str, Any]
RecordType = Literal["prediction", "event", "health"]
ALL_RECORDS: list[RecordType] = ["prediction", "event", "health"]
EVENTS_ONLY: list[RecordType] = ["event"]


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
