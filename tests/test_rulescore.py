"""Rule events scored against the labels' episodes (edge.evaluate.rulescore): the served rules,
tick by tick, on every phase of the hop."""

from __future__ import annotations

import numpy as np
import pytest

from edge.decisions.decide import parse_decisions
from edge.decisions.rules import HOME_RULES
from edge.errors import ConfigError
from edge.evaluate.rulescore import format_rules, label_runs, score_rules
from edge.runtime.card import ModelCard, load_card
from tests.conftest import ROOT

CARD = load_card(ROOT / "engines" / "home-front.yaml")  # person threshold 0.4
CLASSES = CARD.class_names
RULES = """\
decisions:
  classes:
    glass_break: {tau: 0.0, min_off: 0.0, on_threshold: 0.9, off_threshold: 0.8}
    person: {tau: 0.0, min_off: 0.0}
  rules:
    - name: glass_break
      duration: {class: glass_break, at_least: 0.1}
    - name: person_present
      duration: {class: person, at_least: 1.0}
    - name: beeping
      cadence: {class: glass_break, pattern: [[0.5, 0.5]]}
"""


def _timeline(seconds: float = 20.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    t = np.round(np.arange(1, int(seconds / 0.25) + 1) * 0.25, 2)
    return t, np.zeros((len(t), len(CLASSES)), bool), np.zeros((len(t), len(CLASSES)), np.float32)


def _at(t: np.ndarray, *times: float) -> np.ndarray:
    return np.isin(t, np.round(times, 2))


def _driver_timeline() -> tuple[ModelCard, np.ndarray, np.ndarray, np.ndarray]:
    """The shipped driver card, 20 s of ticks every 0.25 s, and no labels or probabilities."""
    card = load_card(ROOT / "engines" / "driver-front.yaml")
    t = np.round(np.arange(1, 81) * 0.25, 2)
    labels = np.zeros((len(t), len(card.class_names)), bool)
    return card, t, labels, np.zeros(labels.shape, np.float32)


def test_label_runs_carry_their_labelled_time() -> None:
    t = np.array([0.25, 0.5, 0.75, 1.0, 1.25])
    on = np.array([True, True, False, False, True])
    assert label_runs(on, t, 0.25) == [((0.0, 0.5), 0.5), ((1.0, 1.25), 0.25)]


def test_a_glass_rule_on_every_tick_and_on_both_phases_of_a_sparser_hop() -> None:
    t, labels, probs = _timeline()
    g = CLASSES.index("glass_break")
    labels[_at(t, 5.0, 5.25, 5.5), g] = True  # a shatter the model hears on two ticks
    probs[_at(t, 5.0, 5.25), g] = 1.0
    labels[_at(t, 12.0, 12.25, 12.5), g] = True  # one it hears on one tick only: missed
    probs[_at(t, 12.0), g] = 1.0
    probs[_at(t, 15.0, 15.25), g] = 0.95  # a false one on two ticks
    probs[_at(t, 17.0), g] = 1.0  # and one tick of nothing: no event
    labels[_at(t, 18.0), g] = True  # a tick's glass: a bound of a hop or less means any glass
    probs[_at(t, 18.0, 18.25), g] = 1.0  # heard on two: found
    sid = np.zeros(len(t), int)
    rep = score_rules(parse_decisions(RULES), CARD, probs, labels, t, sid, 0.25, 0.25)
    s = rep["rules"]["glass_break"]
    assert (s["true_events"], s["borderline"], s["found"], s["false_events"]) == (3, 0, 2, 1)
    assert s["recall"] == pytest.approx(2 / 3)
    assert s["latency_s_p50"] == pytest.approx(0.5)  # 4.75 -> 5.25 s and 17.75 -> 18.25 s
    assert rep["phases"] == 1 and rep["hours"] == pytest.approx(20.0 / 3600)
    assert s["false_per_hour"] == pytest.approx(180.0)
    assert rep["not_scored"] == {"beeping": "cadence: needs the audio's beeps"}
    # at a 0.5 s hop each phase is a run of its own, and each holds one tick of each pair the
    # model heard: no event on either
    rep = score_rules(parse_decisions(RULES), CARD, probs, labels, t, sid, 0.25, 0.5)
    s = rep["rules"]["glass_break"]
    assert rep["phases"] == 2
    assert (s["true_events"], s["borderline"], s["found"], s["false_events"]) == (6, 0, 0, 0)
    assert "glass_break" in format_rules(rep) and "beeping" in format_rules(rep)


def test_an_episode_a_hop_from_a_bound_counts_neither_way() -> None:
    """Served, a 3.0 s closure can end as a microsleep of 2.75 s (tick to tick): it is neither
    a missed sleep nor a false microsleep; a 2.0 s one is a true microsleep."""
    from edge.decisions.rules import DRIVER_RULES

    card, t, labels, probs = _driver_timeline()
    k = card.class_names.index("eyes_closed")
    labels[(t > 2.0) & (t <= 5.0), k] = True  # 3.0 s labelled
    probs[(t > 2.25) & (t <= 5.0), k] = 1.0  # closed 2.75 s as served
    labels[(t > 10.0) & (t <= 12.0), k] = True
    probs[(t > 10.0) & (t <= 12.0), k] = 1.0
    rep = score_rules(parse_decisions(DRIVER_RULES), card, probs, labels, t,
                      np.zeros(len(t), int), 0.25, 0.25)
    micro, sleep = rep["rules"]["microsleep"], rep["rules"]["sleep"]
    assert (micro["true_events"], micro["borderline"], micro["found"]) == (1, 1, 1)
    assert micro["false_events"] == 0
    assert (sleep["true_events"], sleep["borderline"], sleep["false_events"]) == (0, 1, 0)


def test_false_events_over_an_episode_of_another_length_are_told_apart() -> None:
    """A 4 s closure the model opens for a tick in its middle is served as two microsleeps
    (and no sleep): both false, both within the closure; a microsleep over open eyes is false
    with no closure at all."""
    from edge.decisions.rules import DRIVER_RULES

    card, t, labels, probs = _driver_timeline()
    k = card.class_names.index("eyes_closed")
    labels[(t > 2.0) & (t <= 6.0), k] = True
    probs[(t > 2.0) & (t <= 6.0) & (t != 4.0) & (t != 4.25) & (t != 4.5), k] = 1.0
    probs[(t > 12.0) & (t <= 13.0), k] = 1.0  # eyes open in the labels
    rep = score_rules(parse_decisions(DRIVER_RULES), card, probs, labels, t,
                      np.zeros(len(t), int), 0.25, 0.25)
    micro, sleep = rep["rules"]["microsleep"], rep["rules"]["sleep"]
    assert (micro["false_events"], micro["false_in_episode"]) == (3, 2)
    assert (sleep["true_events"], sleep["found"]) == (1, 0)
    assert "false in an episode" in format_rules(rep)


def test_each_false_event_is_listed_with_what_was_labelled_around_it() -> None:
    """The same two pieces of a 4 s closure and a microsleep over open eyes with a phone in the
    labels: each false event is listed with its scenario, times and the labels around it, and
    the text names them."""
    from edge.decisions.rules import DRIVER_RULES

    card, t, labels, probs = _driver_timeline()
    k, ph = card.class_names.index("eyes_closed"), card.class_names.index("phone")
    labels[(t > 2.0) & (t <= 6.0), k] = True
    probs[(t > 2.0) & (t <= 6.0) & (t != 4.0) & (t != 4.25) & (t != 4.5), k] = 1.0
    probs[(t > 12.0) & (t <= 13.0), k] = 1.0
    labels[(t > 10.0) & (t <= 14.0), ph] = True  # a phone, eyes open
    sid = np.full(len(t), 7)
    rep = score_rules(parse_decisions(DRIVER_RULES), card, probs, labels, t, sid, 0.25, 0.25)
    listed = [f for f in rep["false"] if f["rule"] == "microsleep"]
    assert len(listed) == rep["rules"]["microsleep"]["false_events"] == 3
    assert [f["in_episode"] for f in listed] == [True, True, False]
    assert all(f["scenario"] == 7 and f["phase_s"] == 0.0 for f in listed)
    assert all(f["labelled"]["eyes_closed"] > 0.5 and "phone" not in f["labelled"]
               for f in listed[:2])
    phone = listed[2]
    assert phone["labelled"] == {"phone": 1.0} and 12.0 <= phone["start_s"] < phone["end_s"]
    text = format_rules(rep)
    assert f"microsleep           scenario 7 @ {phone['start_s']:.2f}-" in text
    assert ": phone 100%" in text and "(in an episode)" in text
    quiet = score_rules(parse_decisions(DRIVER_RULES), card, np.zeros_like(probs), labels, t,
                        sid, 0.25, 0.25)
    assert quiet["false"] == [] and "false events" not in format_rules(quiet)


def test_a_closure_labelled_inside_a_yawn_is_borderline_for_a_microsleep_that_excepts_yawns(
) -> None:
    """The shipped microsleep is not reported during a yawn (``except_during``): a closure the
    labels put inside one is not a miss when the model hears the yawn, nor a false event when
    it misses the yawn and serves the microsleep; a closure elsewhere still counts."""
    from edge.decisions.rules import DRIVER_RULES

    card = load_card(ROOT / "engines" / "driver-front.yaml")
    e, y = card.class_names.index("eyes_closed"), card.class_names.index("yawning")
    t = np.round(np.arange(1, 81) * 0.25, 2)
    labels = np.zeros((len(t), len(card.class_names)), bool)
    labels[(t > 3.0) & (t <= 4.0), e] = True  # 1 s closed in a 4 s yawn
    labels[(t > 1.5) & (t <= 5.5), y] = True
    labels[(t > 12.0) & (t <= 13.0), e] = True  # 1 s closed on its own
    probs = labels.astype(np.float32)
    rules, sid = parse_decisions(DRIVER_RULES), np.zeros(len(t), int)
    micro = score_rules(rules, card, probs, labels, t, sid, 0.25, 0.25)["rules"]["microsleep"]
    assert (micro["true_events"], micro["borderline"], micro["found"]) == (1, 1, 1)
    assert micro["false_events"] == 0
    probs[:, y] = 0.0  # the model misses the yawn: the microsleep in it is served
    micro = score_rules(rules, card, probs, labels, t, sid, 0.25, 0.25)["rules"]["microsleep"]
    assert (micro["true_events"], micro["borderline"], micro["found"]) == (1, 1, 1)
    assert micro["false_events"] == 0
    labels[:, y] = False  # no yawn labelled either: two true microsleeps, both found
    micro = score_rules(rules, card, probs, labels, t, sid, 0.25, 0.25)["rules"]["microsleep"]
    assert (micro["true_events"], micro["borderline"], micro["found"]) == (2, 0, 2)


def test_a_blink_inside_a_yawn_is_no_borderline_sleep() -> None:
    """Only a closure within a rule's bounds is excused by a yawn: a 0.25 s blink labelled in
    one is not a sleep at all, so a sleep the model serves over it (the yawn missed, the eyes
    read shut 5 s) is false, as it is without the yawn."""
    from edge.decisions.rules import DRIVER_RULES

    card = load_card(ROOT / "engines" / "driver-front.yaml")
    e, y = card.class_names.index("eyes_closed"), card.class_names.index("yawning")
    t = np.round(np.arange(1, 41) * 0.25, 2)
    labels = np.zeros((len(t), len(card.class_names)), bool)
    labels[(t > 2.0) & (t <= 2.25), e] = True
    labels[(t > 1.5) & (t <= 5.5), y] = True
    probs = np.zeros(labels.shape, np.float32)
    probs[(t > 2.0) & (t <= 7.0), e] = 1.0
    rules, sid = parse_decisions(DRIVER_RULES), np.zeros(len(t), int)
    for yawn in (True, False):
        labels[:, y] &= yawn
        sleep = score_rules(rules, card, probs, labels, t, sid, 0.25, 0.25)["rules"]["sleep"]
        assert (sleep["true_events"], sleep["borderline"], sleep["false_events"]) == (0, 0, 1)


def test_a_duration_rule_counts_only_episodes_long_enough_and_two_scenarios_apart() -> None:
    t, labels, probs = _timeline(10.0)
    p = CLASSES.index("person")
    labels[(t > 2.0) & (t <= 6.0), p] = True  # 4 s in the room: a true person_present
    probs[(t > 2.5) & (t <= 6.5), p] = 0.9  # seen late, gone late
    labels[_at(t, 8.0, 8.25), p] = True  # 0.5 s: too short to be one
    t2 = np.concatenate([t, t]); sid = np.repeat([0, 1], len(t))
    labels2, probs2 = np.concatenate([labels, labels]), np.concatenate([probs, probs])
    probs2[len(t):, p] = 0.0  # the second scenario: nobody seen
    rep = score_rules(parse_decisions(RULES), CARD, probs2, labels2, t2, sid, 0.25, 0.25)
    s = rep["rules"]["person_present"]
    assert (s["true_events"], s["found"], s["false_events"]) == (2, 1, 0)
    assert s["latency_s_p50"] == pytest.approx(1.75)  # truth from 2.0 s; on at 2.75, +1.0 s


def test_the_shipped_home_rules_score_and_a_hop_off_the_grid_is_refused() -> None:
    t, labels, probs = _timeline(4.0)
    card: ModelCard = CARD
    z = np.zeros((len(t), len(CLASSES)))
    rep = score_rules(parse_decisions(HOME_RULES), card, z, z > 0, t, np.zeros(len(t), int),
                      0.25, 0.25)
    assert set(rep["rules"]) == {"glass_break", "person_present"}
    assert set(rep["not_scored"]) == {"smoke_alarm", "co_alarm"}
    with pytest.raises(ConfigError, match="not a multiple"):
        score_rules(parse_decisions(HOME_RULES), card, z, z > 0, t, np.zeros(len(t), int),
                    0.25, 0.3)


def test_a_glass_break_on_a_tick_whose_sound_is_a_few_partials_is_not_served() -> None:
    """The home rule's ``unless`` is scored as served: the same sure glass ticks are a found
    event over a shatter's spread of partials and no event over a bell's few."""
    t, labels, probs = _timeline(4.0)
    g = CLASSES.index("glass_break")
    labels[(t > 1.0) & (t <= 1.75), g] = True
    probs[(t > 1.0) & (t <= 1.75), g] = 1.0
    rules = parse_decisions(HOME_RULES)
    sid = np.zeros(len(t), int)
    for share, found in ((0.3, 1), (0.9, 0), (np.nan, 1)):
        rep = score_rules(rules, CARD, probs, labels, t, sid, 0.25, 0.25,
                          measures={"partial_share": np.full(len(t), share)})
        assert rep["rules"]["glass_break"]["found"] == found


def test_a_sweep_serves_the_rules_again_at_each_threshold_over_the_config_s_own() -> None:
    """``edge eval --front-sim --sweep``: eyes read at 0.7 for a labelled 4 s closure are a
    sleep at a threshold of 0.6 and nothing at 0.8, frame F1 with them; a swept class's on
    threshold is the one tried even where the config sets its own (0.95 here)."""
    from edge.decisions.rules import DRIVER_RULES
    from edge.evaluate.sweep import format_sweep, parse_sweep, sweep_thresholds

    card, t, labels, probs = _driver_timeline()
    k = card.class_names.index("eyes_closed")
    labels[(t > 2.0) & (t <= 6.0), k] = True
    probs[(t > 2.0) & (t <= 6.0), k] = 0.7
    own = DRIVER_RULES.replace("    distracted: {min_off: 0.0}",
                               "    distracted: {min_off: 0.0}\n"
                               "    eyes_closed: {on_threshold: 0.95}")
    assert parse_decisions(own).classes["eyes_closed"].on_threshold == 0.95
    by_default = DRIVER_RULES.replace("{tau: 0.25, min_off: 0.5}",
                                      "{tau: 0.25, min_off: 0.5, on_threshold: 0.95}")
    assert parse_decisions(by_default).defaults.on_threshold == 0.95
    sweep = parse_sweep(["eyes_closed=0.6,0.8"], card.class_names)
    assert sweep == {"eyes_closed": [(0.6, None), (0.8, None)]}
    for rules in (DRIVER_RULES, own, by_default):
        rows = sweep_thresholds(parse_decisions(rules), card, sweep, probs, labels, t,
                                np.zeros(len(t), int), 0.25, 0.25, [(0, len(t))])
        assert [r["thresholds"] for r in rows] == [{"eyes_closed": 0.6}, {"eyes_closed": 0.8}]
        assert [r["off_thresholds"] for r in rows] == [{"eyes_closed": pytest.approx(0.5)},
                                                       {"eyes_closed": pytest.approx(0.7)}]
        assert [r["f1"]["eyes_closed"] for r in rows] == [1.0, 0.0]
        assert [r["rules"]["sleep"]["found"] for r in rows] == [1, 0]
        assert [r["rules"]["sleep"]["true_events"] for r in rows] == [1, 1]
    text = format_sweep(rows)
    assert "thresholds tried" in text and "0.60/0.50 |" in text and "1/1 0(0)" in text


def test_a_swept_class_keeps_the_config_s_off_threshold_where_it_lies_below_the_value_tried(
) -> None:
    """Served with ``off_threshold: 0.65``, eyes read at 0.9 and then at 0.68 for a moment stay
    closed (a sleep); the sweep serves 0.8 with that off threshold, as serving would, and 0.6
    (at or under it serving would refuse) with the default gap."""
    from edge.decisions.rules import DRIVER_RULES
    from edge.evaluate.sweep import swept_class, sweep_thresholds

    card, t, labels, probs = _driver_timeline()
    k = card.class_names.index("eyes_closed")
    labels[(t > 2.0) & (t <= 6.0), k] = True
    probs[(t > 2.0) & (t <= 6.0), k] = 0.9
    probs[(t > 3.0) & (t <= 3.5), k] = 0.68  # over 0.65, under 0.8's default off (0.7)
    off_only = parse_decisions(DRIVER_RULES.replace(
        "    distracted: {min_off: 0.0}",
        "    distracted: {min_off: 0.0}\n"
        "    eyes_closed: {off_threshold: 0.65, tau: 0.0, min_off: 0.0}"))
    policy, off = swept_class(off_only, "eyes_closed", 0.8)
    assert (policy.on_threshold, off, policy.tau, policy.min_off) == (0.8, 0.65, 0.0, 0.0)
    assert swept_class(off_only, "eyes_closed", 0.6)[1] == pytest.approx(0.5)
    rows = sweep_thresholds(off_only, card, {"eyes_closed": [(0.8, None)]}, probs, labels, t,
                            np.zeros(len(t), int), 0.25, 0.25, [(0, len(t))])
    assert rows[0]["off_thresholds"] == {"eyes_closed": 0.65}
    assert rows[0]["rules"]["sleep"]["found"] == 1  # 0.68 stays over the config's 0.65
    default_gap = parse_decisions(DRIVER_RULES.replace(
        "    distracted: {min_off: 0.0}",
        "    distracted: {min_off: 0.0}\n    eyes_closed: {tau: 0.0, min_off: 0.0}"))
    rows = sweep_thresholds(default_gap, card, {"eyes_closed": [(0.8, None)]}, probs, labels, t,
                            np.zeros(len(t), int), 0.25, 0.25, [(0, len(t))])
    assert rows[0]["rules"]["sleep"]["found"] == 0  # 0.68 turns them off: 1 s and 2.5 s shut


def test_a_sweep_tries_off_thresholds_given_with_the_on_ones() -> None:
    """``--sweep eyes_closed=0.8/0.6,0.8/0.7``: the same dip to 0.68 in 4 s of eyes read at 0.9
    holds one sleep with the off threshold at 0.6 and breaks it with 0.7 (default gap), whatever
    the config's own off threshold; each row prints the pair it served."""
    from edge.decisions.rules import DRIVER_RULES
    from edge.evaluate.sweep import format_sweep, parse_sweep, swept_class, sweep_thresholds

    card, t, labels, probs = _driver_timeline()
    k = card.class_names.index("eyes_closed")
    labels[(t > 2.0) & (t <= 6.0), k] = True
    probs[(t > 2.0) & (t <= 6.0), k] = 0.9
    probs[(t > 3.0) & (t <= 3.5), k] = 0.68
    sweep = parse_sweep(["eyes_closed=0.8/0.6,0.8/0.7,0.8"], card.class_names)
    assert sweep == {"eyes_closed": [(0.8, 0.6), (0.8, 0.7), (0.8, None)]}
    for own_off in ("", " off_threshold: 0.75,"):
        dc = parse_decisions(DRIVER_RULES.replace(
            "    distracted: {min_off: 0.0}",
            "    distracted: {min_off: 0.0}\n"
            f"    eyes_closed: {{{own_off} tau: 0.0, min_off: 0.0}}"))
        assert swept_class(dc, "eyes_closed", 0.8, 0.6)[1] == 0.6
        rows = sweep_thresholds(dc, card, sweep, probs, labels, t, np.zeros(len(t), int), 0.25,
                                0.25, [(0, len(t))])
        assert [r["off_thresholds"]["eyes_closed"] for r in rows] == pytest.approx(
            [0.6, 0.7, 0.75 if own_off else 0.7])
        assert [r["rules"]["sleep"]["found"] for r in rows] == [1, 0, 0]
    assert "0.80/0.60 |" in format_sweep(rows) and "0.80/0.75 |" in format_sweep(rows)


@pytest.mark.parametrize(("items", "why"), [
    (["seatbelt=0.5"], "no class seatbelt"),
    (["eyes_closed"], "CLASS=P,P"),
    (["eyes_closed="], "CLASS=P,P"),
    (["eyes_closed=0.6,high"], "CLASS=P,P"),
    (["eyes_closed=0.6,1.2"], "distinct thresholds of 0.05-0.99"),
    (["eyes_closed=0.6,0.6"], "distinct thresholds of 0.05-0.99"),
    (["eyes_closed=0.6/0.4,0.6/0.4"], "distinct thresholds of 0.05-0.99"),
    (["eyes_closed=0.6/0.6"], "below its on threshold"),
    (["eyes_closed=0.6/-0.1"], "below its on threshold"),
    (["eyes_closed=0.6/low"], "CLASS=P,P"),
    (["eyes_closed=0.6", "eyes_closed=0.7"], "given twice"),
    (["eyes_closed=" + ",".join(f"0.{i}" for i in range(1, 10)),
      "distracted=" + ",".join(f"0.{i}5" for i in range(1, 9))], "at most 64"),
])
def test_a_sweep_is_checked_before_any_work(items: list[str], why: str) -> None:
    from edge.evaluate.sweep import parse_sweep

    card = load_card(ROOT / "engines" / "driver-front.yaml")
    with pytest.raises(ConfigError, match=why):
        parse_sweep(items, card.class_names)
