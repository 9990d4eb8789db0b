"""Does a call's argument come from the conversation, or did the model make it up?

A small model asked to set an alarm with no time given will still write a time. Checking each
argument against what the user (and earlier tool results) said catches that: numbers must appear
as numbers (or number words, or as a percentage), strings must share their words with the text;
values the schema enumerates, booleans and empty values are choices, not facts, and are not judged.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from hybridlm.tools.protocol import Function
from hybridlm.types import Message, text_of

NUMBER = re.compile(r"(-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:e[-+]?\d+)?)(?:\s*(k|m|b|thousand|million|billion|bn)\b)?")
MAGNITUDE = {"k": 1e3, "thousand": 1e3, "m": 1e6, "million": 1e6, "b": 1e9, "bn": 1e9, "billion": 1e9}
MONTHS = {name: number for number, names in enumerate(
    [("jan", "january"), ("feb", "february"), ("mar", "march"), ("apr", "april"), ("may",), ("jun", "june"),
     ("jul", "july"), ("aug", "august"), ("sep", "sept", "september"), ("oct", "october"), ("nov", "november"),
     ("dec", "december")], start=1) for name in names}
SPOKEN_TIME = re.compile(r"\b(\d{1,2})(?:[:.](\d{2}))?\s*(am|pm|a\.m\.|p\.m\.)|\b(\d{1,2}):(\d{2})\b")
TIME_VALUE = re.compile(r"^\s*(\d{1,2}):(\d{2})(?::\d{2})?\s*$")
WORD = re.compile(r"[a-z0-9]+")
NUMBER_WORDS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
    "ten": 10, "eleven": 11, "twelve": 12, "fifteen": 15, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50,
    "hundred": 100, "thousand": 1000, "half": 0.5, "quarter": 0.25, "once": 1, "twice": 2, "single": 1,
    "double": 2, "pair": 2, "dozen": 12, "noon": 12, "midnight": 0, "next": 1, "tomorrow": 1,
    # periods and frequencies stand for their counts: "next week" is 7 days, "quarterly" 4 times a year
    "week": 7, "fortnight": 14, "decade": 10, "century": 100, "daily": 365, "weekly": 52, "monthly": 12,
    "quarterly": 4, "annually": 1, "yearly": 1, "semiannually": 2, "biannually": 2,
}
STOPWORDS = frozenset("a an the of in on at to for and or with by from is are be me my i you your it this that".split())


def conversation_text(messages: Sequence[Message]) -> str:
    """What the model may take values from: the user's turns and tool results (not its own words)."""
    return "\n".join(text_of(m.get("content")) for m in messages if m.get("role") in ("user", "tool", "system"))


