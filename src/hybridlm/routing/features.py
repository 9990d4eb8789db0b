"""Cheap text features of a prompt that say something about how hard it is to answer.

They complement embeddings (which say what a prompt is about) with its shape: length,
numbers and formulas, negations, answer options, calculation verbs.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

import numpy as np

NUMBER = re.compile(r"\d+(?:\.\d+)?")
OPTION = re.compile(r"^[A-D][.)]\s*(.*)$", re.MULTILINE)
MATH = re.compile(r"[=+\-*/^√∑∫π]|\\frac|\\sqrt|\$")
NEGATION = re.compile(r"\b(not|NOT|EXCEPT|except|LEAST|least|false|never|incorrect)\b")
ROMAN = re.compile(r"\b(I|II|III|IV)\b")
CALCULATE = re.compile(r"\b(calculate|compute|how many|how much|what is the value|find|solve)\b", re.IGNORECASE)

NAMES = (
    "log_chars", "log_words", "lines", "log_numbers", "numbers_per_word", "math_per_100_chars", "negations",
    "mean_option_chars", "max_option_chars", "numeric_options", "statement_pairs", "question_marks",
    "roman_numerals", "which_of_the_following", "calculation_verb",
)


def _numeric(option: str) -> bool:
    return any(ch.isdigit() for ch in option) and not re.search(r"[a-zA-Z]{4,}", option)


def text_features(text: str) -> list[float]:
    words = text.split()
    options = OPTION.findall(text)
    option_chars = [len(o) for o in options] or [0]
    numbers = NUMBER.findall(text)
    return [
        math.log1p(len(text)), math.log1p(len(words)), float(text.count("\n")), math.log1p(len(numbers)),
        len(numbers) / max(1, len(words)), 100.0 * len(MATH.findall(text)) / max(1, len(text)),
        float(len(NEGATION.findall(text))), float(np.mean(option_chars)), float(max(option_chars)),
        float(sum(_numeric(o) for o in options)), float("Statement 1" in text), float(text.count("?")),
        float(bool(ROMAN.search(text))), float("which of the following" in text.lower()),
        float(bool(CALCULATE.search(text))),
    ]


def feature_matrix(texts: Sequence[str]) -> np.ndarray:
    return np.array([text_features(t) for t in texts], dtype=np.float32).reshape(len(texts), len(NAMES))
