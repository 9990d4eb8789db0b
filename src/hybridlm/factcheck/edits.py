"""Synthetic atomic edits of a true claim (FactCC-style): the training data of the detector,
generated without limit from any text. Each edit makes one kind of error a summary can have.
"""

from __future__ import annotations

import random
import re

from hybridlm.factcheck import text as tx

EDIT_TYPES = ("entity_swap", "number_swap", "negation", "antonym_swap", "inserted_fact")
AUXILIARIES = re.compile(r"\b(is|are|was|were|will|can|could|should|would|does|did|do|has|have|had)\b(?! not)")
NEGATED = re.compile(r"\b(is|are|was|were|will|can|could|should|would|does|did|do|has|have|had) not\b|n't\b")


def edit(claim: str, source_text: str, other_text: str, kind: str, rng: random.Random) -> str | None:
    """The claim with one error of `kind`, or None when the claim offers no place for it."""
    if kind == "entity_swap":
        return _swap_name(claim, source_text, rng)
    if kind == "number_swap":
        return _swap_number(claim, rng)
    if kind == "negation":
        return _flip_negation(claim)
    if kind == "antonym_swap":
        return _swap_antonym(claim, rng)
    if kind == "inserted_fact":
        return _insert_fact(claim, other_text, rng)
    raise ValueError(f"unknown edit type {kind!r}")


def _swap_name(claim: str, source_text: str, rng: random.Random) -> str | None:
    present = sorted(set(tx.NAME.findall(claim[1:])))
    pool = sorted(set(tx.NAME.findall(source_text)) - set(present) - {w.capitalize() for w in tx.STOPWORDS})
    if not present or not pool:
        return None
    old = rng.choice(present)
    return re.sub(rf"\b{re.escape(old)}\b", rng.choice(pool), claim)


def _swap_number(claim: str, rng: random.Random) -> str | None:
    found = list(tx.NUMBER.finditer(claim))
    if not found:
        return None
    match = rng.choice(found)
    digits = match.group()
    if not digits.isdigit():
        return None
    value = int(digits)
    new = value + 2 if value <= 1 else value + rng.choice([-1, 1]) * rng.randint(1, max(2, min(value // 4, 10)))
    return claim[:match.start()] + str(new) + claim[match.end():]


def _flip_negation(claim: str) -> str | None:
    if NEGATED.search(claim):
        return NEGATED.sub(lambda m: m.group(1) if m.group(1) else "", claim, count=1).replace("n't", "", 1)
    if AUXILIARIES.search(claim):
        return AUXILIARIES.sub(lambda m: f"{m.group(1)} not", claim, count=1)
    return None


def _swap_antonym(claim: str, rng: random.Random) -> str | None:
    candidates = [m for m in tx.WORD.finditer(claim) if m.group().lower() in tx.ANTONYMS]
    if not candidates:
        return None
    match = rng.choice(candidates)
    word = match.group()
    new = tx.ANTONYMS[word.lower()]
    new = new.capitalize() if word[0].isupper() else new
    return claim[:match.start()] + new + claim[match.end():]


def _insert_fact(claim: str, other_text: str, rng: random.Random) -> str | None:
    donors = [s for s in tx.sentences(other_text) if 6 <= len(s.split()) <= 40]
    if not donors:
        return None
    tail = rng.choice(donors).rstrip(".!?").split()
    fragment = " ".join(tail[-rng.randint(4, min(10, len(tail))):])
    return f"{claim.rstrip('.!? ')}, and {fragment}."
