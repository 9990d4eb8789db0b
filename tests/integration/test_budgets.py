"""Budgets over real HTTP: 20 concurrent requests against a daily budget that fits 10, forced and routed,
refused (429) or degraded to the local tier; and a key's budget through the Python entry point."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from hybridlm.config import parse_config
from hybridlm.models.base import GenerationParams
from hybridlm.pipeline import Pipeline, RequestFailed
from hybridlm.request import Caller, Request
from tests.integration.commands import hybridlm, last_json
from tests.integration.servers import (
    FaultyUpstream,
    Gateway,
    hybrid_config,
    start_faulty_upstream,
    start_gateway,
    stop,
)

REPLY = "one two three four"  # 4 tokens as the upstream counts them (and as a stream is estimated)
PROMPT = "Analyze and compare these two plans step by step in detail, with the trade-offs."  # routed to the LLM
assert len(PROMPT) == 80  # 20 tokens by the estimate, the 20 the upstream reports
MAX_TOKENS = 4
# hybrid_config's LLM price, $2.5 in / $10 out per million: each call's worst case is exactly what it costs
ESTIMATE = (20 * 2.5 + MAX_TOKENS * 10.0) / 1e6
BUDGET = 10.5 * ESTIMATE  # fits 10 calls, not 11
CONCURRENT = 20


@pytest.fixture(scope="module")
def slow_upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultyUpstream]:
    upstream = start_faulty_upstream(tmp_path_factory.mktemp("budget-upstream"), reply=REPLY)
    upstream.set_fault("slow", latency_ms=400)  # every call is still in flight when the last one arrives
    yield upstream
    stop(upstream.proc)


def budget_config(upstream: FaultyUpstream, when_exhausted: str) -> dict[str, Any]:
    config = hybrid_config(upstream.base_url, budget_usd_per_day=BUDGET)
    config["tiers"]["slm"]["max_queue"] = CONCURRENT  # degraded calls wait for the local model, none is turned away
    config["budgets"] = {"when_exhausted": when_exhausted, "timezone": "America/New_York"}
    return config


async def one(client: httpx.AsyncClient, model: str, stream: bool) -> tuple[int, dict[str, Any]]:
    """The status and the body (for a stream: the last chunk, which carries the route)."""
    body = {"model": model, "messages": [{"role": "user", "content": PROMPT}], "max_tokens": MAX_TOKENS,
            "stream": stream}
    async with client.stream("POST", "/chat/completions", json=body) as response:
        raw = (await response.aread()).decode()
    if response.headers["content-type"].startswith("text/event-stream"):
        events = [line[6:] for line in raw.splitlines() if line.startswith("data: ") and line != "data: [DONE]"]
        return response.status_code, json.loads(events[-1])
    return response.status_code, json.loads(raw)


def burst(base_url: str, model: str) -> list[tuple[int, dict[str, Any]]]:
    """CONCURRENT requests at once, every other one streamed."""
    async def run() -> list[tuple[int, dict[str, Any]]]:
        limits = httpx.Limits(max_connections=CONCURRENT)
        async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=60, trust_env=False) as client:
            return await asyncio.gather(*(one(client, model, i % 2 == 1) for i in range(CONCURRENT)))

    return asyncio.run(run())


def burst_through_gateway(upstream: FaultyUpstream, tmp_path: Path, when_exhausted: str,
                          model: str) -> tuple[Gateway, list[tuple[int, dict[str, Any]]]]:
    """A gateway with the budget, the burst through it, the gateway stopped (its log stays readable)."""
    gateway = start_gateway(tmp_path / "gw", budget_config(upstream, when_exhausted))
    try:
        return gateway, burst(gateway.base_url, model)
    finally:
        stop(gateway.proc)


@pytest.mark.parametrize("model", ["llm", "hybrid"])
def test_refuse_answers_what_the_budget_fits_and_429_for_the_rest(slow_upstream: FaultyUpstream, tmp_path: Path,
                                                                  model: str) -> None:
    gateway, results = burst_through_gateway(slow_upstream, tmp_path, "refuse", model)
    served = [body for status, body in results if status == 200]
    refused = [body for status, body in results if status == 429]
    assert (len(served), len(refused)) == (10, 10), [status for status, _ in results]
    assert all(body["hybridlm"]["tier"] == "llm" for body in served)
    for body in refused:
        assert set(body["error"]) == {"message", "type", "param", "code"}
        assert body["error"]["code"] == "budget_exhausted"
        assert "over budget: tier 'llm' daily budget" in body["error"]["message"]
    log = gateway.log()
    rows = log.recent(100)
    spent = sum(r["cost_usd"] for r in rows)
    log.close()
    assert sorted(r["http_status"] for r in rows) == [200] * 10 + [429] * 10
    assert all(r["error_code"] == "budget_exhausted" for r in rows if r["http_status"] == 429)
    assert spent <= BUDGET + ESTIMATE and spent == pytest.approx(10 * ESTIMATE)


@pytest.mark.parametrize("model", ["llm", "hybrid"])
def test_degrade_lets_the_local_tier_answer_the_rest_marked(slow_upstream: FaultyUpstream, tmp_path: Path,
                                                           model: str) -> None:
    gateway, results = burst_through_gateway(slow_upstream, tmp_path, "degrade", model)
    assert [status for status, _ in results] == [200] * CONCURRENT
    meta = [body["hybridlm"] for _, body in results]
    remote = [m for m in meta if m["tier"] == "llm"]
    local = [m for m in meta if m["tier"] == "slm"]
    assert (len(remote), len(local)) == (10, 10)
    assert all(m["fallback"] is None for m in remote)
    for m in local:
        assert m["fallback"] == "budget_exhausted"
        assert "over budget: tier 'llm' daily budget" in m["fallback_reason"]
    log = gateway.log()
    rows = log.recent(100)
    log.close()
    assert len(rows) == CONCURRENT
    assert sum(r["fallback"] == "budget_exhausted" for r in rows) == 10
    spent = sum(r["cost_usd"] for r in rows)
    assert spent <= BUDGET + ESTIMATE and spent == pytest.approx(10 * ESTIMATE)


def test_a_keys_budget_holds_across_concurrent_requests(slow_upstream: FaultyUpstream, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HYBRIDLM_DATA_DIR", str(tmp_path / "data"))
    config = hybrid_config(slow_upstream.base_url)  # no budget on the tier: only the key's
    config["budgets"] = {"when_exhausted": "refuse"}
    pipeline = Pipeline.from_config(parse_config(config))
    ci = Caller("key-ci", "ci", budget_usd_per_day=BUDGET)
    params = GenerationParams(max_tokens=MAX_TOKENS)

    async def run() -> list[Any]:
        try:
            return await asyncio.gather(*(pipeline.run(Request([{"role": "user", "content": PROMPT}], "llm", params,
                                                               caller=ci)) for _ in range(CONCURRENT)),
                                        return_exceptions=True)
        finally:
            await pipeline.aclose()

    results = asyncio.run(run())
    failures = [r for r in results if isinstance(r, RequestFailed)]
    assert len(failures) == 10 and {(f.error.status, f.error.code) for f in failures} == {(429, "budget_exhausted")}
    assert all("key 'key-ci' (ci) daily budget" in f.error.message for f in failures)
    assert pipeline.spend.spent(("key", "key-ci"), "day") == pytest.approx(10 * ESTIMATE)

    stats = last_json(hybridlm("stats", "--json", data_dir=tmp_path / "data"))
    [ci_spend] = stats["spend"]["by_key"]
    assert (ci_spend["key_id"], ci_spend["requests"]) == ("key-ci", CONCURRENT)
    assert ci_spend["today_usd"] == ci_spend["month_usd"] == ci_spend["all_time_usd"] == pytest.approx(10 * ESTIMATE)
