"""The ``decisions:`` section of a config: how class probabilities become states, and the rules
over those states (durations, any-of, cumulative on-time, alarm cadence). Validated like the
rest of the config (unknown keys are errors, every field described); :mod:`edge.decisions.decide` runs
them. ``DRIVER_RULES`` and ``HOME_RULES`` are the rule sets the shipped configs use.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def default_off(on: float) -> float:
    """The off threshold of a class that sets none: 0.1 under its on (half, at 0.1 and under),
    so that a probability near the threshold does not toggle the class each tick."""
    return on - 0.1 if on > 0.1 else on / 2


class ClassDecision(_Model):
    """How one class's probability becomes an on/off state."""

    tau: float = Field(0.25, ge=0, le=60, description="Smoothing time constant (s); 0: none.")
    on_threshold: float | None = Field(
        None, gt=0, le=1, description="Smoothed probability that turns the class on; default: "
        "the model card's threshold."
    )
    off_threshold: float | None = Field(
        None, ge=0, lt=1,
        description="Smoothed probability that turns it off; default: on_threshold - 0.1.",
    )
    min_on: float = Field(0.0, ge=0, le=60, description="Seconds on before an onset is committed.")
    min_off: float = Field(0.0, ge=0, le=60, description="Seconds off before an end is committed.")

    @model_validator(mode="after")
    def _off_below_on(self) -> "ClassDecision":
        on, off = self.on_threshold, self.off_threshold
        if on is not None and off is not None and off >= on:
            raise ValueError(f"off_threshold ({off:g}) must be below on_threshold ({on:g})")
        return self


def _listed(v: object) -> object:
    """One sound check written alone, as a list of one."""
    return [v] if isinstance(v, dict) else v


#: Sound checks, one written alone taken as a list of one (a rule's unless, a condition's needs).
SoundChecks = Annotated[list["SoundCheck"], BeforeValidator(_listed)]


class DurationCondition(_Model):
    """A class's committed episode measured against time bounds."""

    class_: str = Field(alias="class", description="Class whose committed state is measured.")
    at_least: float = Field(
        0.0, ge=0, description="Holds once an episode has lasted this long (s)."
    )
    less_than: float | None = Field(
        None, gt=0, description="If set: fires when an episode ENDS having lasted less than this "
        "(and at least at_least), e.g. a microsleep."
    )
    needs: SoundChecks | None = Field(
        None, min_length=1, description="any_of conditions: what the window's sound must "
        "measure for this condition to hold, besides the rule's unless (a glass break sure on "
        "one tick: its sound rose sharply above 4 kHz); a measure not taken is not met. Judged "
        "tick by tick: an event held by this condition alone ends on a tick that does not meet "
        "it. One check or a list."
    )

    @model_validator(mode="after")
    def _bounds(self) -> "DurationCondition":
        if self.less_than is not None and self.less_than <= self.at_least:
            raise ValueError("less_than must be greater than at_least")
        return self


class CumulativeCondition(_Model):
    """On-time of a class summed over a sliding window (glances adding up)."""

    class_: str = Field(alias="class", description="Class whose committed on-time is summed.")
    total_at_least: float = Field(gt=0, description="Summed on-time (s) that makes the rule hold.")
    within: float = Field(gt=0, description="Length of the sliding window (s).")
    reset_after: float | None = Field(
        None, gt=0, description="The sum restarts after the class has been off this long (s)."
    )

    @model_validator(mode="after")
    def _fits(self) -> "CumulativeCondition":
        if self.total_at_least > self.within:
            raise ValueError("total_at_least cannot exceed within")
        return self


