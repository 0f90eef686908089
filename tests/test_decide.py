"""Decision layer: smoothing, hysteresis, minimum durations, rules and events, on synthetic
probability timelines driven by explicit data times (no clock is read)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import pytest

from edge.decisions.cadence import CadenceTracker, Interval, match_cadence
from edge.runtime.card import load_card
from edge.timebase.clock import NS_PER_S
from edge.decisions.decide import CadenceRule, Decider, Event, degraded_flags, parse_decisions
from edge.errors import ConfigError
from edge.decisions.rules import DRIVER_RULES, HOME_RULES, CadenceCondition, DecisionsConfig

DRIVER = ["eyes_closed", "yawning", "distracted", "phone", "talking"]
DRIVER_MOD = {"eyes_closed": "video", "yawning": "both", "distracted": "video",
              "phone": "video", "talking": "both"}
DRIVER_THR = {"eyes_closed": 0.8, "yawning": 0.7, "distracted": 0.8, "phone": 0.65,
              "talking": 0.5}
HOME = ["person", "speech", "smoke_alarm", "co_alarm", "glass_break", "dog_bark"]
HOME_MOD = {"person": "video", **{c: "audio" for c in HOME[1:]}}
HOME_THR = {"person": 0.8, "speech": 0.45, "smoke_alarm": 0.3, "co_alarm": 0.8,
            "glass_break": 0.65, "dog_bark": 0.65}


def ns(s: float) -> int:
    return round(s * NS_PER_S)


def config(rules: str = "", defaults: str = "{tau: 0.0}", extra: str = "") -> DecisionsConfig:
    """A decisions section; tau 0 and no minimum durations unless a test asks for them."""
    return parse_decisions(f"defaults: {defaults}\n{extra}rules:\n{rules or '  []'}\n")


def driver(cfg: DecisionsConfig) -> Decider:
    return Decider(cfg, DRIVER, DRIVER_THR, DRIVER_MOD)


def play(d: Decider, timeline: Sequence[tuple[float, dict[str, float]]], step: float = 0.1,
         flags: dict[str, bool] | None = None) -> list[Event]:
    """Feed piecewise-constant probabilities: (seconds, probs) segments, ticks every ``step``.

    Ticks fall on integer multiples of ``step`` from 0, so a segment of length L starting at a
    tick covers exactly round(L / step) ticks. One final tick at the end closes the timeline.
    """
    events: list[Event] = []
    t = 0
    for length, probs in timeline:
        for _ in range(round(length / step)):
            events += d.update(t, probs, flags)
            t += ns(step)
    events += d.update(t, {}, flags)
    return events


def fired(events: list[Event], rule: str, kind: str = "start") -> list[Event]:
    return [e for e in events if e.rule == rule and e.kind == kind]


EYES = {"eyes_closed": 1.0}
OPEN = {"eyes_closed": 0.0}
AWAY = {"distracted": 1.0}
ROAD = {"distracted": 0.0}

SLEEP = """\
  - name: sleep
    duration: {class: eyes_closed, at_least: 3.0}
  - name: microsleep
    duration: {class: eyes_closed, less_than: 3.0}
"""


# -- durations ---------------------------------------------------------------------------


def test_sleep_fires_after_3_s_for_a_3_1_s_closure_and_not_for_2_9_s() -> None:
    long_ = play(driver(config(SLEEP)), [(1.0, OPEN), (3.1, EYES), (2.0, OPEN)])
    short = play(driver(config(SLEEP)), [(1.0, OPEN), (2.9, EYES), (2.0, OPEN)])
    (start,) = fired(long_, "sleep")
    assert start.t_ns == ns(4.0) and start.started_ns == ns(1.0)
    assert start.duration_s == pytest.approx(3.0)
    (end,) = fired(long_, "sleep", "end")
    assert end.t_ns == ns(4.1) and end.duration_s == pytest.approx(3.1)
    assert fired(short, "sleep") == []


def test_microsleep_fires_when_a_2_9_s_closure_ends_and_not_for_3_1_s() -> None:
    short = play(driver(config(SLEEP)), [(1.0, OPEN), (2.9, EYES), (2.0, OPEN)])
    long_ = play(driver(config(SLEEP)), [(1.0, OPEN), (3.1, EYES), (2.0, OPEN)])
    starts, ends = fired(short, "microsleep"), fired(short, "microsleep", "end")
    assert [e.t_ns for e in starts] == [ns(3.9)] and [e.t_ns for e in ends] == [ns(3.9)]
    assert ends[0].started_ns == ns(1.0) and ends[0].duration_s == pytest.approx(2.9)
    assert fired(long_, "microsleep") == []


def test_microsleep_lower_bound_excludes_blinks() -> None:
    rules = ("  - name: microsleep\n"
             "    duration: {class: eyes_closed, at_least: 0.5, less_than: 3}\n")
    blink = play(driver(config(rules)), [(1.0, OPEN), (0.4, EYES), (1.0, OPEN)])
    lapse = play(driver(config(rules)), [(1.0, OPEN), (0.6, EYES), (1.0, OPEN)])
    assert fired(blink, "microsleep") == []
    assert [e.duration_s for e in fired(lapse, "microsleep", "end")] == [pytest.approx(0.6)]


MICROSLEEP_NOT_IN_YAWNS = """\
  - name: microsleep
    duration: {class: eyes_closed, at_least: 0.5, less_than: 3.0}
    except_during: yawning
