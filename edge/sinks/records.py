"""What a record is and how it is encoded: the record types, :func:`record_type` and
:func:`encode_record` (one compact JSON document, UTF-8).

A record is a plain JSON-able mapping with a ``"type"``: ``prediction``, ``event`` or
``health``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from edge.jsonout import dumps

Record = Mapping[str, Any]
RecordType = Literal["prediction", "event", "health"]
ALL_RECORDS: list[RecordType] = ["prediction", "event", "health"]
EVENTS_ONLY: list[RecordType] = ["event"]


def record_type(record: Record) -> str:
    return str(record.get("type", ""))


def encode_record(record: Record) -> bytes:
    """One compact JSON document, UTF-8; NaN and infinities become null (JSON has none).

    JSON escapes newlines inside strings, so the result never contains a raw newline.
    """
    return dumps(record, compact=True, ensure_ascii=False).encode("utf-8")
