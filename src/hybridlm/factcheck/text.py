"""Sentences, words and the small lexicons the detector reads: negations and antonym pairs."""

from __future__ import annotations

import re
from collections.abc import Collection, Container

SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[]?[A-Z0-9])|\n+")
WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9'\-]*")
NUMBER = re.compile(r"\d+(?:[.,:]\d+)*")
NAME = re.compile(r"\b[A-Z][a-zA-Z]+")
MIN_SENTENCE_CHARS = 3

NEGATIONS = frozenset(
    "not no never none nobody nothing neither nor without cannot n't didn't doesn't don't isn't wasn't weren't "
    "won't can't couldn't shouldn't wouldn't aren't hasn't haven't hadn't".split())
STOPWORDS = frozenset(
    "the a an of to in on for and or is are was were be been being by with at from as that this it its he she they "
    "them his her their we our you your i me my which who whom what when where why how will would can could should "
    "may might must do does did has have had but if so than then there here these those into about over after "
    "before also just very all any some more most such only own same other each both up out".split())
ANTONYMS: dict[str, str] = {}
for _pair in (
    "increase decrease", "increased decreased", "increases decreases", "more less", "higher lower", "high low",
    "larger smaller", "large small", "big small", "before after", "early late", "earlier later", "first last",
    "positive negative", "agree disagree", "agreed disagreed", "accept reject", "accepted rejected",
    "approve deny", "approved denied", "win lose", "won lost", "success failure", "successful unsuccessful",
    "rise fall", "rose fell", "good bad", "better worse", "best worst", "open closed", "opened closed",
    "start end", "started ended", "begin finish", "strong weak", "easy difficult", "easy hard", "cheap expensive",
    "true false", "right wrong", "old new", "older newer", "young old", "long short", "longer shorter",
    "fast slow", "faster slower", "include exclude", "included excluded", "allow prohibit", "allowed banned",
    "support oppose", "supported opposed", "like dislike", "happy sad", "present absent", "available unavailable",
    "possible impossible", "likely unlikely", "legal illegal", "male female", "north south", "east west",
    "buy sell", "bought sold", "gain loss", "profit loss", "add remove", "added removed", "always never",
    "many few", "most least", "maximum minimum", "internal external", "public private", "online offline",
    "arrive leave", "arrived left", "import export", "agreeing disagreeing", "confirmed denied", "full empty",
):
    _a, _b = _pair.split()
    ANTONYMS.setdefault(_a, _b)
    ANTONYMS.setdefault(_b, _a)


def sentences(text: str) -> list[str]:
    """Sentence-like units; a text with no sentence end is one unit."""
    parts = [s.strip() for s in SENTENCE_END.split(text)]
    return [s for s in parts if len(s) >= MIN_SENTENCE_CHARS] or ([text.strip()] if text.strip() else [])


def words(text: str) -> list[str]:
    return [w.lower() for w in WORD.findall(text)]


def stem(word: str) -> str:
    """A crude stem, so 'branches', 'opening' and 'saturdays' meet 'branch', 'open' and 'saturday'."""
    for suffix in ("ing", "es", "ed", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3 and not word.endswith("ss"):
            return word[: -len(suffix)]
    return word


def stems(text: str) -> list[str]:
    return [stem(w) for w in words(text)]


def content_words(text: str) -> list[str]:
    return [w for w in words(text) if w not in STOPWORDS and w not in NEGATIONS]


def names(text: str, mid_sentence: bool = False) -> list[str]:
    """Capitalised words that are not stopwords: a cheap stand-in for named entities. Mid-sentence
    ones only are surer (a sentence's first word is capitalised anyway)."""
    if mid_sentence:
        found = [m.group() for s in sentences(text) for m in NAME.finditer(s) if m.start() > 0]
    else:
        found = NAME.findall(text)
    return [w for w in (n.lower() for n in found) if w not in STOPWORDS]


def numbers(text: str) -> list[str]:
    return NUMBER.findall(text)


def share_known(items: Collection[object], known: Container[object]) -> float:
    """The share of items found in `known` (1.0 for no items: nothing is missing)."""
    return sum(i in known for i in items) / len(items) if items else 1.0


def negated(tokens: list[str]) -> bool:
    return any(t in NEGATIONS or t.endswith("n't") for t in tokens)
