"""Pipeline logic with scripted backends; the same paths run against real servers in tests/integration."""

import asyncio
from pathlib import Path

import pytest

from hybridlm.config import parse_config
from hybridlm.models.base import BackendError, GenerationParams
from hybridlm.executor import LLM_UNAVAILABLE
from hybridlm.pipeline import Pipeline, RequestFailed
from hybridlm.request import Request
from hybridlm.targets import UnknownModel
from hybridlm.routing import HeuristicRouter
from hybridlm.request_log import RequestLog
from tests.fakes import ScriptedBackend

SIMPLE = [{"role": "user", "content": "What are your opening hours?"}]
COMPLEX = [{"role": "user", "content": "Analyze and compare these two plans step by step in detail."}]
PARAMS = GenerationParams(max_tokens=16)


def make(tmp_path: Path, with_llm: bool = True, budget: float | None = None) -> tuple[Pipeline, ScriptedBackend, ScriptedBackend]:
    tiers = {"slm": {"backend": "local"}}
    if with_llm:
        tiers["llm"] = {"backend": "openai", "base_url": "http://127.0.0.1:9/v1", "model": "big",
                        "price": {"input": 1.0, "output": 4.0}, "budget_usd_per_day": budget}
    config = parse_config({"tiers": tiers})
    slm, llm = ScriptedBackend("small"), ScriptedBackend("big")
    backends = {"slm": slm, **({"llm": llm} if with_llm else {})}
    return Pipeline(config, backends, HeuristicRouter(), RequestLog(tmp_path / "log.db")), slm, llm


def run(pipeline: Pipeline, messages: list, model: str = "hybrid"):
    answer = asyncio.run(pipeline.run(Request(messages, model, PARAMS)))
    return answer.completion, answer.trace


def test_simple_goes_local_complex_goes_remote_with_costs(tmp_path: Path) -> None:
    pipeline, slm, llm = make(tmp_path)
    _, t1 = run(pipeline, SIMPLE)
    _, t2 = run(pipeline, COMPLEX)
    assert (t1.tier, t2.tier) == ("slm", "llm")
    assert t1.cost_usd == 0 and t1.baseline_cost_usd > 0
    assert t2.cost_usd == pytest.approx((100 * 1.0 + 3 * 4.0) / 1e6)  # "big says hi": 3 tokens
    assert len(slm.history) == len(llm.history) == 1


def test_remote_failure_falls_back_to_local_with_reason(tmp_path: Path) -> None:
    pipeline, slm, llm = make(tmp_path)
    llm.enqueue(BackendError("unavailable", "cannot reach upstream"))
    result, trace = run(pipeline, COMPLEX)
    assert result.model == "small"
    assert (trace.tier, trace.fallback, trace.fallback_reason) == ("slm", LLM_UNAVAILABLE, "cannot reach upstream")
    assert trace.decision is not None and trace.decision.tier == "llm"
    assert pipeline.log.get(trace.request_id)["fallback"] == LLM_UNAVAILABLE


def test_forced_tier_does_not_fall_back(tmp_path: Path) -> None:
    pipeline, slm, llm = make(tmp_path)
    llm.enqueue(BackendError("timeout", "too slow"))
    with pytest.raises(RequestFailed, match="too slow") as failed:
        run(pipeline, SIMPLE, model="llm")
    assert slm.history == []
    assert failed.value.error.status == 504 and pipeline.log.get(failed.value.trace.request_id)["http_status"] == 504


def test_request_errors_are_not_hidden_by_fallback(tmp_path: Path) -> None:
    pipeline, slm, llm = make(tmp_path)
    llm.enqueue(BackendError("invalid_request", "context too long", 400))
    with pytest.raises(RequestFailed, match="context too long") as failed:
        run(pipeline, COMPLEX)
    assert failed.value.error.status == 400 and slm.history == []


def test_no_llm_configured_marks_fallback_without_calling_out(tmp_path: Path) -> None:
    pipeline, slm, _ = make(tmp_path, with_llm=False)
    _, trace = run(pipeline, COMPLEX)
    assert trace.tier == "slm"
    assert trace.fallback == LLM_UNAVAILABLE
    assert "no LLM tier is configured" in (trace.fallback_reason or "")


