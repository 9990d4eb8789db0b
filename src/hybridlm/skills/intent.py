"""Intent: which of a company's known requests a message is, how sure, or that it is none of them.

A multinomial logistic regression over three views of the text: MiniLM sentence embeddings
(meaning), static distilled embeddings (a second, cheaper view) and character n-gram TF-IDF
(spelling, product words). Confidence is the top probability; below a threshold, or when the
explicit out-of-scope class wins, the message is out of scope and escalates.

Trained with `tune_epochs`, the model instead reads one view, MiniLM (or a named local encoder)
tuned to these intents, and judges scope by the Mahalanobis distance to the nearest intent in
that space (`intent_tuning`). A named encoder used untuned replaces MiniLM and the static view.
Either way the threshold is chosen on held-out data (`choose_threshold`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hybridlm import artifacts
from hybridlm.extras import require
from hybridlm.models.encoder import Encoder, EncoderError, TransformerEncoder, load_encoder
from hybridlm.routing.base import last_user_text
from hybridlm.skills.base import Signals
from hybridlm.types import Message
from hybridlm.skills.intent_tuning import BASE, MAX_TOKENS, TUNED, OutlierDistance, tune_encoder

FORMAT = "hybridlm-intent"
OUT_OF_SCOPE = "oos"
ENCODERS = ("minilm", "minilm-static")
NGRAMS = (2, 5)
TFIDF_WEIGHT = 0.5
MAX_NGRAMS = 30_000
TUNED_PREFIX = "tuned/"
TUNE_EPOCHS_WITH_OUT_OF_SCOPE = 3  # the default when training data has out-of-scope rows
RECALL_CONFIDENCE = 0.95  # how sure the held-out data must make us that the recall target is reached


@dataclass(frozen=True)
class IntentPrediction:
    label: str  # the best in-scope intent, even when out of scope
    confidence: float
    out_of_scope: bool
    alternatives: list[tuple[str, float]]
    oos_probability: float = 0.0  # of the explicit out-of-scope class, when trained with one
    scope_score: float = 0.0  # higher is more surely in scope: the confidence, or minus the distance when tuned
    scope_reason: str = ""  # why it is out of scope, when it is


class IntentModel:
    def __init__(self, header: dict[str, Any], coef: np.ndarray, intercept: np.ndarray, vocabulary: np.ndarray,
                 idf: np.ndarray, tuned: dict[str, np.ndarray] | None = None,
                 outlier: OutlierDistance | None = None) -> None:
        self.header = header
        self.classes: list[str] = list(header["classes"])
        self.threshold: float = float(header.get("threshold", 0.0))
        self.coef, self.intercept = coef, intercept
        self._vectorizer = tfidf_vectorizer(vocabulary, idf, "char_wb", NGRAMS) if len(vocabulary) else None
        self._vocabulary, self._idf = vocabulary, idf
        self._tuned_weights, self.outlier = tuned, outlier
        base = Path(header["base_encoder"]) if header.get("base_encoder") else None
        self._encoders: list[Encoder] = [TransformerEncoder(base, name, MAX_TOKENS, tuned if name == TUNED else None)
                                         if name in (TUNED, BASE) else load_encoder(name)
                                         for name in header["encoders"]]

    def embeddings(self, texts: Sequence[str]) -> np.ndarray:
        return np.hstack([encoder.encode(texts) for encoder in self._encoders])

    def features(self, embeddings: np.ndarray, texts: Sequence[str]) -> Any:
        """Embeddings beside n-gram TF-IDF (when the model has n-grams), as one sparse matrix."""
        sparse = require("scipy.sparse")
        if self._vectorizer is None:
            return sparse.csr_matrix(embeddings)
        return sparse.hstack([sparse.csr_matrix(embeddings),
                              self._vectorizer.transform(list(texts)) * TFIDF_WEIGHT]).tocsr()

    name = "intent"

    def analyse(self, messages: list[Message]) -> Signals:
        """The intent of the last user message, as a skill."""
        intent = self.predict([last_user_text(messages)])[0]
        return Signals(self.name, {"intent": intent.label, "intent_confidence": round(intent.confidence, 3),
                                   "out_of_scope": intent.out_of_scope}, intent)

    def predict(self, texts: Sequence[str]) -> list[IntentPrediction]:
        embeddings = self.embeddings(texts)
        logits = np.asarray(self.features(embeddings, texts) @ self.coef.T) + self.intercept
        logits -= logits.max(axis=1, keepdims=True)
        P = np.exp(logits)
        P /= P.sum(axis=1, keepdims=True)
        distances = self.outlier.distance(embeddings) if self.outlier else None
        in_scope = np.array([c != OUT_OF_SCOPE for c in self.classes])
        out = []
        for row, p in enumerate(P):
            order = np.argsort(-np.where(in_scope, p, -1.0))[:3]
            best = int(order[0])
            oos = float(p[~in_scope].max()) if not in_scope.all() else 0.0
            scope = float(-distances[row]) if distances is not None else float(p[best])
            reason = self._scope_reason(self.classes[best], float(p[best]), oos, scope, distances is not None)
            out.append(IntentPrediction(self.classes[best], float(p[best]), bool(reason),
                                        [(self.classes[i], round(float(p[i]), 4)) for i in order], oos, scope,
                                        reason))
        return out

    def _scope_reason(self, label: str, confidence: float, oos: float, scope: float, by_distance: bool) -> str:
        """Why a message is out of scope, in words for the decision log; empty when it is in scope."""
        if oos > confidence:
            return f"the out-of-scope class ({oos:.2f}) beats the best intent '{label}' ({confidence:.2f})"
        if scope >= self.threshold:
            return ""
        if by_distance:
            return f"{-scope:.0f} from the nearest intent, further than {-self.threshold:.0f} (best guess '{label}')"
        return f"best intent '{label}' at {confidence:.2f}, below {self.threshold:.2f}"

    def save(self, path: Path) -> None:
        arrays = {"coef": self.coef, "intercept": self.intercept, "vocabulary": self._vocabulary, "idf": self._idf}
        if self.outlier:
            arrays |= {"outlier_means": self.outlier.means, "outlier_precision": self.outlier.precision}
        arrays |= {TUNED_PREFIX + name: weights for name, weights in (self._tuned_weights or {}).items()}
        artifacts.save(path, FORMAT, {**self.header, "threshold": self.threshold}, arrays)

    @classmethod
    def load(cls, path: Path) -> IntentModel:
        header, arrays = artifacts.load(path, FORMAT, "intent model", "hybridlm train intent")
        tuned = {name.removeprefix(TUNED_PREFIX): a for name, a in arrays.items() if name.startswith(TUNED_PREFIX)}
        if TUNED in header.get("encoders", []) and not tuned:
            raise artifacts.ArtifactError(f"{path}: intent model names a tuned encoder but holds no weights")
        try:
            outlier = (OutlierDistance(arrays["outlier_means"], arrays["outlier_precision"])
                       if "outlier_means" in arrays else None)
            return cls(header, arrays["coef"], arrays["intercept"], arrays["vocabulary"], arrays["idf"], tuned, outlier)
        except KeyError as err:
            raise artifacts.ArtifactError(f"{path}: intent model lacks {err}") from None
        except EncoderError as err:
            raise artifacts.ArtifactError(f"{path}: {err}") from None
        except RuntimeError as err:  # torch: tuned weights that do not fit the encoder
            raise artifacts.ArtifactError(f"{path}: tuned encoder weights do not fit "
                                          f"{header.get('base_encoder', 'MiniLM')} ({err})") from None


def tfidf_vectorizer(vocabulary: np.ndarray, idf: np.ndarray, analyzer: str, ngrams: tuple[int, int]) -> Any:
    """A fitted TF-IDF vectorizer rebuilt from the arrays of a model file (no pickle)."""
    text_features = require("sklearn.feature_extraction.text")
    vectorizer = text_features.TfidfVectorizer(analyzer=analyzer, ngram_range=ngrams, sublinear_tf=True,
                                               vocabulary={str(v): i for i, v in enumerate(vocabulary)})
    vectorizer.idf_ = idf
    return vectorizer


def default_tune_epochs(labels: Sequence[str]) -> int:
    """Tune when out-of-scope detection is wanted (the data has out-of-scope rows): there tuning pays
    (CLINC150: in-scope 0.950 instead of 0.903 at the same recall); for closed-set intents it adds
    about a point of accuracy for minutes of training, so it is left to `--tune`."""
    return TUNE_EPOCHS_WITH_OUT_OF_SCOPE if OUT_OF_SCOPE in labels else 0


def fit_intent(texts: Sequence[str], labels: Sequence[str], C: float = 30.0, name: str = "intents",
               tune_epochs: int = 0, progress: Callable[[int, float], None] | None = None,
               base: Path | None = None, seed: int = 0) -> IntentModel:
    """`tune_epochs` > 0 tunes the encoder to these intents first (`progress(epoch, loss)` after each).
    `base`: a local sentence-transformers folder to use instead of MiniLM; the model file names it
    and needs it wherever the model is loaded."""
    text_features, linear_model = require("sklearn.feature_extraction.text"), require("sklearn.linear_model")
    encoders = [TUNED] if tune_epochs else [BASE] if base else list(ENCODERS)
    header: dict[str, Any] = {"classes": [], "encoders": encoders,
                              "trained_on": {"name": name, "examples": len(texts), "intents": len(set(labels)),
                                             "tune_epochs": tune_epochs}}
    if base:
        header["base_encoder"] = str(base.resolve())
    tuned = tune_encoder(texts, labels, tune_epochs, base, seed, progress) if tune_epochs else None
    if tuned:
        vocabulary, idf = np.zeros(0, dtype=str), np.zeros(0)
        header["threshold"] = float("-inf")  # no distance is too far until held-out data says so
    else:
        tfidf = text_features.TfidfVectorizer(analyzer="char_wb", ngram_range=NGRAMS, sublinear_tf=True, min_df=1,
                                              max_features=MAX_NGRAMS).fit(texts)
        vocabulary, idf = np.array(tfidf.get_feature_names_out(), dtype=str), tfidf.idf_
    model = IntentModel(header, np.zeros((0, 0)), np.zeros(0), vocabulary, idf, tuned)
    embeddings, label_array = model.embeddings(texts), np.array(labels)
    # Tuned, scope is the distance's call alone: an explicit out-of-scope class beside it, learned from
    # the few out-of-scope rows that validation data resembles, would loosen the threshold chosen there.
    rows = label_array != OUT_OF_SCOPE if tuned else np.ones(len(label_array), dtype=bool)
    features = model.features(embeddings[rows], [t for t, keep in zip(texts, rows, strict=True) if keep])
    classifier = linear_model.LogisticRegression(C=C, max_iter=3000).fit(features, label_array[rows])
    model.classes = [str(c) for c in classifier.classes_]
    model.header["classes"] = model.classes
    model.coef, model.intercept = classifier.coef_.astype(np.float32), classifier.intercept_.astype(np.float32)
    if tuned:
        model.outlier = OutlierDistance.fit(embeddings[rows], label_array[rows].tolist())
    return model


def recall_lower_bound(caught: Any, total: int) -> Any:
    """The recall that `caught` of `total` assures with RECALL_CONFIDENCE (Clopper-Pearson lower
    bound; elementwise for arrays), 0 when nothing was caught."""
    beta = require("scipy.stats").beta
    caught = np.asarray(caught)
    return np.where(caught > 0, beta.ppf(1 - RECALL_CONFIDENCE, np.maximum(caught, 1), total - caught + 1), 0.0)


def choose_threshold(model: IntentModel, texts: Sequence[str], labels: Sequence[str], min_oos_recall: float) -> float:
    """The scope threshold with the best in-scope accuracy whose out-of-scope recall reaches the target
    with RECALL_CONFIDENCE: a Clopper-Pearson lower bound, because a hundred held-out out-of-scope
    messages are a small sample and live traffic strays further than they do."""
    predictions = model.predict(texts)
    truth = np.array(labels)
    score = np.array([p.scope_score for p in predictions])
    right_label = np.array([p.label for p in predictions]) == truth
    class_says_oos = np.array([p.oos_probability > p.confidence for p in predictions])
    is_oos = truth == OUT_OF_SCOPE
    best: tuple[float, float] | None = None
    for threshold in np.concatenate([[-np.inf], np.unique(score), [np.inf]]):
        flagged = class_says_oos | (score < threshold)
        caught = int((flagged & is_oos).sum())
        recall_bound = recall_lower_bound(caught, int(is_oos.sum()))
        accuracy = (right_label & ~flagged)[~is_oos].mean()
        if recall_bound >= min_oos_recall and (best is None or accuracy > best[1]):
            best = (float(threshold), float(accuracy))
    return best[0] if best else float("inf")