class CadenceCondition(_Model):
    """A beep rhythm on the beeps of a beep signal passed to :meth:`Decider.update`.

    The rhythm is matched on beep onsets (:mod:`edge.decisions.cadence`): each ``[on_s, off_s]`` step
    asks for the next beep to start ``on_s + off_s`` later. The beep rhythm is the evidence; the
    class names the event and gives its peak, and with ``gate`` must be on as well — a class
    alone never fires the rule.
    """

    class_: str = Field(
        alias="class", description="Class the rhythm confirms (its peak, modality)."
    )
    signal: str | list[str] | None = Field(
        None,
        description="Beep signal(s) to match, each on its own (e.g. one per tone band); default: "
        "the class name.",
    )
    pattern: list[tuple[float, float]] = Field(
        min_length=1, description="One cycle as nominal [on_s, off_s] pairs (the standard's)."
    )
    tolerance: float = Field(
        0.05, ge=0, le=5,
        description="Allowed error (s) of each onset-to-onset interval (on_s + off_s of a "
        "step), on top of rel_tolerance: where a room lets an onset be found.",
    )
    rel_tolerance: float = Field(
        0.1, ge=0, le=1,
        description="Allowed error as a fraction of each onset-to-onset interval: the "
        "device's spread (ISO 8201: 10 %).",
    )
    smear: float = Field(
        0.4, ge=0, le=5,
        description="How much longer than its on_s (s) a beep may be heard (a room's reverb "
        "prolongs it); a longer tone is no beep. A beep must also last on_s / 2. Pulses a "
        "room merged (gaps of at most 0.15 s) may be one beep as long as their span.",
    )
    cycles: int = Field(2, ge=1, le=10, description="Cycles in a row that confirm the pattern.")
    gate: bool = Field(
        False,
        description="Also require the class to be on (its committed state); the beep rhythm "
        "is required either way.",
    )

    @model_validator(mode="after")
    def _positive(self) -> "CadenceCondition":
        if any(a <= 0 or b <= 0 for a, b in self.pattern):
            raise ValueError("pattern lengths must be > 0")
        return self


#: The levels a check may set, by measure: shares, seconds (of the 1 s searched) and
#: correlations in (0, 1), dB of rise in (0, 60).
MEASURE_RANGES = {"partial_share": (0.0, 1.0), "impact_spread": (0.0, 1.0),
                  "band_rise": (0.0, 60.0), "high_rise": (0.0, 60.0), "beat_before": (0.0, 1.0)}


class SoundCheck(_Model):
    """A measure of the window's sound (:mod:`edge.features.partials`,
    :mod:`edge.features.impacts`, :mod:`edge.features.rise`) that, above or below a level,
    says the sound is something else than the class names: evidence against it."""

    measure: Literal["partial_share", "impact_spread", "band_rise", "high_rise",
                     "beat_before"] = Field(
        description="partial_share: the share of the 1.5-8 kHz band's energy over the window's "
        "last 0.5 s that its 4 strongest mel channels hold (a bell's few partials: 0.83-1.0; "
        "a glass break's spread: 0.13-0.64). impact_spread: seconds from the first to the last "
        "impact in the 2-8 kHz band over the window's last 1 s (one strike: a cymbal, a clap, "
        "a click 0-0.06; a shatter's pieces 0.25 and more). band_rise: dB by which the 2-8 kHz "
        "band's loudest column in the window's last 1 s stands over the loudest tenth of its "
        "columns older than 1.25 s (a shatter in a quiet room 34-41, at a speaker's level 9.5 "
        "and more; inside music mostly 1.5-6.3). high_rise: the same of the 4-8 kHz band, where a "
        "shatter's energy is (a shatter over speech at its level 24-36; a word read over music "
        "mostly under 6). beat_before: the highest normalised autocorrelation (lags "
        "0.15-1.5 s) of the 2-8 kHz band's onsets over the same older columns "
        "(speech, rain at most 0.25; two equal knocks 0.5; a steady beat 0.6-1)."
    )
    above: float | None = Field(None, description="In unless: the rule does not start on a tick "
                                "whose window measures above this. In needs: the condition "
                                "holds only on a tick whose window does.")
    below: float | None = Field(None, description="In unless: the rule does not start on a tick "
                                "whose window measures below this. In needs: the condition "
                                "holds only on a tick whose window does.")

    @model_validator(mode="after")
    def _one_level(self) -> "SoundCheck":
        if (self.above is None) == (self.below is None):
            raise ValueError("a sound check needs exactly one of above, below")
        level = self.above if self.above is not None else self.below
        lo, hi = MEASURE_RANGES[self.measure]
        if level is None or not lo < level < hi:
            raise ValueError(f"{self.measure}: level {level} outside ({lo:g}, {hi:g})")
        return self

    def against(self, value: float | None) -> bool:
        """Whether ``value`` (None: not measured) says the sound is something else."""
        return value is not None and self.met(value)

    def met(self, value: float | None) -> bool:
        """Whether ``value`` is above / below the level (None: not measured, not met)."""
        if value is None:
            return False
        if self.above is not None:
            return value > self.above
        return self.below is not None and value < self.below