@dataclass(frozen=True)
class Evidence:
    """The numbers and words of a conversation, ready for checking values against."""

    numbers: frozenset[float]
    words: frozenset[str]
    initials: frozenset[str]  # "ssn" for "social security number": abbreviations of 2-4 words in a row
    times: frozenset[tuple[int, int]]  # clock times said ("10pm", "7:30", "noon"), on a 24-hour clock

    @classmethod
    def of(cls, text: str) -> Evidence:
        lowered = text.lower()
        times = set()
        for hour, minute, half, plain_hour, plain_minute in SPOKEN_TIME.findall(lowered):
            h, m = (int(hour), int(minute or 0)) if half else (int(plain_hour), int(plain_minute))
            if half.startswith("p") and h < 12:
                h += 12
            elif half.startswith("a") and h == 12:
                h = 0
            times.add((h, m))
            if not half and h < 12:  # "7:30" may be morning or evening
                times.add((h + 12, m))
        times.update({(12, 0)} if "noon" in lowered else set())
        times.update({(0, 0)} if "midnight" in lowered else set())
        numbers = set()
        for raw, magnitude in NUMBER.findall(lowered):
            value = float(raw.replace(",", ""))
            numbers.update({value, abs(value)})  # "2024-03-05" reads as 2024, -3, -5
            if magnitude:
                numbers.add(value * MAGNITUDE[magnitude])
        tokens = WORD.findall(lowered)
        words = set(tokens)
        initials = {"".join(t[0] for t in tokens[i:i + n]) for n in (2, 3, 4) for i in range(len(tokens) - n + 1)}
        numbers.update(float(v) for w, v in NUMBER_WORDS.items() if w in words)
        numbers.update(float(MONTHS[w]) for w in re.findall(r"[a-z]+", lowered) if w in MONTHS)
        return cls(frozenset(numbers), frozenset(words), frozenset(initials), frozenset(times))

    def has_number(self, value: float) -> bool:
        return any(abs(value - n) < 1e-9 or abs(value - n / 100) < 1e-9 or abs(value - n * 100) < 1e-6
                   or (n and abs(value / n - 1000) < 1e-6) or (value and abs(n / value - 1000) < 1e-6)
                   for n in self.numbers)

    def has_text(self, value: str) -> bool:
        if (clock := TIME_VALUE.match(value)) and (int(clock[1]), int(clock[2])) in self.times:
            return True
        numbers = [float(n) for n in re.findall(r"\d+(?:\.\d+)?(?:e[-+]?\d+)?", value.lower())]
        if numbers and all(self.has_number(n) for n in numbers) and not re.search(r"[a-z]{3,}", value.lower()):
            return True  # a date, a phone number, coordinates: every number of it was said
        words = [w for w in WORD.findall(value.lower()) if w not in STOPWORDS]
        if not words:
            return True
        found = sum(1 for w in words if w in self.words or w in self.initials or any(w.startswith(x) or x.startswith(w)
                                                                for x in self.words if len(x) > 3 and len(w) > 3))
        return found / len(words) >= 0.5


def leaves(value: Any) -> Iterator[Any]:
    """Every value of a JSON-like value that is not a mapping or a list, depth first."""
    if isinstance(value, dict):
        for v in value.values():
            yield from leaves(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from leaves(v)
    else:
        yield value


def grounded(value: Any, schema: dict[str, Any], evidence: Evidence) -> bool | None:
    """True or False for a value that could have come from the text; None for a choice (enum, bool)."""
    if "enum" in schema or isinstance(value, bool) or value is None or value == "":
        return None
    judged = [v for v in leaves(value) if not isinstance(v, bool) and v not in (None, "")]
    if not judged:
        return None
    for leaf in judged:
        if isinstance(leaf, int | float):
            if not evidence.has_number(float(leaf)):
                return False
        elif not evidence.has_text(str(leaf)):
            return False
    return True


@dataclass(frozen=True)
class Grounding:
    """Per call: the required and optional arguments that were, or were not, found in the text."""

    required_missing: tuple[str, ...]
    optional_missing: tuple[str, ...]
    checked: int

    @property
    def share_found(self) -> float:
        missing = len(self.required_missing) + len(self.optional_missing)
        return 1.0 - missing / self.checked if self.checked else 1.0


@lru_cache(maxsize=64)
def _evidence_of(text: str) -> Evidence:
    """One reading per conversation: parsing, tidying and verifying a draft all ground its calls."""
    return Evidence.of(text)


def ground_call(function: Function, arguments: dict[str, Any], messages: Sequence[Message]) -> Grounding:
    evidence = _evidence_of(conversation_text(messages))
    properties = function.parameters.get("properties") or {}
    required, optional, checked = [], [], 0
    for name, value in arguments.items():
        verdict = grounded(value, properties.get(name) or {}, evidence)
        if verdict is None:
            continue
        checked += 1
        if not verdict:
            (required if name in function.required else optional).append(name)
    return Grounding(tuple(required), tuple(optional), checked)


def unsaid_choices(function: Function, arguments: dict[str, Any], messages: Sequence[Message]) -> tuple[str, ...]:
    """Optional arguments set to one of their enumerated values that the conversation never names: a
    choice the model made for the user, where the function's default would have been theirs."""
    evidence = _evidence_of(conversation_text(messages))
    properties = function.parameters.get("properties") or {}
    return tuple(name for name, value in arguments.items()
                 if name not in function.required and "enum" in (properties.get(name) or {})
                 and isinstance(value, str) and not evidence.has_text(value))
