"""``edge train``: simulator data -> fusion network -> ONNX + model card, on a CPU.

Steps: render random scenarios (training and validation seeds never used for testing), cut
windows with the serving code, train with modality dropout (a whole modality is masked for a
share of the batch so the model learns to serve without it), pick per-class thresholds on the
validation windows, export ONNX (opset 17, dynamic batch) and write the card. Progress goes to
stderr; the card records the command, seeds and data that produced the model.
"""

from __future__ import annotations

import datetime as _dt
import sys
import time
import warnings
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import numpy as np

from edge.runtime.card import ModelCard, save_card
from edge.errors import ConfigError
from edge.evaluate.metrics import prf
from edge.sim.scenario import random_scenario
from edge.train.cards import make_card, make_front_card
from edge.train.data import WindowSet, scenario_windows
from edge.train.fit import build_model, fit, macro_f1, predict, unread_columns

if TYPE_CHECKING:
    from edge.evaluate.perturb import FrontChange


@dataclass(frozen=True)
class TrainSettings:
    task: str
    scenarios: int = 120
    val_scenarios: int = 16
    seconds: float = 24.0
    epochs: int = 12
    batch: int = 32
    lr: float = 2e-3
    seed: int = 0
    hop_s: float = 0.25
    threads: int = 2
    modality_dropout: float = 0.2
    recordings: str | None = None  # a folder of recording folders (media + labels.json)
    front: bool = False  # a model over front-end features (edge.sim.frontsim), not pixels
    sounds: tuple[str, ...] = ()  # folders of real sounds mixed into front-model training
    bank_kinds: tuple[str, ...] | None = None  # kinds taken from fetched banks (None: all)
    heldout_scenarios: int = 24  # front models: fresh scenarios scored after export
    window_stride: int = 1  # front models: keep every Nth training window (they overlap)
    frames: int = 8  # front models: frame targets per 2 s window (the config's window.frames)
    audio_pool: int = 2  # front models: log-mel pooled by this in mels and 10 ms columns
    # front models, training set only: extra events per minute of some classes (short, rare
    # ones), and every window labelled with one kept whatever the stride
    extra_events: dict[str, float] = field(default_factory=dict)
    # networks trained from seeds seed..seed+N-1, each on its own data, exported as one
    # network answering with the mean of their logits (edge.train.model.Ensemble)
    members: int = 1
    # front models: picture features the network does not read (edge.train.model.FrontFusionNet)
    unread: tuple[str, ...] = ()
    # front models: camera rates the simulated scenarios draw from (empty: the task's own)
    fps: tuple[float, ...] = ()
    # front driver models: read gaze (face.gaze_x, face.gaze_y; the iris model runs serving)
    gaze: bool = False
    # front driver models: the share of the simulated glances away that the eyes lead
    eye_glances: float = 0.0
    # the highest class threshold validation may pick (the driver's F1 still rose at 0.8)
    max_threshold: float = 0.8


def generate_front(
    card: ModelCard, n: int, seconds: float, seed: int, hop_s: float, bank: object,
    vad: object, log: TextIO, stride: int = 1, extra_rates: dict[str, float] | None = None,
    change: FrontChange | None = None, fps: tuple[float, ...] = (),
    only: Collection[int] | None = None, eye_glances: float = 0.0,
) -> WindowSet:
    """Feature-level windows of ``n`` random scenarios drawn from ``seed``; ``extra_rates``
    adds events per minute of some classes, and windows labelled with those classes (their
    last hop mostly the class) are all kept when ``stride`` keeps every Nth; ``change`` alters
    each window's front-end features (:func:`~edge.sim.frontsim.simulate_windows`); ``fps``
    are the camera rates drawn from (empty: the task's own); ``eye_glances`` the share of the
    driver's glances away the eyes lead (:func:`~edge.sim.frontrows.face_frames`). ``only``:
    the indices of the scenarios to simulate; the others are drawn and skipped, so that each
    one kept is the very scenario the whole set holds (a scenario's windows depend on its own
    draw alone)."""
    from edge.sim.frontaudio import SoundBank
    from edge.sim.frontsim import random_front_scenario
    from edge.train.data import front_scenario_windows

    assert isinstance(bank, SoundBank)
    rng = np.random.default_rng(seed)
    parts = []
    t0 = time.monotonic()
    rare = [card.class_names.index(c) for c in (extra_rates or {})]
    total = n if only is None else len(set(only))
    for i in range(n):
        sc = random_front_scenario(card.task, seconds, rng, extra_rates)
        if only is not None and i not in only:
            if stride > 1:
                rng.integers(stride)  # the offset its windows would have drawn
            continue
        w = front_scenario_windows(sc, card, bank, vad, index=i, hop_s=hop_s, change=change,
                                   fps=fps, eye_glances=eye_glances)
        if stride > 1:
            keep = np.zeros(len(w.labels), bool)
            keep[int(rng.integers(stride))::stride] = True
            if rare:
                keep |= (w.labels[:, rare] >= 0.5).any(1)
            w = w.take(np.flatnonzero(keep))
        parts.append(w)
        done = len(parts)
        eta = (time.monotonic() - t0) / done * (total - done)
        print(f"\r  scenarios {done}/{total}  windows {sum(len(p) for p in parts)}  "
              f"eta {eta:4.0f} s", end="", file=log, flush=True)
    print(file=log)
    return WindowSet.concat(parts)