DurationCondition.model_rebuild()


class RuleConfig(_Model):
    """A named rule; exactly one of duration, any_of, cumulative, cadence."""

    name: str = Field(min_length=1, description="Rule name, carried by its events.")
    duration: DurationCondition | None = Field(None, description="One class's episode length.")
    any_of: list[DurationCondition] | None = Field(
        None, min_length=1, description="Holds while any of these at_least conditions holds."
    )
    cumulative: CumulativeCondition | None = Field(None, description="Summed on-time.")
    cadence: CadenceCondition | None = Field(None, description="Alarm beep rhythm.")
    unless: SoundChecks | None = Field(
        None, description="duration (at_least) and any_of rules: no start on a tick whose "
        "window's sound any of these checks speaks against (a bell's partials, a single strike "
        "are no glass break; an event already running runs on); one check or a list."
    )

    except_during: list[str] | None = Field(
        None, description="duration and any_of rules: classes in whose episodes this rule's "
        "class means something else (eyes squeezed shut in a yawn are no microsleep). An "
        "episode rule (less_than) does not fire for an episode during which any of them was "
        "on by its thresholds (smoothed, with hysteresis; its min_off does not prolong it); a "
        "rule that holds tick by tick does not start on a tick where one is (an event already "
        "running runs on to its class's end)."
    )

    @field_validator("except_during", mode="before")
    @classmethod
    def _names(cls, v: object) -> object:
        return [v] if isinstance(v, str) else v

    @model_validator(mode="after")
    def _one_kind(self) -> "RuleConfig":
        kinds = [k for k in ("duration", "any_of", "cumulative", "cadence") if getattr(self, k)]
        if len(kinds) != 1:
            raise ValueError("a rule needs exactly one of duration, any_of, cumulative, cadence")
        held = self.any_of or (self.duration and self.duration.less_than is None)
        if self.unless is not None and not held:
            raise ValueError("unless applies to duration rules without less_than and any_of "
                             "rules (a rule that holds tick by tick)")
        if self.except_during is not None and not (self.duration or self.any_of):
            raise ValueError("except_during applies to duration and any_of rules")
        own = {c.class_ for c in self.any_of or ([self.duration] if self.duration else [])}
        if own & set(self.except_during or ()):
            raise ValueError("except_during cannot name the rule's own class")
        if self.any_of and any(c.less_than is not None for c in self.any_of):
            raise ValueError("any_of takes at_least conditions only")
        if self.duration is not None and self.duration.needs is not None:
            raise ValueError("needs is for any_of conditions (a duration rule's checks go in "
                             "the rule's unless)")
        return self


class DecisionsConfig(_Model):
    """The ``decisions:`` section: class smoothing and the rules."""

    defaults: ClassDecision = Field(default_factory=ClassDecision, description="For every class.")
    classes: dict[str, ClassDecision] = Field(
        default_factory=dict, description="Per class: fields that override the defaults."
    )
    update_every: float | None = Field(
        1.0, ge=0,
        description="While a rule is active, an 'update' event is sent when its peak has risen, "
        "at most once per this many seconds; null: start and end events only.",
    )
    heartbeat: bool = Field(
        False, description="Send updates every update_every even if the peak has not risen."
    )
    rules: list[RuleConfig] = Field(default_factory=list, description="Rules, in output order.")

    def for_class(self, name: str) -> ClassDecision:
        """Class ``name``'s settings: the fields its entry under ``classes`` sets, over the
        defaults."""
        over = self.classes.get(name)
        return self.defaults.model_copy(
            update=over.model_dump(include=over.model_fields_set) if over else {})

    @model_validator(mode="after")
    def _unique(self) -> "DecisionsConfig":
        names = [r.name for r in self.rules]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"rule names must be unique: {', '.join(dup)}")
        return self


