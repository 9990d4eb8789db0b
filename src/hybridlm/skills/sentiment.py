"""Sentiment: negative / neutral / positive, how likely the customer is unhappy, and why.

Two readers. The learned one (the default when the `support` extra is installed) is a
three-class logistic regression over the MiniLM embedding the intent and FAQ skills already
compute for the same message (cached, so it costs them nothing more), VADER's four scores,
word n-gram TF-IDF and counts of complaint signs a lexicon misses: waiting times, repeated
contact ("still", "again", "third time"), things that failed or were lost, money asked back.
Each kind of complaint sign found raises P(negative) by a fixed share (SIGN_WEIGHT, set by hand:
no licensed labelled customer messages were at hand to learn it from). Its escalation threshold is chosen on validation data for a target recall of
unhappy customers (`sentiment_training.choose_threshold`) and travels in the model file.
The lexicon reader (VADER's rules, tens of microseconds) is what `analyse` gives and the
fallback: without a model file it escalates at a compound score of -0.5 or below.
Both flag anger: shouting and piled-up marks on a negative message.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib.resources import files
from pathlib import Path
from typing import Any, Literal

import numpy as np

from hybridlm import artifacts
from hybridlm.extras import require
from hybridlm.routing.base import last_user_text
from hybridlm.skills.base import Signals
from hybridlm.types import Message

Label = Literal["negative", "neutral", "positive"]
LABELS: tuple[Label, ...] = ("negative", "neutral", "positive")
FORMAT = "hybridlm-sentiment"
ENCODER = "minilm"  # the one the intent and FAQ skills read, so a message is embedded once
SHOUTING = re.compile(r"\b[A-Z]{3,}\b")
PILED_MARKS = re.compile(r"[!?]{2,}")
LEXICON_ESCALATION = -0.5  # VADER compound at or below which the lexicon reader calls a customer unhappy
COMPLAINT_SIGNS: dict[str, re.Pattern[str]] = {name: re.compile(pattern, re.IGNORECASE) for name, pattern in {
    "waiting": r"\b(\d+|several|many|two|three|four|five|six)\s+(minutes?|mins?|hours?|hrs?|days?|weeks?|months?)\b"
               r"|\bon hold\b|\bwait(ed|ing)\b|\bstill (no|not|waiting|haven'?t|hasn'?t|nothing)\b",
    "repeated": r"\b(again|still|keeps?|kept|every time|third time|second time|[0-9]+(st|nd|rd|th)? time|"
                r"(\d+|two|three|four|five|several|many) times|repeatedly|once more|yet again)\b",
    "failed": r"\b(cancel+ed|lost|missing|broken|declined|rejected|failed|never (arrived|came|received|got)|"
              r"not working|doesn'?t work|didn'?t work|won'?t work|stuck|delayed|overcharged|charged twice|"
              r"(did not|didn'?t|has not|hasn'?t|have not|haven'?t|never) (arrived?|come|came|received?|got)|"
              r"no (one|response|reply|answer|help)|nobody|nothing)\b",
    "money back": r"\b(refund|money back|compensat\w*|reimburs\w*|chargeback)\b",
    "negation": r"\b(not|no|never|can'?t|cannot|won'?t|didn'?t|doesn'?t|haven'?t|hasn'?t|isn'?t|wasn'?t)\b",
}.items()}
NGRAMS = (1, 2)
SIGN_WEIGHT = 0.25  # each kind of complaint sign found closes this share of the gap to certain unhappiness


@dataclass(frozen=True)
class Sentiment:
    label: Label
    score: float  # -1 (most negative) to 1: P(positive) - P(negative), or VADER's compound without a model
    angry: bool
    negativity: float = 0.0  # learned: P(negative) raised by complaint signs; lexicon: -compound, floored at 0
    unhappy: bool = False  # negativity at or beyond the escalation threshold
    signs: tuple[str, ...] = ()  # the complaint signs found, for the decision's reason
    reader: Literal["learned", "lexicon"] = "lexicon"


@lru_cache(maxsize=1)
def _analyzer() -> Any:
    return require("vaderSentiment.vaderSentiment").SentimentIntensityAnalyzer()


def _angry(text: str, negative: bool) -> bool:
    return negative and (len(SHOUTING.findall(text)) >= 2 or bool(PILED_MARKS.search(text)))


def complaint_signs(text: str) -> tuple[str, ...]:
    return tuple(name for name, pattern in COMPLAINT_SIGNS.items() if name != "negation" and pattern.search(text))


def analyse(text: str) -> Sentiment:
    """The lexicon reader alone: VADER's compound and its thresholds."""
    score = float(_analyzer().polarity_scores(text)["compound"])
    label: Label = "negative" if score <= -0.05 else "positive" if score >= 0.05 else "neutral"
    angry = _angry(text, label == "negative")
    return Sentiment(label, round(score, 4), angry or score <= LEXICON_ESCALATION, round(max(0.0, -score), 4),
                     score <= LEXICON_ESCALATION, complaint_signs(text))


