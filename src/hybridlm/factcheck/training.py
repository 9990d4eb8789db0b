"""Labelled data for the fact-checker: SummEdits and HaluEval QA files, claim-level training rows
from them, and synthetic edits of true claims."""

from __future__ import annotations

import json
import random
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hybridlm.errors import HybridLMError
from hybridlm.factcheck import text as tx
from hybridlm.factcheck.detector import FactChecker, fit
from hybridlm.factcheck.edits import EDIT_TYPES, edit
from hybridlm.factcheck.features import FEATURES, Source, claims_features
from hybridlm.models.encoder import Encoder

SUMMEDITS_KEYS = {"doc", "summary", "label"}
HALUEVAL_KEYS = {"knowledge", "question", "right_answer", "hallucinated_answer"}


class FactDataError(HybridLMError):
    """A fact-check data file that cannot be read, with what is wrong."""


@dataclass(frozen=True)
class FactPair:
    """A source and an answer about it: consistent (1) or not (0)."""

    source: str
    answer: str
    label: int
    domain: str
    edit_types: tuple[str, ...] = ()
    original: str | None = None  # SummEdits: the consistent summary this one was edited from


@dataclass(frozen=True)
class ClaimRow:
    source: str
    claim: str
    label: int
    kind: str  # the edit type, "" for a true claim


def load_pairs(path: Path) -> list[FactPair]:
    """A SummEdits JSON list (`doc, summary, label`) or HaluEval QA JSON lines (both answers of each row)."""
    if not path.is_file():
        raise FactDataError(f"{path}: no such file")
    raw = path.read_text(encoding="utf-8")
    try:
        rows = json.loads(raw) if raw.lstrip().startswith("[") else [json.loads(line) for line in raw.splitlines()
                                                                      if line.strip()]
    except json.JSONDecodeError as err:
        raise FactDataError(f"{path}: not JSON or JSON lines ({err})") from None
    if not rows or not isinstance(rows[0], dict):
        raise FactDataError(f"{path}: no rows")
    domain = path.stem.removeprefix("summedits_")
    if SUMMEDITS_KEYS <= rows[0].keys():
        return [FactPair(str(r["doc"]), str(r["summary"]), int(r["label"]), domain,
                         tuple(r.get("edit_types") or ()), r.get("original_summary")) for r in rows]
    if HALUEVAL_KEYS <= rows[0].keys():
        pairs = []
        for r in rows:
            pairs.append(FactPair(str(r["knowledge"]), str(r["right_answer"]), 1, "halueval"))
            pairs.append(FactPair(str(r["knowledge"]), str(r["hallucinated_answer"]), 0, "halueval"))
        return pairs
    raise FactDataError(f"{path}: neither the SummEdits layout ({', '.join(sorted(SUMMEDITS_KEYS))}) nor HaluEval "
                        f"QA ({', '.join(sorted(HALUEVAL_KEYS))}); found {', '.join(sorted(rows[0]))}")


def labelled_rows(pairs: Iterable[FactPair]) -> list[ClaimRow]:
    """Claim-level rows: every claim of a consistent answer is true; of an edited one, the claims
    that differ from the original are false (all of them when the original is unknown)."""
    rows = []
    for pair in pairs:
        claims = tx.sentences(pair.answer) or [pair.answer]
        original = set(tx.sentences(pair.original or ""))
        changed = [c for c in claims if c not in original] or claims
        kind = "+".join(pair.edit_types) or "edited"
        for claim in claims:
            false = pair.label == 0 and claim in changed
            rows.append(ClaimRow(pair.source, claim, 0 if false else 1, kind if false else ""))
    return rows


