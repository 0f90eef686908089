"""Calibration sets: real windows, cut by the serving code, stored as hashed shards.

``edge calibrate`` cuts windows with the same :class:`~edge.join.spine.Spine` join and
:class:`~edge.features.serve.Featurizer` that serving uses, from simulator runs of the model's task,
from recorded files (folders of a media file and ``labels.json``) or from the config's live
sources. Windows are chosen stratified over conditions and classes (round robin over the
strata, so a rare class or a dark scene is not drowned by the common case), then split by
scenario into ``calib`` (what INT8 ranges are fitted on) and ``check`` (held out: what the
accuracy gate of ``edge build`` scores). A set is a folder::

    calibration/NAME/
        manifest.json      source, counts, class positives, per-shard sha256, set hash
        shard-000.npz ...  video, video_mask, audio, audio_mask, labels, scenario, split

Shards are regenerated bit for bit by the command in the manifest; the set hash names exactly
which windows an INT8 model was calibrated on.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TextIO

import numpy as np

from edge.runtime.card import ModelCard, sha256_file
from edge.errors import ConfigError
from edge.export.merge import trained_eye_glances
from edge.train.data import WindowSet

SHARD_WINDOWS = 256
FORMAT = 1
# Conditions cycled over simulated calibration scenarios: (lighting, ir).
_CONDITIONS = (("normal", False), ("glare", False), ("dark", True), ("dark", False), ("normal", True))


@dataclass
class CalibrationSet:
    """A loaded calibration set; ``check`` marks the held-out windows."""

    root: Path
    manifest: dict[str, Any]
    windows: WindowSet
    check: np.ndarray  # [n] bool

    @property
    def labelled(self) -> bool:
        return bool(self.manifest.get("labelled", True))

    def part(self, which: str) -> WindowSet:
        """The ``calib`` or ``check`` windows (``all`` for both)."""
        if which == "all":
            return self.windows
        return self.windows.take(np.flatnonzero(self.check if which == "check" else ~self.check))


#: A check frame's feature counts as beyond the calibrated range when it lies further outside
#: it than this share of the range, and than 1e-3 of the larger of 1 and the range's bounds'
#: magnitude (so a feature calibrated at one value, a hand never seen, is named once it moves).
UNCOVERED_SLACK = 0.25


def uncovered(card: ModelCard, calib: WindowSet, check: WindowSet) -> list[str]:
    """The front-end features whose values on the check windows' frames lie beyond the range the
    calibration windows' frames span (by more than :data:`UNCOVERED_SLACK` of it), as
    ``"face.yaw -47.8..30.5 (calibrated 0..2.2)"``. A stand-in for clipping: activation ranges
    are per tensor, so a feature outside its own range is not always clipped, but a behaviour
    the calibration never saw often is. A set calibrated on an alert driver and an empty seat
    and checked on head turns failed its gate by one borderline glance, and passed it once head
    turns were calibrated too. Frames with a non-finite feature are left out. Empty for a model
    without front-end features or windows without frames."""
    names = list(card.front.get("features", []))
    if (not names or calib.front is None or check.front is None or calib.front_mask is None
            or check.front_mask is None):
        return []
    a = calib.front[calib.front_mask > 0].astype(np.float64)
    b = check.front[check.front_mask > 0].astype(np.float64)
    a, b = a[np.isfinite(a).all(-1)], b[np.isfinite(b).all(-1)]
    if not len(a) or not len(b) or a.shape[-1] != len(names):
        return []
    lo, hi, blo, bhi = a.min(0), a.max(0), b.min(0), b.max(0)
    size = np.maximum(1.0, np.maximum(np.abs(lo), np.abs(hi)))
    slack = np.maximum(UNCOVERED_SLACK * (hi - lo), 1e-3 * size)
    beyond = (blo < lo - slack) | (bhi > hi + slack)
    return [f"{names[j]} {blo[j]:.3g}..{bhi[j]:.3g} (calibrated {lo[j]:.3g}..{hi[j]:.3g})"
            for j in np.flatnonzero(beyond)]


def _progress(log: TextIO | None, text: str) -> None:
    if log is not None:
        print(f"\r  {text}", end="", file=log, flush=True)


def sim_windows(
    card: ModelCard, scenarios: int, seconds: float, seed: int, log: TextIO | None,
    front_dir: str | Path | None = None,
) -> WindowSet:
    """Windows of ``scenarios`` random scenarios of the card's task, conditions cycled; for a
    model over front-end features, simulated at feature level (edge.sim.frontsim) with the real
    VAD from ``front_dir``, the eyes leading as many glances as the model was trained with."""
    from edge.sim.scenario import random_scenario
    from edge.train.data import front_scenario_windows, scenario_windows

    bank = vad = None
    if card.front:
        from edge.front.engines import FRONT_DIR
        from edge.front.vad import StreamingVad
        from edge.sim.frontaudio import SoundBank

        bank, vad = SoundBank.load((), "train"), StreamingVad(front_dir or FRONT_DIR)

    eye_glances = trained_eye_glances(card)
    # Seeds from 3000: training draws from 1000/2000, the held-out scenario files are fixed.
    rng = np.random.default_rng(3000 + seed)
    parts = []
    t0 = time.monotonic()
    for i in range(scenarios):
        sc = random_scenario(card.task, seconds, rng)  # type: ignore[arg-type]
        lighting, ir = _CONDITIONS[i % len(_CONDITIONS)]
        cond = sc.conditions.model_copy(update={"lighting": lighting, "ir": ir})
        sc = sc.model_copy(update={"conditions": cond})
        if bank is not None:
            parts.append(front_scenario_windows(sc, card, bank, vad, index=i, hop_s=0.25,
                                                eye_glances=eye_glances))
        else:
            parts.append(scenario_windows(sc, card, index=i, hop_s=0.25))
        eta = (time.monotonic() - t0) / (i + 1) * (scenarios - i - 1)
        _progress(log, f"scenarios {i + 1}/{scenarios}  eta {eta:4.0f} s")
    if log is not None:
        print(file=log)
    return WindowSet.concat(parts)


def recorded_windows(card: ModelCard, root: Path, log: TextIO | None,
                     config: Any = None) -> WindowSet:
    """Windows of every recording folder under ``root`` (a media file + ``labels.json``).

    A model over front-end features gets its windows from a replay through the serving code
    with the front ends ``config`` turns on (:func:`edge.evaluate.evalrec.run_recording`)."""
    from edge.evaluate.evalrec import recording_folders
    from edge.train.data import load_labels, recording_files, recording_windows

    folders = [f for f in recording_folders(root)
               if load_labels(recording_files(f)[1]).task == card.task]
    if not folders:
        raise ConfigError(f"{root}: no recordings of task {card.task!r}")
    engine = None
    if card.front:
        from edge.evaluate.eval import load_model

        if config is None or config.front_ends is None:
            raise ConfigError(f"{card.name!r} reads front-end features: calibrate from "
                              "recordings with a config whose front_ends: turn them on")
        engine = load_model(config)
    parts = []
    for i, folder in enumerate(folders):
        if engine is not None:
            from edge.evaluate.evalrec import run_recording
            from edge.train.data import windows_of

            parts.append(windows_of(run_recording(config, folder, engine, keep_features=True), i))
        else:
            parts.append(recording_windows(folder, card, index=i, hop_s=0.25))
        _progress(log, f"recordings {i + 1}/{len(folders)}")
    if log is not None:
        print(file=log)
    return WindowSet.concat(parts)


#: Live windows are grouped by stretches of this many seconds of one stream, so that check
#: windows (whole groups) never share a stretch with calibration windows, one stream or many.
LIVE_GROUP_S = 5.0


def live_windows(config: Any, seconds: float, log: TextIO | None) -> WindowSet:
    """Windows of the config's live sources for ``seconds`` (unlabelled: labels are -1).

    A model over front-end features gets its inputs as served: the front ends ``config`` turns
    on run on every tick, then the model (as ``edge run`` does; its outputs are not kept).
    Windows are grouped by stream and :data:`LIVE_GROUP_S` stretch (``scenario``)."""
    from edge.timebase.clock import NS_PER_S, MonotonicClock
    from edge.service.run import Runner

    clock = MonotonicClock()
    runner = Runner(config, clock)
    rows: list[tuple[Any, ...]] = []
    streams = sorted(runner.featurizers)
    front = bool(runner.card.front)
    per_group = max(1, round(LIVE_GROUP_S * NS_PER_S / runner.spine.hop_ns))
    ticks = dict.fromkeys(streams, 0)
    t0 = time.monotonic()

    def collect(windows: list[Any]) -> None:
        if front:  # the cascade steps once per tick, before the features
            runner.process(windows)
        for w in windows:
            f = runner.last_features(w.stream) if front else runner.featurizers[w.stream](w)
            k = streams.index(w.stream)
            group = ticks[w.stream] // per_group * len(streams) + k
            ticks[w.stream] += 1
            rows.append((f.video, f.video_mask, f.audio, f.audio_mask, group, f.front, f.front_mask))
        _progress(log, f"live: {len(rows)} windows  {time.monotonic() - t0:4.0f}/{seconds:g} s")

    try:
        runner.start_front_workers()  # as edge run: the frame stages follow the cameras
        runner.spine.start(require_open_s=None)
        runner.spine.run(seconds, collect)
    finally:
        runner.spine.stop()
        runner.stop_front_workers()
    if log is not None:
        print(file=log)
    if not rows:
        raise ConfigError("the live sources gave no windows")
    cols = list(zip(*rows))
    n = len(rows)
    return WindowSet(
        video=np.zeros((n, 0), np.float16) if front else np.stack(cols[0]).astype(np.float16),
        video_mask=np.zeros((n, 0), np.float32) if front else np.stack(cols[1]).astype(np.float32),
        audio=np.stack(cols[2]).astype(np.float16),
        audio_mask=np.stack(cols[3]).astype(np.float32),
        labels=np.full((n, len(runner.classes)), -1.0, np.float32),
        scenario=np.asarray(cols[4], np.int32),
        t_s=np.arange(n, dtype=np.float64),
        front=np.stack(cols[5]).astype(np.float32) if front else None,
        front_mask=np.stack(cols[6]).astype(np.float32) if front else None,
    )


def first_class(labels: np.ndarray) -> int:
    """The first class a window's labels have on, or -1 for none (unlabelled too)."""
    active = np.flatnonzero(labels >= 0.5)
    return int(active[0]) if len(active) else -1


