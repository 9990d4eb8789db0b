"""The official openai client against the gateway, with a real llama.cpp server as the cloud LLM."""

from __future__ import annotations

import asyncio

import httpx
import openai
import pytest

from tests.integration.servers import Gateway

SIMPLE = "What are your opening hours?"
COMPLEX = ("Compare a fixed-rate and a variable-rate mortgage, analyze the trade-offs in detail "
           "and give me a step by step plan to decide between them.")


@pytest.fixture(scope="module")
def client(gateway: Gateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.base_url, api_key="unused", max_retries=0)


def ask(client: openai.OpenAI, text: str, model: str = "hybrid"):
    raw = client.chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": text}], max_tokens=12)
    return raw.headers, raw.parse()


def test_models_lists_hybrid_profiles_and_tiers(client: openai.OpenAI) -> None:
    ids = {m.id for m in client.models.list()}
    assert {"hybrid", "hybrid/cheap", "hybrid/quality", "slm", "llm"} <= ids


def test_simple_query_is_answered_by_the_local_slm(client: openai.OpenAI, gateway: Gateway) -> None:
    headers, completion = ask(client, SIMPLE)
    meta = completion.model_extra["hybridlm"]
    assert headers["x-hybridlm-tier"] == "slm" == meta["tier"]
    assert completion.model == "smollm2-135m"
    assert completion.choices[0].message.content
    assert completion.usage.completion_tokens > 0
    assert float(headers["x-hybridlm-score"]) < float(headers["x-hybridlm-threshold"])
    assert "threshold 0.50" in headers["x-hybridlm-reason"]
    row = gateway.row(completion.id)
    assert (row["tier"], row["status"], row["cost_usd"]) == ("slm", "ok", 0.0)
    assert row["baseline_cost_usd"] > 0  # what the LLM would have charged


def test_complex_query_goes_to_the_llm_and_is_priced(client: openai.OpenAI, gateway: Gateway) -> None:
    headers, completion = ask(client, COMPLEX)
    meta = completion.model_extra["hybridlm"]
    assert headers["x-hybridlm-tier"] == "llm" == meta["tier"]
    assert meta["score"] >= meta["threshold"]
    assert "analytical" in meta["reason"]
    usage = completion.usage
    expected = (usage.prompt_tokens * 2.5 + usage.completion_tokens * 10.0) / 1e6
    assert meta["cost_usd"] == pytest.approx(expected, rel=1e-6)
    assert float(headers["x-hybridlm-cost-usd"]) == pytest.approx(expected, rel=1e-3)
    row = gateway.row(completion.id)
    assert row["tier"] == "llm" and row["model"] == "smollm2-cloud"
    assert row["cost_usd"] == pytest.approx(expected, rel=1e-6)
    assert (row["prompt_tokens"], row["completion_tokens"]) == (usage.prompt_tokens, usage.completion_tokens)


def test_naming_a_tier_forces_it(client: openai.OpenAI) -> None:
    headers, completion = ask(client, SIMPLE, model="llm")
    assert headers["x-hybridlm-tier"] == "llm"
    assert completion.model_extra["hybridlm"]["reason"].startswith("forced")


def test_profile_changes_the_threshold(client: openai.OpenAI) -> None:
    headers, completion = ask(client, SIMPLE, model="hybrid/quality")
    assert completion.model_extra["hybridlm"]["threshold"] == 0.3


@pytest.mark.parametrize(("text", "tier"), [(SIMPLE, "slm"), (COMPLEX, "llm")])
def test_streaming_carries_route_usage_and_cost(client: openai.OpenAI, gateway: Gateway, text: str, tier: str) -> None:
    with client.chat.completions.with_streaming_response.create(
        model="hybrid", messages=[{"role": "user", "content": text}], max_tokens=12, stream=True,
        stream_options={"include_usage": True},
    ) as response:
        assert response.headers["x-hybridlm-tier"] == tier
        chunks = list(response.parse())
    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    last = chunks[-1]
    assert content.strip()
    assert last.usage is not None and last.usage.completion_tokens > 0
    meta = last.model_extra["hybridlm"]
    assert meta["tier"] == tier
    row = gateway.row(chunks[0].id)
    assert (row["tier"], row["stream"], row["status"]) == (tier, 1, "ok")
    assert row["completion_tokens"] == last.usage.completion_tokens
    assert row["cost_usd"] == pytest.approx(meta["cost_usd"], abs=1e-9)


def test_concurrent_local_requests_all_succeed(gateway: Gateway) -> None:
    async def burst() -> list[str]:
        client = openai.AsyncOpenAI(base_url=gateway.base_url, api_key="unused", max_retries=0)
        replies = await asyncio.gather(*(
            client.chat.completions.create(model="slm", messages=[{"role": "user", "content": f"Say {i}"}],
                                           max_tokens=4)
            for i in range(6)
        ))
        await client.close()
        return [r.id for r in replies]

    ids = asyncio.run(burst())
    assert len(set(ids)) == 6
    assert all(gateway.row(i)["status"] == "ok" for i in ids)


def test_healthz_names_the_tiers(gateway: Gateway) -> None:
    body = httpx.get(gateway.url + "/healthz").json()
    assert body["status"] == "ok"
    assert body["tiers"]["slm"]["backend"] == "local"
    assert body["tiers"]["llm"]["model"] == "smollm2-cloud"


def test_dashboard_shows_traffic_and_recent_requests(client: openai.OpenAI, gateway: Gateway) -> None:
    ask(client, SIMPLE)
    page = httpx.get(gateway.url + "/dashboard")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "/dashboard/static/chart.umd.min.js" in page.text
    assert httpx.get(gateway.url + "/dashboard/static/chart.umd.min.js").text.startswith("/*!\n * Chart.js")
    recent = httpx.get(gateway.url + "/dashboard/api/requests", params={"window": "1h", "tier": "slm"}).json()["data"]
    assert recent and {r["tier"] for r in recent} == {"slm"}
    assert any(r["prompt_preview"] == SIMPLE for r in recent)
    overview = httpx.get(gateway.url + "/dashboard/api/overview", params={"window": "1h"}).json()
    assert overview["totals"]["by_lane"]["slm"] >= 1 and "slm" in overview["latency"]
