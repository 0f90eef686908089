"""``edge eval --front-sim N``: a model over front-end features on unseen simulated scenarios.

A model over front-end features cannot be scored on rendered pixels (no real face detector finds
the simulator's cartoon faces); it is scored on what :mod:`edge.sim.frontsim` says the front
ends would give for ``N`` scenarios from seeds no training or calibration set uses (9000 on,
the held-out split of the real sounds mixed in) — the same windows ``edge train --front``
scores its exported model on, so the card's ``heldout_sim`` and this report agree while the
simulator is the one the model was trained with (a card's ``reproduces_at`` says when not). Each is
scored like :func:`edge.evaluate.eval.evaluate`: both modalities, then the video masked (every
front row masked, as serving masks a window without frames) and the audio masked (log-mel
zeroed, and the VAD's column with it: no microphone, no speech activity).
"""

from __future__ import annotations

import io
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal, TextIO

import numpy as np

from edge.config import Config
from edge.decisions.rules import DecisionsConfig
from edge.errors import ConfigError
from edge.evaluate.eval import load_model
from edge.evaluate.metrics import score
from edge.runtime.card import ModelCard

if TYPE_CHECKING:
    from edge.train.data import WindowSet

HELDOUT_SEED = 9000  # edge train --front scores its export on seeds from 9000 + its seed
GRID_S = 0.25  # the scenarios' tick grid, as edge train --front scores its export


def masked(inputs: dict[str, np.ndarray], mode: str, speech_cols: list[int]) -> dict[str, np.ndarray]:
    """``inputs`` with a modality masked the way serving (and training's dropout) masks it."""
    out = {k: v.copy() for k, v in inputs.items()}
    if mode == "video_masked":
        out["front"][:] = 0.0
        out["front_mask"][:] = 0.0
    elif mode == "audio_masked":
        out["audio"][:] = 0.0
        out["audio_mask"][:] = 0.0
        if speech_cols:
            out["front"][:, :, speech_cols] = 0.0
    return out


def evaluate_front_sim(
    config: Config,
    scenarios: int = 24,
    seed: int = HELDOUT_SEED,
    seconds: float = 24.0,
    sounds: Sequence[str] = (),
    log: TextIO | None | Literal["stderr"] = "stderr",
    extra_rates: dict[str, float] | None = None,
    bank_kinds: Sequence[str] | None = None,
    perturb: Sequence[str] = (),
    fps: Sequence[float] = (),
    sweep: Sequence[str] = (),
    only: Sequence[int] = (),
    eye_glances: float = 0.0,
) -> dict[str, Any]:
    """Scores of the config's model on ``scenarios`` feature-level scenarios, in three modes,
    and its config's rule events (:mod:`edge.evaluate.rulescore`) with both modalities;
    ``extra_rates`` adds events a minute of some classes (rare ones, for their rules);
    ``bank_kinds``: the kinds taken from fetched banks among ``sounds`` (None: all);
    ``perturb`` changes the front-end features before the driver's baselines, as ``edge eval
    --recordings --perturb`` does (:mod:`edge.evaluate.perturb`); ``fps``: the camera rates the
    scenarios draw from (empty: the task's own, as ``edge train``); ``sweep`` (``CLASS=P,P...``)
    serves the rules again at other class thresholds (:mod:`edge.evaluate.sweep`); ``only``:
    score these scenarios of the set alone (their index, as the false rule events name them),
    each the very scenario the whole set holds; ``eye_glances``: the share of the driver's
    glances away that the eyes lead (:func:`~edge.sim.frontrows.face_frames`)."""
    log = sys.stderr if log == "stderr" else log
    engine = load_model(config)
    card = engine.card
    if not card.front:
        raise ConfigError(f"model {card.name!r} reads pixels: score it on rendered scenarios "
                          "(edge eval --scenario)")
    from edge.evaluate.sweep import parse_sweep
    from edge.export.merge import part_seeds
    from edge.front.engines import FRONT_DIR
    from edge.front.vad import StreamingVad
    from edge.sim.frontaudio import SoundBank
    from edge.sim.frontsim import check_camera_fps, check_eye_glances
    from edge.train.train import generate_front

    check_camera_fps(tuple(fps))
    check_eye_glances(eye_glances, card.task)
    picked = sorted(set(only))
    outside = [i for i in picked if not 0 <= i < scenarios]
    if outside:
        raise ConfigError(f"--only {' '.join(map(str, outside))}: the set holds scenarios "
                          f"0-{scenarios - 1} (--front-sim {scenarios})")
    swept = parse_sweep(sweep, card.class_names)
    if swept and config.decisions is None:
        raise ConfigError("--sweep: the config has no decisions: section (no rules to serve)")
    for trained in part_seeds(card):
        if seed in (1000 + trained, 2000 + trained):
            raise ConfigError(f"seed {seed}: the scenarios model {card.name!r} was trained or "
                              f"validated on (edge train --seed {trained} draws from "
                              f"{1000 + trained} and {2000 + trained}); take another")
    bank = SoundBank.load(sounds, "heldout", bank_kinds)
    vad = StreamingVad(config.front_ends.dir if config.front_ends is not None else FRONT_DIR)
    unknown = sorted(set(extra_rates or {}) - set(card.class_names))
    if unknown:
        raise ConfigError(f"--extra-events: {', '.join(unknown)} not among the model's classes "
                          f"({', '.join(card.class_names)})")
    change = None
    if perturb:
        from edge.evaluate.perturb import front_change, parse_changes
        from edge.front.features import FrontSpec

        change = front_change(FrontSpec.from_dict(card.front), parse_changes(perturb))
    data = generate_front(card, scenarios, seconds, seed, GRID_S, bank, vad,
                          log if log is not None else io.StringIO(), extra_rates=extra_rates,
                          change=change, fps=tuple(fps), only=set(picked) or None,
                          eye_glances=eye_glances)
    classes = card.class_names
    thresholds = np.array([c.threshold for c in card.classes], np.float32)
    speech_cols = [k for k, f in enumerate(card.front["features"]) if f.startswith("speech.")]
    labels = data.labels >= 0.5
    segs = []
    for s in np.unique(data.scenario):
        idx = np.flatnonzero(data.scenario == s)
        segs.append((int(idx[0]), int(idx[-1]) + 1))
    report: dict[str, Any] = {
        "scenarios": f"{scenarios} x {seconds:g} s feature-level (edge.sim.frontsim), seeds from "
                     f"{seed}"
                     + (f", held-out sounds of {', '.join(sounds)}" if sounds
                        else ", no real sounds")
                     + (f" (banks: {', '.join(bank_kinds)})" if bank_kinds is not None else "")
                     + "".join(f", +{r:g} {c} a minute" for c, r in (extra_rates or {}).items())
                     + (f", front-end features changed: {' '.join(perturb)}" if perturb else "")
                     + (f", cameras at {', '.join(f'{f:g}' for f in fps)} fps" if fps else "")
                     + (f", {eye_glances:g} of the glances away led by the eyes"
                        if eye_glances else "")
                     + (f", only scenario {', '.join(map(str, picked))}" if picked else ""),
        "model": card.name,
    }
    for mode in ("both", "video_masked", "audio_masked"):
        logits = []
        for i in range(0, len(data), 64):
            x = masked(data.inputs(slice(i, i + 64)), mode, speech_cols)
            logits.append(next(iter(engine.infer(x).values())))
        probs = 1.0 / (1.0 + np.exp(-np.concatenate(logits)))
        report[mode] = score(probs, labels, data.t_s, classes, thresholds, segs)
        report[mode]["ticks"] = len(data)
        if mode == "both" and config.decisions is not None:
            from edge.evaluate.rulescore import score_rules

            heard = sound_measures(config.decisions, card, data)
            hop = float(config.window.hop)
            report["rule_events"] = score_rules(config.decisions, card, probs, labels, data.t_s,
                                                data.scenario, GRID_S, hop, measures=heard)
            if swept:
                from edge.evaluate.sweep import sweep_thresholds

                report["sweep"] = sweep_thresholds(config.decisions, card, swept, probs, labels,
                                                   data.t_s, data.scenario, GRID_S, hop, segs,
                                                   measures=heard, log=log)
    return report


