"""How well retrieved chunks are graded, on questions whose source passage is known (HaluEval QA).

Every passage is ingested into a real knowledge store; each question is searched; a retrieved
chunk is relevant when it comes from the question's own passage and irrelevant otherwise (another
question's passage). Reported: retrieval recall@k, then precision and recall of the chunks graded
relevant, k-fold by question (or for a given grader, on all of them), and how often a question
whose passage was removed from the results still gets a chunk passed on as relevant.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import groupby
from pathlib import Path
from typing import Any

import numpy as np

from hybridlm.factcheck.training import FactDataError
from hybridlm.models.encoder import Encoder
from hybridlm.rag.grading import RelevanceGrader, fit_grader, pair_features
from hybridlm.rag.store import KnowledgeStore


@dataclass(frozen=True)
class GradedPair:
    question: int
    chunk: str
    relevant: int


def load_questions(path: Path) -> list[tuple[str, str]]:
    """(question, knowledge passage) from HaluEval QA JSON lines."""
    try:
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        return [(str(r["question"]), str(r["knowledge"])) for r in rows]
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as err:
        raise FactDataError(f"{path}: needs HaluEval QA JSON lines with question and knowledge ({err})") from None


def retrieve(questions: Sequence[tuple[str, str]], k: int) -> tuple[list[GradedPair], dict[str, float]]:
    """Search every question in a store of all passages; labelled pairs and recall@k."""
    pairs: list[GradedPair] = []
    hits = {1: 0, 3: 0, k: 0}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        files = []
        for i, (_, passage) in enumerate(questions):
            files.append(folder / f"{i:05d}.txt")
            files[-1].write_text(passage, encoding="utf-8")
        store = KnowledgeStore(folder / "store.db")
        store.ingest_many(files)
        for i, (question, _) in enumerate(questions):
            found = store.search(question, k)
            own = [Path(h.path).name == f"{i:05d}.txt" for h in found]
            for cut in hits:
                hits[cut] += any(own[:cut])
            pairs += [GradedPair(i, h.text, int(o)) for h, o in zip(found, own, strict=True)]
        store.close()
    return pairs, {f"recall_at_{cut}": round(n / len(questions), 4) for cut, n in sorted(hits.items())}


def grading_metrics(pairs: Sequence[GradedPair], scores: np.ndarray, grader_threshold: float) -> dict[str, Any]:
    kept = scores >= grader_threshold
    gold = np.array([p.relevant for p in pairs], dtype=bool)
    questions = sorted({p.question for p in pairs})
    by_question = {q: [i for i, p in enumerate(pairs) if p.question == q] for q in questions}
    decoy = [any(kept[i] for i in idx if not gold[i]) for idx in by_question.values()]
    return {
        "precision": round(float((kept & gold).sum() / max(kept.sum(), 1)), 4),
        "recall": round(float((kept & gold).sum() / max(gold.sum(), 1)), 4),
        "irrelevant_passed_on": round(float((kept & ~gold).sum() / max((~gold).sum(), 1)), 4),
        # with its own passage taken out, does a question still get an (irrelevant) chunk passed on?
        "no_answer_leak_rate": round(float(np.mean(decoy)), 4) if decoy else None,
        "chunks": len(pairs),
    }


def labelled_features(questions: Sequence[tuple[str, str]], pairs: Sequence[GradedPair],
                      encoder: Encoder) -> tuple[np.ndarray, np.ndarray]:
    """Features of every retrieved chunk, one encoder call per question (`retrieve` keeps a
    question's chunks together)."""
    features = np.concatenate([pair_features(encoder, questions[q][0], [p.chunk for p in group])
                               for q, group in groupby(pairs, key=lambda p: p.question)])
    return features, np.array([p.relevant for p in pairs])


def evaluate_grading(questions: Sequence[tuple[str, str]], encoder: Encoder, k: int = 5, folds: int = 5,
                     grader: RelevanceGrader | None = None,
                     progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    pairs, recall = retrieve(questions, k)
    if progress:
        progress(f"retrieved {len(pairs)} chunks for {len(questions)} questions")
    features, labels = labelled_features(questions, pairs, encoder)
    if grader is not None:
        scores = grader.head.probability(features)
        threshold = grader.threshold
    else:
        scores, threshold = np.zeros(len(pairs)), 0.5
        fold_of = np.array([p.question % folds for p in pairs])
        for fold in range(folds):
            test = fold_of == fold
            head = fit_grader(features[~test], labels[~test], {}, encoder).head
            scores[test] = head.probability(features[test])
    return {**recall, **grading_metrics(pairs, scores, threshold), "k": k, "questions": len(questions),
            "protocol": "given grader" if grader else f"{folds}-fold by question"}