def text_features(texts: Sequence[str]) -> np.ndarray:
    """VADER's neg / neu / pos / compound and the count of each complaint sign (log-scaled)."""
    rows = []
    for text in texts:
        vader = _analyzer().polarity_scores(text)
        rows.append([vader["neg"], vader["neu"], vader["pos"], vader["compound"],
                     *(np.log1p(len(p.findall(text))) for p in COMPLAINT_SIGNS.values())])
    return np.asarray(rows, dtype=np.float32)


class SentimentModel:
    """The learned reader: one file of arrays (`hybridlm train sentiment` writes it)."""

    def __init__(self, header: dict[str, Any], coef: np.ndarray, intercept: np.ndarray, vocabulary: np.ndarray,
                 idf: np.ndarray) -> None:
        from hybridlm.skills.intent import tfidf_vectorizer

        self.header = header
        self.classes: list[str] = list(header["classes"])
        self.threshold = float(header.get("threshold", 0.5))
        self.sign_weight = float(header.get("sign_weight", SIGN_WEIGHT))
        self.coef, self.intercept = coef, intercept
        self._vocabulary, self._idf = vocabulary, idf
        self._vectorizer = tfidf_vectorizer(vocabulary, idf, "word", NGRAMS)
        self._negative, self._positive = self.classes.index("negative"), self.classes.index("positive")

    def features(self, texts: Sequence[str]) -> Any:
        from hybridlm.models.encoder import load_encoder

        sparse = require("scipy.sparse")
        dense = np.hstack([load_encoder(ENCODER).encode(texts), text_features(texts)])
        return sparse.hstack([sparse.csr_matrix(dense), self._vectorizer.transform(list(texts))]).tocsr()

    def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        """(texts, classes) probabilities, classes in `self.classes` order."""
        logits = np.asarray(self.features(texts) @ self.coef.T) + self.intercept
        logits -= logits.max(axis=1, keepdims=True)
        P = np.exp(logits)
        return P / P.sum(axis=1, keepdims=True)

    def negativity(self, texts: Sequence[str]) -> np.ndarray:
        return self._negativity(self.probabilities(texts), [complaint_signs(t) for t in texts])

    def _negativity(self, P: np.ndarray, signs: Sequence[tuple[str, ...]]) -> np.ndarray:
        """P(negative), raised by each kind of complaint sign: comments on the web (the training data)
        rarely wait on hold or ask for refunds, customers do, in words no lexicon marks."""
        kinds = np.array([len(found) for found in signs])
        return 1 - (1 - P[:, self._negative]) * (1 - self.sign_weight) ** kinds

    def predict(self, texts: Sequence[str]) -> list[Sentiment]:
        if not texts:
            return []
        P, signs = self.probabilities(texts), [complaint_signs(t) for t in texts]
        out = []
        for text, p, found, negativity in zip(texts, P, signs, self._negativity(P, signs), strict=True):
            label: Label = self.classes[int(p.argmax())]  # type: ignore[assignment]
            unhappy = bool(negativity >= self.threshold)
            out.append(Sentiment(label, round(float(p[self._positive] - p[self._negative]), 4),
                                 _angry(text, unhappy or label == "negative"), round(float(negativity), 4), unhappy,
                                 found, "learned"))
        return out

    def save(self, path: Path) -> None:
        artifacts.save(path, FORMAT, {**self.header, "threshold": self.threshold},
                       {"coef": self.coef, "intercept": self.intercept, "vocabulary": self._vocabulary,
                        "idf": self._idf})

    @classmethod
    def load(cls, path: Path) -> SentimentModel:
        header, arrays = artifacts.load(path, FORMAT, "sentiment model", "hybridlm train sentiment")
        try:
            model = cls(header, arrays["coef"], arrays["intercept"], arrays["vocabulary"], arrays["idf"])
        except KeyError as err:
            raise artifacts.ArtifactError(f"{path}: sentiment model lacks {err}") from None
        except ValueError as err:
            raise artifacts.ArtifactError(f"{path}: not a usable sentiment model ({err})") from None
        if set(model.classes) != set(LABELS) or model.coef.shape[0] != len(model.classes):
            raise artifacts.ArtifactError(f"{path}: sentiment model classes {model.classes} are not {list(LABELS)}")
        return model


def shipped_model_path() -> Path:
    """The model trained on GoEmotions (CC BY 4.0) that ships with the package."""
    return Path(str(files("hybridlm.skills") / "data" / "sentiment.npz"))


class SentimentSkill:
    """The customer's mood in their last message: the learned reader when given, else the lexicon."""

    name = "sentiment"

    def __init__(self, model: SentimentModel | None = None) -> None:
        self.model = model

    def read(self, texts: Sequence[str]) -> list[Sentiment]:
        return self.model.predict(texts) if self.model else [analyse(t) for t in texts]

    def analyse(self, messages: list[Message]) -> Signals:
        sentiment = self.read([last_user_text(messages)])[0]
        return Signals(self.name, {"sentiment": sentiment.label, "sentiment_score": sentiment.score,
                                   "negativity": sentiment.negativity, "angry": sentiment.angry,
                                   "complaint_signs": list(sentiment.signs)}, sentiment)
