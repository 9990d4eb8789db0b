"""The fact-checker: splits an answer into claims, finds each claim's evidence in the sources and
labels it supported, unsupported or contradicted, with a score.

The score is a logistic regression over `features.FEATURES`, trained on synthetic edits and/or
labelled pairs (`train`); a claim below the threshold is unsupported, or contradicted when a cue
(an antonym, a changed number, a flipped negation) says the evidence states the opposite.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from hybridlm import artifacts
from hybridlm.factcheck import text as tx
from hybridlm.factcheck.features import FEATURES, ClaimFeatures, Source, claims_features
from hybridlm.factcheck.nli import NLIJudge
from hybridlm.heads import LogisticHead
from hybridlm.models.encoder import Encoder, load_encoder

FORMAT = "hybridlm-factcheck"
ENCODER = "minilm"
SUPPORTED, UNSUPPORTED, CONTRADICTED = "supported", "unsupported", "contradicted"
RETRAIN = "hybridlm train factcheck"
NLI_THRESHOLD = 0.5
UNGROUNDED_NUMBER_CAP = 0.5  # a number the sources do not have is never supported: score at most half the bar


@dataclass(frozen=True)
class ClaimVerdict:
    claim: str
    label: str
    score: float  # probability that the sources support the claim
    evidence: str  # the nearest source sentence
    source: int  # index of the passage the evidence comes from
    reason: str


@dataclass(frozen=True)
class FactReport:
    claims: list[ClaimVerdict]

    @property
    def supported(self) -> bool:
        return all(c.label == SUPPORTED for c in self.claims)

    @property
    def score(self) -> float:
        """The weakest claim's score: one unsupported claim makes the answer unreliable."""
        return min((c.score for c in self.claims), default=1.0)

    @property
    def flagged(self) -> list[ClaimVerdict]:
        return [c for c in self.claims if c.label != SUPPORTED]

    def as_dict(self) -> dict[str, Any]:
        return {"supported": self.supported, "score": round(self.score, 4),
                "claims": [asdict(c) | {"score": round(c.score, 4)} for c in self.claims]}


