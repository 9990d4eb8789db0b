"""The remote tier under faults, over real HTTP: the gateway in front of an upstream that fails on command.

A routed request the LLM cannot answer is served by the SLM with the fallback marked; a request
that named the LLM tier gets the upstream's failure in OpenAI's error shape; either way one log
row. Timeouts and cooldowns are short, to keep the file fast.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from tests.integration.servers import (
    LOOPBACK,
    FaultyUpstream,
    Gateway,
    free_port,
    hybrid_config,
    start_faulty_upstream,
    start_gateway,
    stop,
)
from tests.integration.test_gateway import COMPLEX

MESSAGES = [{"role": "user", "content": COMPLEX}]  # the heuristic router sends this to the LLM tier
CLIENT_TIMEOUT = 30.0  # seconds: far above every gateway-side limit below
SHORT_LIMITS = {"timeout": 2.0, "first_token_timeout": 1.5, "read_timeout": 1.0, "connect_timeout": 1.0,
                "retries": {"attempts": 2, "initial_backoff": 0.05, "max_backoff": 1.5}}
NEVER_OPENS = {"failures": 1000}
COOLDOWN = 2.0


def client(gateway: Gateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.base_url, api_key="unused", max_retries=0, timeout=CLIENT_TIMEOUT)


def config_for(llm_base_url: str, **llm: Any) -> dict[str, Any]:
    config = hybrid_config(llm_base_url, **{**SHORT_LIMITS, **llm})
    config["server"]["deadline_s"] = 20
    return config


def routed_falls_back(gateway: Gateway) -> dict[str, Any]:
    """A request the router sends to the LLM; the SLM must answer it, saying why."""
    with client(gateway) as c:
        reply = c.chat.completions.create(model="hybrid", messages=MESSAGES, max_tokens=8)
    meta = reply.model_extra["hybridlm"]
    assert (meta["tier"], meta["routed_tier"], meta["fallback"]) == ("slm", "llm", "llm_unavailable")
    assert reply.choices[0].message.content
    row = gateway.row(reply.id)
    assert (row["tier"], row["fallback"], row["http_status"]) == ("slm", "llm_unavailable", 200)
    return meta


def forced_fails(gateway: Gateway, status: int, code: str, stream: bool = False) -> openai.APIStatusError:
    """A request that named the LLM tier: no fallback, the upstream's failure in OpenAI's shape."""
    with client(gateway) as c, pytest.raises(openai.APIStatusError) as raised:
        c.chat.completions.create(model="llm", messages=MESSAGES, max_tokens=8, stream=stream)
    error = raised.value
    assert (error.status_code, error.body["code"], error.body["type"]) == (status, code, "upstream_error"), error.body
    assert error.body["message"]
    row = gateway.row(error.response.headers["x-hybridlm-request-id"])
    assert (row["http_status"], row["status"]) == (status, "error")
    return error


def healthz(gateway: Gateway) -> dict[str, Any]:
    return dict(httpx.get(gateway.url + "/healthz", timeout=5).json())


def upstream_states(gateway: Gateway) -> list[str]:
    return [u["state"] for u in healthz(gateway)["tiers"]["llm"]["upstreams"]]


@pytest.fixture(scope="module")
def faulty(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultyUpstream]:
    upstream = start_faulty_upstream(tmp_path_factory.mktemp("faulty"))
    yield upstream
    stop(upstream.proc)


@pytest.fixture(scope="module")
def gateway(faulty: FaultyUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """One upstream whose circuit never opens, so each fault is seen on its own."""
    gw = start_gateway(tmp_path_factory.mktemp("gateway"), config_for(faulty.base_url, breaker=NEVER_OPENS))
    yield gw
    stop(gw.proc)


@pytest.fixture
def faults(faulty: FaultyUpstream) -> Iterator[FaultyUpstream]:
    yield faulty
    faulty.set_fault("ok")


@pytest.mark.parametrize(("fault", "options", "status", "code", "tries"), [
    ("http_500", {}, 502, "upstream_error", 2),
    ("http_429", {"retry_after": "1"}, 502, "upstream_error", 2),
    ("reset", {}, 503, "upstream_unavailable", 2),
    ("slow", {"latency_ms": 3000}, 504, "upstream_timeout", 1),
    ("stall", {}, 504, "upstream_timeout", 1),
    ("bad_json", {}, 502, "upstream_error", 1),
])
def test_each_fault_falls_back_when_routed_and_fails_cleanly_when_forced(
        gateway: Gateway, faults: FaultyUpstream, fault: str, options: dict[str, Any], status: int, code: str,
        tries: int) -> None:
    faults.set_fault(fault, **options)
    routed_falls_back(gateway)
    before = faults.requests()
    forced_fails(gateway, status, code)
    assert faults.requests() - before == tries  # retried only what may pass, as often as configured


def test_a_stream_that_fails_before_its_first_chunk_is_an_http_error(gateway: Gateway, faults: FaultyUpstream) -> None:
    faults.set_fault("reset")
    forced_fails(gateway, 503, "upstream_unavailable", stream=True)


@pytest.mark.parametrize(("fault", "code"), [("stall", "upstream_timeout"), ("bad_sse", "upstream_error")])
def test_a_stream_that_breaks_after_its_first_chunk_ends_with_an_error_event(
        gateway: Gateway, faults: FaultyUpstream, fault: str, code: str) -> None:
    faults.set_fault(fault, chunks=2)
    texts: list[str] = []
    ids: set[str] = set()
    with client(gateway) as c, pytest.raises(openai.APIError) as raised:
        for chunk in c.chat.completions.create(model="hybrid", messages=MESSAGES, max_tokens=8, stream=True):
            ids.add(chunk.id)
            texts += [choice.delta.content or "" for choice in chunk.choices]
    assert "".join(texts).split() == ["the", "faulty"]  # the two chunks sent before the fault
    assert raised.value.body["code"] == code
    [request_id] = ids
    row = gateway.row(request_id)
    assert (row["tier"], row["status"], row["error_code"]) == ("llm", "error", code)


def test_a_share_of_failures_is_absorbed(gateway: Gateway, faults: FaultyUpstream) -> None:
    faults.set_fault("flaky", p=0.5, seed=7)
    with client(gateway) as c:
        replies = [c.chat.completions.create(model="hybrid", messages=MESSAGES, max_tokens=8) for _ in range(6)]
    for reply in replies:
        meta = reply.model_extra["hybridlm"]
        assert meta["tier"] == "llm" or meta["fallback"] == "llm_unavailable"
    assert healthz(gateway)["status"] == "ok"


SECRET = "sk-test-must-not-show-7f3a"


@pytest.fixture(scope="module")
def breaking_upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultyUpstream]:
    upstream = start_faulty_upstream(tmp_path_factory.mktemp("breaking"))
    yield upstream
    stop(upstream.proc)


@pytest.fixture(scope="module")
def spares(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FaultyUpstream, FaultyUpstream]]:
    workdir = tmp_path_factory.mktemp("spares")
    second = start_faulty_upstream(workdir, reply="from the second upstream")
    third = start_faulty_upstream(workdir, reply="from the third upstream")
    yield second, third
    stop(second.proc)
    stop(third.proc)


@pytest.fixture(scope="module")
def breaking_gateway(breaking_upstream: FaultyUpstream, spares: tuple[FaultyUpstream, FaultyUpstream],
                     tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """Tier `llm`: one upstream whose circuit opens after two failed calls, with a key to keep secret.
    Tier `pool` (named in requests only): a dead port, then two upstreams that answer."""
    config = config_for(breaking_upstream.base_url, api_key_env="FAULTY_UPSTREAM_KEY", retries={"attempts": 1},
                        breaker={"failures": 2, "window": 30, "cooldown": COOLDOWN})
    dead = f"http://{LOOPBACK}:{free_port()}/v1"
    config["tiers"]["pool"] = {"backend": "openai", "model": "pooled", **SHORT_LIMITS, "retries": {"attempts": 1},
                               "breaker": NEVER_OPENS,
                               "upstreams": [{"base_url": dead}, *({"base_url": s.base_url} for s in spares)]}
    with pytest.MonkeyPatch.context() as env:
        env.setenv("FAULTY_UPSTREAM_KEY", SECRET)
        gw = start_gateway(tmp_path_factory.mktemp("breaking-gateway"), config)
    yield gw
    stop(gw.proc)


@pytest.fixture
def breaker_test(breaking_gateway: Gateway, breaking_upstream: FaultyUpstream
                 ) -> Iterator[tuple[Gateway, FaultyUpstream]]:
    """Hands over a closed circuit, and closes it again afterwards: a good probe after the cooldown."""
    yield breaking_gateway, breaking_upstream
    breaking_upstream.set_fault("ok")
    if upstream_states(breaking_gateway) != ["closed"]:
        time.sleep(COOLDOWN + 0.2)
        with client(breaking_gateway) as c:
            c.chat.completions.create(model="llm", messages=MESSAGES, max_tokens=8)
    assert upstream_states(breaking_gateway) == ["closed"]


def test_the_breaker_opens_fails_fast_and_closes_after_the_cooldown(breaker_test: tuple[Gateway, FaultyUpstream]
                                                                    ) -> None:
    gw, upstream = breaker_test
    upstream.set_fault("http_500")
    forced_fails(gw, 502, "upstream_error")
    forced_fails(gw, 502, "upstream_error")
    health = healthz(gw)
    assert health["status"] == "degraded"
    [described] = health["tiers"]["llm"]["upstreams"]
    assert (described["state"], described["last_error"]) == ("open", "upstream 500")
    assert described["url"] == upstream.base_url

    calls = upstream.requests()
    refused = forced_fails(gw, 503, "upstream_unavailable")
    assert "circuit open" in refused.body["message"]
    assert "circuit open" in routed_falls_back(gw)["fallback_reason"]
    assert upstream.requests() == calls  # while open, nothing reaches the upstream

    upstream.set_fault("ok")
    time.sleep(COOLDOWN + 0.2)
    with client(gw) as c:
        reply = c.chat.completions.create(model="llm", messages=MESSAGES, max_tokens=8)
    assert reply.choices[0].message.content == "the faulty upstream answers"
    assert upstream_states(gw) == ["closed"]
    assert healthz(gw)["status"] == "ok"


def test_rejected_credentials_open_the_breaker_at_once_and_are_logged_once(
        breaker_test: tuple[Gateway, FaultyUpstream]) -> None:
    gw, upstream = breaker_test
    upstream.set_fault("http_401")
    calls = upstream.requests()
    error = forced_fails(gw, 502, "upstream_auth_failed")
    assert "rejected the credentials" in error.body["message"]
    assert upstream_states(gw) == ["open"]
    assert healthz(gw)["tiers"]["llm"]["upstreams"][0]["last_error"] == "auth 401"
    routed_falls_back(gw)

    time.sleep(COOLDOWN + 0.2)
    forced_fails(gw, 502, "upstream_auth_failed")  # the probe: refused again
    assert upstream.requests() == calls + 2
    printed = gw.output.read_text()
    assert printed.count("check the tier's api_key_env") == 1
    shown = [str(error.body), str(healthz(gw)), printed,
             str(gw.row(error.response.headers["x-hybridlm-request-id"]))]
    assert all(SECRET not in text for text in shown)


def test_failover_reaches_the_second_upstream_when_the_first_is_dead(
        breaking_gateway: Gateway, spares: tuple[FaultyUpstream, FaultyUpstream]) -> None:
    with client(breaking_gateway) as c:
        reply = c.chat.completions.create(model="pool", messages=MESSAGES, max_tokens=8)
    assert reply.choices[0].message.content == "from the second upstream"
    assert breaking_gateway.row(reply.id)["tier"] == "pool"
    described = healthz(breaking_gateway)["tiers"]["pool"]["upstreams"]
    assert [u["url"] for u in described][1:] == [s.base_url for s in spares]
    assert [u["last_error"] for u in described] == ["unavailable", None, None]


def test_a_stream_that_fails_before_its_first_chunk_goes_to_the_next_upstream(
        breaking_gateway: Gateway, spares: tuple[FaultyUpstream, FaultyUpstream]) -> None:
    second, _ = spares
    second.set_fault("http_500")
    try:
        before = second.requests()
        with client(breaking_gateway) as c:
            chunks = list(c.chat.completions.create(model="pool", messages=MESSAGES, max_tokens=8, stream=True))
    finally:
        second.set_fault("ok")
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.strip() == "from the third upstream"
    assert second.requests() == before + 1
    assert breaking_gateway.row(chunks[0].id)["status"] == "ok"