DRIVER_RULES = """\
decisions:
  defaults: {tau: 0.25, min_off: 0.5}
  classes:                        # a tick back on the road ends a look away, so glances
    distracted: {min_off: 0.0}    # with the road between never add up to a long one
  update_every: 1.0
  rules:
    - name: sleep
      duration: {class: eyes_closed, at_least: 3.0}
      except_during: [yawning]    # not while a yawn lasts (unresponsive, 6 s, has no exception)
    - name: microsleep            # blinks (< 0.5 s) excluded, as the model card asks
      duration: {class: eyes_closed, at_least: 0.5, less_than: 3.0}
      except_during: [yawning]    # eyes squeeze shut in a yawn
    - name: long_distraction
      duration: {class: distracted, at_least: 3.0}
    - name: unresponsive
      any_of:
        - {class: eyes_closed, at_least: 6.0}
        - {class: distracted, at_least: 6.0}
    - name: visual_attention_time_sharing   # Euro NCAP driver monitoring
      cumulative: {class: distracted, total_at_least: 10.0, within: 30.0, reset_after: 2.0}
"""

HOME_RULES = """\
decisions:
  defaults: {tau: 0.25, min_off: 0.5}
  classes:
    glass_break: {tau: 0.0, min_off: 0.0, on_threshold: 0.99, off_threshold: 0.8}
    person: {tau: 0.5, min_off: 2.0}
  update_every: 1.0
  rules:
    - name: smoke_alarm           # T3 (ISO 8201) on beep onsets, 520 Hz or 2-3.6 kHz tone
      cadence: {class: smoke_alarm, signal: [beeps_520, beeps_3k],
                pattern: [[0.5, 0.5], [0.5, 0.5], [0.5, 1.5]],
                tolerance: 0.05, rel_tolerance: 0.1, smear: 0.4, cycles: 2}
    - name: co_alarm              # T4 (NFPA 720) on beep onsets, 520 Hz or 2-3.6 kHz tone
      cadence: {class: co_alarm, signal: [beeps_520, beeps_3k],
                pattern: [[0.1, 0.1], [0.1, 0.1], [0.1, 0.1], [0.1, 5.0]],
                tolerance: 0.05, rel_tolerance: 0.1, smear: 0.3, cycles: 2}
    - name: glass_break
      any_of:                     # two ticks running, the first sure: a shatter rings and
        - {class: glass_break, at_least: 0.1}         # falls for 0.5 s and more;
        - {class: glass_break, at_least: 0.0,         # or a sure tick whose window's sound
           needs: {measure: high_rise, above: 20}}    # rose sharply above 4 kHz (a quiet shatter)
      unless:
        - {measure: partial_share, above: 0.8}   # a bell's few partials: no shatter
        - {measure: impact_spread, below: 0.12}  # one strike (a cymbal, a clap): no shatter
        - {measure: band_rise, below: 6}         # no louder than the room just was: music
        - {measure: high_rise, below: 6}         # ... above 4 kHz: a voice over music
        - {measure: beat_before, above: 0.6}     # a beat before it: music moving on
      # (any second tick: a tick's time is its window's newest frame, so ticks can lie a frame
      # interval closer than the hop). The class must reach 0.99 to start (a knock or a word's
      # onset reaches 0.7-0.9, on ticks of its own) and stay above 0.8. A quiet or short shatter
      # is sure on one tick only; above 4 kHz real ones rise 24-41 dB over the room before, a
      # soundtrack's hit as a word starts 5.5-13.
    - name: person_present
      duration: {class: person, at_least: 1.0}
"""