SIM_WINDOWS_EACH = 16  # --with-sim N: 16 x N of the simulated windows are kept


def add_sim(
    windows: WindowSet, check: np.ndarray, card: ModelCard, scenarios: int, seconds: float,
    seed: int, log: TextIO | None, front_dir: str | Path | None = None,
) -> tuple[WindowSet, np.ndarray, int]:
    """``windows`` (recorded or live, ``check`` marking the held-out ones) with the windows of
    ``scenarios`` simulated ones added as calibrated, never checked: INT8's ranges then cover
    what the simulator plays and the recordings may lack (a driver's recordings with no head
    turn left every glance of the held-out clip beyond the calibrated yaw, and the gate failed
    on a borderline one), while the gate still scores the real held-out windows alone.
    ``SIM_WINDOWS_EACH * scenarios`` of their windows are kept, round robin over the class
    each has on first (none a stratum too), as :func:`calibrate` chooses its windows."""
    if log is not None:
        print(f"edge calibrate: adding {scenarios} simulated {card.task} scenarios of "
              f"{seconds:g} s to the calibrated windows", file=log)
    sim = sim_windows(card, scenarios, seconds, seed, log, front_dir)
    sim = sim.take(stratified(sim, SIM_WINDOWS_EACH * scenarios,
                              lambda i: first_class(sim.labels[i]), seed))
    # Scenario ids after the recordings' own, so that no group mixes the two.
    sim.scenario[:] = sim.scenario + (int(windows.scenario.max()) + 1 if len(windows) else 0)
    return (WindowSet.concat([windows, sim]),
            np.concatenate([check, np.zeros(len(sim), bool)]), len(sim))