def generate(
    task: str, card: ModelCard, n: int, seconds: float, seed: int, hop_s: float, log: TextIO
) -> WindowSet:
    """Windows of ``n`` random scenarios drawn from ``seed``."""
    rng = np.random.default_rng(seed)
    parts = []
    t0 = time.monotonic()
    for i in range(n):
        sc = random_scenario(task, seconds, rng)  # type: ignore[arg-type]
        parts.append(scenario_windows(sc, card, index=i, hop_s=hop_s))
        done = i + 1
        eta = (time.monotonic() - t0) / done * (n - done)
        print(f"\r  scenarios {done}/{n}  windows {sum(len(p) for p in parts)}  eta {eta:4.0f} s",
              end="", file=log, flush=True)
    print(file=log)
    return WindowSet.concat(parts)


def from_recordings(
    root: Path, card: ModelCard, hop_s: float, log: TextIO
) -> tuple[WindowSet, WindowSet, str]:
    """Windows of every recording folder under ``root``; every fifth one is for validation."""
    from edge.train.data import recording_windows

    folders = sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    if len(folders) < 2:
        raise ConfigError(f"{root}: needs at least 2 recording folders (media file + labels.json)")
    parts = []
    for i, folder in enumerate(folders):
        parts.append(recording_windows(folder, card, index=i, hop_s=hop_s))
        print(f"\r  recordings {i + 1}/{len(folders)}", end="", file=log, flush=True)
    print(file=log)
    val_idx = [i for i in range(len(folders)) if i % 5 == 4] or [len(folders) - 1]
    train = WindowSet.concat([p for i, p in enumerate(parts) if i not in val_idx])
    val = WindowSet.concat([parts[i] for i in val_idx])
    note = f"{len(folders)} recordings in {root} ({len(val_idx)} held for validation)"
    return train, val, note


def _seeds(first: int, n: int) -> str:
    return str(first) if n == 1 else ", ".join(str(first + k) for k in range(n))


def pick_thresholds(probs: np.ndarray, labels: np.ndarray, top: float = 0.8) -> np.ndarray:
    """Per class, the threshold in [0.2, ``top``] (steps of 0.05) with the best validation F1,
    the lowest of equals."""
    out = np.full(probs.shape[1], 0.5, np.float32)
    grid = np.arange(0.2, top + 0.01, 0.05)
    for k in range(probs.shape[1]):
        best = -1.0
        for t in grid:
            pred = probs[:, k] >= t
            _, _, f = prf(int((pred & labels[:, k]).sum()), int((pred & ~labels[:, k]).sum()),
                          int((~pred & labels[:, k]).sum()))
            if f > best + 1e-9:
                best, out[k] = f, float(t)
    return out


