"""What the detector reads about one claim against its source: how close the nearest source
sentences are in meaning, which of the claim's words, names and numbers the source lacks, and
whether a negation or an antonym flips what the nearest sentence says.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import pairwise

import numpy as np

from hybridlm.factcheck import text as tx
from hybridlm.models.encoder import Encoder

EVIDENCE_SENTENCES = 3
MAX_SOURCE_SENTENCES = 600
FEATURES = (
    "best_similarity", "top3_similarity", "window_similarity", "evidence_word_coverage", "source_word_coverage",
    "source_bigram_coverage", "novel_words", "novel_names", "novel_mid_sentence_names", "novel_numbers",
    "negation_mismatch", "antonym_flip", "claim_words",
)


@dataclass
class Source:
    """Source passages (one document, or retrieved chunks), split and embedded once, checked
    against many claims."""

    sentences: list[str]
    passage_of: list[int]  # which passage each sentence comes from
    passage_numbers: list[set[str]]
    vectors: np.ndarray
    words: set[str] = field(default_factory=set)  # stems, as are the bigrams and names
    bigrams: set[tuple[str, str]] = field(default_factory=set)
    names: set[str] = field(default_factory=set)

    @classmethod
    def build(cls, passages: Sequence[str], encoder: Encoder) -> Source:
        units: list[str] = []
        owner: list[int] = []
        for i, passage in enumerate(passages):
            parts = tx.sentences(passage) or ([passage] if passage.strip() else [])
            units += parts
            owner += [i] * len(parts)
        units, owner = units[:MAX_SOURCE_SENTENCES] or [""], owner[:MAX_SOURCE_SENTENCES] or [0]
        text = "\n".join(passages)
        tokens = tx.stems(text)
        return cls(units, owner, [set(tx.numbers(p)) for p in passages], encoder.encode(units), set(tokens),
                   set(pairwise(tokens)), {tx.stem(n) for n in tx.names(text)})


@dataclass(frozen=True)
class ClaimFeatures:
    values: np.ndarray
    evidence: list[int]  # source sentence indices, nearest first
    contradiction: str | None  # why the nearest evidence contradicts the claim, if a cue says so


def claims_features(claims: Sequence[str], source: Source, encoder: Encoder) -> list[ClaimFeatures]:
    """Features of each claim against the source; the claims and their evidence windows are each
    embedded in one encoder call."""
    if not claims:
        return []
    vectors = encoder.encode(list(claims))
    similarities = vectors @ source.vectors.T
    orders = [np.argsort(-row)[:EVIDENCE_SENTENCES] for row in similarities]
    evidence = [" ".join(source.sentences[i] for i in order) for order in orders]
    windows = (encoder.encode(evidence) * vectors).sum(axis=1)
    return [_claim_features(*args, source)
            for args in zip(claims, similarities, orders, evidence, windows, strict=True)]


def _claim_features(claim: str, similarity: np.ndarray, order: np.ndarray, evidence_text: str, window: float,
                    source: Source) -> ClaimFeatures:
    evidence_words = set(tx.words(evidence_text))
    evidence_stems = {tx.stem(w) for w in evidence_words}
    claim_tokens = tx.stems(claim)
    content = tx.content_words(claim)
    stems = [tx.stem(w) for w in content]
    bigrams = list(pairwise(claim_tokens))
    novel_names = [n for n in map(tx.stem, tx.names(claim)) if n not in source.names and n not in source.words]
    novel_mid = [n for n in map(tx.stem, tx.names(claim, mid_sentence=True))
                 if n not in source.names and n not in source.words]
    # a number must be in the passage the claim's evidence comes from, not just anywhere
    evidence_numbers = source.passage_numbers[source.passage_of[order[0]]]
    novel_numbers = [n for n in tx.numbers(claim) if n not in evidence_numbers]
    negation_mismatch = tx.negated(tx.words(claim)) != tx.negated(tx.words(source.sentences[order[0]]))
    flipped = [w for w in content if tx.ANTONYMS.get(w) in evidence_words and not _has_form(w, evidence_words)]
    values = np.array([
        similarity[order[0]], similarity[order].mean(), window,
        tx.share_known(stems, evidence_stems), tx.share_known(stems, source.words),
        tx.share_known(bigrams, source.bigrams),
        sum(w not in source.words for w in stems), len(novel_names), len(novel_mid), len(novel_numbers),
        float(negation_mismatch), float(bool(flipped)), len(content),
    ], dtype=np.float32)
    contradiction = None
    if flipped:
        contradiction = f"'{flipped[0]}' where the source says '{tx.ANTONYMS[flipped[0]]}'"
    elif novel_numbers and evidence_numbers:
        contradiction = f"the number {novel_numbers[0]} is not in the source"
    elif negation_mismatch and values[3] >= 0.8:
        contradiction = "a negation the nearest source sentence does not have (or the reverse)"
    return ClaimFeatures(values, [int(i) for i in order], contradiction)


def _has_form(word: str, known: set[str]) -> bool:
    """The word or a longer form of it ('open' in 'opening'), so an inflection is not read as a flip."""
    return word in known or any(k.startswith(word) for k in known)