def stratified(
    windows: WindowSet, count: int, strata_of: Callable[[int], Any], seed: int
) -> np.ndarray:
    """Indices of ``count`` windows taken round robin over strata (random within each)."""
    rng = np.random.default_rng(seed)
    groups: dict[Any, list[int]] = {}
    for i in range(len(windows)):
        groups.setdefault(strata_of(i), []).append(i)
    queues = [list(rng.permutation(g)) for _, g in sorted(groups.items(), key=lambda kv: str(kv[0]))]
    picked: list[int] = []
    while len(picked) < min(count, len(windows)):
        for q in queues:
            if q and len(picked) < count:
                picked.append(int(q.pop()))
    return np.sort(np.asarray(picked, np.int64))


def write_set(
    out: Path,
    windows: WindowSet,
    check: np.ndarray,
    card: ModelCard,
    info: dict[str, Any],
    log: TextIO | None = None,
) -> dict[str, Any]:
    """Write shards and the manifest into ``out`` (replaced as a whole, never half-written)."""
    tmp = out.with_name(f".{out.name}.tmp")
    if tmp.exists():
        import shutil

        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    shards: list[dict[str, Any]] = []
    for k, i in enumerate(range(0, len(windows), SHARD_WINDOWS)):
        sl = slice(i, i + SHARD_WINDOWS)
        path = tmp / f"shard-{k:03d}.npz"
        arrays: dict[str, Any] = {
            "video": windows.video[sl], "video_mask": windows.video_mask[sl],
            "audio": windows.audio[sl], "audio_mask": windows.audio_mask[sl],
            "labels": windows.labels[sl], "scenario": windows.scenario[sl],
            "t_s": windows.t_s[sl], "check": check[sl],
        }
        if windows.front is not None and windows.front_mask is not None:
            arrays |= {"front": windows.front[sl], "front_mask": windows.front_mask[sl]}
        with open(path, "wb") as f:
            np.savez(f, **arrays)
        shards.append({"file": path.name, "count": len(windows.labels[sl]), "sha256": sha256_file(path)})
        _progress(log, f"shards {k + 1}")
    if log is not None:
        print(file=log)
    labelled = bool((windows.labels >= 0).all())
    pos = (windows.labels >= 0.5).sum(0) if labelled else np.zeros(len(card.classes), int)
    manifest = {
        "format": FORMAT,
        "model": card.name,
        "task": card.task,
        "classes": card.class_names,
        "inputs": {k: v.shape for k, v in card.inputs.items()},
        **info,
        "count": len(windows),
        "calib": int((~check).sum()),
        "check": int(check.sum()),
        "labelled": labelled,
        "positives": {c: int(p) for c, p in zip(card.class_names, pos)},
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "shards": shards,
        "hash": hashlib.sha256("".join(str(s["sha256"]) for s in shards).encode()).hexdigest(),
    }
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    if out.exists():
        import shutil

        old = out.with_name(f".{out.name}.old")
        if old.exists():
            shutil.rmtree(old)
        out.rename(old)
        tmp.rename(out)
        shutil.rmtree(old)
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp.rename(out)
    return manifest


