"""``edge train --recordings DIR --init MODEL``: adapt a trained fusion model to your recordings.

The starting model is rebuilt in PyTorch from its own ONNX file (:func:`model_from_onnx`; any
FP32 model ``edge train`` exported, no checkpoint needed). The recordings are replayed through
the serving code (:func:`edge.evaluate.evalrec.run_recording`: media source, join, front ends, features),
so the windows are exactly what the model sees when it serves. Validation is split by recording:
whole recordings are held out, never windows of a recording it trained on. Those recordings are
scored before (the starting model) and after (the fine-tuned one) with the card's thresholds
and the config's rules, and both reports go to the output and into the new card.

Fine-tuning keeps batch-norm statistics as they are (a few minutes of data would move them
badly), trains with a small one-cycle rate and the same modality dropout as training, and keeps
the starting model's thresholds (picking them again on the held-out recordings would score them
on the data they were chosen on).
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import numpy as np

from edge.runtime.card import ModelCard, card_path_for, load_card, save_card, sha256_file
from edge.config import Config, ModelConfig
from edge.errors import ConfigError
from edge.train.data import WindowSet, windows_of

if TYPE_CHECKING:
    import torch

    from edge.evaluate.evalrec import RecordingRun


@dataclass(frozen=True)
class FineTuneSettings:
    recordings: str  # a recording folder, or a folder of them
    init: str  # the FP32 ONNX model to start from (its card beside it)
    epochs: int = 6
    lr: float = 3e-4
    batch: int = 32
    seed: int = 0
    threads: int = 2
    modality_dropout: float = 0.2
    val_every: int = 4  # every Nth recording (at least one) is held out for validation


def model_from_onnx(path: Path, card: ModelCard) -> "torch.nn.Module":
    """The PyTorch network of an ONNX file ``edge train`` exported, weights loaded.

    Parameters keep their names in the export except convolutions followed by batch norm,
    which the exporter folds into one convolution (``onnx::Conv_N``). Those are matched to the
    network's conv+norm pairs in the order the graph runs them; each norm becomes the identity
    plus the folded bias, which serves exactly the same function."""
    if card.provenance.get("parts"):
        raise ConfigError(f"{path}: a merged model (edge merge) is not one network; edge train "
                          "--recordings --init fine-tunes its parts one by one and merges them again")
    import onnx
    import torch
    from onnx import numpy_helper

    from edge.export.quant import is_qdq
    from edge.train.fit import build_model

    model = build_model(card)
    m = onnx.load(str(path))
    if is_qdq(m):
        raise ConfigError(f"{path}: an INT8 model; fine-tune its FP32 model (NAME.onnx), then "
                          "quantize the result with edge calibrate / edge build --int8")
    inits = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
    state = model.state_dict()
    loaded: set[str] = set()
    for key, value in state.items():
        if key in inits:
            if tuple(inits[key].shape) != tuple(value.shape):
                raise ConfigError(f"{path}: {key} is {list(inits[key].shape)}, the network of "
                                  f"its card has {list(value.shape)}")
            state[key] = torch.from_numpy(inits[key].copy())
            loaded.add(key)
    # The exporter keeps one copy of equal tensors: an ensemble's member whose selectors or
    # normalisation equal an earlier member's has none of its own and takes that one's
    # (check_rebuilt then proves the rebuilt network computes what the file does).
    for key in [k for k in state if k not in loaded and k.startswith("members.")]:
        rest = key.split(".", 2)[2]
        twins = sorted((int(k.split(".", 2)[1]), k) for k in loaded
                       if k.startswith("members.") and k.split(".", 2)[2] == rest)
        if twins and tuple(state[twins[0][1]].shape) == tuple(state[key].shape):
            state[key] = state[twins[0][1]].clone()
            loaded.add(key)
    # conv+norm pairs of the network, in the order forward() runs them
    pairs: dict[torch.nn.Module, tuple[str, torch.nn.Module, str]] = {}
    for name, mod in model.named_modules():
        kids = list(mod.named_children())
        for (cname, conv), (nname, norm) in zip(kids, kids[1:]):
            if isinstance(conv, torch.nn.Conv2d) and isinstance(norm, torch.nn.BatchNorm2d):
                prefix = f"{name}." if name else ""
                pairs[conv] = (prefix + cname, norm, prefix + nname)
    order: list[torch.nn.Module] = []
    hooks = [c.register_forward_hook(lambda mod, i, o: order.append(mod)) for c in pairs]
    args = [torch.zeros([1 if isinstance(d, str) else d for d in info.shape])
            for info in card.inputs.values()]
    model.eval()
    with torch.no_grad():
        model(*args)
    for h in hooks:
        h.remove()
    folded = [n for n in m.graph.node if n.op_type == "Conv" and n.input[1] in inits
              and n.input[1] not in state]
    if len(folded) != len(order):
        raise ConfigError(f"{path}: {len(folded)} folded convolutions, the network of its card "
                          f"has {len(order)} conv+norm pairs: not a model edge train exported")
    model.load_state_dict(state)
    with torch.no_grad():
        for node, conv in zip(folded, order):
            cname, norm, nname = pairs[conv]
            w = inits[node.input[1]]
            b = inits[node.input[2]] if len(node.input) > 2 else np.zeros(w.shape[0], np.float32)
            assert isinstance(conv, torch.nn.Conv2d) and isinstance(norm, torch.nn.BatchNorm2d)
            if tuple(w.shape) != tuple(conv.weight.shape):
                raise ConfigError(f"{path}: {node.input[1]} is {list(w.shape)}, {cname} is "
                                  f"{list(conv.weight.shape)}")
            conv.weight.copy_(torch.from_numpy(w.copy()))
            assert norm.running_mean is not None and norm.running_var is not None
            norm.running_mean.zero_()
            norm.running_var.fill_(1.0 - norm.eps)  # sqrt(var + eps) = 1
            norm.weight.fill_(1.0)
            norm.bias.copy_(torch.from_numpy(b.copy()))
            loaded.add(f"{cname}.weight")
            loaded.update(f"{nname}.{k}" for k in ("weight", "bias", "running_mean", "running_var",
                                                    "num_batches_tracked"))
    missing = [k for k in state if k not in loaded]
    if missing:
        raise ConfigError(f"{path}: no weights for {', '.join(missing[:4])}: not a model "
                          "edge train exported for this card")
    return model


def check_rebuilt(model: "torch.nn.Module", path: Path, card: ModelCard, data: WindowSet) -> float:
    """Largest difference of the rebuilt network's logits from ONNX Runtime's on up to 64 of
    ``data``'s windows; a rebuild that does not compute the same function is an error."""
    import torch

    from edge.runtime.base import load_engine

    idx = slice(0, min(64, len(data)))
    inputs = data.inputs(idx)
    ref = next(iter(load_engine("onnx", path, card, {"threads": 1}).infer(inputs).values()))
    model.eval()
    with torch.no_grad():
        got = model(*[torch.from_numpy(inputs[k]) for k in card.inputs]).numpy()
    diff = float(np.abs(got - ref).max())
    if diff > 1e-3:
        raise ConfigError(f"{path}: the rebuilt network differs from the ONNX model by {diff:.3g} "
                          "in its logits; cannot fine-tune it")
    return diff


