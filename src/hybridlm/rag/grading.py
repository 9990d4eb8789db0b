"""Relevance grading (CRAG-style): before the LLM sees retrieved chunks, a small model grades each
relevant, partly relevant or irrelevant to the question, so only relevant ones are passed on and
an answer with nothing relevant says so instead of inventing.

The grade is a logistic regression over what MiniLM and the words say about the pair: how close
the chunk and its best sentence are to the question, and how many of the question's words and
names the chunk contains. Trained with `hybridlm train grader` on questions with known passages.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from hybridlm import artifacts
from hybridlm.factcheck import text as tx
from hybridlm.heads import LogisticHead
from hybridlm.models.encoder import Encoder, load_encoder

FORMAT = "hybridlm-grader"
ENCODER = "minilm"
RELEVANT, PARTLY, IRRELEVANT = "relevant", "partly", "irrelevant"
FEATURES = ("chunk_similarity", "best_sentence_similarity", "question_word_coverage", "question_name_coverage")
PARTLY_MARGIN = 0.25  # scores this far below the relevance threshold are "partly"


@dataclass(frozen=True)
class Grade:
    label: str
    score: float  # probability that the chunk helps answer the question


class RelevanceGrader:
    def __init__(self, header: dict[str, Any], head: LogisticHead, encoder: Encoder | None = None) -> None:
        self.header = header
        self.threshold = float(header["threshold"])
        self.head = head
        self.encoder = encoder or load_encoder(ENCODER)

    def scores(self, question: str, chunks: Sequence[str]) -> np.ndarray:
        return self.head.probability(pair_features(self.encoder, question, chunks)) if chunks else np.zeros(0)

    def grade(self, question: str, chunks: Sequence[str]) -> list[Grade]:
        return [Grade(self.label(float(s)), float(s)) for s in self.scores(question, chunks)]

    def label(self, score: float) -> str:
        if score >= self.threshold:
            return RELEVANT
        return PARTLY if score >= self.threshold - PARTLY_MARGIN else IRRELEVANT

    def save(self, path: Path) -> None:
        artifacts.save(path, FORMAT, self.header, self.head.arrays("head"))

    @classmethod
    def load(cls, path: Path | None = None) -> RelevanceGrader:
        """The given grader file, or the one that ships with hybridlm."""
        path = path or Path(str(resources.files("hybridlm.rag") / "data" / "grader.npz"))
        header, arrays = artifacts.load(path, FORMAT, "grader", "hybridlm train grader")
        return cls(header, LogisticHead.from_arrays(path, arrays, "head"))


def fit_grader(matrix: np.ndarray, labels: np.ndarray, header: dict[str, Any],
               encoder: Encoder | None = None) -> RelevanceGrader:
    """Trained on `pair_features` rows labelled relevant (1) or not (0), both classes weighed equally."""
    head = LogisticHead.fit(matrix, labels, balanced=True)
    return RelevanceGrader({"features": list(FEATURES), "encoder": ENCODER, "threshold": 0.5, **header}, head,
                           encoder)


def pair_features(encoder: Encoder, question: str, chunks: Sequence[str]) -> np.ndarray:
    """One row of FEATURES per chunk; every text is embedded in one encoder call."""
    units = [tx.sentences(text) or [text] for text in chunks]
    vectors = encoder.encode([question, *chunks, *(u for parts in units for u in parts)])
    q, chunk_vectors, unit_vectors = vectors[0], vectors[1:len(chunks) + 1], vectors[len(chunks) + 1:]
    asked = [tx.stem(w) for w in tx.content_words(question)]
    names = {tx.stem(n) for n in tx.names(question)}
    rows, start = [], 0
    for text, vector, parts in zip(chunks, chunk_vectors, units, strict=True):
        best = float((unit_vectors[start:start + len(parts)] @ q).max())
        start += len(parts)
        words = set(tx.stems(text))
        rows.append([float(vector @ q), best, tx.share_known(asked, words), tx.share_known(names, words)])
    return np.array(rows, dtype=np.float32).reshape(len(chunks), len(FEATURES))
