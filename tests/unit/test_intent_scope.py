"""Out-of-scope arithmetic: the Mahalanobis distance and the threshold's confidence bound."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from hybridlm.skills.intent import OUT_OF_SCOPE, IntentPrediction, choose_threshold
from hybridlm.skills.intent_tuning import OutlierDistance


def test_distance_is_mahalanobis_to_the_nearest_intent() -> None:
    rng = np.random.default_rng(0)
    stretch = np.array([10.0, 0.1])  # wide along x, narrow along y
    a = rng.normal(size=(500, 2)) * stretch
    b = rng.normal(size=(500, 2)) * stretch + [0.0, 5.0]
    outlier = OutlierDistance.fit(np.vstack([a, b]), ["a"] * 500 + ["b"] * 500)
    far_along_x, near_along_y = outlier.distance(np.array([[20.0, 0.0], [0.0, 1.0]]))
    assert far_along_x < near_along_y  # 2 standard deviations beat 10
    assert abs(far_along_x - 4.0) < 0.5 and abs(near_along_y - 100.0) < 15.0


class ScoredModel:
    """A model whose scope scores are given: only the threshold's choice is under test."""

    def __init__(self, scores: Sequence[float]) -> None:
        self.scores = scores

    def predict(self, texts: Sequence[str]) -> list[IntentPrediction]:
        return [IntentPrediction("balance", 0.9, False, [], 0.0, s) for s in self.scores]


def test_threshold_needs_the_recall_target_with_confidence_not_just_on_the_sample() -> None:
    # 100 out-of-scope messages scored 0..99, 100 in-scope ones scored 50..149
    scores = list(range(100)) + list(range(50, 150))
    labels = [OUT_OF_SCOPE] * 100 + ["balance"] * 100
    threshold = choose_threshold(ScoredModel(scores), [""] * 200, labels, 0.85)
    caught = sum(s < threshold for s in range(100))
    assert 85 < caught <= 95  # 85 of 100 reach 0.85 on the sample but not with 95% confidence
    assert choose_threshold(ScoredModel(scores), [""] * 200, labels, 0.999) == float("inf")  # unreachable: flag all
