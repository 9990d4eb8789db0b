"""The tool router's logic with fixed fits: reasons to skip the small model, the draft's signals,
the verifier, and the out-of-fold figures of `eval tools`."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from hybridlm.config import ToolRoutingConfig
from hybridlm.errors import MissingExtra
from hybridlm.evaluation.tool_eval import ToolOutcome, fit_verifier, out_of_fold_doubt, report
from hybridlm.routing.tools import ToolRouter, Verifier, draft_signals
from hybridlm.tools.protocol import Function, parse_tools
from hybridlm.tools.relevance import ToolRelevance
from hybridlm.types import Completion, Message, ToolCall, Usage


class FixedFit:
    """Relevance scores given by the test: this is about the router's logic, not the encoder."""

    def __init__(self, fits: dict[str, float]) -> None:
        self.fits = fits

    def scores(self, messages: list[Message], functions: Sequence[Function]) -> list[float]:
        return [self.fits.get(f.name, 0.0) for f in functions]

    def best(self, messages: list[Message], functions: Sequence[Function]) -> float:
        return max(self.scores(messages, functions), default=0.0)

    def ready(self) -> bool:
        return True

    can_judge = ToolRelevance.can_judge


def tool(name: str, required: tuple[str, ...] = ("x",)) -> dict:
    return {"type": "function", "function": {"name": name, "parameters": {
        "type": "object", "properties": {r: {"type": "string"} for r in required}, "required": list(required)}}}


ASK = [{"role": "user", "content": "set x to blue"}]


def router(fits: dict[str, float], **config: object) -> ToolRouter:
    weights = Verifier({"doubt": 4.0, "argument_not_in_request": 4.0, "no_call": 1.0, "fitting_tool_unused": 2.0},
                       -3.0, "test")
    return ToolRouter(ToolRoutingConfig(**config), FixedFit(fits), weights)  # type: ignore[arg-type]


def test_reasons_to_skip_the_small_model() -> None:
    few = parse_tools([tool("a"), tool("b")])
    many = parse_tools([tool(f"f{i}") for i in range(5)])
    assert few is not None and many is not None
    assert router({"a": 0.6}).before(ASK, few).value == 0.0
    skip = router({"f0": 0.6}, max_local_tools=3).before(ASK, many)
    assert skip.value == 1.0 and skip.contributions["many_tools"] == 1.0 and "5 functions" in skip.explain()
    assert router({"a": 0.1}).before(ASK, few).contributions["no_tool_fits"] == 1.0
    steps = router({"a": 0.6}).before([{"role": "user", "content": "set x to blue, then call Bob"}], few)
    assert steps.contributions["several_steps"] == 1.0


def test_the_verifier_doubts_made_up_values_and_unsure_calls() -> None:
    tools = parse_tools([tool("a")])
    assert tools is not None
    r = router({"a": 0.8})
    sure = Completion("", "m", Usage(), "tool_calls", (-0.01, -0.02), (ToolCall("c1", "a", '{"x": "blue"}'),))
    unsure = Completion("", "m", Usage(), "tool_calls", (-2.0, -3.0), (ToolCall("c1", "a", '{"x": "blue"}'),))
    made_up = Completion("", "m", Usage(), "tool_calls", (-0.01,), (ToolCall("c1", "a", '{"x": "green"}'),))
    signals = draft_signals(ASK, tools, made_up, FixedFit({"a": 0.8}))  # type: ignore[arg-type]
    assert signals["argument_not_in_request"] == 0.5 and signals["no_call"] == 0.0
    assert r.verify(ASK, tools, sure).value < 0.1
    assert r.verify(ASK, tools, unsure).value > 0.5
    assert r.verify(ASK, tools, made_up).value > r.verify(ASK, tools, sure).value
    words = Completion("I can't.", "m", Usage(), "stop")
    assert draft_signals(ASK, tools, words, FixedFit({"a": 0.8}))["fitting_tool_unused"] == 0.8  # type: ignore[arg-type]


def test_without_the_encoder_no_fit_is_judged_and_none_counts_against_a_draft(
        monkeypatch: pytest.MonkeyPatch) -> None:
    def no_encoder(name: str) -> None:
        raise MissingExtra("sentence-transformers", "support")

    monkeypatch.setattr("hybridlm.tools.relevance.load_encoder", no_encoder)
    relevance = ToolRelevance()
    assert relevance.describe() == "not loaded yet"
    tools = parse_tools([tool("a"), tool("b")])
    assert tools is not None
    unsure_fit = ToolRouter(ToolRoutingConfig(min_fit=0.99), relevance).before(ASK, tools)
    assert unsure_fit.value == 0.0 and unsure_fit.contributions["no_tool_fits"] == 0.0
    assert relevance.missing is not None and relevance.missing.extra == "support"
    assert relevance.describe() == f"off: {relevance.missing}"
    call = Completion("", "m", Usage(), "tool_calls", (-0.01,), (ToolCall("c1", "a", '{"x": "blue"}'),))
    signals = draft_signals(ASK, tools, call, relevance)
    assert signals["poor_fit"] == signals["close_second"] == signals["fitting_tool_unused"] == 0.0
    with pytest.raises(MissingExtra, match=r"pip install 'hybridlm\[support\]'"):
        relevance.scores(ASK, tools.offered())


def outcome(i: int, category: str, correct: bool, doubt: float) -> ToolOutcome:
    return ToolOutcome(f"{category}_{i}", category, "m", correct, "", [], "", "tool_calls", None, None, 1.0, 10, 5,
                       {}, {"doubt": doubt, "no_call": 0.0})


def test_out_of_fold_figures_keep_the_sure_and_right_drafts() -> None:
    outcomes = [outcome(i, "simple", i % 4 != 0, 0.9 if i % 4 == 0 else 0.05) for i in range(40)]
    outcomes += [outcome(i, "multiple", i % 2 == 0, 0.1 if i % 2 == 0 else 0.8) for i in range(20)]
    verifier = fit_verifier(outcomes, "test", prior=Verifier({"no_call": 3.0, "doubt": -9.0}, 0.0, "prior"))
    assert verifier.weights["doubt"] > 0  # doubt means wrong, whatever the prior said
    assert verifier.weights["no_call"] == 3.0  # never varies in these outcomes: the prior's weight stays
    doubt = out_of_fold_doubt(outcomes)
    assert doubt.shape == (60,) and doubt.min() >= 0 and doubt.max() <= 1
    result = report(outcomes, routed=True, threshold=0.5).as_json()
    assert result["n"] == 60 and result["categories"]["simple"]["accuracy"] == 0.75
    assert result["local_accuracy"] == pytest.approx(1.0) and result["local_share"] == pytest.approx(40 / 60, abs=0.01)
    assert result["verifier"].startswith("out-of-fold")
    assert [p["threshold"] for p in result["curve"]] == sorted(p["threshold"] for p in result["curve"])
    local = report(outcomes, routed=False, threshold=0.5).as_json()
    assert "local_share" not in local


def test_a_sample_too_small_for_every_fold_is_still_scored() -> None:
    few = [outcome(0, "simple", True, 0.1), outcome(0, "irrelevance", False, 0.9)]
    doubt = out_of_fold_doubt(few)  # five folds, two outcomes: most folds train on one or none
    assert doubt.shape == (2,) and ((doubt >= 0) & (doubt <= 1)).all()
    assert report(few, routed=True, threshold=0.5).as_json()["n"] == 2