"""
YAWN = {"yawning": 1.0}
NO_YAWN = {"yawning": 0.0}


def test_a_closure_inside_a_yawn_is_no_microsleep_and_one_beside_it_is() -> None:
    """Eyes squeeze shut in a yawn: a 1 s closure while the yawning class is over its threshold
    is the yawn's, whether the yawn began before the closure or during it; the same closure
    with no yawn, or a tick after the yawn's mouth closed (its committed state still held on by
    min_off), is a microsleep. Defaults as shipped: tau 0.25 s, min_off 0.5 s."""
    rules = config(MICROSLEEP_NOT_IN_YAWNS, defaults="{tau: 0.25, min_off: 0.5}")

    def run(timeline: list[tuple[float, dict[str, float]]]) -> list[float]:
        ev = play(driver(rules), timeline, step=0.25)
        return [e.duration_s for e in fired(ev, "microsleep", "end")]

    alone = run([(2.0, {**OPEN, **NO_YAWN}), (1.0, {**EYES, **NO_YAWN}), (2.0, OPEN)])
    assert alone == [pytest.approx(0.75)]  # tau: on from the second tick (0.63, then 0.86)
    in_yawn = run([(1.0, {**OPEN, **YAWN}), (1.0, {**EYES, **YAWN}), (1.0, {**OPEN, **YAWN}),
                   (2.0, {**OPEN, **NO_YAWN})])
    assert in_yawn == []
    yawn_starts_inside = run([(2.0, OPEN), (0.5, EYES), (0.5, {**EYES, **YAWN}),
                              (2.0, {**OPEN, **YAWN}), (2.0, {**OPEN, **NO_YAWN})])
    assert yawn_starts_inside == []
    after = run([(2.0, {**OPEN, **YAWN}), (0.25, {**OPEN, **NO_YAWN}), (1.0, EYES),
                 (2.0, OPEN)])
    assert after == [pytest.approx(0.75)]
    # The next closure is judged on its own: a yawn excuses only the episode it fell in.
    both = run([(1.0, {**EYES, **YAWN}), (1.0, {**OPEN, **NO_YAWN}), (1.0, EYES), (2.0, OPEN)])
    assert both == [pytest.approx(0.75)]


def test_a_held_rule_does_not_hold_while_an_excepted_class_is_on() -> None:
    rules = config("  - name: sleep\n    duration: {class: eyes_closed, at_least: 3.0}\n"
                   "    except_during: [yawning]\n")
    ev = play(driver(rules), [(1.0, {**EYES, **YAWN}), (3.0, {**EYES, **YAWN}),
                              (1.0, {**EYES, **NO_YAWN}), (1.0, OPEN)], step=0.25)
    (start,) = fired(ev, "sleep")
    # Held back while the yawn lasts, then at once: the closure is 4 s old, dated from its start.
    assert start.t_ns == ns(4.0) and start.started_ns == 0
    # A yawn inside a sleep already reported does not cut it in two: one start, one end.
    ev = play(driver(rules), [(4.0, {**EYES, **NO_YAWN}), (1.0, {**EYES, **YAWN}),
                              (3.0, {**EYES, **NO_YAWN}), (1.0, OPEN)], step=0.25)
    (start,) = fired(ev, "sleep")
    (end,) = fired(ev, "sleep", "end")
    assert start.t_ns == ns(3.0) and end.duration_s > 7.5


UNRESPONSIVE = """\
  - name: unresponsive
    any_of:
      - {class: eyes_closed, at_least: 6.0}
      - {class: distracted, at_least: 6.0}
"""


@pytest.mark.parametrize("cls", ["eyes_closed", "distracted"])
def test_unresponsive_fires_via_either_class_at_6_s(cls: str) -> None:
    on, off = {cls: 1.0}, {cls: 0.0}
    yes = play(driver(config(UNRESPONSIVE)), [(1.0, off), (6.1, on), (1.0, off)])
    no = play(driver(config(UNRESPONSIVE)), [(1.0, off), (5.9, on), (1.0, off)])
    (start,) = fired(yes, "unresponsive")
    assert start.t_ns == ns(7.0) and start.evidence == {cls: "video"}
    assert fired(no, "unresponsive") == []


def test_unresponsive_started_by_one_class_ends_when_none_holds() -> None:
    d = driver(config(UNRESPONSIVE))
    both = {"eyes_closed": 1.0, "distracted": 1.0}
    ev = play(d, [(1.0, {"eyes_closed": 1.0, "distracted": 0.0}), (6.0, both),
                  (1.0, {"eyes_closed": 0.0, "distracted": 1.0}), (1.0, {"distracted": 0.0})])
    (start,) = fired(ev, "unresponsive")
    assert start.evidence == {"eyes_closed": "video"} and start.started_ns == 0
    (end,) = fired(ev, "unresponsive", "end")
    # eyes_closed held from 0, distracted from 1 s; the event lasts until distracted ends too.
    assert end.t_ns == ns(8.0) and end.evidence == {"eyes_closed": "video", "distracted": "video"}


# -- cumulative ----------------------------------------------------------------------------

VATS = """\
  - name: vats
    cumulative: {class: distracted, total_at_least: 10.0, within: 30.0, reset_after: 2.0}