class FactChecker:
    def __init__(self, header: dict[str, Any], head: LogisticHead, encoder: Encoder | None = None,
                 sources: np.ndarray | None = None, nli: NLIJudge | None = None) -> None:
        self.header = header
        self.head = head
        self.nli = nli  # when set, an NLI cross-encoder scores claims instead of the logistic head
        self.sources = sources if sources is not None else np.zeros(0, dtype=np.uint64)  # what it was trained on
        self.threshold = float(header["threshold"])
        self.encoder = encoder or load_encoder(ENCODER)

    def claim_scores(self, source: Source, claims: Sequence[str]) -> tuple[np.ndarray, list[ClaimFeatures]]:
        """P(supported) per claim, and what was found about each; with an NLI model, a claim the
        model reads as contradicted gets that as its `contradiction`."""
        found = claims_features(claims, source, self.encoder)
        matrix = np.stack([f.values for f in found]) if found else np.zeros((0, len(FEATURES)))
        if self.nli is None:
            scores = self.head.probability(matrix)
        else:
            premises = [" ".join(source.sentences[i] for i in f.evidence) for f in found]
            scores, contradicted = self.nli.judge(premises, claims)
            found = [replace(f, contradiction=f"the NLI model reads a contradiction ({p:.2f})") if p > 0.5 else f
                     for f, p in zip(found, contradicted, strict=True)]
        ungrounded = matrix[:, FEATURES.index("novel_numbers")] > 0
        return np.where(ungrounded, np.minimum(scores, self.threshold * UNGROUNDED_NUMBER_CAP), scores), found

    def check(self, passages: Sequence[str] | str, answer: str) -> FactReport:
        passages = [passages] if isinstance(passages, str) else list(passages)
        claims = tx.sentences(answer)
        if not claims or not any(p.strip() for p in passages):
            return FactReport([ClaimVerdict(c, UNSUPPORTED, 0.0, "", -1, "no source to check against")
                               for c in claims])
        source = Source.build(passages, self.encoder)
        scores, found = self.claim_scores(source, claims)
        verdicts = []
        for claim, score, feats in zip(claims, scores, found, strict=True):
            best = feats.evidence[0]
            if score >= self.threshold:
                label, reason = SUPPORTED, f"score {score:.2f} >= {self.threshold:.2f}"
            elif feats.contradiction:
                label, reason = CONTRADICTED, feats.contradiction
            else:
                label, reason = UNSUPPORTED, f"score {score:.2f} < {self.threshold:.2f}: {_weakest(feats.values)}"
            verdicts.append(ClaimVerdict(claim, label, float(score), source.sentences[best],
                                         source.passage_of[best], reason))
        return FactReport(verdicts)

    def score_answers(self, pairs: Sequence[tuple[str, str]],
                      progress: Callable[[int], None] | None = None) -> np.ndarray:
        """P(the whole answer is supported) - its weakest claim's - for (source, answer) pairs; each
        source is split and embedded once however many answers are about it (evaluations)."""
        by_source: dict[str, list[int]] = defaultdict(list)
        for i, (source_text, _) in enumerate(pairs):
            by_source[source_text].append(i)
        scores = np.zeros(len(pairs))
        for source_text, indices in by_source.items():
            source = Source.build([source_text], self.encoder)
            for i in indices:
                answer = pairs[i][1]
                scores[i] = self.claim_scores(source, tx.sentences(answer) or [answer])[0].min()
            if progress:
                progress(len(indices))
        return scores

    def save(self, path: Path) -> None:
        artifacts.save(path, FORMAT, self.header, {**self.head.arrays("head"), "sources": self.sources})

    @classmethod
    def load(cls, path: Path | None = None, nli_model: Path | None = None) -> FactChecker:
        """The given detector file, or the one that ships with hybridlm; with an NLI model folder,
        that model scores the claims (its threshold is 0.5)."""
        path = path or default_path()
        header, arrays = artifacts.load(path, FORMAT, "fact-check model", RETRAIN)
        if header.get("features") != list(FEATURES):
            raise artifacts.ArtifactError(f"{path}: made for other features; retrain it with `{RETRAIN}`")
        checker = cls(header, LogisticHead.from_arrays(path, arrays, "head"), sources=arrays.get("sources"))
        if nli_model is not None:
            checker.nli, checker.threshold = NLIJudge(nli_model), NLI_THRESHOLD
        return checker

    def has_read(self, sources: np.ndarray) -> int:
        """How many of these source fingerprints the detector was trained on."""
        return int(np.isin(sources, self.sources).sum())


def _weakest(values: np.ndarray) -> str:
    named = dict(zip(FEATURES, values.tolist(), strict=True))
    parts = [f"closest source sentence similarity {named['best_similarity']:.2f}",
             f"{named['source_word_coverage']:.0%} of its words in the sources"]
    if named["novel_names"]:
        parts.append(f"{int(named['novel_names'])} name(s) not in the sources")
    return ", ".join(parts)


def default_path() -> Path:
    return shipped_dir() / "factcheck.npz"


def shipped_dir() -> Path:
    return Path(str(resources.files("hybridlm.factcheck") / "data"))


def unseen_detector(sources: np.ndarray) -> FactChecker | None:
    """The shipped detector, or a shipped sibling trained without these sources (each leaves one
    SummEdits domain out), so an evaluation never scores a detector on what it learnt from."""
    for path in [default_path(), *sorted(shipped_dir().glob("factcheck-without-*.npz"))]:
        checker = FactChecker.load(path)
        if checker.has_read(sources) == 0:
            return checker
    return None


def fit(matrix: np.ndarray, labels: np.ndarray, header: dict[str, Any], encoder: Encoder | None = None,
        threshold: float = 0.5) -> FactChecker:
    """A logistic regression on standardised features, both classes weighed equally."""
    full = {"features": list(FEATURES), "encoder": ENCODER, "threshold": threshold, **header}
    return FactChecker(full, LogisticHead.fit(matrix, labels, balanced=True), encoder)
