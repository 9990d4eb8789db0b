"""How well the fact-checker tells consistent answers from inconsistent ones.

SummEdits is scored leave-one-domain-out (train on five domains, score the sixth), with balanced
accuracy per domain and overall, and the share of inconsistent summaries missed per edit type.
HaluEval QA is set beside its traps: answer length alone, and token overlap on the subset where
both answers have about the same length.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from hybridlm.extras import require
from hybridlm.factcheck import text as tx
from hybridlm.factcheck.detector import FactChecker
from hybridlm.factcheck.training import FactPair, fingerprints, train
from hybridlm.models.encoder import Encoder

LENGTH_MATCH_WORDS = 2
EDIT_LABELS = ("entity_modification", "antonym_swap", "negation_insertion_removal", "hallucinated_fact_insertion")


def score_pairs(checker: FactChecker, pairs: Sequence[FactPair],
                progress: Callable[[int], None] | None = None) -> np.ndarray:
    return checker.score_answers([(p.source, p.answer) for p in pairs], progress)


def auroc(labels: Sequence[int], scores: Sequence[float]) -> float:
    return float(require("sklearn.metrics").roc_auc_score(labels, scores)) if len(set(labels)) == 2 else float("nan")


def binary_metrics(labels: Sequence[int], scores: np.ndarray, threshold: float) -> dict[str, float]:
    balanced_accuracy = require("sklearn.metrics").balanced_accuracy_score(labels, scores >= threshold)
    return {"balanced_accuracy": round(float(balanced_accuracy), 4),
            "auroc": round(auroc(labels, scores), 4), "pairs": len(labels)}


def missed_by_edit_type(pairs: Sequence[FactPair], called_consistent: np.ndarray) -> dict[str, float]:
    """Of the inconsistent summaries with each edit type, the share the detector called consistent."""
    seen: dict[str, list[bool]] = defaultdict(list)
    for pair, consistent in zip(pairs, called_consistent, strict=True):
        if pair.label == 0:
            for kind in pair.edit_types:
                seen[kind].append(bool(consistent))
    return {kind: round(float(np.mean(seen[kind])), 4) for kind in EDIT_LABELS if seen[kind]}


def leave_one_domain_out(domains: dict[str, list[FactPair]], encoder: Encoder,
                         progress: Callable[[int], None] | None = None) -> dict[str, Any]:
    metrics = require("sklearn.metrics")
    per_domain: dict[str, dict[str, float]] = {}
    all_pairs: list[FactPair] = []
    called_consistent: list[bool] = []
    for held_out, pairs in domains.items():
        training = [p for name, rest in domains.items() if name != held_out for p in rest]
        checker = train(training, encoder)  # its threshold is chosen on the training domains only
        scores = score_pairs(checker, pairs, progress)
        per_domain[held_out] = binary_metrics([p.label for p in pairs], scores, checker.threshold)
        all_pairs += pairs
        called_consistent += (scores >= checker.threshold).tolist()
    pooled = metrics.balanced_accuracy_score([p.label for p in all_pairs], called_consistent)
    return {"balanced_accuracy": round(float(np.mean([m["balanced_accuracy"] for m in per_domain.values()])), 4),
            "auroc": round(float(np.mean([m["auroc"] for m in per_domain.values()])), 4),
            "pooled_balanced_accuracy": round(float(pooled), 4), "domains": per_domain,
            "missed_by_edit_type": missed_by_edit_type(all_pairs, np.array(called_consistent))}


def halueval_report(pairs: Sequence[FactPair], scores: np.ndarray, threshold: float) -> dict[str, Any]:
    """The detector beside answer length and token overlap, on all pairs and on length-matched ones."""
    labels = [p.label for p in pairs]
    shortness = [-len(p.answer.split()) for p in pairs]
    overlap = [tx.share_known(tx.content_words(p.answer), set(tx.words(p.source))) for p in pairs]
    report: dict[str, Any] = binary_metrics(labels, scores, threshold)
    report["length_only_auroc"] = round(auroc(labels, shortness), 4)
    report["token_overlap_auroc"] = round(auroc(labels, overlap), 4)
    matched = [i for i in range(0, len(pairs) - 1, 2)
               if abs(len(pairs[i].answer.split()) - len(pairs[i + 1].answer.split())) <= LENGTH_MATCH_WORDS]
    keep = [j for i in matched for j in (i, i + 1)]
    report["length_matched"] = {
        "pairs": len(matched), "auroc": round(auroc([labels[j] for j in keep], scores[keep]), 4),
        "length_only_auroc": round(auroc([labels[j] for j in keep], [shortness[j] for j in keep]), 4),
        "token_overlap_auroc": round(auroc([labels[j] for j in keep], [overlap[j] for j in keep]), 4)}
    return report


def detector_report(checker: FactChecker, pairs: Sequence[FactPair], scores: np.ndarray) -> dict[str, Any]:
    """A given detector on one file: its metrics (HaluEval beside its traps), what it was trained on,
    whether it has read these documents, and its most confident mistakes."""
    if pairs[0].domain == "halueval":
        metrics = halueval_report(pairs, scores, checker.threshold)
    else:
        metrics = binary_metrics([p.label for p in pairs], scores, checker.threshold)
        metrics["missed_by_edit_type"] = missed_by_edit_type(pairs, scores >= checker.threshold)
    metrics["detector_trained_on"] = checker.header.get("trained_on")
    metrics["documents_seen_in_training"] = checker.has_read(fingerprints(pairs))
    metrics["worst_mistakes"] = failures(pairs, scores, checker.threshold)
    return metrics


def failures(pairs: Sequence[FactPair], scores: np.ndarray, threshold: float, limit: int = 5) -> list[dict[str, Any]]:
    """The most confident mistakes, to read."""
    wrong = [i for i, p in enumerate(pairs) if (scores[i] >= threshold) != bool(p.label)]
    wrong.sort(key=lambda i: -abs(scores[i] - threshold))
    return [{"answer": pairs[i].answer[:200], "label": pairs[i].label, "score": round(float(scores[i]), 3),
             "edit_types": list(pairs[i].edit_types)} for i in wrong[:limit]]