"""


def test_cumulative_fires_at_10_1_s_of_glances_and_not_at_9_9_s_within_30_s() -> None:
    glances = [(1.0, ROAD), (4.0, AWAY), (1.5, ROAD), (4.0, AWAY), (1.5, ROAD)]
    yes = play(driver(config(VATS)), glances + [(2.1, AWAY), (3.0, ROAD)])
    no = play(driver(config(VATS)), glances + [(1.9, AWAY), (3.0, ROAD)])
    (start,) = fired(yes, "vats")
    assert start.t_ns == ns(14.0) and start.started_ns == ns(1.0)
    assert start.evidence == {"distracted": "video"}
    (end,) = fired(yes, "vats", "end")  # 2 s attentive (from 14.1 s) resets the sum
    assert end.t_ns == ns(16.1) and end.duration_s == pytest.approx(15.1)
    assert fired(no, "vats") == []


def test_attentive_pause_of_2_1_s_resets_the_sum_but_1_9_s_does_not() -> None:
    kept = play(driver(config(VATS)), [(6.0, AWAY), (1.9, ROAD), (4.1, AWAY), (1.0, ROAD)])
    reset = play(driver(config(VATS)), [(6.0, AWAY), (2.1, ROAD), (4.1, AWAY), (1.0, ROAD)])
    (start,) = fired(kept, "vats")
    assert start.t_ns == ns(6.0 + 1.9 + 4.0)
    assert fired(reset, "vats") == []


def test_reset_is_judged_on_the_whole_pause_when_ticks_are_sparse() -> None:
    d = driver(config(VATS))
    ev: list[Event] = []
    for t, p in [(0.0, 1.0), (6.0, 0.0), (8.2, 1.0), (12.4, 1.0), (12.5, 0.0)]:
        ev += d.update(ns(t), {"distracted": p})  # no tick lands 2 s into the pause
    assert fired(ev, "vats") == []


def test_cumulative_window_forgets_on_time_older_than_within() -> None:
    rules = "  - name: vats\n    cumulative: {class: distracted, total_at_least: 10, within: 30}\n"
    # 6 s + 4.1 s would be enough, but 25 s apart most of the first glance has left the window.
    early = [(6.0, AWAY), (25.0, ROAD), (4.1, AWAY), (1.0, ROAD)]
    close = [(6.0, AWAY), (15.0, ROAD), (4.1, AWAY), (1.0, ROAD)]
    assert fired(play(driver(config(rules)), early), "vats") == []
    (start,) = fired(play(driver(config(rules)), close), "vats")
    assert start.t_ns == ns(25.0) and start.started_ns == 0


# -- cadence -------------------------------------------------------------------------------

T3 = [(0.5, 0.5), (0.5, 0.5), (0.5, 1.5)]
T4 = [(0.1, 0.1), (0.1, 0.1), (0.1, 0.1), (0.1, 5.0)]


def beeps(cycle: Sequence[tuple[float, float]], cycles: int, t0: float = 1.0) -> list[Interval]:
    out, t = [], t0
    for _ in range(cycles):
        for on, off in cycle:
            out.append((ns(t), ns(t + on)))
            t += on + off
    return out


def test_match_cadence_accepts_t3_over_two_cycles() -> None:
    assert match_cadence(beeps(T3, 2), T3, 0.2, 2) == 0
    assert match_cadence(beeps(T3, 3), T3, 0.2, 2) == 3  # the latest match


@pytest.mark.parametrize(
    "cycle",
    [
        [(0.5, 0.5)] * 3 + [(0.5, 1.5)],  # four beeps per group
        [(0.5, 1.5)],  # one beep per group
        [(0.5, 0.5)],  # steady 1 Hz beeping, no long pause
    ],
    ids=["four-beeps", "one-beep", "steady"],
)
def test_match_cadence_rejects_patterns_that_are_not_t3(cycle: list[tuple[float, float]]) -> None:
    assert match_cadence(beeps(cycle, 12), T3, 0.2, 2) is None


def test_match_cadence_starts_a_match_on_a_cycle_boundary() -> None:
    # One cycle of T3 sits inside every 4-beep group (beeps 2-4, then the 1.5 s pause); only the
    # short gap before beep 2 tells it is not a cycle start.
    four = beeps([(0.5, 0.5)] * 3 + [(0.5, 1.5)], 6)
    assert match_cadence(four, T3, 0.2, 1) is None
    assert match_cadence(beeps(T3, 1), T3, 0.2, 1) == 0


def test_match_cadence_tolerance_boundary() -> None:
    # The tolerance bounds each onset-to-onset interval: here 1.19 s and 1.21 s for 1.0 s.
    ok = beeps([(0.69, 0.5), (0.5, 0.5), (0.5, 1.5)], 2)
    bad = beeps([(0.71, 0.5), (0.5, 0.5), (0.5, 1.5)], 2)
    assert match_cadence(ok, T3, 0.2, 2) == 0
    assert match_cadence(bad, T3, 0.2, 2) is None


def test_match_cadence_accepts_t4_over_two_cycles_and_rejects_three_beeps() -> None:
    assert match_cadence(beeps(T4, 2), T4, 0.05, 2, rel_tolerance=0.1) == 0
    assert match_cadence(beeps(T4, 1), T4, 0.05, 2, rel_tolerance=0.1) is None
    three = [(0.1, 0.1), (0.1, 0.1), (0.1, 5.0)]
    assert match_cadence(beeps(three, 6), T4, 0.05, 2, rel_tolerance=0.1) is None


def test_match_cadence_takes_t4_pulses_a_room_merged_or_split_but_not_a_repeated_tone() -> None:
    """A reverberant room fills T4's 0.1 s gaps: a group's pulses can merge into fewer, longer
    beeps, and the tail of its last pulse can read as one more beep starting where it ends.
    Half of the onsets must still be heard apart."""
    two = beeps(T4, 2)  # groups at 1.0 s and 6.7 s
    kw: dict[str, float] = {"rel_tolerance": 0.1, "smear": 0.3}
    merged = two[:4] + [(two[4][0], two[7][1] + ns(0.1))]  # the second group as one 0.8 s beep
    assert match_cadence(merged, T4, 0.05, 2, **kw) == 0
    pairs = two[:4] + [(two[4][0], two[5][1]), (two[6][0], two[7][1])]  # merged two by two
    assert match_cadence(pairs, T4, 0.05, 2, **kw) == 0
    both = [(two[0][0], two[3][1]), (two[4][0], two[7][1])]  # a 0.7 s tone every 5.7 s
    assert match_cadence(both, T4, 0.05, 2, **kw) is None
    tail = sorted(two + [(two[3][1], two[3][1] + ns(0.2))])  # a fifth beep where the 4th ends
    assert match_cadence(tail, T4, 0.05, 2, **kw) == 0
    g1 = (two[0][0], two[3][1] + ns(0.1))  # the first group merged, then its tail
    assert match_cadence([g1, (g1[1] + ns(0.02), g1[1] + ns(0.2))] + two[4:], T4, 0.05, 2, **kw) == 0
    late = sorted(two + [(two[3][1] + ns(0.1), two[3][1] + ns(0.3))])  # 0.1 s after: a beep
    assert match_cadence(late, T4, 0.05, 2, **kw) is None
    # T3's 0.5 s gaps are no room's doing: its beeps never merge.
    t3 = beeps(T3, 2)
    assert match_cadence([(t3[0][0], t3[1][1])] + t3[2:], T3, 0.2, 2) is None


def test_match_cadence_waits_for_the_final_pause_when_streaming() -> None:
    two = beeps(T3, 2)  # the last beep starts at 7.0 s
    # No onset for 2.0 - 0.2 s after it, and a beep starting by then would have ended (at most
    # 0.5 s + 0.4 s smear later) and be listed: complete up to 7.0 + 1.8 + 0.9 = 9.7 s.
    assert match_cadence(two, T3, 0.2, 2, now_ns=ns(9.69)) is None
    assert match_cadence(two, T3, 0.2, 2, now_ns=ns(9.7)) == 0
    # A fourth beep 1.0 s later means this was not T3 after all.
    assert match_cadence(two + [(ns(8.0), ns(8.5))], T3, 0.2, 2, now_ns=ns(10.0)) is None


def test_cadence_tracker_sounds_from_confirmation_until_the_beeps_stop() -> None:
    tr = CadenceTracker(T3, 0.2, 2)
    spans = beeps(T3, 4)  # 1 s .. 16 s
    sounding = {}
    for i in range(0, 100):
        now = ns(i * 0.25)
        sounding[i * 0.25] = tr.update(now, [s for s in spans if now - ns(0.25) < s[1] <= now])
    # Two cycles end with the onset at 7.0 s; the pause after it is proven by the next cycle's
    # first onset (9.0 s), known when that beep ends (9.5 s).
    assert not sounding[9.25] and sounding[9.5]
    # Until no onset for the longest step (2.0 s + 0.2 s) and the time to learn of the next
    # beep (0.5 s + 0.4 s smear + 0.5 s delivery): 15.0 s + 3.6 s.
    assert all(v for t, v in sounding.items() if 9.5 <= t <= 18.5)
    assert not sounding[18.75] and tr.started_ns == ns(1.0) and tr.match_end_ns == ns(15.5)


def test_home_smoke_alarm_rule_events_from_beeps() -> None:
    home = parse_decisions(HOME_RULES)
    d = Decider(home, HOME, HOME_THR, HOME_MOD)
    spans = beeps(T3, 3)
    ev: list[Event] = []
    for i in range(0, 80):
        now = ns(i * 0.25)
        new = [s for s in spans if now - ns(0.25) < s[1] <= now]
        ev += d.update(now, {"smoke_alarm": 0.9}, beeps={"beeps_3k": new})
    (start,) = fired(ev, "smoke_alarm")
    (end,) = fired(ev, "smoke_alarm", "end")
    # Onsets 1, 2, 3, 5, 6, 7 s: the pause after 7 s is proven by the next cycle's first beep
    # (9.0-9.5 s, handed over at 9.5 s), before silence alone would prove it (10.15 s).
    assert start.t_ns == ns(9.5) and start.started_ns == ns(1.0)
    assert start.evidence == {"smoke_alarm": "audio"} and start.peak == pytest.approx(0.9)
    assert end.duration_s == pytest.approx(10.5)  # first beep 1 s to last beep end 11.5 s
    assert fired(ev, "co_alarm") == []


def test_home_glass_break_rule_needs_two_ticks_running_the_first_sure() -> None:
    """At the home config's 0.25 s ticks, glass on one tick (a knock, a word's onset) is no
    event, nor two ticks the class never calls sure (0.7-0.9: the onsets of ordinary sounds);
    a sure tick (0.99) and one more above 0.8 (a shatter's ringing and falling pieces) start one
    at the second."""
    d = Decider(parse_decisions(HOME_RULES), HOME, HOME_THR, HOME_MOD)
    ev: list[Event] = []
    probs = [0.0, 1.0, 0.0, 0.0, 0.9, 0.95, 0.0, 0.85, 0.99, 0.5, 0.0, 0.99, 0.85, 0.0, 0.0]
    for i, p in enumerate(probs):
        ev += d.update(ns(i * 0.25), {"glass_break": p})
    (start,) = fired(ev, "glass_break")
    assert start.t_ns == ns(3.0) and start.started_ns == ns(2.75)
    assert [e.kind for e in ev if e.rule == "glass_break"] == ["start", "end"]
    # A tick's time is its window's newest frame: on a 10 fps camera two ticks of a 0.25 s hop
    # can lie 0.2 s apart, and they are still two ticks running (home-dev-1 on one grid).
    d = Decider(parse_decisions(HOME_RULES), HOME, HOME_THR, HOME_MOD)
    ev = []
    for t, p in [(30.9, 0.0), (31.2, 1.0), (31.4, 1.0), (31.6, 1.0), (31.9, 0.79), (32.1, 0.0)]:
        ev += d.update(ns(t), {"glass_break": p})
    (start,) = fired(ev, "glass_break")
    assert start.t_ns == ns(31.4) and start.started_ns == ns(31.2)


def test_home_glass_break_on_one_sure_tick_needs_a_sharp_rise_above_4_khz() -> None:
    """The home rule's second condition: a shatter sure on one tick only (a quiet or short one,
    the class under 0.8 the next) starts glass_break at that tick if its sound rose 20 dB and
    more above 4 kHz (real shatters 24-41), not a soundtrack's hit as a word starts (5.5-13),
    and never without the measure; the rule's own checks still speak against it."""
    def run(rise: float | None, **more: float) -> list[tuple[str, float]]:
        d = Decider(parse_decisions(HOME_RULES), HOME, HOME_THR, HOME_MOD)
        ev: list[Event] = []
        for i, p in enumerate([0.0, 1.0, 0.5, 0.0, 0.0]):
            m = {} if rise is None else {"high_rise": rise, **more}
            ev += d.update(ns(i * 0.25), {"glass_break": p}, measures=m)
        return [(e.kind, e.t_ns / 1e9) for e in ev if e.rule == "glass_break"]

    assert run(30.0) == [("start", 0.25), ("end", 0.5)]
    assert run(13.0) == [] and run(None) == []
    assert run(30.0, impact_spread=0.05) == []  # one strike: no shatter however sharp