def default_config(model_path: Path, card: ModelCard) -> Config:
    """A config to replay recordings with when none is given: the model and the front ends
    its card reads, with their defaults (sources are replaced by each recording)."""
    from edge.front.config import FaceConfig, FrontEndsConfig, HandConfig, PersonConfig, VadConfig
    from edge.front.features import FrontSpec

    spec = FrontSpec.from_dict(card.front) if card.front else None
    stages = spec.stages if spec is not None else set()
    fe = FrontEndsConfig(
        face=FaceConfig(gaze=spec is not None and spec.gaze) if "face" in stages else None,
        person=PersonConfig() if "person" in stages else None,
        hand=HandConfig() if "hand" in stages else None,
        vad=VadConfig() if "vad" in stages else None,
    ) if stages else None
    return Config.model_validate({
        "sources": {"sim": {"type": "scenario", "scenario": card.task}},
        "streams": {"s": {"video": "sim", "audio": "sim"}},
        "model": {"path": str(model_path)},
        "front_ends": fe.model_dump() if fe is not None else None,
    })


def finetune(
    settings: FineTuneSettings, config: Config | None, out_dir: Path, name: str,
    log: TextIO | None = None,
) -> ModelCard:
    """Fine-tune ``settings.init`` on the recordings; write ``out_dir/name.onnx`` and its card
    (with the before/after scores of the held-out recordings); returns the card."""
    log = sys.stderr if log is None else log
    import torch

    from edge.evaluate.eval import load_model
    from edge.evaluate.evalrec import recording_folders, run_recording
    from edge.evaluate.metrics import score
    from edge.train.data import load_labels, recording_files
    from edge.train.fit import fit
    from edge.train.train import export_onnx

    s = settings
    torch.manual_seed(s.seed)
    torch.set_num_threads(s.threads)
    started = time.monotonic()
    init = Path(s.init)
    if not init.is_file():
        raise ConfigError(f"{init}: no such model (--init names an ONNX file with its card)")
    card = load_card(card_path_for(init))
    if card.provenance.get("parts"):
        return _finetune_merged(settings, config, out_dir, name, log)
    if config is None:
        config = default_config(init, card)
    config = config.model_copy(update={"model": ModelConfig(path=str(init))})
    folders = [f for f in recording_folders(s.recordings)
               if load_labels(recording_files(f)[1]).task == card.task]
    if len(folders) < 2:
        raise ConfigError(f"{s.recordings}: fine-tuning needs at least 2 recordings of task "
                          f"{card.task!r} (one is held out for validation), found {len(folders)}")
    val_idx = [i for i in range(len(folders)) if i % s.val_every == s.val_every - 1] or \
        [len(folders) - 1]
    engine = load_model(config)
    print(f"edge train: fine-tuning {init.name} on {len(folders)} recordings "
          f"({len(val_idx)} held out: {', '.join(folders[i].name for i in val_idx)})", file=log)
    runs = []
    for i, folder in enumerate(folders):
        print(f"\r  replaying recording {i + 1}/{len(folders)} through the serving code",
              end="", file=log, flush=True)
        runs.append(run_recording(config, folder, engine, keep_features=True))
    print(file=log)
    parts = [windows_of(r, i) for i, r in enumerate(runs)]
    train_set = WindowSet.concat([p for i, p in enumerate(parts) if i not in val_idx])
    val_set = WindowSet.concat([parts[i] for i in val_idx])
    model = model_from_onnx(init, card)
    diff = check_rebuilt(model, init, card, val_set)
    print(f"edge train: rebuilt {init.name} in PyTorch (logits within {diff:.1e} of ONNX "
          "Runtime)", file=log)
    fit(model, card, train_set, val_set, s.epochs, s.lr, s.batch, s.modality_dropout,
        np.random.default_rng(s.seed), log, started, freeze_norm=True)
    new = card.model_copy(deep=True)
    new.name = name
    out_dir.mkdir(parents=True, exist_ok=True)
    onnx_path = out_dir / f"{name}.onnx"
    export_onnx(model.eval(), new, onnx_path)
    save_card(new, out_dir / f"{name}.yaml")  # the card the engine below checks against

    classes = card.class_names
    thresholds = np.array([c.threshold for c in card.classes], np.float32)
    held = [folders[i] for i in val_idx]

    def report(runs_: list["RecordingRun"]) -> dict[str, Any]:
        segs, n = [], 0
        for r in runs_:
            segs.append((n, n + len(r.probs)))
            n += len(r.probs)
        out = score(np.concatenate([r.probs for r in runs_]),
                    np.concatenate([r.labels for r in runs_]),
                    np.concatenate([r.times for r in runs_]), classes, thresholds, segs)
        out["events"] = {r.name: [f"{e['rule']} @{e['t_s']:.1f} s" for e in r.events
                                  if e["event"] == "start"] for r in runs_}
        return out

    before = report([runs[i] for i in val_idx])
    after_cfg = config.model_copy(update={"model": ModelConfig(path=str(onnx_path))})
    after_engine = load_model(after_cfg)
    after = report([run_recording(after_cfg, f, after_engine) for f in held])
    print(format_before_after(before, after, classes), file=log)
    init_data = card.provenance.get("data", "")
    train_names = [f.name for i, f in enumerate(folders) if i not in val_idx]
    new.provenance = {
        "data": f"fine-tuned on recordings in {s.recordings}: training "
                f"{', '.join(train_names)}; held out {', '.join(f.name for f in held)}. "
                f"Starting model {init.name}: {init_data}",
        "init": {"model": str(init), "sha256": sha256_file(init), "card": card.name},
        "window_hop_s": float(config.window.hop),
        "seed": s.seed,
        "epochs": s.epochs,
        "command": f"edge train --recordings {s.recordings} --init {init} --epochs {s.epochs} "
                   f"--lr {s.lr:g} --seed {s.seed}",
        "torch": torch.__version__,
        "trained": _dt.date.today().isoformat(),
        "train_seconds": round(time.monotonic() - started),
    }
    # the same network: a later fine-tune rebuilds it
    for key in ("audio_pool", "members", "unread"):
        if key in card.provenance:
            new.provenance[key] = card.provenance[key]
    new.metrics = {
        "finetune_heldout": {
            "recordings": [f.name for f in held],
            "before": {"macro_f1": before["macro_f1"], "f1": _f1s(before)},
            "after": {"macro_f1": after["macro_f1"], "f1": _f1s(after)},
        },
        "starting_model": card.metrics,
    }
    save_card(new, out_dir / f"{name}.yaml")
    print(f"edge train: wrote {onnx_path} and its card ({time.monotonic() - started:.0f} s)",
          file=log)
    return new