def train(settings: TrainSettings, out_dir: Path, name: str, log: TextIO | None = None) -> ModelCard:
    """Train, export ``out_dir/name.onnx`` and write its card; returns the card."""
    log = sys.stderr if log is None else log  # looked up now: stderr may be swapped
    import torch

    from edge.sim.frontsim import check_camera_fps, check_eye_glances

    torch.manual_seed(settings.seed)
    torch.set_num_threads(settings.threads)
    s = settings
    if (s.gaze or s.eye_glances) and not s.front:
        raise ConfigError("--gaze, --eye-glances: front models only (--front)")
    if s.gaze and s.task != "driver":
        raise ConfigError(f"--gaze: the driver's model reads a face; task {s.task!r} has none")
    check_eye_glances(s.eye_glances, s.task)
    card = make_front_card(s.task, name, s.frames, s.gaze) if s.front else make_card(s.task, name)
    if s.frames != 8 and not s.front:
        raise ConfigError("--frames: front models only (--front); pixel models take 8")
    if s.extra_events and not s.front:
        raise ConfigError("--extra-events: front models only (--front)")
    if s.audio_pool != 2 and not s.front:
        raise ConfigError("--audio-pool: front models only (--front)")
    if s.audio_pool not in (1, 2):
        raise ConfigError(f"--audio-pool: 1 (full resolution) or 2, not {s.audio_pool}")
    if not 0.2 <= s.max_threshold <= 0.95:
        raise ConfigError(f"--max-threshold: 0.2-0.95, not {s.max_threshold:g}")
    if s.fps and not s.front:
        raise ConfigError("--fps: front models only (--front)")
    check_camera_fps(s.fps)
    if s.unread and not s.front:
        raise ConfigError("--unread: front models only (--front)")
    if s.unread:
        unread_columns(list(card.front["features"]), list(s.unread))  # names checked up front
    unknown = sorted(set(s.extra_events) - set(card.class_names))
    if unknown:
        raise ConfigError(f"--extra-events: no class {', '.join(unknown)} in task {s.task} "
                          f"({', '.join(card.class_names)})")
    started = time.monotonic()
    bank_note = ""
    if s.front and s.recordings is not None:
        from edge.errors import EdgeError

        raise EdgeError("edge train --front: a front model learns from simulation; adapt it to "
                        "your recordings with --init engines/TASK-front.onnx (fine-tuning)")
    if s.members < 1 or s.members > 16:
        raise ConfigError(f"--members: 1..16 networks, not {s.members}")
    if s.front:
        from edge.front.vad import StreamingVad
        from edge.sim.frontaudio import SoundBank

        bank = SoundBank.load(s.sounds, "train", s.bank_kinds)
        held_bank = SoundBank.load(s.sounds, "heldout", s.bank_kinds)
        vad = StreamingVad(options={"threads": 1})
        extra = dict(s.extra_events)

        def training_set(seed: int) -> WindowSet:
            print(f"edge train: {s.task} front: simulating {s.scenarios} training scenarios of "
                  f"{s.seconds:g} s from seed {1000 + seed} (real sounds: {len(bank.files)} "
                  f"train, {len(held_bank.files)} held out)", file=log)
            return generate_front(card, s.scenarios, s.seconds, 1000 + seed, s.hop_s, bank,
                                  vad, log, s.window_stride, extra, fps=s.fps,
                                  eye_glances=s.eye_glances)

        print(f"edge train: simulating {s.val_scenarios} validation scenarios", file=log)
        val_set = generate_front(card, s.val_scenarios, s.seconds, 2000 + s.seed, s.hop_s,
                                 held_bank, vad, log, fps=s.fps, eye_glances=s.eye_glances)
        bank_note = (f"; real sounds from {', '.join(s.sounds)}: training {', '.join(bank.files)}; "
                     f"validation and held-out {', '.join(held_bank.files)}") if s.sounds else \
            "; no real sounds"
        data_note = (
            f"edge.sim.frontsim feature-level {s.task} scenarios (front-end outputs with noise "
            f"measured on real footage; speech.p from the real silero VAD on the mixed audio): "
            + (f"{s.members} members, each its own " if s.members > 1 else "")
            + f"{s.scenarios} x {s.seconds:g} s (seeds from {_seeds(1000 + s.seed, s.members)}, "
            f"every {s.window_stride} window(s)"
            + ("".join(f", +{r:g}/min {c}" for c, r in extra.items()) + " and every window "
               "labelled with them" if extra else "")
            + f"), validation {s.val_scenarios} (from {2000 + s.seed})"
            + (f"; cameras at {', '.join(f'{f:g}' for f in s.fps)} fps" if s.fps else "")
            + (f"; {s.eye_glances:g} of the glances away led by the eyes" if s.eye_glances
               else "")
            + bank_note
        )
    elif s.recordings is not None:
        rec_train, val_set, data_note = from_recordings(Path(s.recordings), card, s.hop_s, log)
        if s.members > 1:
            data_note += f"; {s.members} members from seeds {_seeds(s.seed, s.members)}"

        def training_set(seed: int) -> WindowSet:
            return rec_train
    else:
        def training_set(seed: int) -> WindowSet:
            print(f"edge train: {s.task}: rendering {s.scenarios} training scenarios of "
                  f"{s.seconds:g} s from seed {1000 + seed}", file=log)
            return generate(s.task, card, s.scenarios, s.seconds, 1000 + seed, s.hop_s, log)

        print(f"edge train: rendering {s.val_scenarios} validation scenarios", file=log)
        val_set = generate(s.task, card, s.val_scenarios, s.seconds, 2000 + s.seed, s.hop_s, log)
        data_note = (
            f"edge.sim random {s.task} scenarios: "
            + (f"{s.members} members, each its own " if s.members > 1 else "")
            + f"{s.scenarios} x {s.seconds:g} s (seeds from {_seeds(1000 + s.seed, s.members)}), "
            f"validation {s.val_scenarios} (from {2000 + s.seed})"
        )
    y_val = val_set.labels >= 0.5
    nets = []
    for k in range(s.members):
        # Member k is what a one-network run with --seed SEED+k trains: its data, its
        # initial weights, its batch order (only validation is shared).
        seed = s.seed + k
        if s.members > 1:
            print(f"edge train: member {k + 1}/{s.members} (seed {seed})", file=log)
        train_set = training_set(seed)
        torch.manual_seed(seed)
        net = build_model(card, train_set if s.front else None, s.audio_pool, list(s.unread))
        fit(net, card, train_set, val_set, s.epochs, s.lr, s.batch, s.modality_dropout,
            np.random.default_rng(seed), log, started)
        nets.append(net)
        del train_set
    if s.members > 1:
        from edge.train.model import Ensemble

        model: torch.nn.Module = Ensemble(nets)
    else:
        model = nets[0]
    probs = predict(model, val_set)
    thresholds = pick_thresholds(probs, y_val, s.max_threshold)
    for c, t in zip(card.classes, thresholds):
        c.threshold = round(float(t), 2)
    out_dir.mkdir(parents=True, exist_ok=True)
    onnx_path = out_dir / f"{name}.onnx"
    export_onnx(model.eval(), card, onnx_path)
    card.provenance = {
        "data": data_note,
        "window_hop_s": s.hop_s,
        "seed": s.seed,
        "epochs": s.epochs,
        "command": f"edge train --task {s.task} --seed {s.seed} --scenarios {s.scenarios} "
                   f"--epochs {s.epochs}" + (f" --members {s.members}" if s.members > 1 else ""),
        "torch": torch.__version__,
        "trained": _dt.date.today().isoformat(),
        "train_seconds": round(time.monotonic() - started),
    }
    if s.members > 1:
        card.provenance["members"] = s.members  # the network: fine-tuning rebuilds it
    card.metrics = {"validation_macro_f1": round(macro_f1(probs, y_val, thresholds), 4)}
    if s.front:
        card.provenance["audio_pool"] = s.audio_pool  # the network: fine-tuning rebuilds it
        if s.unread:
            card.provenance["unread"] = list(s.unread)  # the network, as audio_pool
        if s.eye_glances:  # what its calibration set is drawn with (edge calibrate)
            card.provenance["eye_glances"] = s.eye_glances
        card.provenance["command"] = (
            f"edge train --task {s.task} --front --seed {s.seed} --scenarios {s.scenarios} "
            f"--val-scenarios {s.val_scenarios} --seconds {s.seconds:g} --epochs {s.epochs} "
            f"--window-stride {s.window_stride}"
            + (f" --frames {s.frames}" if s.frames != 8 else "")
            + (f" --audio-pool {s.audio_pool}" if s.audio_pool != 2 else "")
            + (f" --members {s.members}" if s.members > 1 else "")
            + (f" --unread {' '.join(s.unread)}" if s.unread else "")
            + (f" --fps {' '.join(f'{f:g}' for f in s.fps)}" if s.fps else "")
            + (" --gaze" if s.gaze else "")
            + (f" --eye-glances {s.eye_glances:g}" if s.eye_glances else "")
            + (f" --max-threshold {s.max_threshold:g}" if s.max_threshold != 0.8 else "")
            + (" --extra-events " + " ".join(f"{c}={r:g}" for c, r in sorted(s.extra_events.items()))
               if s.extra_events else "")
            + (f" --sounds {' '.join(s.sounds)}" if s.sounds else "")
            + (f" --bank-kinds {' '.join(s.bank_kinds)}" if s.bank_kinds is not None else ""))
        save_card(card, out_dir / f"{name}.yaml")
        if s.heldout_scenarios > 0:
            print(f"edge train: scoring the exported model on {s.heldout_scenarios} unseen "
                  f"scenarios (seeds from {9000 + s.seed})", file=log)
            held = generate_front(card, s.heldout_scenarios, s.seconds, 9000 + s.seed, s.hop_s,
                                  held_bank, vad, log, fps=s.fps,
                                  eye_glances=s.eye_glances)
            card.metrics["heldout_sim"] = heldout_report(onnx_path, card, held)
            card.metrics["heldout_sim"]["scenarios"] = (
                f"{s.heldout_scenarios} x {s.seconds:g} s from seed {9000 + s.seed}, "
                "held-out sounds")
            print(f"  held-out macro F1 {card.metrics['heldout_sim']['macro_f1']:.3f}  "
                  + "  ".join(f"{k} {v:.3f}" for k, v in card.metrics["heldout_sim"]["f1"].items()),
                  file=log)
        card.provenance["train_seconds"] = round(time.monotonic() - started)
    save_card(card, out_dir / f"{name}.yaml")
    print(f"edge train: wrote {onnx_path} and its card "
          f"({time.monotonic() - started:.0f} s)", file=log)
    return card


