"""Sentiment: negative / neutral / positive with a score, in tens of microseconds (VADER's lexicon
and rules), plus the signs of anger a support desk escalates on: shouting and piled-up marks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

from hybridlm.extras import require
from hybridlm.routing.base import last_user_text
from hybridlm.skills.base import Signals
from hybridlm.types import Message

Label = Literal["negative", "neutral", "positive"]
SHOUTING = re.compile(r"\b[A-Z]{3,}\b")
PILED_MARKS = re.compile(r"[!?]{2,}")


@dataclass(frozen=True)
class Sentiment:
    label: Label
    score: float  # VADER compound, -1 (most negative) to 1
    angry: bool


@lru_cache(maxsize=1)
def _analyzer() -> Any:
    return require("vaderSentiment.vaderSentiment").SentimentIntensityAnalyzer()


def analyse(text: str) -> Sentiment:
    score = float(_analyzer().polarity_scores(text)["compound"])
    label: Label = "negative" if score <= -0.05 else "positive" if score >= 0.05 else "neutral"
    shouting = len(SHOUTING.findall(text)) >= 2 or bool(PILED_MARKS.search(text))
    return Sentiment(label, round(score, 4), score <= -0.5 or (label == "negative" and shouting))


class SentimentSkill:
    """The customer's mood in their last message."""

    name = "sentiment"

    def analyse(self, messages: list[Message]) -> Signals:
        sentiment = analyse(last_user_text(messages))
        return Signals(self.name, {"sentiment": sentiment.label, "sentiment_score": sentiment.score}, sentiment)