def test_a_conditions_needs_are_measured_and_only_any_of_conditions_have_them() -> None:
    rules = """\
decisions:
  rules:
    - name: r
      any_of:
        - {class: a, at_least: 1.0}
        - {class: a, at_least: 0.0, needs: [{measure: band_rise, above: 10}]}
"""
    from edge.service.hearing import rule_signals

    dc = parse_decisions(rules)
    assert dc.rules[0].any_of is not None and dc.rules[0].any_of[1].needs is not None
    assert rule_signals(dc) == (set(), {"band_rise"})  # measured for the need alone
    with pytest.raises(ConfigError, match="needs is for any_of conditions"):
        parse_decisions(rules.replace("any_of:\n        - {class: a, at_least: 1.0}\n        - ",
                                      "duration: "))


def test_glass_break_does_not_hold_on_a_tick_whose_sound_is_a_few_partials() -> None:
    """The home rule's ``unless``: a bell's sure glass ticks (partial share 0.83-1.0) start
    nothing; the same ticks over a shatter's spread (0.13-0.64), or with no measure (no audio
    heard), start the event; a bell's share on a later tick neither ends one nor, the tick
    after, starts a second for the same shatter: it runs on to the class's end."""
    def run(shares: list[float | None],
            probs: tuple[float, ...] = (0.0, 1.0, 0.95, 0.9, 0.0)) -> list[tuple[str, float]]:
        d = Decider(parse_decisions(HOME_RULES), HOME, HOME_THR, HOME_MOD)
        ev: list[Event] = []
        for i, (p, m) in enumerate(zip(probs, shares)):
            ev += d.update(ns(i * 0.25), {"glass_break": p},
                           measures={} if m is None else {"partial_share": m})
        return [(e.kind, e.t_ns / 1e9) for e in ev if e.rule == "glass_break"]

    assert run([0.2, 0.9, 0.95, 0.9, 0.9]) == []  # a bell
    assert run([0.2, 0.3, 0.5, 0.6, 0.4]) == [("start", 0.5), ("end", 1.0)]  # a shatter
    assert run([None] * 5) == [("start", 0.5), ("end", 1.0)]
    assert run([0.2, 0.3, 0.5, 0.85, 0.4]) == [("start", 0.5), ("end", 1.0)]
    longer = (0.0, 1.0, 0.95, 0.9, 0.9, 0.9, 0.0)  # a long shatter, the bell's share on one tick
    assert run([0.2, 0.3, 0.5, 0.85, 0.3, 0.3, 0.3], longer) == [("start", 0.5), ("end", 1.5)]
    assert run([0.2, 0.3, 0.85, 0.4, 0.4]) == [("start", 0.75), ("end", 1.0)]  # a veto delays


