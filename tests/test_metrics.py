"""Frame- and event-level scores on hand-made tick sequences."""

from __future__ import annotations

import numpy as np
import pytest

from edge.evaluate.metrics import runs, score, score_class


def test_runs_finds_half_open_ranges() -> None:
    assert runs(np.array([0, 1, 1, 0, 1], bool)) == [(1, 3), (4, 5)]
    assert runs(np.zeros(0, bool)) == []


def test_perfect_prediction_scores_one_with_zero_latency() -> None:
    label = np.array([0, 0, 1, 1, 1, 0, 0, 1, 1, 0], bool)
    s = score_class(label, label, np.arange(10) * 0.5)
    assert (s.precision, s.recall, s.f1) == (1.0, 1.0, 1.0)
    assert s.events == 2 and s.event_recall == 1.0 and s.event_precision == 1.0
    assert s.latency_s_p50 == 0.0


def test_late_detection_counts_latency_and_misses_count_against_recall() -> None:
    label = np.array([0, 1, 1, 1, 0, 0, 1, 1, 0, 0, 0, 0, 0], bool)
    pred = np.array([0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 1], bool)
    s = score_class(pred, label, np.arange(13) * 0.5)
    assert s.recall == pytest.approx(1 / 5)
    assert s.precision == pytest.approx(1 / 3)
    assert s.event_recall == pytest.approx(0.5)  # the second event is missed
    assert s.event_precision == pytest.approx(0.5)  # the last predicted event is false
    assert s.latency_s_p50 == pytest.approx(1.0)  # detected two ticks after it began


def test_macro_f1_over_classes() -> None:
    labels = np.array([[1, 0], [1, 0], [0, 1], [0, 1]], bool)
    probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.1, 0.3], [0.2, 0.9]], np.float32)
    out = score(probs, labels, np.arange(4) * 0.5, ["a", "b"], np.array([0.5, 0.5]))
    assert out["classes"]["a"]["f1"] == 1.0  # type: ignore[index]
    assert out["classes"]["b"]["f1"] == pytest.approx(2 / 3, abs=1e-4)  # type: ignore[index]
    assert out["macro_f1"] == pytest.approx((1 + 2 / 3) / 2, abs=1e-4)
