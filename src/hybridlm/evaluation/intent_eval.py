"""Intent data (BANKING77's `text,category` CSV, CLINC150's JSON) and the metrics of an intent model.

Accuracy counts an out-of-scope row as right when the model flags it. With out-of-scope rows,
in-scope accuracy (a flagged in-scope row is wrong), out-of-scope recall and precision are
reported too, and the AUROC of the scope score (how well scope is told apart, at any threshold).
The selective-handling curve says what share of messages the model could handle locally (most
confident first) and how accurate it is on that share.
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hybridlm.extras import require
from hybridlm.routing.outcomes import OutcomeDataError
from hybridlm.skills.intent import OUT_OF_SCOPE, IntentModel

CLINC_SPLITS = {"train": ("train", "oos_train"), "val": ("val", "oos_val"), "test": ("test", "oos_test")}
SELECTIVE_TARGET = 0.97


def load_intent_data(path: Path, split: str = "train") -> tuple[list[str], list[str]]:
    """(texts, labels); CLINC150's JSON gives the named split with its out-of-scope rows as 'oos'."""
    if not path.is_file():
        raise OutcomeDataError(f"{path}: no such file")
    if path.suffix == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            rows = [row for key in CLINC_SPLITS[split] for row in data.get(key, [])]
        except (json.JSONDecodeError, KeyError) as err:
            raise OutcomeDataError(f"{path}: not the CLINC150 layout ({err})") from None
        if not rows:
            raise OutcomeDataError(f"{path}: no '{split}' rows")
        return [str(r[0]) for r in rows], [str(r[1]) for r in rows]
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        if not {"text", "category"} <= set(reader.fieldnames or []):
            raise OutcomeDataError(f"{path}: needs columns text,category (has {reader.fieldnames})")
        rows = [(r["text"], r["category"]) for r in reader]
    if not rows:
        raise OutcomeDataError(f"{path}: no rows")
    return [t for t, _ in rows], [c for _, c in rows]


def sample_shots(texts: Sequence[str], labels: Sequence[str], shots: int, seed: int = 0) -> tuple[list[str], list[str]]:
    """`shots` examples per intent (all of an intent's if it has fewer): the few-shot setting."""
    by_label: dict[str, list[int]] = defaultdict(list)
    for i, label in enumerate(labels):
        by_label[label].append(i)
    rng = np.random.default_rng(seed)
    chosen = sorted(int(i) for idx in by_label.values()
                    for i in rng.choice(idx, size=min(shots, len(idx)), replace=False))
    return [texts[i] for i in chosen], [labels[i] for i in chosen]


def selective_curve(confidence: np.ndarray, correct: np.ndarray, points: int = 20) -> list[tuple[float, float]]:
    """(share handled, accuracy on it), handling the most confident messages first."""
    order = np.argsort(-confidence, kind="stable")
    hits = np.cumsum(correct[order])
    n = len(order)
    return [(k / n, float(hits[k - 1] / k)) for k in np.linspace(n / points, n, points).astype(int)]


def handled_at(confidence: np.ndarray, correct: np.ndarray, target: float) -> tuple[float, float]:
    """The largest share handled (most confident first) whose accuracy is >= target, and its threshold."""
    order = np.argsort(-confidence, kind="stable")
    accuracy = np.cumsum(correct[order]) / np.arange(1, len(order) + 1)
    ok = np.where(accuracy >= target)[0]
    if not len(ok):
        return 0.0, 1.0
    k = int(ok.max())
    return (k + 1) / len(order), float(confidence[order][k])


def evaluate_intent(model: IntentModel, texts: Sequence[str], labels: Sequence[str]) -> dict[str, Any]:
    predictions = model.predict(texts)
    truth = np.array(labels)
    label = np.array([p.label for p in predictions])
    flagged = np.array([p.out_of_scope for p in predictions])
    confidence = np.array([p.confidence for p in predictions])
    is_oos = truth == OUT_OF_SCOPE
    right = np.where(is_oos, flagged, (label == truth) & ~flagged)
    metrics: dict[str, Any] = {"examples": len(truth), "accuracy": round(float(right.mean()), 4),
                               "threshold": model.threshold if np.isfinite(model.threshold) else None}
    if is_oos.any():
        metrics["in_scope_accuracy"] = round(float(right[~is_oos].mean()), 4)
        metrics["oos_recall"] = round(float((flagged & is_oos).sum() / is_oos.sum()), 4)
        metrics["oos_precision"] = round(float((flagged & is_oos).sum() / max(1, flagged.sum())), 4)
        scope = np.array([p.scope_score for p in predictions])
        metrics["oos_auroc"] = round(float(require("sklearn.metrics").roc_auc_score(~is_oos, scope)), 4)
    share, at = handled_at(confidence, label == truth, SELECTIVE_TARGET)
    metrics["handled_locally_at_97"] = round(share, 4)
    metrics["threshold_for_97"] = round(at, 4)
    metrics["selective_curve"] = [[round(s, 3), round(a, 4)] for s, a in selective_curve(confidence, label == truth)]
    return metrics
