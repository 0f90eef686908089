"""``edge label``: mark what happens when in a recording folder, without a text editor.

A recording folder's ``labels.json`` (``task``, ``seconds``, ``events``: ``label``, ``start``,
``end`` in seconds) is what ``edge train --recordings`` and ``edge eval --recordings`` read.
Adding a span of a class merges it with the class's events it overlaps or touches (a class never
overlaps itself); removing a span cuts it out of the class's events (splitting one that
straddles it). Every change is checked against the task's classes and the recording's length
the way scenarios are, and the file is replaced atomically: a failed edit leaves it as it was.
Keys an event carries besides ``label``/``start``/``end`` (e.g. ``source``) are kept.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from edge.errors import ConfigError
from edge.sim.scenario import CLASSES, Event, check_events

Span = tuple[str, float, float]


def _load(folder: Path, task: str | None) -> dict[str, Any]:
    path = folder / "labels.json"
    if path.is_file():
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{path}: cannot read labels: {exc}") from None
        if not isinstance(data, dict) or "task" not in data or "seconds" not in data:
            raise ConfigError(f"{path}: labels need task and seconds")
        if task is not None and task != data["task"]:
            raise ConfigError(f"{path}: task is {data['task']!r}, not {task!r}")
        data.setdefault("events", [])
        return data
    if task is None:
        raise ConfigError(f"{path}: no labels yet; say which task (--task driver|home)")
    if task not in CLASSES:
        raise ConfigError(f"unknown task {task!r} (known: {', '.join(CLASSES)})")
    return {"task": task, "seconds": _media_seconds(folder), "events": []}


def _media_seconds(folder: Path) -> float:
    """Length of the recording's media file (its longest stream), for new labels."""
    from edge.train.data import MEDIA_SUFFIXES

    import av

    media = sorted(p for p in folder.iterdir() if p.suffix.lower() in MEDIA_SUFFIXES) \
        if folder.is_dir() else []
    if not media:
        raise ConfigError(f"{folder}: no video file to label ({', '.join(MEDIA_SUFFIXES)})")
    try:
        with av.open(str(media[0])) as c:
            if c.duration is not None:
                return round(float(c.duration) / 1e6, 3)
            lengths = [float(s.duration * s.time_base) for s in c.streams
                       if s.duration is not None and s.time_base is not None]
    except (av.FFmpegError, OSError) as exc:
        raise ConfigError(f"cannot open {media[0]}: {exc}") from None
    if not lengths:
        raise ConfigError(f"{media[0]}: length unknown")
    return round(max(lengths), 3)


def _check_span(task: str, seconds: float, span: Span) -> None:
    label, start, end = span
    problems = check_events(task, seconds, (Event(label=label, start=start, end=end),))
    if problems:
        raise ConfigError(problems[0][1])


def add_span(events: list[dict[str, Any]], span: Span) -> list[dict[str, Any]]:
    """``events`` with ``span`` added: merged with the class's overlapping or touching events."""
    label, start, end = span
    keep, merged = [], {"label": label, "start": start, "end": end}
    for e in events:
        if e["label"] == label and e["start"] <= merged["end"] and e["end"] >= merged["start"]:
            merged = {**e, "label": label, "start": min(e["start"], merged["start"]),
                      "end": max(e["end"], merged["end"])}
        else:
            keep.append(e)
    return keep + [merged]


def remove_span(events: list[dict[str, Any]], span: Span) -> list[dict[str, Any]]:
    """``events`` with ``span`` cut out of the class's events (none of the class: unchanged)."""
    label, start, end = span
    out = []
    for e in events:
        if e["label"] != label or e["end"] <= start or e["start"] >= end:
            out.append(e)
            continue
        if e["start"] < start:
            out.append({**e, "end": start})
        if e["end"] > end:
            out.append({**e, "start": end})
    return out


def edit_labels(folder: str | Path, add: Sequence[Span] = (), remove: Sequence[Span] = (),
                task: str | None = None) -> dict[str, Any]:
    """Apply ``remove`` then ``add`` to ``folder/labels.json`` (created for ``task`` when
    missing) and write it atomically; return the labels as written (events sorted)."""
    f = Path(folder)
    if not f.is_dir():
        raise ConfigError(f"{f}: no such recording folder")
    data = _load(f, task)
    events = [dict(e) for e in data["events"]]
    for span in list(remove) + list(add):
        _check_span(data["task"], float(data["seconds"]), span)
    for span in remove:
        events = remove_span(events, span)
    for span in add:
        events = add_span(events, span)
    events.sort(key=lambda e: (e["start"], e["label"]))
    problems = check_events(data["task"], float(data["seconds"]),
                            tuple(Event(label=e["label"], start=e["start"], end=e["end"])
                                  for e in events))
    if problems:  # e.g. two classes one mouth cannot do at once
        raise ConfigError(f"{f / 'labels.json'}: {problems[0][1]}")
    data["events"] = events
    if add or remove or not (f / "labels.json").exists():
        _write(f / "labels.json", data)
    return data


def _write(path: Path, data: dict[str, Any]) -> None:
    fd, tmp = tempfile.mkstemp(prefix=".labels.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(data, out, indent=1)
            out.write("\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def format_labels(data: dict[str, Any]) -> str:
    """The labels as a table: one line per event."""
    lines = [f"task {data['task']}, {float(data['seconds']):g} s, {len(data['events'])} events"]
    for e in data["events"]:
        lines.append(f"  {e['label']:<14} {e['start']:>8.2f} {e['end']:>8.2f}  "
                     f"({e['end'] - e['start']:.2f} s)")
    return "\n".join(lines)