def test_budget_exhausted_sends_routed_traffic_local(tmp_path: Path) -> None:
    pipeline, slm, llm = make(tmp_path, budget=0.0001)
    _, first = run(pipeline, COMPLEX)
    _, second = run(pipeline, COMPLEX)
    assert first.tier == "llm"
    assert second.tier == "slm" and "over budget" in (second.fallback_reason or "")
    assert len(llm.history) == 1
    explained = asyncio.run(pipeline.explain(Request(COMPLEX, "hybrid")))
    assert (explained.tier, explained.fallback) == ("slm", "budget_exhausted")


def test_profiles_and_model_names_resolve(tmp_path: Path) -> None:
    pipeline, _, _ = make(tmp_path)
    assert pipeline.resolve("hybrid/cheap").threshold == 0.7
    assert pipeline.resolve("big").forced_tier == "llm"
    assert "hybrid/quality" in pipeline.model_names()
    with pytest.raises(UnknownModel, match="unknown profile 'nope'"):
        pipeline.resolve("hybrid/nope")
    with pytest.raises(UnknownModel, match="does not exist"):
        pipeline.resolve("gpt-9")


def test_stream_falls_back_before_first_chunk_and_accounts_usage(tmp_path: Path) -> None:
    pipeline, slm, llm = make(tmp_path)
    llm.enqueue(BackendError("unavailable", "down"))
    slm.enqueue("one two three")

    async def consume() -> tuple[str, object]:
        stream = await pipeline.run_stream(Request(COMPLEX, "hybrid", PARAMS))
        text = "".join([c.text async for c in stream.chunks])
        return text, stream.trace

    text, trace = asyncio.run(consume())
    assert text == "one two three "
    assert trace.tier == "slm" and trace.fallback == LLM_UNAVAILABLE  # type: ignore[attr-defined]
    assert trace.usage.completion_tokens == 3  # type: ignore[attr-defined]


def test_cascade_keeps_good_drafts_and_escalates_doubtful_ones(tmp_path: Path) -> None:
    from hybridlm.routing.learned import fit_router
    from hybridlm.routing.outcomes import load_outcomes
    from tests.conftest import DATA

    pipeline, slm, llm = make(tmp_path)
    pipeline.config.router.threshold = 0.9  # a verifier trained on 150 drafts: escalate only the clearly doubtful
    pipeline.router = fit_router("cascade", load_outcomes(DATA / "routellm" / "gsm8k_responses.csv"), None, "-")
    question = [{"role": "user", "content": "Tom has 16 apples and eats 3. How many are left?"}]
    slm.enqueue("16 - 3 = 13 apples are left.\n#### 13", "16 - 3 = 11, so maybe 11 are left, I think")
    _, kept = run(pipeline, question)
    result, escalated = run(pipeline, question)
    assert kept.tier == "slm" and kept.decision.reason.startswith("cascade: draft verifier score")
    assert escalated.tier == "llm" and result.model == "big"
    assert escalated.decision.score > kept.decision.score
    assert len(slm.history) == 2 and len(llm.history) == 1
    assert pipeline.log.get(escalated.request_id)["routed_tier"] == "llm"


def test_grounded_answer_falls_back_to_the_slm_with_its_sources(tmp_path: Path, isolated_env: Path) -> None:
    """Real store, grader and fact-checker; scripted tiers: the LLM is down, the SLM answers from the sources."""
    from hybridlm.rag.store import STORE_FILE, KnowledgeStore
    from tests.conftest import DATA

    store = KnowledgeStore(isolated_env / STORE_FILE)
    store.ingest_many(sorted((DATA / "docs").iterdir()))
    store.close()
    pipeline, slm, llm = make(tmp_path)
    pipeline.config.router.threshold = 0.0  # every question wants the LLM
    llm.enqueue(BackendError("unavailable", "cannot reach upstream"))
    slm.enqueue("Card payments abroad cost 1% above 500 GBP a month.")
    result, trace = run(pipeline, [{"role": "user", "content": "How much do card payments abroad cost?"}],
                        "hybrid/rag")
    assert (trace.tier, trace.fallback) == ("slm", LLM_UNAVAILABLE)
    system = slm.history[0][0]
    assert system["role"] == "system" and "[1]" in system["content"] and "1% above 500 GBP" in system["content"]
    assert result.text == "Card payments abroad cost 1% above 500 GBP a month [1]."  # cited by the check
    assert trace.grounding is not None and trace.grounding.report is not None and trace.grounding.report.supported
