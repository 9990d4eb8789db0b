"""Cascade routing (FrugalGPT / AutoMix style): the small model answers first, a verifier reads
the draft and either accepts it or escalates the request to the large model.

The learned verifier is a logistic regression over what the draft says about itself
(`answer_features`: wrong arithmetic, no final answer, hedging, looping)
and the prompt's shape (`features`). Its score is the probability the draft is not good
enough, on the training percentile scale like every other router.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hybridlm.artifacts import ArtifactError
from hybridlm.heads import LogisticHead, Percentiles
from hybridlm.routing import answer_features, artifact
from hybridlm.routing.base import DraftsFirst, Score, last_user_text
from hybridlm.routing.features import NAMES as PROMPT_NAMES
from hybridlm.routing.features import feature_matrix
from hybridlm.routing.outcomes import OutcomeDataError, OutcomeSet
from hybridlm.types import Completion, Message

FEATURE_NAMES = (*answer_features.NAMES, *(f"prompt_{n}" for n in PROMPT_NAMES))


class CascadeRouter(DraftsFirst):
    """Scores a (prompt, draft answer) pair; `score()` alone cannot know before the draft exists."""

    kind = "cascade"
    name = "cascade"
    wants_logprobs = False  # it reads the draft's text
    resamples = 0

    def __init__(self, verifier: LogisticHead, scale: Percentiles, header: dict[str, Any]) -> None:
        self.verifier = verifier
        self.scale = scale
        self.header = header

    @staticmethod
    def matrix(prompts: Sequence[str], answers: Sequence[str]) -> np.ndarray:
        return np.hstack([answer_features.answer_matrix(prompts, answers), feature_matrix(prompts)])

    def score_pairs(self, prompts: Sequence[str], answers: Sequence[str]) -> np.ndarray:
        return self.scale(self.verifier.probability(self.matrix(prompts, answers)))

    def verify(self, messages: list[Message], draft: Completion, samples: Sequence[str] = ()) -> Score:
        X = self.matrix([last_user_text(messages)], [draft.text])
        value = float(self.scale(self.verifier.probability(X))[0])
        pushes = self.verifier.contributions(X)[0]
        top = np.argsort(-np.abs(pushes))[:4]
        parts = {FEATURE_NAMES[i]: round(float(pushes[i]), 3) for i in top if abs(pushes[i]) > 0.05}
        return Score(round(value, 4), parts)

    def save(self, path: Path) -> None:
        arrays, _ = artifact.head_arrays("verifier", self.verifier)
        arrays["verifier.percentiles"] = self.scale.edges
        artifact.save(path, {**self.header, "kind": self.kind, "features": list(FEATURE_NAMES)}, arrays)

    @classmethod
    def load(cls, path: Path, header: dict[str, Any], arrays: dict[str, np.ndarray]) -> CascadeRouter:
        if header.get("features") != list(FEATURE_NAMES):
            raise ArtifactError(f"{path}: verifier features differ from this hybridlm's; retrain it")
        verifier, scale = artifact.build_head(path, {"name": "verifier", "type": "logistic"}, arrays)
        return cls(verifier, scale, header)


def fit_cascade(outcomes: OutcomeSet) -> CascadeRouter:
    """Learn P(the small model's answer is worse than the large one's) from recorded answers."""
    weak, strong = outcomes.pair()
    answers = outcomes.responses.get(outcomes.models[weak]) if outcomes.responses else None
    if answers is None:
        raise OutcomeDataError(
            f"{outcomes.name}: a cascade learns from the small model's answers, and this data has none "
            "(RouteLLM's GSM8K file has them; in JSONL give 'responses')")
    X = CascadeRouter.matrix(outcomes.prompts, answers)
    y = outcomes.scores[:, strong] > outcomes.scores[:, weak]
    if y.all() or not y.any():
        raise OutcomeDataError(f"{outcomes.name}: the large model is never (or always) better here")
    verifier = LogisticHead.fit(X, y.astype(int))
    header = {"trained_on": {"name": outcomes.name, "prompts": len(outcomes), "models": outcomes.models},
              "weak": outcomes.models[weak], "strong": outcomes.models[strong]}
    return CascadeRouter(verifier, Percentiles.fit(verifier.probability(X)), header)
