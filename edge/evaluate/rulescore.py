"""Rule events scored on simulated scenarios: the config's rules over a model's probabilities,
served tick by tick as :class:`edge.decisions.decide.Decider` serves them, against the episodes
the labels hold.

Frame F1 says how often a class is right per tick; a user is told events. A rule that needs two
ticks running misses an event the class got right on one tick, and a grid of ticks twice as
sparse misses more; this is where that shows. ``edge eval --front-sim`` prints it beside the
frame scores.

What is scored, per rule:

* **true events**: for a ``duration`` rule, the runs of its class in the labels whose labelled
  time (ticks x the label grid) is at least ``at_least`` (and under ``less_than`` if set) by
  more than one hop; for ``any_of``, those of every condition, overlapping ones merged (a
  condition's ``needs``, like the rule's ``unless``, is evidence for serving, not a label);
* **borderline**: runs within a hop of a bound. Served, a rule measures an episode from tick to
  tick, a hop shorter than its labelled time or so, so a 3.0 s closure may end as a microsleep
  of 2.75 s; such runs need not fire the rule and may, and count neither way. An ``at_least``
  of a hop or less says "every episode" (``glass_break``'s 0.1 s and 0: two ticks, or one sure
  tick that rose sharply above 4 kHz), so it has no
  borderline below: a glass break too short for the rule's ticks is a missed one;
* **found**: true events that a served event of the rule overlaps, from the run's start to
  ``grace_s`` after its end;
* **false**: served events that overlap no true or borderline event so widened, per hour of
  scenarios; **of them, in an episode**: those that overlap a labelled episode of the rule's
  class of another length (a 3.5 s closure served in pieces as microsleeps): the class was
  there, its length misjudged; the rest came with no episode of it at all (an alert driver);
* **latency**: from a found event's start in the labels to the tick that started the served one.

Each false event is also listed (``false``; the text prints the first :data:`LISTED`): its rule,
scenario (its index in the set), grid phase, start and end, whether it lay in an episode, and
the share of its ticks, from ``grace_s`` before its start, that each class was labelled. Where
false events come from (a look down, a phone, the first seconds) is what a threshold or a
rule's ``except_during`` can act on, and a count alone does not say.

The labels come on a fine grid (the simulation's 0.25 s); a config whose hop is a multiple of
it is served on every phase of its hop (a 0.5 s hop: the ticks at 0.25, 0.75, ... and at 0.5,
1.0, ...), each phase a run of its own, the counts summed: where ticks fall against a short event
is chance, and both phases show it. ``cumulative`` and ``cadence`` rules are not scored (their
truth is a sum over glances, or the audio's beeps, which feature-level scenarios do not carry;
``tests/test_alarm_cadence.py`` and ``edge eval --recordings`` score the alarms).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from edge.decisions.decide import Decider, Event
from edge.decisions.rules import DecisionsConfig, DurationCondition, RuleConfig
from edge.errors import ConfigError
from edge.runtime.card import ModelCard

NS_PER_S = 1_000_000_000
Span = tuple[float, float]
LISTED = 40  # false events the text report lists (--json holds them all)


@dataclass(frozen=True)
class RuleScore:
    """One rule's events against the labels' (counts summed over the hop's phases)."""

    true_events: int
    borderline: int
    found: int
    recall: float
    false_events: int
    false_per_hour: float
    latency_s_p50: float | None
    false_in_episode: int  # of false_events: over a labelled episode of another length


def scored_conditions(rule: RuleConfig) -> list[DurationCondition] | None:
    """The duration conditions whose episodes are a rule's truth; None: not scored."""
    if rule.duration is not None:
        return [rule.duration]
    return list(rule.any_of) if rule.any_of else None


def label_runs(on: np.ndarray, t_s: np.ndarray, grid_s: float) -> list[tuple[Span, float]]:
    """Runs of ``on`` ticks as ((start, end) s, labelled time s); a tick at ``t`` labels the
    ``grid_s`` before it."""
    runs: list[tuple[Span, float]] = []
    k, n = 0, len(on)
    while k < n:
        if not on[k]:
            k += 1
            continue
        j = k
        while j < n and on[j]:
            j += 1
        runs.append(((float(t_s[k]) - grid_s, float(t_s[j - 1])), (j - k) * grid_s))
        k = j
    return runs


def _merged(spans: list[Span]) -> list[Span]:
    out: list[Span] = []
    for a, b in sorted(spans):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def true_events(conds: Sequence[DurationCondition], classes: Sequence[str], labels: np.ndarray,
                t_s: np.ndarray, grid_s: float, slack_s: float = 0.0,
                during: Sequence[str] = ()) -> tuple[list[Span], list[Span]]:
    """A rule's true and borderline events in one scenario: label runs inside its bounds by more
    than ``slack_s``, and those within ``slack_s`` of a bound; overlapping ones merged. A run
    inside them overlapping a labelled episode of a ``during`` class (the rule's
    ``except_during``) is borderline: the rule does not report it, and may if the model misses
    that episode. A run outside them is not the rule's, excused or not (a blink in a yawn is no
    sleep)."""
    must: list[Span] = []
    may: list[Span] = []
    eps = 1e-6  # n ticks x grid is a float sum
    excused = [span for c in during
               for span, _ in label_runs(labels[:, list(classes).index(c)], t_s, grid_s)]
    for c in conds:
        hi = math.inf if c.less_than is None else c.less_than
        low = slack_s if c.at_least > slack_s + eps else 0.0  # a bound of a hop or less: any
        for span, length in label_runs(labels[:, list(classes).index(c.class_)], t_s, grid_s):
            inside = c.at_least + low <= length + eps and length < hi - slack_s - eps
            near = c.at_least - low <= length + eps and length < hi + slack_s - eps
            if not near:  # (inside is near too)
                continue  # not this rule's episode, excused or not: an event over it is false
            if inside and not any(a < span[1] and span[0] < b for a, b in excused):
                must.append(span)
            else:
                may.append(span)
    return _merged(must), _merged(may)


def served_events(events: Sequence[Event], rule: str, end_s: float) -> list[tuple[Span, float]]:
    """A rule's served events as ((start, end) s, decision time s); one still running at the
    scenario's end ends there."""
    out: list[tuple[Span, float]] = []
    start: Event | None = None
    for e in events:
        if e.rule != rule:
            continue
        if e.kind == "start":
            start = e
        elif e.kind == "end" and start is not None:
            end = start.started_ns / NS_PER_S + e.duration_s
            out.append(((start.started_ns / NS_PER_S, end), start.t_ns / NS_PER_S))
            start = None
    if start is not None:
        out.append(((start.started_ns / NS_PER_S, end_s), start.t_ns / NS_PER_S))
    return out


def score_rules(
    decisions: DecisionsConfig,
    card: ModelCard,
    probs: np.ndarray,
    labels: np.ndarray,
    t_s: np.ndarray,
    scenario: np.ndarray,
    grid_s: float,
    hop_s: float,
    grace_s: float = 1.0,
    measures: Mapping[str, np.ndarray] | None = None,
) -> dict[str, Any]:
    """Every scorable rule of ``decisions`` over ``probs`` ([T, C], the card's classes) served
    at ``hop_s``, against ``labels`` ([T, C] bool); ticks at ``t_s`` on a ``grid_s`` grid, each
    scenario's ticks in time order under its id in ``scenario``; ``measures``: each tick's sound
    measures ([T] by name, NaN for none) for rules' ``unless`` and conditions' ``needs``.

    Returns
    -------
    dict
        ``rules``: rule name -> :class:`RuleScore` as a dict; ``not_scored``: rule name -> why;
        ``hop_s``, ``phases`` and ``hours`` (of scenarios, all phases).

    Raises
    ------
    ConfigError
        ``hop_s`` is not a whole multiple of ``grid_s``.
    """
    step = round(hop_s / grid_s)
    if step < 1 or abs(step * grid_s - hop_s) > 1e-6:
        raise ConfigError(f"window.hop {hop_s:g} s is not a multiple of the scenarios' "
                          f"{grid_s:g} s tick grid: its rule events cannot be scored")
    classes = card.class_names
    scored = {r.name: conds for r in decisions.rules if (conds := scored_conditions(r)) is not None}
    during = {r.name: list(r.except_during or []) for r in decisions.rules}
    not_scored = {r.name: ("cadence: needs the audio's beeps" if r.cadence is not None else
                           "cumulative: a sum over episodes")
                  for r in decisions.rules if r.name not in scored}
    n_true = dict.fromkeys(scored, 0)
    n_border = dict.fromkeys(scored, 0)
    found = dict.fromkeys(scored, 0)
    false = dict.fromkeys(scored, 0)
    false_in = dict.fromkeys(scored, 0)
    lat: dict[str, list[float]] = {name: [] for name in scored}
    listed: list[dict[str, Any]] = []
    seconds = 0.0
    for sid in np.unique(scenario):
        idx = np.flatnonzero(scenario == sid)
        t, lab = t_s[idx], labels[idx]
        end_s = float(t[-1])
        truth = {name: true_events(conds, classes, lab, t, grid_s, hop_s, during[name])
                 for name, conds in scored.items()}
        episodes = {name: [span for cls in {c.class_ for c in conds}
                           for span, _ in label_runs(lab[:, list(classes).index(cls)], t, grid_s)]
                    for name, conds in scored.items()}
        for phase in range(step):
            ticks = idx[phase::step]
            seconds += end_s - float(t_s[ticks[0]]) + hop_s
            decider = Decider.from_card(decisions, card)
            events: list[Event] = []
            for i in ticks:
                ns = int(round(float(t_s[i]) * NS_PER_S))
                heard = {m: None if math.isnan(v[i]) else float(v[i])
                         for m, v in (measures or {}).items()}
                events += decider.update(ns, dict(zip(classes, map(float, probs[i]))),
                                         measures=heard)
            for name, (spans, border) in truth.items():
                served = served_events(events, name, end_s)
                n_true[name] += len(spans)
                n_border[name] += len(border)
                for a, b in spans:
                    hits = [at for (s, e), at in served if s <= b + grace_s and e >= a]
                    if hits:
                        found[name] += 1
                        lat[name].append(max(0.0, min(hits) - a))
                wrong = [(s, e) for (s, e), _ in served
                         if not any(s <= b + grace_s and e >= a for a, b in spans + border)]
                false[name] += len(wrong)
                for s, e in wrong:
                    inside = any(s <= b and e >= a for a, b in episodes[name])
                    false_in[name] += inside
                    near = (t >= s - grace_s) & (t <= e)
                    shares = lab[near].mean(axis=0) if near.any() else np.zeros(len(classes))
                    listed.append({
                        "rule": name, "scenario": int(sid), "phase_s": round(phase * grid_s, 4),
                        "start_s": round(s, 3), "end_s": round(e, 3), "in_episode": inside,
                        "labelled": {c: round(float(v), 2) for c, v in zip(classes, shares)
                                     if v > 0}})
    hours = seconds / 3600.0
    rules = {
        name: asdict(RuleScore(
            n_true[name], n_border[name], found[name],
            found[name] / n_true[name] if n_true[name] else 1.0,
            false[name], false[name] / hours if hours else 0.0,
            float(np.median(lat[name])) if lat[name] else None, false_in[name],
        ))
        for name in scored
    }
    return {"hop_s": hop_s, "phases": step, "hours": hours, "rules": rules,
            "not_scored": not_scored, "false": listed, "grace_s": grace_s}


def format_rules(report: dict[str, Any]) -> str:
    """The rules table under a front-sim report (``border``: borderline events, see above)."""
    lines = [f"rule events, served every {report['hop_s']:g} s ({report['phases']} phase(s) of "
             f"the hop, {report['hours']:.2f} h of scenarios in all):",
             f"{'rule':<28} {'true':>5} {'border':>7} {'found':>6} {'recall':>7} {'false':>6} "
             f"{'false/h':>8} {'lat p50':>8} {'false in an episode':>20}"]
    for name, s in report["rules"].items():
        lat = "-" if s["latency_s_p50"] is None else f"{s['latency_s_p50']:.2f} s"
        lines.append(f"{name:<28} {s['true_events']:>5} {s['borderline']:>7} {s['found']:>6} "
                     f"{s['recall']:>7.3f} "
                     f"{s['false_events']:>6} {s['false_per_hour']:>8.1f} {lat:>8} "
                     f"{s['false_in_episode']:>20}")
    for name, why in report["not_scored"].items():
        lines.append(f"{name:<28} not scored ({why})")
    wrong = report.get("false", [])
    if wrong:
        lines.append(f"false events (scenario @ start-end; the share of its ticks, from "
                     f"{report.get('grace_s', 1.0):g} s before, each class was labelled):")
        for f in wrong[:LISTED]:
            grid = f" grid +{f['phase_s']:g} s" if report["phases"] > 1 else ""
            what = ", ".join(f"{c} {v:.0%}" for c, v in f["labelled"].items()) or "nothing"
            lines.append(f"  {f['rule']:<20} scenario {f['scenario']} @ {f['start_s']:.2f}-"
                         f"{f['end_s']:.2f} s{grid}: {what}"
                         + (" (in an episode)" if f["in_episode"] else ""))
        if len(wrong) > LISTED:
            lines.append(f"  ... {len(wrong) - LISTED} more (--json lists them all)")
    return "\n".join(lines)