def test_glass_break_does_not_hold_on_a_tick_whose_sound_is_one_strike() -> None:
    """The home rule's second ``unless``: the same sure glass ticks over one strike (a cymbal,
    a clap: impact spread 0-0.06 s) start nothing; over a shatter's pieces (0.25 s and more),
    or where the spread is not measured, they start the event; either check alone vetoes."""
    def run(spreads: list[float | None], share: float = 0.3) -> list[tuple[str, float]]:
        d = Decider(parse_decisions(HOME_RULES), HOME, HOME_THR, HOME_MOD)
        ev: list[Event] = []
        for i, (p, m) in enumerate(zip([0.0, 1.0, 0.95, 0.9, 0.0], spreads)):
            measures = {"partial_share": share} | ({} if m is None else {"impact_spread": m})
            ev += d.update(ns(i * 0.25), {"glass_break": p}, measures=measures)
        return [(e.kind, e.t_ns / 1e9) for e in ev if e.rule == "glass_break"]

    assert run([0.0, 0.03, 0.06, 0.06, 0.06]) == []  # a crash cymbal
    assert run([0.0, 0.03, 0.3, 0.45, 0.45]) == [("start", 0.5), ("end", 1.0)]  # a shatter
    assert run([None] * 5) == [("start", 0.5), ("end", 1.0)]
    assert run([0.0, 0.03, 0.3, 0.45, 0.45], share=0.9) == []  # pieces, but a bell's partials


def test_cadence_rule_alone_takes_intervals_through_update() -> None:
    cond = CadenceCondition.model_validate({"class": "co_alarm", "pattern": T4,
                                            "tolerance": 0.05, "rel_tolerance": 0.1})
    rule = CadenceRule("co", cond)
    ev = rule.update(ns(1.0), beeps(T4, 2, t0=0.0)[:4])
    # The second group starts at 5.7 s, its last beep at 6.3 s: the pause after it is known
    # from 6.3 + (5.1 - 0.56) + 0.5 s on, delivered 0.5 s later (11.84 s).
    ev += rule.update(ns(11.8), beeps(T4, 2, t0=0.0)[4:])
    assert ev == []
    ev += rule.update(ns(11.9))
    assert [(e.kind, e.started_ns) for e in ev] == [("start", 0)]


# -- class states ----------------------------------------------------------------------------


def test_hysteresis_wobble_between_off_and_on_does_not_toggle() -> None:
    d = driver(config())
    d.update(0, {"eyes_closed": 0.85})  # on at 0.8, off at 0.7
    seen = set()
    for i in range(1, 40):
        d.update(ns(i * 0.25), {"eyes_closed": 0.72 if i % 2 else 0.79})
        seen.add(d.states()["eyes_closed"].on)
    assert seen == {True}
    d.update(ns(10.25), {"eyes_closed": 0.7})
    assert d.states()["eyes_closed"].on is False
    for i in range(42, 60):
        d.update(ns(i * 0.25), {"eyes_closed": 0.79 if i % 2 else 0.72})
        assert d.states()["eyes_closed"].on is False


