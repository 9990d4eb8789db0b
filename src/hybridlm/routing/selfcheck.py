"""The small model checks itself: it drafts, and its own certainty decides whether the draft stands.

A cascade without training data. The draft's token log-probabilities (the local GGUF model
reports them; an OpenAI-compatible server does when it supports `logprobs`) give the model's
doubt: one minus the geometric mean probability of the tokens it wrote. Optionally the model
also samples a few more answers at a higher temperature; when they disagree with the draft
(word overlap), the doubt rises: self-consistency, as in AutoMix. A draft without
log-probabilities cannot be judged and escalates.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from hybridlm.factcheck.text import stems
from hybridlm.routing.base import DraftsFirst, Score
from hybridlm.types import Completion, Message

SAMPLE_TEMPERATURE = 0.8


def doubt_from_logprobs(logprobs: Sequence[float]) -> float:
    """1 - the geometric mean token probability: 0 when every token was certain."""
    return 1.0 - math.exp(sum(logprobs) / len(logprobs))


def overlap(a: str, b: str) -> float:
    """Word-stem F1 of two answers (1 when they say the same words)."""
    left, right = stems(a), stems(b)
    if not left or not right:
        return float(left == right)
    common = sum(min(left.count(w), right.count(w)) for w in set(left))
    if common == 0:
        return 0.0
    precision, recall = common / len(left), common / len(right)
    return 2 * precision * recall / (precision + recall)


def agreement(draft: str, samples: Sequence[str]) -> float:
    """How much the resampled answers say what the draft says, on average."""
    return sum(overlap(draft, s) for s in samples) / len(samples) if samples else 1.0


class SelfCheckRouter(DraftsFirst):
    """A draft verifier from the small model's own signals; needs no router file."""

    kind = "selfcheck"
    name = "selfcheck"
    wants_logprobs = True

    def __init__(self, resamples: int = 0) -> None:
        self.resamples = resamples

    def verify(self, messages: list[Message], draft: Completion, samples: Sequence[str] = ()) -> Score:
        if not draft.token_logprobs:
            return Score(1.0, {"no_token_logprobs": 1.0})
        doubt = doubt_from_logprobs(draft.token_logprobs)
        parts = {"mean_token_probability": round(1.0 - doubt, 3),
                 "least_sure_token_probability": round(math.exp(min(draft.token_logprobs)), 3)}
        if samples:
            agree = agreement(draft.text, samples)
            parts["resample_agreement"] = round(agree, 3)
            doubt = (doubt + (1.0 - agree)) / 2
        return Score(round(doubt, 4), parts)