def heldout_report(onnx_path: Path, card: ModelCard, data: WindowSet) -> dict[str, object]:
    """Per-class F1 of the exported model (ONNX Runtime, the card's thresholds) on ``data``."""
    from edge.runtime.base import load_engine

    engine = load_engine("onnx", onnx_path, card, {"threads": 2})
    logits = np.concatenate([
        next(iter(engine.infer(data.inputs(slice(i, i + 64))).values()))
        for i in range(0, len(data), 64)
    ])
    probs = 1.0 / (1.0 + np.exp(-logits))
    y = data.labels >= 0.5
    thr = np.array([c.threshold for c in card.classes])
    pred = probs >= thr[np.newaxis, :]
    f1 = {}
    for k, c in enumerate(card.classes):
        f1[c.name] = round(prf(int((pred[:, k] & y[:, k]).sum()), int((pred[:, k] & ~y[:, k]).sum()),
                               int((~pred[:, k] & y[:, k]).sum()))[2], 4)
    return {"windows": len(data), "macro_f1": round(float(np.mean(list(f1.values()))), 4),
            "f1": f1, "positives": {c.name: int(y[:, k].sum()) for k, c in enumerate(card.classes)}}


def export_onnx(model: object, card: ModelCard, path: Path) -> None:
    """Export with the card's tensor names, a dynamic batch, opset 17."""
    import torch

    assert isinstance(model, torch.nn.Module)
    args = tuple(
        torch.zeros([1 if isinstance(d, str) else d for d in info.shape])
        for info in card.inputs.values()
    )
    names = list(card.inputs) + list(card.outputs)
    with warnings.catch_warnings():
        # Shapes read in forward() are fixed by the card (only the batch is dynamic), which is
        # what the tracer warns about.
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        # The TorchScript exporter is chosen on purpose (dynamo=False): the torch.export one
        # needs onnxscript, which the train extra does not install. It warns of its own
        # deprecation on every call.
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            model,
            args,
            str(path),
            input_names=list(card.inputs),
            output_names=list(card.outputs),
            dynamic_axes={n: {0: "B"} for n in names},
            opset_version=17,
            dynamo=False,
        )