def test_min_on_ignores_short_blips_and_backdates_a_committed_onset() -> None:
    d = driver(config(defaults="{tau: 0.0, min_on: 0.5}"))
    play(d, [(1.0, OPEN), (0.25, EYES), (1.0, OPEN)], step=0.25)  # one tick: never committed
    assert d.states()["eyes_closed"].since_ns is None
    d2 = driver(config(defaults="{tau: 0.0, min_on: 0.5}"))
    d2.update(0, OPEN)
    d2.update(ns(0.25), EYES)
    d2.update(ns(0.5), EYES)
    assert d2.states()["eyes_closed"].on is False
    d2.update(ns(0.75), EYES)
    st = d2.states()["eyes_closed"]
    assert st.on and st.since_ns == ns(0.25) and st.on_duration_s == pytest.approx(0.5)


def test_min_off_bridges_a_short_dropout_within_one_episode() -> None:
    rules = SLEEP
    d = driver(config(rules, defaults="{tau: 0.0, min_off: 0.5}"))
    ev = play(d, [(1.0, OPEN), (1.5, EYES), (0.25, OPEN), (1.5, EYES), (2.0, OPEN)], step=0.25)
    (start,) = fired(ev, "sleep")
    assert start.started_ns == ns(1.0) and start.t_ns == ns(4.0)
    (end,) = fired(ev, "sleep", "end")
    assert end.t_ns == ns(4.75) and end.duration_s == pytest.approx(3.25)  # end back-dated
    assert fired(ev, "microsleep") == []


def test_a_pending_end_stops_the_on_duration_clock() -> None:
    # 2.9 s closed, then open: the end is committed only 0.5 s later (min_off), but the episode
    # must not grow to 3 s meanwhile, so sleep does not fire and microsleep does.
    d = driver(config(SLEEP, defaults="{tau: 0.0, min_off: 0.5}"))
    ev = play(d, [(1.0, OPEN), (2.9, EYES), (2.0, OPEN)])
    assert fired(ev, "sleep") == []
    (end,) = fired(ev, "microsleep", "end")
    assert end.t_ns == ns(4.4) and end.duration_s == pytest.approx(2.9)


def test_smoothing_with_irregular_ticks_equals_the_continuous_time_result() -> None:
    # Input: 1.0 over (0, 1.3 s], then 0.3 over (1.3 s, 3 s]; each tick's sample covers the
    # time since the previous tick (the window that ends at the tick).
    cfg = config(defaults="{tau: 0.8}")
    regular, irregular = driver(cfg), driver(cfg)
    for d, ticks in ((regular, [i / 10 for i in range(31)]),
                     (irregular, [0.0, 0.1, 0.5, 0.55, 1.3, 1.7, 2.2, 2.25, 3.0])):
        for t in ticks:
            d.update(ns(t), {"phone": 0.0 if t == 0 else 1.0 if t <= 1.3 else 0.3})
    at_1_3 = 1.0 - math.exp(-1.3 / 0.8)  # first-order filter, solved in continuous time
    exact = 0.3 + (at_1_3 - 0.3) * math.exp(-1.7 / 0.8)
    assert regular.states()["phone"].prob == pytest.approx(exact, rel=1e-9)
    assert irregular.states()["phone"].prob == pytest.approx(exact, rel=1e-9)
    assert regular.states()["phone"].raw == 0.3


def test_a_single_tick_spike_is_smoothed_below_the_on_threshold() -> None:
    d = driver(config(defaults="{tau: 0.25}"))
    d.update(0, OPEN)
    d.update(ns(0.25), EYES)
    assert d.states()["eyes_closed"].prob == pytest.approx(1 - math.exp(-1))
    assert d.states()["eyes_closed"].on is False


# -- events --------------------------------------------------------------------------------


def test_events_start_update_end_with_peak_and_evidence() -> None:
    rules = "  - name: long_distraction\n    duration: {class: distracted, at_least: 1.0}\n"
    d = driver(config(rules, extra="update_every: 0.5\n"))
    ev = play(d, [(1.0, ROAD), (1.5, {"distracted": 0.85}), (1.0, {"distracted": 0.95}),
                  (1.0, {"distracted": 0.9}), (1.0, ROAD)], step=0.25)
    kinds = [(e.kind, e.t_ns) for e in ev]
    # Start 1 s into the episode; one update when the peak rises; none while it does not.
    assert kinds == [("start", ns(2.0)), ("update", ns(2.5)), ("end", ns(4.5))]
    start, update, end = ev
    assert start.peak == pytest.approx(0.85) and update.peak == pytest.approx(0.95)
    assert end.peak == pytest.approx(0.95) and end.duration_s == pytest.approx(3.5)
    assert start.started_ns == update.started_ns == end.started_ns == ns(1.0)
    assert all(e.evidence == {"distracted": "video"} and not e.flagged for e in ev)
    assert end.to_json()["event"] == "end" and end.to_json()["duration_s"] == 3.5


def test_heartbeat_updates_at_most_once_per_update_every() -> None:
    rules = "  - name: d\n    duration: {class: distracted, at_least: 0.0}\n"
    d = driver(config(rules, extra="update_every: 1.0\nheartbeat: true\n"))
    ev = play(d, [(3.6, AWAY), (1.0, ROAD)], step=0.25)
    assert [e.t_ns for e in fired(ev, "d", "update")] == [ns(1.0), ns(2.0), ns(3.0)]