def calibrate(
    config: Any,
    out: str | Path,
    config_path: str | Path | None = None,
    source: str = "sim",
    scenarios: int = 40,
    seconds: float = 24.0,
    count: int = 1024,
    holdout: float = 0.25,
    seed: int = 0,
    recordings: str | Path | None = None,
    live_seconds: float = 60.0,
    command: str = "",
    log: TextIO | None | Literal["stderr"] = "stderr",
    with_sim: int = 0,
) -> dict[str, Any]:
    """Cut, choose and store a calibration set for the config's model; returns the manifest.

    ``with_sim`` (recordings or live): windows of that many simulated scenarios are added to
    the calibrated part, never to the checked one (:func:`add_sim`)."""
    log = sys.stderr if log == "stderr" else log  # looked up now: stderr may be swapped
    from edge.runtime.card import card_path_for, load_card

    if config.model is None:
        raise ConfigError("the config has no `model:` section (whose inputs to calibrate)")
    if not 0.0 <= holdout < 1.0:
        raise ConfigError(f"--holdout must be in [0, 1), not {holdout:g}")
    if with_sim < 0:
        raise ConfigError(f"--with-sim {with_sim}: a number of scenarios, 0 or more")
    if with_sim and source == "sim":
        raise ConfigError("--with-sim adds simulated windows to recorded or live ones; a set "
                          "--from sim is simulated already (--scenarios)")
    model_path = Path(config.model.path)  # resolved by load_config (edge.paths)
    card = load_card(card_path_for(model_path))
    front_dir = config.front_ends.dir if config.front_ends is not None else None
    if source == "sim":
        if log is not None:
            print(f"edge calibrate: {card.task}: {scenarios} simulated scenarios of {seconds:g} s",
                  file=log)
        ws = sim_windows(card, scenarios, seconds, seed, log, front_dir)
        led = trained_eye_glances(card)
        info: dict[str, Any] = {
            "source": f"edge.sim random {card.task} scenarios, seeds from {3000 + seed}, "
                      f"conditions cycled"
                      + (f", {led:g} of the glances away led by the eyes" if led else ""),
            "scenarios": scenarios, "seconds": seconds}
    elif source == "recordings":
        if recordings is None:
            raise ConfigError("--from recordings needs --recordings DIR")
        ws = recorded_windows(card, Path(recordings), log, config)
        info = {"source": f"recordings in {recordings}"}
    elif source == "live":
        ws = live_windows(config, live_seconds, log)
        info = {"source": f"live sources of {config_path}", "seconds": live_seconds}
    else:
        raise ConfigError(f"unknown calibration source {source!r} (sim, recordings, live)")
    n_groups = int(ws.scenario.max()) + 1
    # Held out by scenario (recording, stream), so check windows never share a scene with calib.
    check_groups = {g for g in range(n_groups) if holdout > 0 and (g + 1) % max(2, round(1 / holdout)) == 0}
    labels = ws.labels

    def strata(i: int) -> tuple[Any, ...]:
        return (int(ws.scenario[i]) % len(_CONDITIONS), first_class(labels[i]),
                int(ws.scenario[i]) in check_groups)

    idx = stratified(ws, count, strata, seed)
    chosen = ws.take(idx)
    check = np.isin(chosen.scenario, sorted(check_groups))
    if with_sim:
        chosen, check, added = add_sim(chosen, check, card, with_sim, seconds, seed, log,
                                       front_dir)
        info["source"] += (f", with {added} windows of {with_sim} simulated {card.task} "
                           f"scenarios (seeds from {3000 + seed}) calibrated, none checked")
        info.update({"with_sim": with_sim, "sim_seconds": seconds, "sim_windows": added})
    info.update({"seed": seed, "holdout": holdout, "command": command, "model_path": str(model_path)})
    manifest = write_set(Path(out), chosen, check, card, info, log)
    if log is not None:
        print(f"edge calibrate: wrote {out}: {manifest['calib']} calib + {manifest['check']} check "
              f"windows, hash {manifest['hash'][:12]}", file=log)
    return manifest


