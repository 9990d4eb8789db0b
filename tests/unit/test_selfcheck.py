"""The selfcheck verifier's arithmetic: doubt from token log-probabilities and from resampled answers."""

import math

import pytest

from hybridlm.routing.selfcheck import SelfCheckRouter, agreement, doubt_from_logprobs, overlap
from hybridlm.types import Completion, Usage

QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


def draft(text: str, logprobs: tuple[float, ...] | None) -> Completion:
    return Completion(text=text, model="slm", usage=Usage(), token_logprobs=logprobs)


def test_doubt_is_one_minus_the_geometric_mean_token_probability() -> None:
    assert doubt_from_logprobs([0.0, 0.0]) == 0.0
    assert doubt_from_logprobs([math.log(0.5), math.log(0.5)]) == pytest.approx(0.5)
    assert doubt_from_logprobs([math.log(0.9), math.log(0.1)]) == pytest.approx(1 - 0.3)


def test_overlap_counts_shared_word_stems() -> None:
    assert overlap("Paris is the capital", "the capital is Paris") == 1.0
    assert overlap("Paris", "Lyon") == 0.0
    assert overlap("", "") == 1.0 and overlap("", "Paris") == 0.0
    assert 0.0 < overlap("The capital is Paris", "Paris") < 1.0
    assert agreement("Paris", ["Paris", "Lyon"]) == pytest.approx(0.5)
    assert agreement("Paris", []) == 1.0


def test_a_sure_draft_is_doubted_less_and_disagreeing_samples_raise_the_doubt() -> None:
    router = SelfCheckRouter()
    sure = router.verify(QUESTION, draft("Paris.", (-0.01, -0.02)))
    unsure = router.verify(QUESTION, draft("Lyon, maybe.", (-1.5, -2.5, -0.7)))
    assert sure.value < 0.05 < 0.5 < unsure.value
    assert sure.contributions["mean_token_probability"] == pytest.approx(0.985, abs=0.001)
    consistent = router.verify(QUESTION, draft("Paris", (-0.2,)), ["Paris", "Paris"])
    inconsistent = router.verify(QUESTION, draft("Paris", (-0.2,)), ["Lyon", "Marseille"])
    assert inconsistent.value > consistent.value
    assert inconsistent.contributions["resample_agreement"] == 0.0


def test_a_draft_without_log_probabilities_cannot_be_judged_and_escalates() -> None:
    verdict = SelfCheckRouter().verify(QUESTION, draft("Paris", None))
    assert verdict.value == 1.0 and "no_token_logprobs" in verdict.contributions


def test_openai_format_logprobs_are_read_and_malformed_ones_ignored() -> None:
    from hybridlm.models.openai_http import _token_logprobs

    content = [{"token": "Par", "logprob": -0.1}, {"token": "is", "logprob": -0.02}]
    assert _token_logprobs({"logprobs": {"content": content}}) == (-0.1, -0.02)
    assert _token_logprobs({"logprobs": None}) is None
    assert _token_logprobs({}) is None
    assert _token_logprobs({"logprobs": {"content": [{"token": "x"}]}}) is None
    assert _token_logprobs({"logprobs": {"content": "not a list"}}) is None
