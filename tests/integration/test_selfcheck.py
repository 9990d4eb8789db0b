"""The selfcheck cascade with real models: the embedded SLM drafts with token log-probabilities, and its
own certainty (and, with resamples, its agreement with itself) keeps the draft or calls the LLM."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from hybridlm.config import parse_config
from hybridlm.models.base import BackendContext, GenerationParams
from hybridlm.models.local_gguf import LocalGGUFBackend, LocalOptions
from hybridlm.pipeline import Pipeline
from hybridlm.request import Request
from hybridlm.request_log import RequestLog
from tests.integration.servers import Gateway, Upstream, hybrid_config, start_gateway, start_llama_server, stop

QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


def selfcheck_config(upstream: Upstream, resamples: int = 0) -> dict:
    config = hybrid_config(upstream.base_url)
    config["router"] = {"kind": "selfcheck", "resamples": resamples}
    config["profiles"] = {"trusting": {"threshold": 1.0}, "doubting": {"threshold": 0.0}}
    return config


@pytest.fixture(scope="module")
def selfcheck_gateway(upstream: Upstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    gw = start_gateway(tmp_path_factory.mktemp("selfcheck"), selfcheck_config(upstream))
    yield gw
    stop(gw.proc)


def test_embedded_model_reports_the_log_probability_of_each_token_it_writes(tmp_path: Path) -> None:
    backend = LocalGGUFBackend(LocalOptions(model="smollm2-135m"), BackendContext(tmp_path))
    params = GenerationParams(max_tokens=24, temperature=0.0)
    plain = asyncio.run(backend.complete(QUESTION, params))
    scored = asyncio.run(backend.complete(QUESTION, GenerationParams(max_tokens=24, temperature=0.0, logprobs=True)))
    assert plain.token_logprobs is None
    assert scored.text == plain.text  # recording does not change what the model writes
    assert scored.token_logprobs is not None
    assert len(scored.token_logprobs) == scored.usage.completion_tokens  # every token it wrote is scored
    assert all(lp <= 0.0 and math.isfinite(lp) for lp in scored.token_logprobs)
    assert scored.mean_logprob is not None and scored.mean_logprob > -5.0


def test_the_threshold_on_the_drafts_doubt_keeps_it_or_calls_the_llm(selfcheck_gateway: Gateway) -> None:
    client = openai.OpenAI(base_url=selfcheck_gateway.base_url, api_key="unused", max_retries=0)
    kept = client.chat.completions.create(model="hybrid/trusting", messages=QUESTION, max_tokens=12)
    escalated = client.chat.completions.create(model="hybrid/doubting", messages=QUESTION, max_tokens=12)
    streamed = list(client.chat.completions.create(model="hybrid/doubting", messages=QUESTION, max_tokens=12,
                                                   stream=True))

    local, remote = kept.model_extra["hybridlm"], escalated.model_extra["hybridlm"]
    assert (local["tier"], local["router"]) == ("slm", "selfcheck")
    assert local["reason"].startswith("cascade: draft verifier score") and "mean_token_probability" in local["reason"]
    assert 0.0 < local["score"] < 1.0
    assert remote["tier"] == "llm" and remote["model"] == "smollm2-cloud"
    assert remote["cost_usd"] > 0 and escalated.choices[0].message.content
    assert streamed[-1].model_extra["hybridlm"]["tier"] == "llm"
    assert "".join(c.choices[0].delta.content or "" for c in streamed if c.choices)
    row = selfcheck_gateway.row(escalated.id)
    assert row["routed_tier"] == "llm" and "mean_token_probability" in row["reason"]


def test_resampled_answers_are_compared_with_the_draft_and_paid_for(upstream: Upstream, tmp_path: Path) -> None:
    config = parse_config(selfcheck_config(upstream, resamples=2))
    pipeline = Pipeline.from_config(config, RequestLog(tmp_path / "log.db"))
    messages = QUESTION
    draft_only = asyncio.run(pipeline.backends["slm"].complete(messages, GenerationParams(max_tokens=12)))
    answer = asyncio.run(pipeline.run(Request(messages, "hybrid/trusting", GenerationParams(max_tokens=12))))
    result, trace = answer.completion, answer.trace
    assert trace.tier == "slm" and result.text
    assert "resample_agreement" in trace.decision.features  # type: ignore[union-attr]
    assert trace.usage.prompt_tokens == 3 * draft_only.usage.prompt_tokens  # the draft and two samples


def test_a_small_model_behind_an_openai_compatible_server_is_judged_by_its_logprobs(upstream: Upstream,
                                                                                      tmp_path: Path) -> None:
    slm_server = start_llama_server(tmp_path, "--logits_all", "true")  # llama.cpp's server reports logprobs so
    config = selfcheck_config(upstream)
    config["tiers"]["slm"] = {"backend": "openai", "base_url": slm_server.base_url, "model": "smollm2-local",
                              "price": {"input": 0.0, "output": 0.0}}
    gateway = start_gateway(tmp_path / "gw", config)
    try:
        client = openai.OpenAI(base_url=gateway.base_url, api_key="unused", max_retries=0)
        answer = client.chat.completions.create(model="hybrid/trusting", messages=QUESTION, max_tokens=12)
        meta = answer.model_extra["hybridlm"]
        assert (meta["tier"], meta["model"]) == ("slm", "smollm2-local")
        assert "mean_token_probability" in meta["reason"] and 0.0 < meta["score"] < 1.0
    finally:
        stop(gateway.proc)
        stop(slm_server.proc)
