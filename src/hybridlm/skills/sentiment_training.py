"""Training the learned sentiment reader and choosing its escalation threshold.

The threshold on the reader's negativity (P(negative) raised by complaint signs) is the highest one whose recall of negative messages on validation
data reaches the target with 95% confidence (a Clopper-Pearson lower bound, as the intent skill
chooses its out-of-scope threshold), so a desk escalates at least that share of unhappy
customers; the precision it costs is measured there and kept in the model file.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from hybridlm.extras import require
from hybridlm.skills.intent import recall_lower_bound
from hybridlm.skills.sentiment import NGRAMS, SIGN_WEIGHT, SentimentModel
from hybridlm.skills.sentiment_data import SentimentData

C = 4.0
MAX_NGRAMS = 20_000


def fit_sentiment(data: SentimentData, progress: Callable[[str], None] = lambda _: None) -> SentimentModel:
    text_features, linear_model = require("sklearn.feature_extraction.text"), require("sklearn.linear_model")
    labels = sorted(set(data.labels))
    if len(labels) < 3:
        raise ValueError(f"{data.source}: training needs negative, neutral and positive examples (has {labels})")
    tfidf = text_features.TfidfVectorizer(analyzer="word", ngram_range=NGRAMS, sublinear_tf=True, min_df=2,
                                          max_features=MAX_NGRAMS).fit(data.texts)
    vocabulary = np.array(tfidf.get_feature_names_out(), dtype=str)
    header: dict[str, Any] = {"classes": labels, "threshold": 0.5, "sign_weight": SIGN_WEIGHT,
                              "trained_on": {"name": data.source, "examples": len(data)}}
    model = SentimentModel(header, np.zeros((3, 0), dtype=np.float32), np.zeros(3), vocabulary, tfidf.idf_)
    progress(f"embedding {len(data)} messages")
    features = model.features(data.texts)
    progress("fitting the head")
    classifier = linear_model.LogisticRegression(C=C, max_iter=3000).fit(features, np.array(data.labels))
    model.classes = [str(c) for c in classifier.classes_]
    model.header["classes"] = model.classes
    model.coef, model.intercept = classifier.coef_.astype(np.float32), classifier.intercept_.astype(np.float32)
    return model


def choose_threshold(model: SentimentModel, validation: SentimentData, target_recall: float) -> dict[str, float]:
    """Set `model.threshold` for `target_recall` of negative messages; what it costs on validation."""
    negativity = model.negativity(validation.texts)
    negative = np.array(validation.labels) == "negative"
    if not negative.any():
        raise ValueError(f"{validation.source}: no negative messages to choose the escalation threshold on")
    scores = np.sort(negativity[negative])[::-1]  # threshold scores[k] catches the first k + 1 ...
    last_of_ties = np.r_[scores[1:] != scores[:-1], True]  # ... and every later one tied with it
    enough = last_of_ties & (recall_lower_bound(np.arange(1, len(scores) + 1), len(scores)) >= target_recall)
    chosen = float(scores[np.argmax(enough)] if enough.any() else scores[-1])
    model.threshold = chosen
    flagged = negativity >= chosen
    calibration = {"target_recall": target_recall, "threshold": round(chosen, 4),
                   "validation_recall": round(float((flagged & negative).sum() / negative.sum()), 4),
                   "validation_precision": round(float((flagged & negative).sum() / max(1, flagged.sum())), 4),
                   "validation_examples": len(validation)}
    model.header["calibration"] = calibration | {"validation": validation.source}
    return calibration
