"""Decisions: the ``decisions:`` section of a config (:mod:`edge.decisions.rules`), the layer that
turns class probabilities into committed states and rules over them into events
(:mod:`edge.decisions.decide`), and alarm cadences matched on beep onsets
(:mod:`edge.decisions.cadence`)."""
