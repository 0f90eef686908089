"""``edge replay``: re-run a flight recording through the serving code and compare, bit for bit.

The recorded frames and samples go into rings of the recorded shapes and capacities; each
source's clock model is a :class:`~edge.timebase.clock.FrozenClock` set, tick by tick, to the fit the
live model had. Before each window is cut, the rings are filled exactly as far as they were at
its cut (the recorded newest frame and last valid sample), then the same
:class:`~edge.join.align.Aligner` cuts it at the recorded ``t_end`` and cut time; before the tick's
windows go to the same :class:`~edge.service.run.Runner` (featurizer, batching, engine) on a
:class:`~edge.timebase.clock.FakeClock`, the audio ring is filled as far as the live featurizer fed its
log-mel cache. Warm-up ticks only rebuild that cache; every other tick's probabilities are
compared with the recorded ones, and so is its window (chosen frame times, ``n0``, masks), which
tells an alignment difference from a feature or engine one. The front ends are not run: each
tick's recorded results are fed back, and a tick's ``restore`` (from
:meth:`~edge.recorder.journal.TickJournal.restore`) first sets what the live run had before it:
the results made earlier for the recorded frames and audio, the face's running state, the eye
baselines' samples.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge.timebase.buffers import FrameRing, SampleRing
from edge.capture.base import CaptureSource, SourceState
from edge.runtime.card import sha256_file
from edge.timebase.clock import NS_PER_S, FakeClock, FrozenClock
from edge.config import Config, parse_config
from edge.errors import EdgeError
from edge.front.roadbase import ROAD_SPECS, DriverBaseline
from edge.recorder.store import MANIFEST, READS, RESTORES
from edge.service.run import Runner
from edge.runtime.base import Engine


class RecordingError(EdgeError):
    """A folder is not a complete, intact flight recording."""


@dataclass(frozen=True)
class TickComparison:
    """One stream at one compared tick: how far the replayed probabilities are from the recorded."""

    tick: int
    now_ns: int
    stream: str
    max_abs_diff: float  # over classes; inf when a class or the prediction is missing
    window_mismatches: tuple[str, ...]  # window fields that differ: empty when cut identically

    @property
    def aligned(self) -> bool:
        return not self.window_mismatches


@dataclass
class ReplayResult:
    """What :func:`replay_recording` found."""

    path: str
    name: str
    rule: str
    trigger_ns: int
    comparisons: list[TickComparison]
    warmup_ticks: int
    uncovered_ticks: int  # recorded ticks whose windows reached before the recorded data
    model: str | None
    model_matches: bool | None  # the model file's sha256 equals the recorded one (None: unknown)
    identical: bool  # every compared window cut the same and its probabilities bitwise equal
    notes: list[str] = field(default_factory=list)

    @property
    def max_abs_diff(self) -> float:
        return max((c.max_abs_diff for c in self.comparisons), default=0.0)

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path, "name": self.name, "rule": self.rule, "identical": self.identical,
            "max_abs_diff": self.max_abs_diff, "compared": len(self.comparisons),
            "warmup_ticks": self.warmup_ticks, "uncovered_ticks": self.uncovered_ticks,
            "model": self.model, "model_matches": self.model_matches, "notes": self.notes,
            "ticks": [
                {"tick": c.tick, "t_s": (c.now_ns - self.trigger_ns) / NS_PER_S, "stream": c.stream,
                 "max_abs_diff": c.max_abs_diff, "window_mismatches": list(c.window_mismatches)}
                for c in self.comparisons
            ],
        }


@dataclass
class _SourceData:
    frames: np.ndarray  # [n, H, W, C] uint8
    t_ns: np.ndarray  # device time
    seq: np.ndarray  # the live ring's sequence numbers
    samples: np.ndarray | None  # [n, channels] float32
    mask: np.ndarray | None
    n0: int


@dataclass
class Recording:
    """A recording read back from disk."""

    path: Path
    manifest: dict[str, Any]
    config_text: str
    settings_text: str | None  # every setting as it ran (format 4 on); None before
    ticks: list[dict[str, Any]]
    predictions: list[dict[str, Any]]
    events: list[dict[str, Any]]
    data: dict[str, _SourceData]


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def _arrays(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def load_recording(path: str | Path, verify: bool = True) -> Recording:
    """Read a recording; with ``verify``, check every file against the manifest's sha256."""
    root = Path(path)
    mpath = root / MANIFEST
    if not mpath.is_file():
        why = "it is still being written or was abandoned" if root.name.startswith(".tmp-") else \
            "no manifest.json, so not a complete recording"
        raise RecordingError(f"{root}: {why}")
    try:
        manifest = json.loads(mpath.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RecordingError(f"{mpath}: unreadable: {exc}") from None
    if manifest.get("format") not in READS:
        raise RecordingError(f"{root}: format {manifest.get('format')!r}, this edge reads "
                             f"{' and '.join(map(repr, READS))}")
    files: Mapping[str, Any] = manifest.get("files", {})
    if verify:
        for rel, meta in files.items():
            p = root / rel
            if not p.is_file():
                raise RecordingError(f"{root}: {rel} is missing")
            if sha256_file(p) != meta["sha256"]:
                raise RecordingError(f"{root}: {rel} does not match its sha256 in the manifest")
    try:
        data: dict[str, _SourceData] = {}
        for name, meta in manifest["sources"].items():
            d = meta["dir"]
            chunks = sorted(rel for rel in files if rel.startswith(f"video/{d}/"))
            parts = [_arrays(root / rel) for rel in chunks]
            shape = tuple(meta["video"]["shape"]) if "video" in meta else (0, 0, 0)
            frames = np.concatenate([p["frames"] for p in parts]) if parts else np.zeros((0, *shape), np.uint8)
            t_ns = np.concatenate([p["t_ns"] for p in parts]) if parts else np.zeros(0, np.int64)
            seq = np.concatenate([p["seq"] for p in parts]) if parts else np.zeros(0, np.int64)
            samples = mask = None
            n0 = 0
            if f"audio/{d}.npz" in files:
                a = _arrays(root / f"audio/{d}.npz")
                samples, mask, n0 = a["samples"], a["mask"], int(a["n0"])
            data[name] = _SourceData(frames, t_ns, seq, samples, mask, n0)
        return Recording(
            path=root,
            manifest=manifest,
            config_text=(root / manifest["config"]).read_text(encoding="utf-8"),
            settings_text=(root / manifest["settings"]).read_text(encoding="utf-8")
            if manifest.get("settings") else None,
            ticks=_jsonl(root / "ticks.jsonl"),
            predictions=_jsonl(root / "predictions.jsonl"),
            events=_jsonl(root / "events.jsonl"),
            data=data,
        )
    except (OSError, KeyError, ValueError) as exc:
        raise RecordingError(f"{root}: cannot read the recording: {exc}") from None


class _RecordedSource(CaptureSource):
    """A source that is never started: the replay writes its rings tick by tick."""

    kind = "recorded"

    def __init__(self, name: str, clock: FakeClock, meta: Mapping[str, Any]) -> None:
        super().__init__(name, clock)
        self.vclock: FrozenClock | None = None
        self.aclock: FrozenClock | None = None
        if "video" in meta:
            v = meta["video"]
            self.video = FrameRing(int(v["capacity"]), tuple(v["shape"]))
            self.nominal_fps = float(v["fps"])
            self.vclock = FrozenClock()
            self.video_clock = self.vclock
        if "audio" in meta:
            a = meta["audio"]
            self.audio = SampleRing(int(a["capacity"]), int(a["channels"]))
            self.sample_rate = int(a["sample_rate"])
            self.aclock = FrozenClock()
            self.audio_clock = self.aclock
        self.state = SourceState.RUNNING  # as the live source was while it fed the rings

    def open(self) -> None:
        pass

    def pump(self) -> bool:
        return False

    def close(self) -> None:
        pass


class _Feeder:
    """Writes one source's recorded data into its replay rings, up to a given point."""

    def __init__(self, source: _RecordedSource, data: _SourceData) -> None:
        self.source, self.data = source, data
        self.k = 0  # next recorded frame
        self.n = data.n0  # next recorded sample

    def frames_upto(self, seq: int) -> None:
        ring, d = self.source.video, self.data
        while ring is not None and self.k < d.seq.size and d.seq[self.k] <= seq:
            ring.write(d.frames[self.k], int(d.t_ns[self.k]))
            self.k += 1

    def audio_upto(self, end: int) -> None:
        ring, d = self.source.audio, self.data
        if ring is None or d.samples is None or d.mask is None or end <= self.n:
            return
        a, b = self.n - d.n0, min(end - d.n0, len(d.samples))
        if b <= a:
            return
        mask = d.mask[a:b]
        cuts = [0, *(np.flatnonzero(mask[1:] != mask[:-1]) + 1).tolist(), b - a]
        for lo, hi in zip(cuts[:-1], cuts[1:]):  # runs of equal validity: gaps stay gaps
            ring.write(d.samples[a + lo : a + hi], d.n0 + a + lo, valid=bool(mask[lo]))
        self.n = d.n0 + b


def recorded_config(rec: Recording) -> tuple[Config, list[str]]:
    """The config ``rec`` ran with, and what a replay should say about it.

    From format 4 on a recording keeps every setting as it ran, defaults included, so a later
    edge whose defaults differ replays it as it ran. Its paths were resolved where it ran: a
    front-end folder that is not here is taken from the config as written (relative, as the
    text gave it). Settings this edge cannot read (one renamed or removed since) make it fall
    back to the text, and say so.

    An earlier recording keeps only the file's text: its missing settings take this edge's
    defaults, except ``front_ends.face.new_driver_after`` where the text does not set it, which
    is replayed off: formats 1 and 2 predate it; format 3 does not say whether its edge had it
    (it came during that format), so the note says what a difference would mean.
    """
    m = rec.manifest
    written = str(rec.path / m["config"])
    notes: list[str] = []
    if rec.settings_text is not None:
        try:
            config = parse_config(rec.settings_text, str(rec.path / m["settings"]))
        except EdgeError as exc:
            notes.append(f"its settings do not parse here ({str(exc).splitlines()[0]}): "
                         "replayed from its config as written, with this edge's defaults")
        else:
            fc = config.front_ends
            if fc is not None and not Path(fc.dir).is_dir():
                text = parse_config(rec.config_text, written).front_ends
                if text is not None and Path(text.dir).is_dir():
                    config = config.model_copy(
                        update={"front_ends": fc.model_copy(update={"dir": text.dir})})
            return config, notes
    config = parse_config(rec.config_text, written)
    fc = config.front_ends
    if (fc is None or fc.face is None or fc.face.new_driver_after is None
            or "new_driver_after" in fc.face.model_fields_set or rec.settings_text is not None):
        return config, notes
    face = fc.face.model_copy(update={"new_driver_after": None})
    config = config.model_copy(update={"front_ends": fc.model_copy(update={"face": face})})
    if m.get("format") in ("edge-recording/1", "edge-recording/2"):
        notes.append(f"recorded as {m.get('format')}, before front_ends.face.new_driver_after: "
                     "replayed without it, as it ran")
    else:
        notes.append(f"recorded as {m.get('format')}, which does not say whether its edge had "
                     f"front_ends.face.new_driver_after (it came during that format): replayed "
                     f"without it; a replay that differs only once the face has been absent "
                     f"{fc.face.new_driver_after:g} s is one whose live run emptied the driver "
                     "baselines there")
    return config, notes


def replay_recording(
    path: str | Path,
    engine: Engine | None = None,
    model_path: str | Path | None = None,
    verify: bool = True,
) -> ReplayResult:
    """Re-run a recording through rings, :class:`~edge.join.align.Aligner`, featurizer and engine.

    Parameters
    ----------
    path:
        The recording's folder.
    engine:
        The engine to run (default: the recorded config's engine on the recorded model file).
    model_path:
        Run this model file instead of the recorded path (e.g. the recording was moved to
        another machine); its hash is still compared with the recorded one.
    verify:
        Check every file against the manifest's sha256 first.

    Returns
    -------
    ReplayResult
        Per compared tick and stream the largest absolute probability difference, and
        ``identical``: every compared prediction reproduced exactly.
    """
    rec = load_recording(path, verify)
    m = rec.manifest
    config, notes = recorded_config(rec)
    used = {n for sc in config.streams.values() for n in (sc.video, sc.audio) if n}
    config = config.model_copy(update={"sources": {k: v for k, v in config.sources.items() if k in used}})
    recorded_model = m.get("model") or {}
    if engine is None:
        chosen = model_path or recorded_model.get("path")
        if chosen is None or config.model is None:
            raise RecordingError(f"{rec.path}: no model recorded; pass the model file")
        config = config.model_copy(update={"model": config.model.model_copy(update={"path": str(chosen)})})
    first_ns = rec.ticks[0]["now_ns"] if rec.ticks else 0
    clock = FakeClock(first_ns - 1)
    sources = {name: _RecordedSource(name, clock, meta) for name, meta in m["sources"].items()}
    runner = Runner(config, clock, engine=engine, sources=dict(sources))
    used_path = getattr(runner.engine, "model_path", None)
    matches = None
    if recorded_model.get("sha256") and used_path is not None and Path(used_path).is_file():
        matches = sha256_file(used_path) == recorded_model["sha256"]
    feeders = {name: _Feeder(src, rec.data[name]) for name, src in sources.items()}
    if runner.cascade is not None:  # the front ends' recorded results, not a re-run of them
        runner.cascade.replaying = True

    def replay_seq(source: str, live_seq: int) -> int | None:
        """A recorded frame's seq in the replay's ring (its place among the recorded frames);
        -1 for a frame older than all of them (a stage's result for it is held before them)."""
        seqs = rec.data[source].seq
        k = int(np.searchsorted(seqs, live_seq))
        if k == 0 and (seqs.size == 0 or live_seq < int(seqs[0])):
            return -1
        return k if k < seqs.size and int(seqs[k]) == live_seq else None

    recorded: dict[tuple[int, str], dict[str, Any]] = {(p["tick"], p["stream"]): p for p in rec.predictions}
    comparisons: list[TickComparison] = []
    inexact = 0
    no_road: set[str] = set()  # road baselines the model has and the recording kept no samples of
    for tick in rec.ticks:
        for name, fits in tick["clocks"].items():
            src = sources.get(name)
            if src is not None and src.vclock is not None:
                src.vclock.set_fit(fits["video"])
            if src is not None and src.aclock is not None:
                src.aclock.set_fit(fits["audio"])
        windows = []
        for wl in tick["windows"]:
            sc = config.streams[wl["stream"]]
            if sc.video and wl.get("video_upto") is not None:
                feeders[sc.video].frames_upto(wl["video_upto"])
                inexact += tick["compare"] and not wl.get("video_exact", True)
            if sc.audio and wl.get("audio_upto") is not None:
                feeders[sc.audio].audio_upto(wl["audio_upto"])
            windows.append(runner.spine.aligners[wl["stream"]].cut(wl["cut_ns"], wl["t_end_ns"]))
        fed = False
        for stream, feed in tick["feeds"].items():
            audio_src = config.streams[stream].audio
            if feed is not None and audio_src is not None:
                feeders[audio_src].audio_upto(feed["to"])
                fed = True
        if not tick["feeds"] and not fed:  # recorded without featurizers: as far as the ring was
            for name, end in tick["audio_end"].items():
                feeders[name].audio_upto(end)
        clock.set_ns(max(clock.now_ns(), tick["now_ns"]))
        restore = tick.get("restore") or {}
        if runner.cascade is not None and "front" in restore:  # where the live run was
            runner.cascade.restore(restore["front"]["state"], restore["front"]["rows"], replay_seq)
        for stream, samples in (restore.get("eyes") or {}).items():
            scaler = runner.eye_scalers.get(stream)
            if scaler is not None:
                scaler.restore(samples)
                if isinstance(scaler, DriverBaseline):
                    no_road.update(scaler.missing(samples))
        if runner.cascade is not None:
            runner.cascade.inject(tick.get("front") or {}, replay_seq)
        preds = runner.process(windows)
        if not tick["compare"]:
            continue
        for p, w, wl in zip(preds, windows, tick["windows"]):
            want = recorded.get((tick["tick"], p.stream))
            diff = math.inf
            if want is not None and set(want["probs"]) == set(p.probs):
                # a non-finite probability was recorded as null (JSON has no NaN)
                got = {c: math.nan if v is None else float(v) for c, v in want["probs"].items()}
                diff = max((abs(p.probs[c] - got[c]) for c in p.probs), default=0.0)
            mismatches = tuple(
                k for k, same in (
                    ("audio_n0", w.audio_n0 == wl["audio_n0"]),
                    ("video_t_ns", w.video_t_ns.tolist() == wl["video_t_ns"]),
                    ("video_valid", w.video_valid == wl["video_valid"]),
                    ("audio_valid", w.audio_valid == wl["audio_valid"]),
                ) if not same
            )
            comparisons.append(TickComparison(tick["tick"], tick["now_ns"], p.stream, diff, mismatches))
    notes = list(m.get("notes", [])) + notes
    if runner.cascade is not None and m.get("format") not in RESTORES:
        notes.append(f"recorded as {m.get('format')}: without the front ends' results and state "
                     "from before its first tick, so its first windows can differ")
    if inexact:
        notes.append(f"{inexact} window(s): the newest frame at the cut was inferred, not pinned "
                     "down (the clock fit changed between the cut and the recorder's look)")
    if matches is False:
        notes.append("the model file differs from the recorded one (sha256)")
    for spec in ROAD_SPECS:
        if spec.KEY in no_road:
            notes.append(f"recorded without the road baseline's samples ({spec.SECTION}): the "
                         f"replay's starts empty, so its first windows' {spec.ANGLE} can differ")
    uncovered = sum(1 for t in rec.ticks if t["role"] != "warmup" and not t["compare"])
    return ReplayResult(
        path=str(rec.path),
        name=m.get("name", rec.path.name),
        rule=m.get("rule", ""),
        trigger_ns=int(m.get("trigger_ns", first_ns)),
        comparisons=comparisons,
        warmup_ticks=sum(1 for t in rec.ticks if t["role"] == "warmup"),
        uncovered_ticks=uncovered,
        model=recorded_model.get("name"),
        model_matches=matches,
        identical=bool(comparisons) and all(c.max_abs_diff == 0.0 and c.aligned for c in comparisons),
        notes=notes,
    )


def format_replay(result: ReplayResult) -> str:
    """A replay result as text: one line per compared tick and stream, then the verdict."""
    model = {True: "sha256 matches", False: "sha256 DIFFERS", None: "sha256 not checked"}
    lines = [
        f"recording {result.name} (rule {result.rule}), model {result.model}: "
        f"{model[result.model_matches]}",
        f"ticks: {len(result.comparisons)} compared, {result.warmup_ticks} warm-up, "
        f"{result.uncovered_ticks} not covered by the recorded data",
        f"  {'tick':>4} {'t - trigger':>12}  {'stream':<12} {'max |diff|':>10}  window",
    ]
    for c in result.comparisons:
        diff = "0" if c.max_abs_diff == 0.0 else f"{c.max_abs_diff:.3g}"
        window = "same" if c.aligned else "differs: " + ", ".join(c.window_mismatches)
        lines.append(
            f"  {c.tick:>4} {(c.now_ns - result.trigger_ns) / NS_PER_S:>+10.3f} s  "
            f"{c.stream:<12} {diff:>10}  {window}"
        )
    lines.extend(f"note: {n}" for n in result.notes)
    n = len(result.comparisons)
    if result.identical:
        lines.append(f"identical: all {n} predictions reproduced bit for bit")
    elif n == 0:
        lines.append("nothing to compare: the recording holds no comparable tick")
    else:
        bad = sum(1 for c in result.comparisons if c.max_abs_diff != 0.0)
        cut = sum(1 for c in result.comparisons if not c.aligned)
        lines.append(f"DIFFERENT: {bad} of {n} predictions differ (largest |diff| "
                     f"{result.max_abs_diff:.3g}); {cut} of {n} windows were cut differently")
    return "\n".join(lines)
