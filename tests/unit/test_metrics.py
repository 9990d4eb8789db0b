"""The metrics' observer on hand-made traces and fake upstreams; tests/integration/test_metrics.py checks a
real gateway's scrape against its request log."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from hybridlm.models.openai_http import BreakerOptions
from hybridlm.models.wrappers.breaker import CircuitBreaker
from hybridlm.models.wrappers.failover import FailoverBackend
from hybridlm.server.access import is_admin_path
from hybridlm.telemetry.metrics import MULTIPROC_DIR_ENV, GatewayMetrics
from hybridlm.types import Trace, Usage
from tests.fakes import ScriptedBackend
from tests.unit.test_resilience import AUTH, NAME, Clock, FakeUpstream, call, fails, retrying, server_error

Labels = frozenset[tuple[str, str]]


def scrape(metrics: GatewayMetrics) -> dict[tuple[str, Labels], float]:
    """Every sample of a scrape, by its name and labels."""
    families = text_string_to_metric_families(metrics.exposition().decode())
    return {(s.name, frozenset(s.labels.items())): s.value for family in families for s in family.samples}


def labels(**values: str) -> Labels:
    return frozenset(values.items())


def spend(tier: str, model: str, latency_ms: float) -> dict[str, Any]:
    return {"tier": tier, "model": model, "prompt_tokens": 1, "completion_tokens": 1, "cost_usd": 0.0,
            "latency_ms": latency_ms, "first_token_ms": None}


SLM = labels(tier="slm", model="small", profile="")
LLM_STREAMED = labels(tier="llm", model="big", profile="cheap")


def observed(metrics: GatewayMetrics) -> None:
    """A routed answer from the SLM after a fallback, a streamed LLM answer, and an unknown model's 404."""
    metrics.observe(Trace(tier="slm", model="small", usage=Usage(10, 3), baseline_cost_usd=0.5, latency_ms=200.0,
                          fallback="llm_unavailable", calls=[spend("slm", "small", 150.0)]))
    metrics.observe(Trace(tier="llm", model="big", profile="cheap", stream=True, usage=Usage(20, 5), cost_usd=0.3,
                          baseline_cost_usd=0.25, latency_ms=400.0, first_token_ms=50.0,
                          calls=[spend("llm", "big", 300.0), spend("llm", "big", 80.0)]))
    metrics.observe(Trace(status="error", http_status=404, latency_ms=1.0))


def test_each_trace_is_counted_by_route_status_tokens_cost_and_fallback() -> None:
    metrics = GatewayMetrics({"slm": ScriptedBackend("small")})
    observed(metrics)
    samples = scrape(metrics)
    assert samples["hybridlm_requests_total", SLM | labels(status="ok", code="200")] == 1
    assert samples["hybridlm_requests_total", labels(tier="", model="", profile="", status="error", code="404")] == 1
    assert samples["hybridlm_tokens_total", SLM | labels(direction="prompt")] == 10
    assert samples["hybridlm_tokens_total", LLM_STREAMED | labels(direction="completion")] == 5
    assert samples["hybridlm_cost_usd_total", LLM_STREAMED] == pytest.approx(0.3)
    assert samples["hybridlm_baseline_cost_usd_total", SLM] == pytest.approx(0.5)
    assert samples["hybridlm_savings_usd", SLM] == pytest.approx(0.5)
    assert samples["hybridlm_savings_usd", LLM_STREAMED] == pytest.approx(-0.05)  # dearer than the baseline
    assert samples["hybridlm_fallbacks_total", labels(kind="llm_unavailable", tier="slm", profile="")] == 1
    assert samples["hybridlm_request_latency_seconds_sum", SLM | labels(status="ok")] == pytest.approx(0.2)
    assert samples["hybridlm_time_to_first_token_seconds_count", LLM_STREAMED] == 1
    assert ("hybridlm_time_to_first_token_seconds_count", SLM) not in samples  # not streamed
    upstream_calls = labels(tier="llm", model="big")
    assert samples["hybridlm_upstream_call_latency_seconds_count", upstream_calls] == 2
    assert samples["hybridlm_upstream_call_latency_seconds_sum", upstream_calls] == pytest.approx(0.38)


def test_two_gateways_in_one_process_keep_their_own_counts() -> None:
    first, second = GatewayMetrics({}), GatewayMetrics({})
    observed(first)
    assert not any(name == "hybridlm_requests_total" for name, _ in scrape(second))
    assert sum(v for (name, _), v in scrape(first).items() if name == "hybridlm_requests_total") == 3


def test_in_multiprocess_mode_the_gateways_of_a_process_share_one_set(tmp_path: Path) -> None:
    """Separate objects for one metric would overwrite each other's counts in the process's file."""
    code = textwrap.dedent("""
        from prometheus_client.parser import text_string_to_metric_families
        from hybridlm.telemetry.metrics import GatewayMetrics
        from hybridlm.types import Trace

        first, second = GatewayMetrics({}), GatewayMetrics({})
        first.observe(Trace(tier="slm"))
        second.observe(Trace(tier="slm"))
        scrape = text_string_to_metric_families(first.exposition().decode())
        print(sum(s.value for f in scrape for s in f.samples if s.name == "hybridlm_requests_total"))
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**os.environ, MULTIPROC_DIR_ENV: str(tmp_path)}, cwd=Path(__file__).parents[2])
    assert done.returncode == 0, done.stderr
    assert float(done.stdout) == 2
    assert list(tmp_path.glob("counter_*.db"))  # the values went to the folder


def test_retries_and_circuit_states_are_read_from_the_upstreams() -> None:
    clock = Clock()
    upstream = FakeUpstream(server_error(), "ok", AUTH, "ok")
    retried, _ = retrying(upstream, attempts=2)
    breaker = CircuitBreaker(retried, BreakerOptions(failures=3, window=10.0, cooldown=5.0), NAME, clock)
    metrics = GatewayMetrics({"llm": FailoverBackend([breaker])})
    at_upstream = labels(tier="llm", upstream=NAME)

    assert call(breaker) == "ok"  # after one retry
    samples = scrape(metrics)
    assert samples["hybridlm_upstream_retries_total", at_upstream] == 1
    assert samples["hybridlm_circuit_state", at_upstream] == 0

    fails(breaker, "auth")  # a refused key opens the circuit at once, and is not retried
    samples = scrape(metrics)
    assert samples["hybridlm_upstream_retries_total", at_upstream] == 1
    assert samples["hybridlm_circuit_state", at_upstream] == 2
    clock.advance(5.0)
    assert scrape(metrics)["hybridlm_circuit_state", at_upstream] == 1


def test_metrics_are_an_admin_path() -> None:
    assert is_admin_path("/metrics")
    assert not is_admin_path("/metricsx")