def load_calibration(path: str | Path, card: ModelCard | None = None) -> CalibrationSet:
    """Read a calibration set, verifying every shard's hash (and its inputs against ``card``)."""
    root = Path(path)
    mf = root / "manifest.json"
    if not mf.is_file():
        raise ConfigError(f"{root}: not a calibration set (no manifest.json; make one with "
                          "edge calibrate)")
    try:
        manifest = json.loads(mf.read_text(encoding="utf-8"))
        shards = manifest["shards"]
    except (ValueError, KeyError) as exc:
        raise ConfigError(f"{mf}: bad manifest: {exc}") from None
    if card is not None:
        want = {k: v.shape for k, v in card.inputs.items()}
        if manifest.get("inputs") != want:
            raise ConfigError(
                f"{root}: windows shaped {manifest.get('inputs')}, model {card.name!r} takes {want}"
            )
    parts, checks = [], []
    for s in shards:
        p = root / s["file"]
        if not p.is_file():
            raise ConfigError(f"{p}: missing shard (regenerate: {manifest.get('command') or 'edge calibrate'})")
        if sha256_file(p) != s["sha256"]:
            raise ConfigError(f"{p}: hash differs from the manifest (changed or damaged)")
        with np.load(p, allow_pickle=False) as z:
            fr = (z["front"], z["front_mask"]) if "front" in z.files else (None, None)
            parts.append(WindowSet(z["video"], z["video_mask"], z["audio"], z["audio_mask"],
                                   z["labels"], z["scenario"], z["t_s"], *fr))
            checks.append(z["check"])
    if not parts:
        raise ConfigError(f"{root}: the calibration set is empty")
    return CalibrationSet(root, manifest, WindowSet.concat(parts), np.concatenate(checks).astype(bool))
