"""Strict JSON text for everything edge writes out (records, reports, ``/healthz``).

JSON has no NaN or infinity; Python's :func:`json.dumps` writes them as the bare words ``NaN``
and ``Infinity`` by default, which strict parsers (``jq``, browsers, Home Assistant) refuse.
:func:`dumps` writes them as ``null`` instead, so one non-finite number never makes a whole
line unreadable.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any


def finite(value: Any) -> Any:
    """``value`` with every non-finite float (at any depth) replaced by ``None``."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


def dumps(obj: Any, *, compact: bool = False, indent: int | None = None,
          ensure_ascii: bool = True) -> str:
    """``json.dumps`` that writes NaN and infinities as ``null``; other values that JSON cannot
    hold are written as their ``str``. ``compact`` drops the spaces after ``,`` and ``:``."""
    kw: dict[str, Any] = {"indent": indent, "ensure_ascii": ensure_ascii, "default": str}
    if compact:
        kw["separators"] = (",", ":")
    try:
        return json.dumps(obj, allow_nan=False, **kw)
    except ValueError:  # a non-finite float somewhere: the slower path, only then
        return json.dumps(finite(obj), **kw)
