"""``edge merge``: one model whose classes come from several trained models.

Networks trained by different recipes are good at different classes: one keeps a real closed
eye that a larger one reads open, the larger one finds phones the smaller misses. A merged
model serves each class from the network that serves it best, in one ONNX graph with one set
of inputs: every part reads the same window, and each class answers with its own part's logit
and its own part's threshold. So the parts must read their inputs exactly alike (the task, the
window, the video and audio preprocessing, the front-end features and eye baseline, the input
tensors, the activation); a part that differs in any of these is refused, naming the field.
One difference is taken: a part may read some of the base's front-end features (a network
trained before the base read gaze), in any order; it is fed its own columns of the base's
``front`` tensor, picked in the graph.

FP32 in, FP32 out: the merged model is quantized like any other (``edge calibrate``, ``edge
build --int8``). It costs the sum of its parts. Its card keeps each part's provenance (command,
data, seeds, sha256, path) under ``provenance.parts``; ``edge train --recordings --init``
fine-tunes such a model part by part and merges the tuned parts again.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Mapping
from typing import Any

import numpy as np

from edge.errors import ConfigError, EngineError
from edge.runtime.card import ModelCard, card_path_for, load_card, save_card, sha256_file

_ONNX = "ai.onnx"

#: Card fields every part must share with the base: the merged graph feeds all parts from one
#: set of inputs cut and preprocessed the one way.
SHARED = ("task", "window", "video", "audio", "inputs", "front", "activation")


@dataclass
class Part:
    """One model of a merge and the classes it answers for (in the merged model's order)."""

    path: Path
    card: ModelCard
    model: Any  # the loaded ONNX ModelProto
    sha256: str
    classes: list[str] = field(default_factory=list)


def _load(path: str | Path) -> Part:
    import onnx

    from edge.export.quant import is_qdq

    p = Path(path)
    card = load_card(card_path_for(p))
    try:
        model = onnx.load(str(p))
    except FileNotFoundError:
        raise EngineError(f"{p}: no such model") from None
    except Exception as exc:  # onnx raises DecodeError and friends for a file that is not ONNX
        raise EngineError(f"{p}: not an ONNX model: {exc}") from None
    if is_qdq(model):
        raise EngineError(f"{p}: an INT8 model; merge the FP32 models (NAME.onnx), then quantize "
                          "the merged one with edge calibrate / edge build --int8")
    if len(card.outputs) != 1 or len(model.graph.output) != 1:
        raise EngineError(f"{p}: a merge needs models with one output (the class logits), not "
                          f"{len(model.graph.output)}")
    out_name = next(iter(card.outputs))
    if model.graph.output[0].name != out_name:
        raise EngineError(f"{p}: its output is {model.graph.output[0].name!r}, its card says "
                          f"{out_name!r}")
    return Part(p, card, model, sha256_file(p))


def front_columns(base: ModelCard, card: ModelCard) -> list[int] | None:
    """Where each of a part's front-end features sits among the base's (None: it reads them
    all, in the base's order); a part reading one the base does not is refused."""
    if not base.front or not card.front:
        return None
    have, want = list(base.front.get("features", [])), list(card.front.get("features", []))
    if want == have:
        return None
    missing = [f for f in want if f not in have]
    if missing:
        raise EngineError(f"a part reads {', '.join(missing)}, which the base does not: make the "
                          "model that reads most features the base (--base)")
    return [have.index(f) for f in want]


def _check_alike(base: ModelCard, base_path: Path, card: ModelCard, path: Path) -> None:
    cols = front_columns(base, card)
    for key in SHARED:
        a, b = getattr(base, key), getattr(card, key)
        if key == "inputs":
            a = {k: v.model_dump() for k, v in a.items()}
            b = {k: v.model_dump() for k, v in b.items()}
            if cols is not None and "front" in a and "front" in b:  # its own columns of it
                a["front"] = {**a["front"], "shape": a["front"]["shape"][:-1] + [len(cols)]}
        if key == "front" and cols is not None:  # its features a subset of the base's
            a = {k: v for k, v in a.items() if k != "features"}
            b = {k: v for k, v in b.items() if k != "features"}
        if a != b:
            raise EngineError(f"{path}: its card's {key} differs from {base_path}'s; merged parts "
                              f"must read the same inputs the same way ({key}: {b!r} against {a!r})")
    if next(iter(card.outputs)) != next(iter(base.outputs)):
        raise EngineError(f"{path}: its output is {next(iter(card.outputs))!r}, {base_path}'s "
                          f"{next(iter(base.outputs))!r}")


def plan_merge(base: str | Path, take: Mapping[str, str | Path]) -> list[Part]:
    """The parts of a merge: ``base`` answers for every class ``take`` does not give to another
    model (``{class: model}``). Checks that every part reads the same inputs and has the class
    it is asked for; the base part comes first."""
    base_part = _load(base)
    base_path, base_card = base_part.path, base_part.card
    names = base_card.class_names
    unknown = sorted(set(take) - set(names))
    if unknown:
        raise EngineError(f"{', '.join(unknown)}: not a class of {base_path} "
                          f"({', '.join(names)})")
    parts: dict[Path, Part] = {base_path.resolve(): base_part}
    owner: dict[str, Path] = {}
    for cls in names:
        src = Path(take[cls]) if cls in take else base_path
        key = src.resolve()
        if key not in parts:
            parts[key] = _load(src)
            _check_alike(base_card, base_path, parts[key].card, src)
        if cls not in parts[key].card.class_names:
            raise EngineError(f"{src}: has no class {cls!r} ({', '.join(parts[key].card.class_names)})")
        owner[cls] = key
    for cls in names:
        parts[owner[cls]].classes.append(cls)
    return [p for p in parts.values() if p.classes or p is base_part]


def _owner(parts: list[Part], cls: str) -> tuple[Part, int]:
    """The part answering for ``cls`` and the class's index among that part's own outputs."""
    owner = next(p for p in parts if cls in p.classes)
    return owner, owner.card.class_names.index(cls)


def merged_graph(parts: list[Part]) -> Any:
    """One ONNX model: every part's graph under its own prefix, all reading the base's inputs,
    and one output gathering each class's logit from the part that answers for it."""
    import onnx
    from onnx import compose, helper, numpy_helper

    models = [p.model for p in parts]
    base, base_card = models[0], parts[0].card
    opsets = {(o.domain, o.version) for m in models for o in m.opset_import}
    domains = [d for d, _ in opsets]
    if len(domains) != len(set(domains)):
        raise EngineError("the parts were exported at different ONNX opsets "
                          f"({', '.join(f'{d or _ONNX} {v}' for d, v in sorted(opsets))}); "
                          "export them alike")
    out_name = next(iter(base_card.outputs))
    inputs = {i.name: i for i in base.graph.input}
    graph = helper.make_graph([], base.graph.name or base_card.name, list(base.graph.input), [])
    heads: dict[str, str] = {}  # class -> the prefixed output of the part answering for it
    for k, (part, model) in enumerate(zip(parts, models)):
        for i in model.graph.input:
            if i.name not in inputs:
                raise EngineError(f"{part.path}: reads {i.name!r}, which {parts[0].path} does not")
        if not part.classes:
            continue
        prefixed = compose.add_prefix(model, f"part{k}_", rename_inputs=False)
        cols = front_columns(base_card, part.card)
        if cols is not None:  # the part reads some of the base's features: its columns
            picked = f"part{k}_front"
            graph.initializer.append(numpy_helper.from_array(np.array(cols, np.int64),
                                                             f"part{k}_front_columns"))
            graph.node.append(helper.make_node("Gather", ["front", f"part{k}_front_columns"],
                                               [picked], axis=2, name=f"part{k}_front_take"))
            for node in prefixed.graph.node:
                node.input[:] = [picked if x == "front" else x for x in node.input]
        graph.node.extend(prefixed.graph.node)
        graph.initializer.extend(prefixed.graph.initializer)
        graph.value_info.extend(prefixed.graph.value_info)
        for cls in part.classes:
            heads[cls] = f"part{k}_{out_name}"
    columns = []
    for i, cls in enumerate(base_card.class_names):
        _, j = _owner(parts, cls)
        graph.initializer.append(numpy_helper.from_array(np.array([j], np.int64), f"merge_index_{i}"))
        graph.node.append(helper.make_node("Gather", [heads[cls], f"merge_index_{i}"],
                                           [f"merge_{cls}"], axis=1, name=f"merge_take_{cls}"))
        columns.append(f"merge_{cls}")
    graph.node.append(helper.make_node("Concat", columns, [out_name], axis=1, name="merge_concat"))
    graph.output.extend(base.graph.output)
    merged = helper.make_model(graph, opset_imports=list(base.opset_import),
                               ir_version=base.ir_version, producer_name="edge merge")
    onnx.checker.check_model(merged)
    return merged


def merged_card(parts: list[Part], name: str, command: str = "", where: Path | None = None,
                thresholds: Mapping[str, float] | None = None) -> ModelCard:
    """The base's card with each class (its description, modality and threshold) from the part
    answering for it, and every part's provenance under ``provenance.parts`` (with its path
    relative to ``where``, the merged model's folder, so a fine-tune can find the parts);
    ``thresholds`` sets some classes' thresholds in place of what their part's validation
    picked (both kept under ``provenance.thresholds`` and said in the notes)."""
    base = parts[0].card
    thresholds = dict(thresholds or {})
    unknown = sorted(set(thresholds) - set(base.class_names))
    if unknown:
        raise EngineError(f"a threshold for {', '.join(unknown)}: no such class in "
                          f"{parts[0].path.name} ({', '.join(base.class_names)})")
    bad = {c: t for c, t in thresholds.items() if not 0.05 <= t <= 0.99}
    if bad:
        raise EngineError("a class threshold is a probability of 0.05-0.99, not "
                          + ", ".join(f"{c}={t:g}" for c, t in bad.items()))
    classes, changed = [], {}
    for cls in base.class_names:
        owner, j = _owner(parts, cls)
        info = owner.card.classes[j]
        earlier = owner.card.provenance.get("thresholds", {}).get(cls)  # a merged part's own
        if cls in thresholds:
            picked = earlier["picked"] if isinstance(earlier, dict) else info.threshold
            changed[cls] = {"picked": picked, "set": thresholds[cls]}
            info = info.model_copy(update={"threshold": thresholds[cls]})
        elif isinstance(earlier, dict):
            changed[cls] = earlier
        classes.append(info)
    who = "; ".join(f"{', '.join(p.classes)} from {p.path.name}" for p in parts if p.classes)
    provenance: dict[str, Any] = {
        "data": f"merged ({who}): see parts",
        "command": command,
        "merged": datetime.date.today().isoformat(),
        "parts": [{"model": p.path.name,
                   "path": os.path.relpath(p.path.resolve(), (where or p.path.parent).resolve()),
                   "sha256": p.sha256, "classes": p.classes,
                   "provenance": p.card.provenance, "metrics": p.card.metrics}
                  for p in parts if p.classes],
    }
    if changed:
        provenance["thresholds"] = changed
    notes = base.notes + ("\n" if base.notes else "") + (
        f"Merged from {len(provenance['parts'])} parts ({who}); it costs their sum. The "
        "metrics of each part were measured on that part alone.")
    if changed:
        notes += (" Thresholds set at the merge (edge merge --threshold) for the rules that read "
                  "them: " + ", ".join(f"{c} {v['set']:g} (validation picked {v['picked']:g})"
                                       for c, v in changed.items()) + ".")
    return base.model_copy(update={"name": name, "classes": classes, "provenance": provenance,
                                   "metrics": {}, "notes": notes})


def merge_models(base: str | Path, take: Mapping[str, str | Path], out: str | Path,
                 command: str = "", thresholds: Mapping[str, float] | None = None) -> ModelCard:
    """Write the merged model ``out`` (FP32 ONNX) and its card beside it; returns the card.

    ``base`` answers for every class ``take`` (``{class: model}``) does not give to another
    model; ``thresholds`` (``{class: p}``) sets those classes' thresholds in the card. ``out``
    may not be one of the parts: write elsewhere, then move it into place."""
    import onnx

    dst = Path(out)
    if not dst.name.endswith(".onnx") or dst.name.endswith(".int8.onnx"):
        raise EngineError(f"{dst}: the merged model is an FP32 NAME.onnx")
    parts = plan_merge(base, take)
    if len([p for p in parts if p.classes]) < 2:
        raise EngineError("nothing to merge: every class comes from one model (--take CLASS=MODEL "
                          "gives a class to another)")
    for p in parts:
        if p.path.resolve() == dst.resolve() or card_path_for(p.path).resolve() == card_path_for(dst).resolve():
            raise EngineError(f"{dst}: is one of the parts; write the merge elsewhere, then move it")
    name = card_path_for(dst).stem
    card = merged_card(parts, name, command, dst.parent, thresholds)
    model = merged_graph(parts)
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.tmp")
    onnx.save(model, str(tmp))
    os.replace(tmp, dst)
    card_tmp = dst.with_name(f".{name}.yaml.tmp")
    save_card(card, card_tmp)
    os.replace(card_tmp, card_path_for(dst))
    return card


def trained_eye_glances(card: ModelCard) -> float:
    """The share of simulated glances the eyes led that a model (any part of a merged one)
    was trained on (``edge train --eye-glances``; 0 when none)."""
    provs = [card.provenance] + [p.get("provenance", {})
                                 for p in card.provenance.get("parts", [])]
    got = [p.get("eye_glances") for p in provs]
    return max([float(g) for g in got if isinstance(g, (int, float))], default=0.0)


def part_seeds(card: ModelCard) -> list[int]:
    """The ``edge train --seed`` of a model, of each of its members (``--members N`` trains
    seeds SEED..SEED+N-1) and, for a merged one, of each part."""
    provs = [p.get("provenance", {}) for p in card.provenance.get("parts", [])] or [card.provenance]
    seeds: set[int] = set()
    for p in provs:
        if isinstance(p.get("seed"), int):
            members = p.get("members", 1)
            seeds.update(p["seed"] + k for k in range(members if isinstance(members, int) else 1))
    return sorted(seeds)


def merged_parts(path: str | Path, card: ModelCard) -> list[tuple[Path, list[str]]]:
    """The part files of the merged model ``path`` (found where its card says, beside it) and
    the classes each answers for, base first; a part moved away or changed since the merge is
    a :class:`ConfigError`."""
    out = []
    for part in card.provenance.get("parts", []):
        p = Path(path).parent / str(part.get("path", part["model"]))
        if not p.is_file():
            raise ConfigError(f"{path}: its part {part['model']} is not at {p} (merged models "
                              "keep their parts where the merge found them)")
        if sha256_file(p) != part["sha256"]:
            raise ConfigError(f"{p}: changed since {Path(path).name} was merged from it "
                              "(sha256 differs)")
        out.append((p, list(part["classes"])))
    return out
