"""A transparent baseline: query complexity from cheap features, no model at all.

Each feature adds a fixed, visible weight; the sum (clipped to [0, 1]) is the score. It is
meant to be read and argued with, and to be beaten by the learned routers.
"""

from __future__ import annotations

import math
import re

from hybridlm.routing.base import Score, last_user_text
from hybridlm.types import Message

BASE = 0.10

KEYWORDS: dict[str, tuple[float, tuple[str, ...]]] = {
    "analytical": (0.30, (
        "analyze", "analyse", "analysis", "compare", "comparison", "contrast", "evaluate", "assess",
        "trade-off", "tradeoff", "pros and cons", "explain why", "why does", "why do", "implications",
        "critique", "justify", "argue", "in depth", "in detail", "detailed", "comprehensive",
        "prove", "derive", "design", "architecture", "strategy", "optimize", "optimise",
    )),
    "multi_step": (0.30, (
        "step by step", "step-by-step", "walk me through", "plan", "roadmap", "first,", "then ",
        "multi-step", "several steps", "each step", "procedure for", "break down",
    )),
    "creative": (0.40, (
        "write a story", "write a poem", "poem", "short story", "essay", "screenplay", "lyrics",
        "compose", "imagine", "brainstorm", "creative", "fiction", "slogan",
    )),
    "code": (0.25, (
        "```", "def ", "function", "implement", "refactor", "debug", "stack trace", "traceback",
        "algorithm", "regex", "sql", "python", "javascript", "compile", "code",
    )),
    "math": (0.20, (
        "calculate", "solve", "equation", "integral", "derivative", "probability", "theorem",
        "how many", "percent",
    )),
    "summary": (0.30, ("summarize", "summarise", "summary", "tl;dr", "report on", "write a report")),
}

ROUTINE_OPENERS = re.compile(
    r"^(hi|hello|hey|thanks|thank you|what (is|are) (your|the)|when (is|are|do)|where (is|are|do)|"
    r"how (do|can) i (reset|change|update|cancel|find|get)|can i|do you|is there|what time)\b",
    re.IGNORECASE,
)


def _phrase_pattern(phrase: str) -> re.Pattern[str]:
    """Whole words only: 'plan' must not fire inside 'explanation'."""
    return re.compile(r"(?<!\w)" + re.escape(phrase.strip()) + r"(?!\w)")


PATTERNS: dict[str, tuple[float, list[tuple[str, re.Pattern[str]]]]] = {
    category: (weight, [(p.strip(), _phrase_pattern(p)) for p in phrases])
    for category, (weight, phrases) in KEYWORDS.items()
}
ARITHMETIC = re.compile(r"\d+\s*[-+*/^=]\s*\d+")
LIST_ITEM = re.compile(r"^\s*(\d+[.)]|[-*•])\s+", re.MULTILINE)


def _length_weight(words: int) -> float:
    """0 up to 12 words, rising with the log of the length to 0.35 at 200 words."""
    if words <= 12:
        return 0.0
    return round(min(0.35, 0.35 * math.log(words / 12) / math.log(200 / 12)), 3)


class HeuristicRouter:
    name = "heuristic"
    cheap = True  # regular expressions and counts: scored on the event loop, no worker hop

    def score(self, messages: list[Message]) -> Score:
        text = last_user_text(messages)
        lowered = text.lower()
        contributions: dict[str, float] = {"base": BASE}
        evidence: dict[str, list[str]] = {}

        words = len(text.split())
        contributions["length"] = _length_weight(words)
        if contributions["length"]:
            evidence["length"] = [f"{words} words"]

        for category, (weight, patterns) in PATTERNS.items():
            # the substring test is C-fast and rules out nearly every phrase before its whole-word pattern runs
            hits = [phrase for phrase, pattern in patterns if phrase in lowered and pattern.search(lowered)]
            if category == "math" and ARITHMETIC.search(text):
                hits.append(ARITHMETIC.search(text).group(0))  # type: ignore[union-attr]
            if hits:
                contributions[category] = round(min(weight + 0.05 * (len(hits) - 1), weight * 1.6), 3)
                evidence[category] = hits

        questions = text.count("?")
        items = len(LIST_ITEM.findall(text))
        extra_parts = max(questions - 1, 0) + items
        if extra_parts:
            contributions["several_parts"] = round(min(0.1 * extra_parts, 0.2), 3)
            evidence["several_parts"] = [f"{questions} questions, {items} list items"]

        user_turns = sum(1 for m in messages if m.get("role") == "user")
        if user_turns > 1:
            contributions["conversation_depth"] = round(min(0.05 * (user_turns - 1), 0.15), 3)
            evidence["conversation_depth"] = [f"{user_turns} user turns"]

        if ROUTINE_OPENERS.search(text.strip()) and words <= 20 and len(contributions) <= 3:
            contributions["routine_question"] = -0.10
            evidence["routine_question"] = [text.strip().split()[0].lower() if text.strip() else ""]

        value = min(1.0, max(0.0, sum(contributions.values())))
        return Score(round(value, 4), contributions, evidence)