def synthetic_rows(pairs: Sequence[FactPair], seed: int = 0) -> list[ClaimRow]:
    """Each claim of each consistent answer, and one edited copy of it per edit type that applies;
    and short answers (a name the source has, or one from another document), as a QA answer is."""
    rng = random.Random(seed)
    consistent = [p for p in pairs if p.label == 1]
    rows = []
    for pair in consistent:
        other = rng.choice(consistent).source if len(consistent) > 1 else ""
        for claim in tx.sentences(pair.answer) or [pair.answer]:
            rows.append(ClaimRow(pair.source, claim, 1, ""))
            for kind in EDIT_TYPES:
                edited = edit(claim, pair.source, other, kind, rng)
                if edited and edited != claim:
                    rows.append(ClaimRow(pair.source, edited, 0, kind))
        rows += _short_answers(pair.source, other, rng)
    return rows


def _short_answers(source: str, other: str, rng: random.Random) -> list[ClaimRow]:
    present = sorted(set(tx.NAME.findall(source)) - {w.capitalize() for w in tx.STOPWORDS})
    absent = sorted(set(tx.NAME.findall(other)) - set(present) - {w.capitalize() for w in tx.STOPWORDS}
                    - {w.capitalize() for w in tx.words(source)})
    rows = [ClaimRow(source, rng.choice(present), 1, "")] if present else []
    return rows + ([ClaimRow(source, rng.choice(absent), 0, "short_answer")] if absent else [])


def feature_matrix(rows: Sequence[ClaimRow], encoder: Encoder,
                   progress: Callable[[int], None] | None = None) -> np.ndarray:
    """Features of every row; each source is split and embedded once."""
    by_source: dict[str, list[int]] = defaultdict(list)
    for i, row in enumerate(rows):
        by_source[row.source].append(i)
    matrix = np.zeros((len(rows), len(FEATURES)), dtype=np.float32)
    for text, indices in by_source.items():
        found = claims_features([rows[i].claim for i in indices], Source.build([text], encoder), encoder)
        for i, features in zip(indices, found, strict=True):
            matrix[i] = features.values
        if progress:
            progress(len(indices))
    return matrix


def fingerprints(pairs: Iterable[FactPair]) -> np.ndarray:
    """64-bit hashes of the sources: enough to tell whether a detector has read a file's documents."""
    import hashlib

    found = {int.from_bytes(hashlib.sha1(p.source.encode()).digest()[:8], "little") for p in pairs}
    return np.array(sorted(found), dtype=np.uint64)


def train(pairs: Sequence[FactPair], encoder: Encoder, synthetic: bool = True,
          progress: Callable[[int], None] | None = None) -> FactChecker:
    """A detector from labelled pairs plus (by default) synthetic edits of their consistent answers."""
    if not pairs:
        raise FactDataError("no training pairs")
    rows = labelled_rows(pairs) + (synthetic_rows(pairs) if synthetic else [])
    labels = np.array([r.label for r in rows])
    if len(set(labels.tolist())) < 2:
        raise FactDataError("training needs both consistent and inconsistent examples (or consistent ones to edit)")
    matrix = feature_matrix(rows, encoder, progress)
    domains = sorted({p.domain for p in pairs})
    checker = fit(matrix, labels, {"trained_on": domains, "synthetic_edits": synthetic, "rows": len(rows)}, encoder)
    checker.sources = fingerprints(pairs)
    checker.threshold = checker.header["threshold"] = balanced_threshold(checker, pairs)
    return checker


def balanced_threshold(checker: FactChecker, pairs: Sequence[FactPair]) -> float:
    """The answer-level threshold with the best balanced accuracy on the training pairs: claims are
    trained one by one, but an answer is judged by its weakest claim."""
    labels = np.array([p.label for p in pairs])
    if len(set(labels.tolist())) < 2:
        return checker.threshold
    scores = checker.score_answers([(p.source, p.answer) for p in pairs])
    candidates = np.quantile(scores, np.linspace(0.02, 0.98, 49))
    accuracy = [(labels[scores >= t] == 1).sum() / (labels == 1).sum() / 2
                + (labels[scores < t] == 0).sum() / (labels == 0).sum() / 2 for t in candidates]
    return float(candidates[int(np.argmax(accuracy))])
