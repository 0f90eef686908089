"""``edge eval --front-sim N --sweep CLASS=P,P...``: class thresholds tried for the rules.

Validation picks a class's threshold for its frame F1, tick by tick; a rule reads runs of
ticks (a ``sleep`` is 3 s of ``eyes_closed`` over its threshold, a ``long_distraction`` 3 s of
``distracted`` with no tick under the off threshold), so the threshold that serves a rule best
can be another. The model runs once over the scenarios; the config's rules are then served
again at every combination of the thresholds given, each with the frame F1 it gives. A swept
class's on threshold is the value tried, whatever the config's ``decisions`` set for it (its
class or its defaults); its off threshold is the one tried with it (``ON/OFF``, e.g.
``eyes_closed=0.8/0.5,0.8/0.7``), else the config's where that lies below the on threshold,
else the decision layer's default (0.1 under; half, at 0.1 and under), and each row says which.
Settle a value on scenarios of their own (``--seed``), then score it once on others, and
set it where serving reads it: the card (``edge merge --threshold``) where the config sets no
``on_threshold`` for the class, or the config (``decisions.classes.CLASS.on_threshold``), which
serving reads over the card's; an off threshold only in the config (``off_threshold``).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

import numpy as np

from edge.decisions.rules import ClassDecision, DecisionsConfig, default_off
from edge.errors import ConfigError
from edge.evaluate.metrics import score
from edge.runtime.card import ModelCard

MAX_COMBINATIONS = 64  # each one serves every rule over every scenario again


#: One threshold tried: the on threshold, and the off threshold or None (see the docstring).
Trial = tuple[float, float | None]


def _trial(value: str) -> Trial:
    on, sep, off = value.partition("/")
    return float(on), (float(off) if sep else None)


def parse_sweep(items: Sequence[str], classes: Sequence[str]) -> dict[str, list[Trial]]:
    """``CLASS=ON[/OFF],...`` items -> {class: [(on, off or None), ...]}, checked against the
    model's classes."""
    out: dict[str, list[Trial]] = {}
    for item in items:
        cls, sep, values = item.partition("=")
        try:
            trials = [_trial(v) for v in values.split(",")] if sep and values else []
        except ValueError:
            trials = []
        if not cls or not trials:
            raise ConfigError(f"--sweep {item}: CLASS=P,P,... (thresholds, e.g. "
                              "eyes_closed=0.6,0.7,0.8, or with off thresholds 0.8/0.5,0.8/0.7)")
        if cls not in classes:
            raise ConfigError(f"--sweep: no class {cls} in the model ({', '.join(classes)})")
        if cls in out:
            raise ConfigError(f"--sweep: {cls} given twice")
        bad = [on for on, _ in trials if not 0.05 <= on <= 0.99]
        if bad or len(set(trials)) != len(trials):
            raise ConfigError(f"--sweep {item}: distinct thresholds of 0.05-0.99")
        if any(off is not None and not 0 <= off < on for on, off in trials):
            raise ConfigError(f"--sweep {item}: each off threshold must be at least 0 and "
                              "below its on threshold (ON/OFF)")
        out[cls] = trials
    n = int(np.prod([len(v) for v in out.values()])) if out else 0
    if n > MAX_COMBINATIONS:
        raise ConfigError(f"--sweep: {n} combinations of thresholds; at most {MAX_COMBINATIONS}")
    return out


def swept_class(decisions: DecisionsConfig, name: str, on: float,
                off: float | None = None) -> tuple[ClassDecision, float]:
    """Class ``name``'s decision settings with ``on`` as its on threshold, and the off threshold
    they serve with: ``off`` where given, else as the module's docstring says."""
    if off is None:
        off = decisions.for_class(name).off_threshold
        if off is None or off >= on:
            off = default_off(on)
    policy = (decisions.classes.get(name) or ClassDecision()).model_copy(
        update={"on_threshold": on, "off_threshold": off})
    return policy, off


def sweep_thresholds(
    decisions: DecisionsConfig,
    card: ModelCard,
    sweep: Mapping[str, Sequence[Trial]],
    probs: np.ndarray,
    labels: np.ndarray,
    t_s: np.ndarray,
    scenario: np.ndarray,
    grid_s: float,
    hop_s: float,
    segs: Sequence[tuple[int, int]],
    measures: Mapping[str, np.ndarray] | None = None,
    log: TextIO | None = None,
) -> list[dict[str, Any]]:
    """For each combination of ``sweep``'s thresholds (the card's for every other class): the
    thresholds, the frame F1 (:func:`~edge.evaluate.metrics.score`) and the rule events
    (:func:`~edge.evaluate.rulescore.score_rules`) over ``probs``; progress to ``log``."""
    from edge.evaluate.rulescore import score_rules

    classes = card.class_names
    swept = list(sweep)
    rows = []
    combos = list(itertools.product(*(sweep[c] for c in swept)))
    for n, values in enumerate(combos):
        if log is not None:
            print(f"\r  thresholds {n + 1}/{len(combos)}", end="", file=log, flush=True)
        chosen = {name: on for name, (on, _) in zip(swept, values)}
        trial = card.model_copy(update={"classes": [
            c.model_copy(update={"threshold": chosen.get(c.name, c.threshold)})
            for c in card.classes]})
        policies = dict(decisions.classes)
        offs = {}
        for name, (on, off) in zip(swept, values):
            policies[name], offs[name] = swept_class(decisions, name, on, off)
        dc = decisions.model_copy(update={"classes": policies})
        thresholds = np.array([c.threshold for c in trial.classes], np.float32)
        frame: dict[str, Any] = score(probs, labels, t_s, classes, thresholds, list(segs))
        rules = score_rules(dc, trial, probs, labels, t_s, scenario, grid_s, hop_s,
                            measures=measures)
        rows.append({"thresholds": chosen, "off_thresholds": offs, "macro_f1": frame["macro_f1"],
                     "f1": {c: frame["classes"][c]["f1"] for c in swept},
                     "rules": rules["rules"]})
    if log is not None:
        print(file=log)
    return rows


def format_sweep(rows: Sequence[dict[str, Any]]) -> str:
    """One line per combination: its thresholds, the swept classes' F1 and the macro F1, and
    per rule the events found of the true ones, the false ones (of them over a labelled
    episode of another length) and the start latency's median."""
    swept = list(rows[0]["thresholds"])
    rules = list(rows[0]["rules"])
    head = (" ".join(f"{c[:12] + ' on/off':>18}" for c in swept) + " | "
            + " ".join(f"{'F1 ' + c[:11]:>14}" for c in swept) + f" {'macro':>6} | "
            + " ".join(f"{r[:22]:>22}" for r in rules))
    lines = ["thresholds tried (each rule: found/true, false (in an episode), start latency "
             "p50):", head]
    for row in rows:
        cells = []
        for r in rules:
            s = row["rules"][r]
            lat = "-" if s["latency_s_p50"] is None else f"{s['latency_s_p50']:.2f}s"
            cells.append(f"{s['found']}/{s['true_events']} {s['false_events']}"
                         f"({s['false_in_episode']}) {lat}")
        pairs = [f"{row['thresholds'][c]:.2f}/{row['off_thresholds'][c]:.2f}" for c in swept]
        lines.append(" ".join(f"{p:>18}" for p in pairs) + " | "
                     + " ".join(f"{row['f1'][c]:>14.3f}" for c in swept)
                     + f" {row['macro_f1']:>6.3f} | " + " ".join(f"{x:>22}" for x in cells))
    return "\n".join(lines)
