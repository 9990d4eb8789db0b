"""The logic of the remote tier's resilience, on fakes: deadline, retries, circuit breaker, failover."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from hybridlm.config import ConfigError, parse_config
from hybridlm.models.base import BackendError, GenerationParams
from hybridlm.models.deadline import bounded_timeout, deadline_scope, remaining
from hybridlm.models.openai_http import (
    BreakerOptions,
    OpenAIBackend,
    OpenAIOptions,
    RetryOptions,
    public_url,
    retry_after_seconds,
)
from hybridlm.models.wrappers.breaker import CircuitBreaker
from hybridlm.models.wrappers.failover import FailoverBackend
from hybridlm.models.wrappers.retry import RetryingBackend
from hybridlm.failures import from_backend
from hybridlm.plugins import check_plugins
from hybridlm.types import Chunk, Completion, Message, Usage

PARAMS = GenerationParams()
MESSAGES: list[Message] = [{"role": "user", "content": "hi"}]
NAME = "http://upstream:80/v1"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


Outcome = str | BackendError | tuple[str, BackendError]  # an answer, a failure, or a stream failing after a chunk


class FakeUpstream:
    """Plays its outcomes in order (the last one repeats); counts calls; each call may take `takes` fake seconds."""

    def __init__(self, *outcomes: Outcome, clock: Clock | None = None, takes: float = 0.0,
                 model_name: str = "fake") -> None:
        self.outcomes = list(outcomes) or ["ok"]
        self.calls = 0
        self.clock, self.takes = clock, takes
        self.model_name = model_name

    def _next(self) -> Outcome:
        self.calls += 1
        if self.clock is not None:
            self.clock.advance(self.takes)
        return self.outcomes.pop(0) if len(self.outcomes) > 1 else self.outcomes[0]

    async def complete(self, messages: list[Message], params: GenerationParams) -> Completion:
        outcome = self._next()
        if isinstance(outcome, BackendError):
            raise outcome
        text = outcome if isinstance(outcome, str) else outcome[0]
        return Completion(text=text, model=self.model_name, usage=Usage(1, 1))

    async def stream(self, messages: list[Message], params: GenerationParams) -> AsyncIterator[Chunk]:
        outcome = self._next()
        if isinstance(outcome, BackendError):
            raise outcome
        if isinstance(outcome, tuple):
            yield Chunk(text=outcome[0])
            raise outcome[1]
        yield Chunk(text=outcome)
        yield Chunk(finish_reason="stop")

    def describe(self) -> dict[str, str]:
        return {"url": f"http://{self.model_name}"}

    async def aclose(self) -> None:
        return None


def server_error(retry_after: float | None = None) -> BackendError:
    return BackendError("upstream", "upstream answered HTTP 500 secret-ish body", 500, retry_after)


def rate_limited(retry_after: float) -> BackendError:
    return BackendError("upstream", "upstream answered HTTP 429", 429, retry_after)


AUTH = BackendError("auth", "upstream rejected the credentials (HTTP 401)", 401)
DOWN = BackendError("unavailable", "cannot reach upstream")


def breaker(upstream: FakeUpstream, clock: Clock, failures: int = 3, window: float = 10.0,
            cooldown: float = 5.0) -> CircuitBreaker:
    return CircuitBreaker(upstream, BreakerOptions(failures=failures, window=window, cooldown=cooldown), NAME, clock)


def call(backend: object) -> str:
    return asyncio.run(backend.complete(MESSAGES, PARAMS)).text  # type: ignore[attr-defined]


def streamed(backend: object) -> str:
    async def read() -> str:
        return "".join([chunk.text async for chunk in backend.stream(MESSAGES, PARAMS)])  # type: ignore[attr-defined]
    return asyncio.run(read())


def fails(backend: object, kind: str | None = None, stream: bool = False) -> BackendError:
    with pytest.raises(BackendError) as raised:
        (streamed if stream else call)(backend)
    if kind is not None:
        assert raised.value.kind == kind, raised.value.message
    return raised.value


# deadline


def test_deadline_nests_and_the_tighter_wins() -> None:
    assert remaining() is None
    assert bounded_timeout(7.0, "x") == 7.0
    with deadline_scope(10.0):
        outer = remaining()
        assert outer is not None and 9.0 < outer <= 10.0
        with deadline_scope(60.0):  # looser: the outer end stays
            inner = remaining()
            assert inner is not None and inner <= 10.0
        with deadline_scope(2.0):
            assert bounded_timeout(7.0, "x") <= 2.0
        with deadline_scope(None):
            assert remaining() is not None
    assert remaining() is None


def test_a_passed_deadline_is_a_timeout() -> None:
    with deadline_scope(0.01):
        time.sleep(0.02)
        with pytest.raises(BackendError) as raised:
            bounded_timeout(5.0, "calling upstream X")
    assert raised.value.kind == "timeout" and "calling upstream X" in raised.value.message


# circuit breaker


def test_breaker_opens_after_failures_within_the_window_and_fails_fast(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    upstream = FakeUpstream(server_error(), clock=clock)
    guarded = breaker(upstream, clock, failures=3, window=10.0, cooldown=5.0)
    fails(guarded, "upstream")
    clock.advance(11.0)  # the first failure leaves the window
    fails(guarded, "upstream")
    fails(guarded, "upstream")
    assert guarded.state == "closed"
    with caplog.at_level(logging.WARNING, logger="hybridlm.models.wrappers.breaker"):
        fails(guarded, "upstream")
    assert guarded.state == "open"
    assert any(r.levelno == logging.WARNING and "opened" in r.getMessage() for r in caplog.records)

    err = fails(guarded, "unavailable")
    assert upstream.calls == 4
    assert err.message == f"circuit open for upstream {NAME}; next probe in 5 s"
    assert guarded.describe() == {"url": "http://fake", "state": "open", "failures": 3, "last_error": "upstream 500"}


def test_half_open_lets_one_probe_through_and_closes_on_success(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    upstream = FakeUpstream(server_error(), server_error(), "ok", clock=clock)
    guarded = breaker(upstream, clock, failures=2, cooldown=5.0)
    fails(guarded)
    fails(guarded)
    clock.advance(5.0)
    assert guarded.state == "half_open" and guarded.admits()

    async def probe_and_another() -> tuple[str, BackendError]:
        started = asyncio.Event()
        release = asyncio.Event()

        async def slow_complete(messages: list[Message], params: GenerationParams) -> Completion:
            started.set()
            await release.wait()
            return Completion(text="probe answered", model="fake", usage=Usage())

        upstream.complete = slow_complete  # type: ignore[method-assign]
        probe = asyncio.create_task(guarded.complete(MESSAGES, PARAMS))
        await started.wait()
        with pytest.raises(BackendError) as second:
            await guarded.complete(MESSAGES, PARAMS)
        release.set()
        return (await probe).text, second.value

    with caplog.at_level(logging.WARNING, logger="hybridlm.models.wrappers.breaker"):
        answer, refused = asyncio.run(probe_and_another())
    assert answer == "probe answered"
    assert "a probe is under way" in refused.message
    assert guarded.state == "closed" and guarded.describe()["failures"] == 0
    assert [m for m in caplog.messages if "half-open" in m or "closed" in m]


def test_a_failed_probe_opens_the_circuit_again() -> None:
    clock = Clock()
    upstream = FakeUpstream(DOWN, clock=clock)
    guarded = breaker(upstream, clock, failures=1, cooldown=5.0)
    fails(guarded, "unavailable")
    clock.advance(5.0)
    fails(guarded, "unavailable")  # the probe
    assert guarded.state == "open" and upstream.calls == 2
    clock.advance(4.0)
    assert "next probe in 1 s" in fails(guarded).message
    assert upstream.calls == 2


def test_credentials_rejected_open_the_circuit_at_once() -> None:
    clock = Clock()
    guarded = breaker(FakeUpstream(AUTH), clock, failures=5)
    fails(guarded, "auth")
    assert guarded.describe()["state"] == "open"
    assert guarded.describe()["last_error"] == "auth 401"


@pytest.mark.parametrize("error", [
    BackendError("busy", "queue full", retry_after=1.0),
    BackendError("invalid_request", "too long for the context"),
    BackendError("upstream", "upstream answered HTTP 400", 400),
])
def test_the_requests_own_faults_do_not_count(error: BackendError) -> None:
    clock = Clock()
    guarded = breaker(FakeUpstream(error), clock, failures=1)
    fails(guarded, error.kind)
    fails(guarded, error.kind)
    assert guarded.state == "closed"


def test_a_stream_that_fails_midway_counts_and_one_that_ends_closes_the_probe() -> None:
    clock = Clock()
    upstream = FakeUpstream(("partial ", server_error()), "whole", clock=clock)
    guarded = breaker(upstream, clock, failures=1, cooldown=1.0)
    fails(guarded, "upstream", stream=True)
    assert guarded.state == "open"
    clock.advance(1.0)
    assert streamed(guarded) == "whole"
    assert guarded.state == "closed"


# retries


def retrying(upstream: FakeUpstream, attempts: int = 3, max_backoff: float = 4.0
             ) -> tuple[RetryingBackend, list[float]]:
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    options = RetryOptions(attempts=attempts, initial_backoff=0.1, max_backoff=max_backoff)
    return RetryingBackend(upstream, options, sleep=sleep), sleeps


def test_retries_transient_failures_with_bounded_jittered_waits() -> None:
    upstream = FakeUpstream(server_error(), DOWN, "ok")
    backend, sleeps = retrying(upstream, attempts=3, max_backoff=0.5)
    assert call(backend) == "ok"
    assert upstream.calls == 3 and len(sleeps) == 2
    assert all(0 <= s <= 0.5 for s in sleeps)


def test_retry_waits_at_least_what_retry_after_asks() -> None:
    upstream = FakeUpstream(rate_limited(2.5), "ok")
    backend, sleeps = retrying(upstream, max_backoff=3.0)
    assert call(backend) == "ok"
    assert sleeps and sleeps[0] >= 2.5


def test_no_retry_when_retry_after_asks_for_longer_than_allowed() -> None:
    upstream = FakeUpstream(rate_limited(30.0), "ok")
    backend, sleeps = retrying(upstream, max_backoff=3.0)
    assert fails(backend).status == 429
    assert upstream.calls == 1 and sleeps == []


def test_no_retry_whose_wait_would_end_past_the_deadline() -> None:
    upstream = FakeUpstream(rate_limited(1.0), "ok")
    backend, sleeps = retrying(upstream, max_backoff=3.0)
    with deadline_scope(0.5):
        fails(backend, "upstream")
    assert upstream.calls == 1 and sleeps == []


def test_gives_up_after_the_attempts() -> None:
    upstream = FakeUpstream(server_error())
    backend, sleeps = retrying(upstream, attempts=2)
    fails(backend, "upstream")
    assert upstream.calls == 2 and len(sleeps) == 1


@pytest.mark.parametrize("error", [
    AUTH,
    BackendError("busy", "queue full", retry_after=0.1),
    BackendError("invalid_request", "too long"),
    BackendError("timeout", "upstream timed out"),
    BackendError("upstream", "upstream gave an unreadable answer"),
])
def test_not_retried(error: BackendError) -> None:
    upstream = FakeUpstream(error, "ok")
    backend, sleeps = retrying(upstream)
    fails(backend, error.kind)
    assert upstream.calls == 1 and sleeps == []


def test_a_stream_is_retried_before_its_first_chunk_only() -> None:
    before = FakeUpstream(server_error(), "after a retry")
    assert streamed(retrying(before)[0]) == "after a retry" and before.calls == 2
    midway = FakeUpstream(("partial ", server_error()), "never")
    fails(retrying(midway)[0], "upstream", stream=True)
    assert midway.calls == 1


# failover


def failover(*upstreams: FakeUpstream, order: str = "ordered", clock: Clock | None = None,
             failures: int = 5) -> FailoverBackend:
    clock = clock or Clock()
    members = [breaker(u, clock, failures=failures) for u in upstreams]
    return FailoverBackend(members, order, clock)  # type: ignore[arg-type]


def test_ordered_failover_tries_the_next_upstream() -> None:
    first, second = FakeUpstream(DOWN, model_name="a"), FakeUpstream("from b", model_name="b")
    tier = failover(first, second)
    assert tier.model_name == "a"
    assert call(tier) == "from b"
    assert (first.calls, second.calls) == (1, 1)
    assert call(FailoverBackend([breaker(FakeUpstream("from a"), Clock())])) == "from a"


def test_an_open_circuit_is_skipped() -> None:
    first, second = FakeUpstream(DOWN, model_name="a"), FakeUpstream("from b", model_name="b")
    tier = failover(first, second, failures=1)
    call(tier)
    call(tier)
    assert first.calls == 1 and second.calls == 2
    described = tier.describe()
    assert described["status"] == "degraded"
    assert [u["state"] for u in described["upstreams"]] == ["open", "closed"]


def test_when_every_upstream_fails_the_error_names_each() -> None:
    tier = failover(FakeUpstream(DOWN, model_name="a"), FakeUpstream(server_error(), model_name="b"))
    err = fails(tier, "upstream")
    assert err.message.startswith("all 2 upstreams failed: ") and "cannot reach" in err.message


def test_the_requests_own_fault_is_not_failed_over() -> None:
    first = FakeUpstream(BackendError("invalid_request", "too long"), model_name="a")
    second = FakeUpstream("from b", model_name="b")
    fails(failover(first, second), "invalid_request")
    assert second.calls == 0


def test_lowest_latency_prefers_the_faster_upstream() -> None:
    clock = Clock()
    slow = FakeUpstream("slow", clock=clock, takes=2.0, model_name="slow")
    fast = FakeUpstream("fast", clock=clock, takes=0.1, model_name="fast")
    tier = failover(slow, fast, order="lowest_latency", clock=clock)
    assert call(tier) == "slow"  # neither measured: listed order
    assert call(tier) == "fast"  # not measured yet: tried before the measured one
    assert [call(tier) for _ in range(3)] == ["fast"] * 3
    assert slow.calls == 1


def test_lowest_latency_skips_an_open_circuit() -> None:
    clock = Clock()
    fast = FakeUpstream("fast", DOWN, clock=clock, takes=0.1, model_name="fast")
    slow = FakeUpstream("slow", clock=clock, takes=2.0, model_name="slow")
    tier = failover(fast, slow, order="lowest_latency", clock=clock, failures=1)
    assert [call(tier), call(tier)] == ["fast", "slow"]  # the second: fast failed, its circuit opened
    assert call(tier) == "slow" and fast.calls == 2


def test_a_stream_fails_over_before_its_first_chunk_not_after() -> None:
    first, second = FakeUpstream(DOWN, model_name="a"), FakeUpstream("from b", model_name="b")
    assert streamed(failover(first, second)) == "from b"
    midway, spare = FakeUpstream(("partial ", server_error()), model_name="a"), FakeUpstream("spare", model_name="b")
    fails(failover(midway, spare), "upstream", stream=True)
    assert spare.calls == 0


# options and errors


def tier(**options: object) -> dict[str, object]:
    return {"tiers": {"slm": {"backend": "local"}, "llm": {"backend": "openai", **options}}}


def test_a_single_base_url_still_configures_a_tier() -> None:
    config = parse_config(tier(base_url="http://h/v1", model="m", timeout=5, connect_timeout=1))
    options = OpenAIOptions.model_validate(config.tiers["llm"].options)
    [endpoint] = options.endpoints()
    assert (endpoint.base_url, endpoint.model, options.timeout, options.connect_timeout) == ("http://h/v1", "m", 5, 1)
    assert options.retries.attempts >= 1 and options.breaker.failures >= 1
    assert config.server.deadline_s == 120.0


def test_upstreams_take_the_tiers_values_unless_they_set_their_own() -> None:
    options = OpenAIOptions.model_validate({
        "model": "m", "api_key_env": "KEY", "headers": {"x-a": "tier", "x-b": "tier"},
        "upstreams": [{"base_url": "http://a/v1"},
                      {"base_url": "http://b/v1", "model": "m2", "api_key_env": "KEY_B", "headers": {"x-b": "b"}}],
        "upstream_order": "lowest_latency", "retries": {"attempts": 2}, "breaker": {"cooldown": 1}})
    a, b = options.endpoints()
    assert (a.model, a.api_key_env, a.headers) == ("m", "KEY", {"x-a": "tier", "x-b": "tier"})
    assert (b.model, b.api_key_env, b.headers) == ("m2", "KEY_B", {"x-a": "tier", "x-b": "b"})


@pytest.mark.parametrize("options", [
    {"model": "m"},
    {"model": "m", "base_url": "http://a", "upstreams": [{"base_url": "http://b"}]},
    {"upstreams": [{"base_url": "http://b"}]},
    {"base_url": "http://a", "model": "m", "upstream_order": "random"},
])
def test_unworkable_upstreams_are_config_errors(options: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        check_plugins(parse_config(tier(**options)), "test")


def test_public_url_keeps_neither_credentials_nor_query() -> None:
    assert public_url("https://user:sk-secret@api.example.com/v1/?key=sk-secret") == "https://api.example.com:443/v1"
    assert public_url("http://127.0.0.1:8080/v1") == "http://127.0.0.1:8080/v1"


def test_retry_after_in_seconds_or_as_a_date() -> None:
    assert retry_after_seconds("3") == 3.0
    assert retry_after_seconds(None) is None and retry_after_seconds("soon") is None
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    seconds = retry_after_seconds(later)
    assert seconds is not None and 25 < seconds <= 30


def test_rejected_credentials_are_a_502_that_blames_the_upstream() -> None:
    error = from_backend(AUTH, forced=True)
    assert (error.status, error.code) == (502, "upstream_auth_failed")


def test_an_upstream_call_after_the_deadline_fails_before_sending() -> None:
    options = OpenAIOptions(base_url="http://127.0.0.1:9/v1", model="m")  # port 9: nothing should be sent
    backend = OpenAIBackend(options.endpoints()[0], options)

    async def late() -> None:
        try:
            with deadline_scope(0.001):
                await asyncio.sleep(0.01)
                await backend.complete(MESSAGES, PARAMS)
        finally:
            await backend.aclose()

    with pytest.raises(BackendError) as raised:
        asyncio.run(late())
    assert raised.value.kind == "timeout" and "deadline passed" in raised.value.message
