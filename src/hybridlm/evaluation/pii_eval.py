"""How well the detector finds personal data: token-level precision, recall and F2, as presidio-research scores it.

The data is presidio-research's synthetic layout: a JSON list of
`{full_text, spans: [{entity_type, start_position, end_position, ...}]}`.

Scoring is per token, not per span, because span boundaries in such data are a matter of taste
("6750 Koskikatu 25 Apt. 864" is one span in one text and three in the next). Each text is cut
into spaCy's English tokens (spacy.blank("en"): the tokenizer of the pipeline the detector runs,
punctuation split off, whitespace tokens skipped); a token takes the label of the gold span it
overlaps, and the type of the finding it overlaps as its prediction. A token predicted as type T
counts as a true positive for T when its gold label is T, a false positive for T otherwise, and a
token whose gold label is T and is not predicted T is a false negative for T. F2 weighs recall
twice as much as precision (a leak costs more than an over-redaction), as presidio-research does.

Scores are over the leak types (the ones a remote model must not see, `LEAK_TYPES`); micro-averaged
overall. The data's names are ours for those types. Its GPE (places) and ZIP_CODE labels are parts
of addresses that it labels apart in some texts and inside STREET_ADDRESS in others, so a token
labelled GPE or ZIP_CODE and predicted STREET_ADDRESS is neither a hit nor a false positive; the
share of the data's other types' tokens that some finding covers is reported apart (`other_types`).
"""

from __future__ import annotations

import json
import statistics
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hybridlm.errors import HybridLMError
from hybridlm.privacy.detector import Finding, PiiDetector

LEAK_TYPES = ["PERSON", "EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "IBAN_CODE", "US_SSN", "IP_ADDRESS",
              "STREET_ADDRESS"]
# The data's labels for parts of an address that it does not always count as STREET_ADDRESS.
ADDRESS_PARTS = {"GPE", "ZIP_CODE"}
BETA = 2.0


class PiiDataError(HybridLMError):
    """A PII data file that cannot be read or is not in presidio-research's layout."""


@dataclass(frozen=True)
class PiiExample:
    text: str
    spans: tuple[tuple[str, int, int], ...]  # (entity type, start, end)


def load_pii_data(path: Path, limit: int | None = None) -> list[PiiExample]:
    """The examples of a presidio-research JSON file, the first `limit` of them if given."""
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))
        examples = [PiiExample(str(r["full_text"]), tuple((str(s["entity_type"]), int(s["start_position"]),
                                                           int(s["end_position"])) for s in r["spans"]))
                    for r in rows[:limit]]
    except FileNotFoundError:
        raise PiiDataError(f"{path}: no such file") from None
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise PiiDataError(f"{path}: not presidio-research's layout of full_text and spans ({err!r})") from None
    if not examples:
        raise PiiDataError(f"{path}: no examples")
    return examples


def _label(start: int, end: int, spans: Sequence[tuple[str, int, int]]) -> str | None:
    return next((entity for entity, s, e in spans if s < end and start < e), None)


@dataclass
class TokenCounts:
    """True positives, false positives and false negatives by type, and gold tokens of other types covered."""

    tp: Counter[str]
    fp: Counter[str]
    fn: Counter[str]
    other_total: Counter[str]
    other_covered: Counter[str]

    @classmethod
    def empty(cls) -> TokenCounts:
        return cls(Counter(), Counter(), Counter(), Counter(), Counter())

    def add(self, other: TokenCounts) -> None:
        for mine, theirs in zip(vars(self).values(), vars(other).values(), strict=True):
            mine.update(theirs)


def count_tokens(tokens: Sequence[tuple[int, int]], gold: Sequence[tuple[str, int, int]],
                 findings: Sequence[Finding]) -> TokenCounts:
    """The token-level counts of one text (tokens as (start, end) character offsets)."""
    counts = TokenCounts.empty()
    predicted_spans = [(f.entity, f.start, f.end) for f in findings]
    for start, end in tokens:
        truth, predicted = _label(start, end, gold), _label(start, end, predicted_spans)
        if truth is not None and truth not in LEAK_TYPES:
            counts.other_total[truth] += 1
            counts.other_covered[truth] += predicted is not None
        if predicted in LEAK_TYPES:
            if predicted == truth:
                counts.tp[predicted] += 1
            elif not (predicted == "STREET_ADDRESS" and truth in ADDRESS_PARTS):
                counts.fp[predicted] += 1
        if truth in LEAK_TYPES and predicted != truth:
            counts.fn[truth] += 1
    return counts


def scores(tp: int, fp: int, fn: int) -> dict[str, float]:
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    b2 = BETA * BETA
    f2 = (1 + b2) * precision * recall / (b2 * precision + recall) if precision + recall else 0.0
    return {"precision": round(precision, 4), "recall": round(recall, 4), "f2": round(f2, 4)}


def summarise(counts: TokenCounts) -> dict[str, Any]:
    """Overall (micro) and per-type precision, recall and F2 over the leak types."""
    tp, fp, fn = (sum(c[t] for t in LEAK_TYPES) for c in (counts.tp, counts.fp, counts.fn))
    per_entity = {t: scores(counts.tp[t], counts.fp[t], counts.fn[t]) | {"support": counts.tp[t] + counts.fn[t]}
                  for t in LEAK_TYPES if counts.tp[t] + counts.fn[t] + counts.fp[t]}
    return scores(tp, fp, fn) | {"per_entity": per_entity}


class Tokenizer:
    """spaCy's English tokenizer alone (no model), as (start, end) offsets of the non-space tokens."""

    def __init__(self) -> None:
        import spacy

        self._nlp = spacy.blank("en")

    def __call__(self, text: str) -> list[tuple[int, int]]:
        return [(t.idx, t.idx + len(t)) for t in self._nlp.tokenizer(text) if not t.is_space]


def evaluate_pii(detector: PiiDetector, examples: Sequence[PiiExample]) -> dict[str, Any]:
    """Scores on all examples and on each half (the first half is what the recognisers were tuned on),
    the other types' coverage, and the detector's median milliseconds per message."""
    detector.warm_up()
    tokenize = Tokenizer()
    per_example: list[TokenCounts] = []
    millis: list[float] = []
    for example in examples:
        start = time.perf_counter()
        findings = detector.detect(example.text)
        millis.append((time.perf_counter() - start) * 1000)
        per_example.append(count_tokens(tokenize(example.text), example.spans, findings))

    def total(part: Sequence[TokenCounts]) -> TokenCounts:
        counts = TokenCounts.empty()
        for c in part:
            counts.add(c)
        return counts

    whole = total(per_example)
    half = len(per_example) // 2
    result = summarise(whole)
    result["halves"] = {name: summarise(total(part))
                        for name, part in (("first", per_example[:half]), ("second", per_example[half:]))}
    result["other_types"] = {t: {"covered": round(whole.other_covered[t] / n, 4), "tokens": n}
                             for t, n in sorted(whole.other_total.items())}
    result |= {"messages": len(examples), "ms_per_message": round(statistics.median(millis), 2),
               "entities": list(detector.entities), "min_score": detector.min_score}
    return result