def test_events_on_degraded_video_are_flagged_and_audio_ones_are_not() -> None:
    rules = ("  - name: sleep\n    duration: {class: eyes_closed, at_least: 1.0}\n"
             "  - name: chat\n    duration: {class: talking, at_least: 1.0}\n")
    d = driver(config(rules))
    flags = degraded_flags(video_valid=0.2, audio_valid=1.0)
    ev = play(d, [(2.0, {"eyes_closed": 1.0, "talking": 1.0})], flags=flags)
    assert flags == {"video_degraded": True, "audio_degraded": False}
    assert fired(ev, "sleep")[0].flagged is True
    assert fired(ev, "chat")[0].flagged is False  # talking rests on both; audio still good
    assert d.states()["eyes_closed"].flagged is True


def test_a_flag_seen_during_an_episode_marks_its_end_event() -> None:
    d = driver(config(SLEEP))
    ev = play(d, [(1.0, OPEN), (1.0, EYES)])
    ev += d.update(ns(2.0), EYES, {"video_degraded": True})
    ev += d.update(ns(2.1), OPEN)
    (end,) = fired(ev, "microsleep", "end")
    assert end.flagged is True and end.duration_s == pytest.approx(1.1)


def test_time_going_backwards_is_refused() -> None:
    d = driver(config())
    d.update(ns(1.0), OPEN)
    with pytest.raises(ValueError, match="backwards"):
        d.update(ns(0.5), OPEN)


# -- configuration -----------------------------------------------------------------------------


def test_default_rule_sets_parse_and_name_the_model_classes() -> None:
    drv, home = parse_decisions(DRIVER_RULES), parse_decisions(HOME_RULES)
    assert [r.name for r in drv.rules] == [
        "sleep", "microsleep", "long_distraction", "unresponsive", "visual_attention_time_sharing"
    ]
    assert [r.name for r in home.rules] == [
        "smoke_alarm", "co_alarm", "glass_break", "person_present"
    ]
    assert Decider(drv, DRIVER, DRIVER_THR, DRIVER_MOD).active() == []
    assert Decider(home, HOME, HOME_THR, HOME_MOD).states()["person"].modality == "video"


@pytest.mark.parametrize(("card", "text"), [("driver-av", DRIVER_RULES), ("home-av", HOME_RULES)])
def test_default_rule_sets_fit_the_shipped_model_cards(card: str, text: str) -> None:
    path = Path(__file__).resolve().parents[1] / "engines" / f"{card}.yaml"
    loaded = load_card(path)
    d = Decider.from_card(parse_decisions(text), loaded)  # unknown classes would raise
    states = d.states()
    assert list(states) == loaded.class_names
    modalities = {c.name: c.modality for c in loaded.classes}
    assert {n: s.modality for n, s in states.items()} == modalities


def test_driver_defaults_fire_sleep_and_not_microsleep_on_a_4_s_closure() -> None:
    d = Decider(parse_decisions(DRIVER_RULES), DRIVER, DRIVER_THR, DRIVER_MOD)
    ev = play(d, [(2.0, OPEN), (4.0, EYES), (3.0, OPEN)], step=0.25)
    assert [(e.kind, e.rule) for e in ev if e.kind != "update"] == [
        ("start", "sleep"), ("end", "sleep")
    ]
    start, end = ev[0], ev[-1]
    # tau 0.25 s: the sample at 2 s holds from 1.75 s, so 1 - exp(-t/tau) passes 0.8 at the
    # 2.25 s tick; the eyes open at 6 s, the end is committed 0.5 s (min_off) later.
    assert start.started_ns == ns(2.25) and start.t_ns == ns(5.25)
    assert end.t_ns == ns(6.5) and end.duration_s == pytest.approx(3.75)
    updates = [e for e in ev if e.kind == "update"]  # the smoothed value still rises
    assert [e.t_ns for e in updates] == [ns(6.25)] and updates[0].peak > start.peak


def test_driver_defaults_report_no_closure_inside_a_yawn_and_one_outlasting_it_late() -> None:
    """Shipped rules: eyes read closed for 3.5 s inside a 5 s yawn start nothing (neither a
    sleep nor, when they open, a microsleep); eyes closed for 8 s from the start of a 4 s
    yawn are a sleep once the yawn is over (dated from the closure's start), and
    `unresponsive`, which has no exception, at 6 s as without the yawn."""
    rules = parse_decisions(DRIVER_RULES)
    ev = play(Decider(rules, DRIVER, DRIVER_THR, DRIVER_MOD),
              [(1.0, {**OPEN, **NO_YAWN}), (0.75, YAWN), (3.5, {**EYES, **YAWN}),
               (0.75, {**OPEN, **YAWN}), (2.0, {**OPEN, **NO_YAWN})], step=0.25)
    assert [e for e in ev if e.rule in ("sleep", "microsleep")] == []
    ev = play(Decider(rules, DRIVER, DRIVER_THR, DRIVER_MOD),
              [(1.0, {**OPEN, **NO_YAWN}), (4.0, {**EYES, **YAWN}), (4.0, {**EYES, **NO_YAWN}),
               (2.0, OPEN)], step=0.25)
    (sleep,) = fired(ev, "sleep")
    (unresp,) = fired(ev, "unresponsive")
    # the yawn's smoothed class falls to 0.37, under its off level (0.6), on the first tick
    # without it (5 s); the closure's onset is the tick its smoothed class passed 0.8
    assert sleep.t_ns == ns(5.0) and sleep.started_ns == ns(1.25)
    assert unresp.t_ns == ns(7.25) and unresp.started_ns == ns(1.25)
    assert fired(ev, "microsleep", "end") == []