def _finetune_merged(settings: FineTuneSettings, config: Config | None, out_dir: Path, name: str,
                     log: TextIO) -> ModelCard:
    """A merged model (``edge merge``) is fine-tuned part by part, each on the same recordings
    with the same held-out split, into ``out_dir/NAME-parts/``; the tuned parts are merged
    again, each class from the part it came from and with the merged card's threshold, into
    ``out_dir/NAME.onnx``."""
    from edge.export.merge import merge_models, merged_parts

    init = Path(settings.init)
    init_card = load_card(card_path_for(init))
    parts = merged_parts(init, init_card)
    tuned = []
    for k, (path, classes) in enumerate(parts):
        print(f"edge train: {init.name} is merged; part {k + 1}/{len(parts)}: {path.name} "
              f"({', '.join(classes)})", file=log)
        part_name = path.name[: -len(".onnx")] + "-tuned"
        finetune(dataclasses.replace(settings, init=str(path)), config, out_dir / f"{name}-parts",
                 part_name, log)
        tuned.append(out_dir / f"{name}-parts" / f"{part_name}.onnx")
    take = {c: tuned[k] for k, (_, classes) in enumerate(parts) if k > 0 for c in classes}
    # The starting model's thresholds are kept: a part's are, and where the merge's card holds
    # another (edge merge --threshold, or set by hand), it is set again.
    kept = {c.name: c.threshold for c in init_card.classes}
    differ = {}
    for k, (_, classes) in enumerate(parts):
        part = {c.name: c.threshold for c in load_card(card_path_for(tuned[k])).classes}
        differ.update({c: kept[c] for c in classes if c in kept and part.get(c) != kept[c]})
    card = merge_models(tuned[0], take, out_dir / f"{name}.onnx",
                        command=f"edge train --recordings {settings.recordings} --init {init} "
                                f"--epochs {settings.epochs} --lr {settings.lr:g} --seed {settings.seed}"
                                " (each part fine-tuned, then merged)",
                        thresholds=differ)
    print(f"edge train: wrote {out_dir / f'{name}.onnx'} and its card, merged from the "
          f"{len(tuned)} fine-tuned parts in {out_dir / f'{name}-parts'}", file=log)
    return card


def _f1s(report: dict[str, Any]) -> dict[str, float]:
    return {c: round(float(v["f1"]), 4) for c, v in report["classes"].items()}


def format_before_after(before: dict[str, Any], after: dict[str, Any], classes: list[str]) -> str:
    """Frame F1 per class on the held-out recordings, starting model against fine-tuned, and
    the rule events each raised."""
    lines = ["held-out recordings: frame F1, starting model -> fine-tuned",
             f"  {'class':<14} {'before':>7} {'after':>7} {'support':>8}"]
    for c in classes:
        b, a = before["classes"][c], after["classes"][c]
        lines.append(f"  {c:<14} {b['f1']:7.3f} {a['f1']:7.3f} {a['support']:8d}")
    lines.append(f"  {'macro':<14} {before['macro_f1']:7.3f} {after['macro_f1']:7.3f}")
    for name in before["events"]:
        lines.append(f"  {name} events before: {', '.join(before['events'][name]) or 'none'}; "
                     f"after: {', '.join(after['events'][name]) or 'none'}")
    return "\n".join(lines)
