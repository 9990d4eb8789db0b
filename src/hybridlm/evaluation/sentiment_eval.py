"""The metrics of a sentiment reader: three-class accuracy, and for the negative class (the one a
desk escalates on) recall, precision and F1 of its escalation decision and the AUROC of its score."""

from __future__ import annotations

from typing import Any

import numpy as np

from hybridlm.extras import require
from hybridlm.skills.sentiment import LABELS, SentimentSkill
from hybridlm.skills.sentiment_data import SentimentData


def evaluate_sentiment(skill: SentimentSkill, data: SentimentData) -> dict[str, Any]:
    metrics = require("sklearn.metrics")
    found = skill.read(data.texts)
    truth = np.array(data.labels)
    label = np.array([s.label for s in found])
    flagged = np.array([s.unhappy for s in found])
    negative = truth == "negative"
    caught = int((flagged & negative).sum())
    recall = caught / max(1, int(negative.sum()))
    precision = caught / max(1, int(flagged.sum()))
    return {
        "examples": len(truth),
        "reader": found[0].reader if found else None,
        "accuracy": round(float((label == truth).mean()), 4),
        "macro_f1": round(float(metrics.f1_score(truth, label, labels=list(LABELS), average="macro")), 4),
        "negative_share": round(float(negative.mean()), 4),
        "negative_recall": round(recall, 4),
        "negative_precision": round(precision, 4),
        "negative_f1": round(2 * precision * recall / (precision + recall) if caught else 0.0, 4),
        "auroc": (round(float(metrics.roc_auc_score(negative, [s.negativity for s in found])), 4)
                  if 0 < negative.sum() < len(truth) else None),
        "threshold": skill.model.threshold if skill.model else None,
    }