def test_driver_defaults_keep_glances_with_the_road_between_from_a_long_distraction() -> None:
    """Glances of 0.5 s every 1.5 s, the head swinging back past the road for 0.5 s between
    them, read as distracted too (as driver-dev-head-turn was with its yaw moved 15 degrees:
    a camera mounted a little aside), one tick on the road on each side. That tick ends each
    look away, so no long distraction; with the 0.5 s min_off of the other classes they merged
    into one, and into `unresponsive`. A look away of 4 s still is one."""
    away, road, swing = {"distracted": 1.0}, {"distracted": 0.0}, {"distracted": 0.9}
    glances = [(0.5, away), (0.25, road), (0.5, swing), (0.25, road)] * 6  # 9 s
    rules = parse_decisions(DRIVER_RULES)
    ev = play(Decider(rules, DRIVER, DRIVER_THR, DRIVER_MOD), glances, step=0.25)
    assert not [e for e in ev if e.rule in ("long_distraction", "unresponsive")]
    merged = rules.model_copy(update={"classes": {}})  # every class at the defaults
    ev = play(Decider(merged, DRIVER, DRIVER_THR, DRIVER_MOD), glances, step=0.25)
    assert [(e.kind, e.rule) for e in ev if e.kind == "start"] == [
        ("start", "long_distraction"), ("start", "unresponsive")]
    ev = play(Decider(rules, DRIVER, DRIVER_THR, DRIVER_MOD), [(1.0, road), (4.0, away),
                                                               (1.0, road)], step=0.25)
    assert [(e.kind, e.rule) for e in ev if e.kind != "update"] == [
        ("start", "long_distraction"), ("end", "long_distraction")]


def test_off_default_is_on_minus_0_1_and_class_overrides_merge_with_defaults() -> None:
    cfg = config(defaults="{tau: 0.0, min_off: 0.5}",
                 extra="classes:\n  phone: {on_threshold: 0.9}\n")
    d = driver(cfg)
    d.update(0, {"phone": 0.95})
    d.update(ns(0.1), {"phone": 0.81})
    assert d.states()["phone"].on is True
    d.update(ns(0.2), {"phone": 0.8})  # at off: pending, min_off 0.5 from the defaults
    assert d.states()["phone"].on is True
    d.update(ns(0.7), {"phone": 0.8})
    assert d.states()["phone"].on is False


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("rules:\n  - name: x\n    duration: {class: a, at_least: 1}\n    cadence: {class: a,"
         " pattern: [[1, 1]]}\n", "rules.0: a rule needs exactly one of duration"),
        ("rules:\n  - name: x\n    duration: {class: a, at_lest: 1}\n",
         "rules.0.duration.at_lest: Extra inputs are not permitted (line 4)"),
        ("defaults: {on_threshold: 0.5, off_threshold: 0.6}\n",
         "defaults: off_threshold (0.6) must be below on_threshold (0.5)"),
        ("rules:\n  - name: x\n    duration: {class: a, at_least: 3, less_than: 2}\n",
         "less_than must be greater than at_least"),
        ("rules:\n  - name: x\n    any_of: [{class: a, less_than: 2}]\n", "at_least conditions"),
        ("rules:\n  - {name: x, duration: {class: a}}\n  - {name: x, duration: {class: b}}\n",
         "rule names must be unique: x"),
        ("rules:\n  - name: x\n    duration: {class: a, at_least: 0.5, less_than: 3}\n"
         "    unless: {measure: partial_share, above: 0.8}\n", "unless applies to duration"),
        ("rules:\n  - name: x\n    duration: {class: a}\n"
         "    unless: {measure: loudness, above: 0.8}\n",
         "rules.0.unless.0.measure: Input should be 'partial_share', 'impact_spread', "
         "'band_rise', 'high_rise' or 'beat_before'"),
        ("rules:\n  - name: x\n    duration: {class: a}\n"
         "    unless: {measure: partial_share, above: 1.5}\n",
         "rules.0.unless.0: partial_share: level 1.5 outside (0, 1)"),
        ("rules:\n  - name: x\n    duration: {class: a}\n"
         "    unless: {measure: band_rise, below: 70}\n",
         "rules.0.unless.0: band_rise: level 70.0 outside (0, 60)"),
        ("rules:\n  - name: x\n    duration: {class: a}\n"
         "    unless: [{measure: partial_share, above: 0.8},\n"
         "             {measure: impact_spread, above: 0.1, below: 0.2}]\n",
         "rules.0.unless.1: a sound check needs exactly one of above, below"),
        ("rules:\n  - name: x\n    duration: {class: a}\n"
         "    unless: {measure: impact_spread}\n",
         "rules.0.unless.0: a sound check needs exactly one of above, below"),
        ("rules:\n  - name: x\n    cumulative: {class: a, total_at_least: 1, within: 2}\n"
         "    except_during: [b]\n", "except_during applies to duration and any_of rules"),
        ("rules:\n  - name: x\n    duration: {class: a, at_least: 1}\n"
         "    except_during: [b, a]\n", "except_during cannot name the rule's own class"),
    ],
)
def test_bad_decisions_are_config_errors_with_key_path(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match="decisions.yaml: decisions.") as exc:
        parse_decisions("decisions:\n" + "".join("  " + ln + "\n" for ln in text.splitlines()),
                        "decisions.yaml")
    assert message in str(exc.value)


def test_rule_on_an_unknown_class_is_a_config_error() -> None:
    expected = r"decisions.rules.0.any_of.1.class: unknown class 'sneeze'"
    with pytest.raises(ConfigError, match=expected):
        driver(config("  - name: u\n    any_of: [{class: eyes_closed, at_least: 1},"
                      " {class: sneeze, at_least: 1}]\n"))
    expected = r"decisions.rules.0.except_during.0: unknown class 'sneeze'"
    with pytest.raises(ConfigError, match=expected):
        driver(config("  - name: m\n    duration: {class: eyes_closed, less_than: 3}\n"
                      "    except_during: sneeze\n"))


def test_the_shipped_configs_decisions_are_the_rule_sets_the_tests_use() -> None:
    """configs/driver.yaml and configs/home.yaml say what DRIVER_RULES and HOME_RULES say."""
    from edge.config import load_config

    root = Path(__file__).resolve().parents[1] / "configs"
    for name, text in (("driver.yaml", DRIVER_RULES), ("home.yaml", HOME_RULES)):
        assert load_config(root / name).decisions == parse_decisions(text), name