def sound_measures(dc: DecisionsConfig, card: ModelCard, data: WindowSet) -> dict[str, np.ndarray]:
    """Each window's sound measures that the rules' ``unless`` and ``needs`` name, from its log-mel as
    serving measures them (:mod:`edge.service.hearing`); NaN where a window has too little."""
    from edge.features.logmel import LogMelSpec
    from edge.service.hearing import Hearing

    hearing = Hearing(dc, LogMelSpec.from_dict(card.audio), ())
    out = {name: np.full(len(data), np.nan) for name in hearing.measures}
    for name, measure in hearing.measures.items():
        for i in range(len(data)):
            v = measure(data.audio[i, 0], data.audio_mask[i] > 0)
            out[name][i] = np.nan if v is None else v
    return out


DRAW_STRIDE = 10000  # --draws: draw k is the scenarios of seed + k * DRAW_STRIDE


def draw_seeds(seed: int, draws: int) -> list[int]:
    """The seeds of ``draws`` independent sets of scenarios, the first ``seed`` itself."""
    if draws < 1:
        raise ConfigError(f"--draws {draws}: at least 1")
    return [seed + k * DRAW_STRIDE for k in range(draws)]


def summarize_draws(seeds: Sequence[int], reports: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Frame F1 (both modalities) per draw, and the spread of the macro F1 over the draws: how
    much one set of unseen scenarios can flatter or wrong a model."""
    rows = [{"seed": s, "macro_f1": r["both"]["macro_f1"],
             "f1": {k: v["f1"] for k, v in r["both"]["classes"].items()}}
            for s, r in zip(seeds, reports)]
    macro = np.array([r["macro_f1"] for r in rows], np.float64)
    classes = list(rows[0]["f1"])  # draw_seeds gives at least one
    return {"draws": rows,
            "macro_f1": {"mean": round(float(macro.mean()), 4), "min": round(float(macro.min()), 4),
                         "max": round(float(macro.max()), 4)},
            "f1_mean": {c: round(float(np.mean([r["f1"][c] for r in rows])), 4) for c in classes}}


def format_draws(summary: dict[str, Any]) -> str:
    """One line per draw (seed, macro F1, each class's F1), then their mean, min and max."""
    classes = list(summary["f1_mean"])
    lines = [f"{'draw (seed)':<12} {'macro':>6} " + " ".join(f"{c[:11]:>11}" for c in classes)]
    for r in summary["draws"]:
        lines.append(f"{r['seed']:<12} {r['macro_f1']:>6.3f} "
                     + " ".join(f"{r['f1'][c]:>11.3f}" for c in classes))
    m = summary["macro_f1"]
    lines.append(f"{'mean':<12} {m['mean']:>6.3f} "
                 + " ".join(f"{summary['f1_mean'][c]:>11.3f}" for c in classes))
    lines.append(f"macro F1 over {len(summary['draws'])} draws: mean {m['mean']:.3f}, "
                 f"min {m['min']:.3f}, max {m['max']:.3f}")
    return "\n".join(lines)
