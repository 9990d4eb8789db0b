"""Intent: which of a company's known requests a message is, how sure, or that it is none of them.

A multinomial logistic regression over three views of the text: MiniLM sentence embeddings
(meaning), static distilled embeddings (a second, cheaper view) and character n-gram TF-IDF
(spelling, product words). Confidence is the top probability; below a threshold, or when the
explicit out-of-scope class wins, the message is out of scope and escalates. The threshold is
chosen on held-out data for a target out-of-scope recall (`choose_threshold`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hybridlm import artifacts
from hybridlm.models.encoder import load_encoder

FORMAT = "hybridlm-intent"
OUT_OF_SCOPE = "oos"
ENCODERS = ("minilm", "minilm-static")
NGRAMS = (2, 5)
TFIDF_WEIGHT = 0.5
MAX_NGRAMS = 30_000


@dataclass(frozen=True)
class IntentPrediction:
    label: str  # the best in-scope intent, even when out of scope
    confidence: float
    out_of_scope: bool
    alternatives: list[tuple[str, float]]
    oos_probability: float = 0.0  # of the explicit out-of-scope class, when trained with one


class IntentModel:
    def __init__(self, header: dict[str, Any], coef: np.ndarray, intercept: np.ndarray, vocabulary: np.ndarray,
                 idf: np.ndarray) -> None:
        self.header = header
        self.classes: list[str] = list(header["classes"])
        self.threshold: float = float(header.get("threshold", 0.0))
        self.coef, self.intercept = coef, intercept
        self._vectorizer = _vectorizer(vocabulary, idf)
        self._vocabulary, self._idf = vocabulary, idf

    def features(self, texts: Sequence[str]) -> Any:
        """Embeddings beside n-gram TF-IDF, as one sparse matrix."""
        from scipy.sparse import csr_matrix, hstack

        dense = np.hstack([load_encoder(name).encode(texts) for name in ENCODERS])
        return hstack([csr_matrix(dense), self._vectorizer.transform(list(texts)) * TFIDF_WEIGHT]).tocsr()

    def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        logits = np.asarray(self.features(texts) @ self.coef.T) + self.intercept
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        return p / p.sum(axis=1, keepdims=True)

    def predict(self, texts: Sequence[str]) -> list[IntentPrediction]:
        P = self.probabilities(texts)
        in_scope = np.array([c != OUT_OF_SCOPE for c in self.classes])
        out = []
        for p in P:
            order = np.argsort(-np.where(in_scope, p, -1.0))[:3]
            best = int(order[0])
            oos = float(p[~in_scope].max()) if not in_scope.all() else 0.0
            out.append(IntentPrediction(self.classes[best], float(p[best]), oos > p[best] or p[best] < self.threshold,
                                        [(self.classes[i], round(float(p[i]), 4)) for i in order], oos))
        return out

    def save(self, path: Path) -> None:
        artifacts.save(path, FORMAT, {**self.header, "threshold": self.threshold},
                       {"coef": self.coef, "intercept": self.intercept, "vocabulary": self._vocabulary,
                        "idf": self._idf})

    @classmethod
    def load(cls, path: Path) -> IntentModel:
        header, arrays = artifacts.load(path, FORMAT, "intent model", "hybridlm train intent")
        try:
            return cls(header, arrays["coef"], arrays["intercept"], arrays["vocabulary"], arrays["idf"])
        except KeyError as err:
            raise artifacts.ArtifactError(f"{path}: intent model lacks {err}") from None


def _vectorizer(vocabulary: np.ndarray, idf: np.ndarray) -> Any:
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=NGRAMS, sublinear_tf=True,
                                 vocabulary={str(v): i for i, v in enumerate(vocabulary)})
    vectorizer.idf_ = idf
    return vectorizer


def fit_intent(texts: Sequence[str], labels: Sequence[str], C: float = 30.0, name: str = "intents") -> IntentModel:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    tfidf = TfidfVectorizer(analyzer="char_wb", ngram_range=NGRAMS, sublinear_tf=True, min_df=1,
                            max_features=MAX_NGRAMS).fit(texts)
    vocabulary = np.array(tfidf.get_feature_names_out(), dtype=str)
    header = {"classes": [], "trained_on": {"name": name, "examples": len(texts), "intents": len(set(labels))},
              "encoders": list(ENCODERS)}
    model = IntentModel(header, np.zeros((0, 0)), np.zeros(0), vocabulary, tfidf.idf_)
    X = model.features(texts)  # sparse: embeddings beside n-grams
    classifier = LogisticRegression(C=C, max_iter=3000).fit(X, list(labels))
    model.classes = [str(c) for c in classifier.classes_]
    model.header["classes"] = model.classes
    model.coef, model.intercept = classifier.coef_.astype(np.float32), classifier.intercept_.astype(np.float32)
    return model


def choose_threshold(model: IntentModel, texts: Sequence[str], labels: Sequence[str], min_oos_recall: float) -> float:
    """The confidence threshold with the best in-scope accuracy whose out-of-scope recall reaches the target."""
    predictions = model.predict(texts)
    truth = np.array(labels)
    conf = np.array([p.confidence for p in predictions])
    best_label = np.array([p.label for p in predictions])
    class_says_oos = np.array([p.oos_probability > p.confidence for p in predictions])
    is_oos = truth == OUT_OF_SCOPE
    best: tuple[float, float] | None = None
    for threshold in np.linspace(0.0, 1.0, 201):
        flagged = class_says_oos | (conf < threshold)
        recall = (flagged & is_oos).sum() / max(1, is_oos.sum())
        accuracy = ((best_label == truth) & ~flagged)[~is_oos].mean()
        if recall >= min_oos_recall and (best is None or accuracy > best[1]):
            best = (float(threshold), float(accuracy))
    return best[0] if best else 1.0
