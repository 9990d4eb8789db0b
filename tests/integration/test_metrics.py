"""/metrics over real HTTP: a burst of requests through the gateway (each tier forced, routed both ways,
streamed, an unknown model, a fallback after a retry that opens the circuit), then the scrape, parsed,
must say what the request log says; in-process and with PROMETHEUS_MULTIPROC_DIR set."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from hybridlm.access.keys import KeyStore, default_keys_path
from hybridlm.telemetry.metrics import MULTIPROC_DIR_ENV
from tests.integration.servers import FaultyUpstream, Gateway, hybrid_config, start_faulty_upstream, start_gateway, stop
from tests.integration.test_gateway import COMPLEX, SIMPLE

Labels = frozenset[tuple[str, str]]
Row = dict[str, Any]
MAX_TOKENS = 8
# One retry per failed call, and the first failed call opens the circuit for longer than the test runs.
LLM_LIMITS = {"timeout": 10, "connect_timeout": 1, "retries": {"attempts": 2, "initial_backoff": 0.05},
              "breaker": {"failures": 1, "window": 60, "cooldown": 600}}


@pytest.fixture(scope="module")
def faulty(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultyUpstream]:
    upstream = start_faulty_upstream(tmp_path_factory.mktemp("faulty"))
    yield upstream
    stop(upstream.proc)


def start(faulty: FaultyUpstream, workdir: Path, **env: str) -> Gateway:
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        return start_gateway(workdir, hybrid_config(faulty.base_url, **LLM_LIMITS))


@pytest.fixture(scope="module")
def gateway(faulty: FaultyUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    gw = start(faulty, tmp_path_factory.mktemp("gateway"))
    yield gw
    stop(gw.proc)


def send_burst(gateway: Gateway, faulty: FaultyUpstream) -> None:
    with openai.OpenAI(base_url=gateway.base_url, api_key="unused", max_retries=0, timeout=60) as client:
        def ask(model: str, content: str, **options: Any) -> Any:
            return client.chat.completions.create(model=model, messages=[{"role": "user", "content": content}],
                                                  max_tokens=MAX_TOKENS, **options)

        for model, content in (("slm", SIMPLE), ("llm", SIMPLE), ("hybrid", SIMPLE), ("hybrid", COMPLEX)):
            ask(model, content)
        assert list(ask("llm", SIMPLE, stream=True))
        with pytest.raises(openai.NotFoundError):
            ask("no-such-model", SIMPLE)
        faulty.set_fault("http_500")
        try:
            fell_back = ask("hybrid", COMPLEX)
        finally:
            faulty.set_fault("ok")
    assert fell_back.model_extra["hybridlm"]["fallback"] == "llm_unavailable"


def scrape(gateway: Gateway, secret: str | None = None) -> httpx.Response:
    headers = {"authorization": f"Bearer {secret}"} if secret else {}
    return httpx.get(gateway.url + "/metrics", headers=headers, timeout=10)


def samples(gateway: Gateway) -> dict[str, dict[Labels, float]]:
    """The scrape's samples: name -> labels -> value."""
    reply = scrape(gateway)
    assert reply.status_code == 200 and reply.headers["content-type"].startswith("text/plain")
    found: dict[str, dict[Labels, float]] = defaultdict(dict)
    for family in text_string_to_metric_families(reply.text):
        for sample in family.samples:
            found[sample.name][frozenset(sample.labels.items())] = sample.value
    return found


def logged(gateway: Gateway) -> list[Row]:
    log = gateway.log()
    try:
        return log.recent(1000)
    finally:
        log.close()


def route(row: Row, **more: str) -> Labels:
    """A row's labels as the metrics give them: its tier, model and profile ("" where none), and `more`."""
    return frozenset({"tier": row["tier"] or "", "model": row["model"] or "", "profile": row["profile"] or "",
                      **more}.items())


def totals(rows: list[Row], labels: Callable[[Row], Labels], value: Callable[[Row], float]) -> dict[Labels, float]:
    summed: dict[Labels, float] = defaultdict(float)
    for row in rows:
        summed[labels(row)] += value(row)
    return dict(summed)


def assert_metrics_match_the_log(gateway: Gateway, faulty: FaultyUpstream) -> None:
    rows, found = logged(gateway), samples(gateway)
    assert {row["tier"] for row in rows} == {"slm", "llm", None}  # None: the unknown model's
    served = [row for row in rows if row["status"] == "ok"]

    def by_status(row: Row) -> Labels:
        return route(row, status=row["status"])

    assert found["hybridlm_requests_total"] == totals(
        rows, lambda row: route(row, status=row["status"], code=str(row["http_status"])), lambda row: 1)
    assert found["hybridlm_request_latency_seconds_count"] == totals(rows, by_status, lambda row: 1)
    assert found["hybridlm_request_latency_seconds_sum"] == pytest.approx(
        totals(rows, by_status, lambda row: row["latency_ms"] / 1000))
    assert found["hybridlm_tokens_total"] == {
        **totals(rows, lambda row: route(row, direction="prompt"), lambda row: row["prompt_tokens"]),
        **totals(rows, lambda row: route(row, direction="completion"), lambda row: row["completion_tokens"])}
    assert found["hybridlm_cost_usd_total"] == pytest.approx(totals(rows, route, lambda row: row["cost_usd"]))
    assert found["hybridlm_baseline_cost_usd_total"] == pytest.approx(
        totals(rows, route, lambda row: row["baseline_cost_usd"]))
    assert found["hybridlm_savings_usd"] == pytest.approx(
        totals(rows, route, lambda row: row["baseline_cost_usd"] - row["cost_usd"]))
    assert found["hybridlm_fallbacks_total"] == totals(
        [row for row in rows if row["fallback"]],
        lambda row: frozenset({"kind": row["fallback"], "tier": row["tier"], "profile": row["profile"] or ""}.items()),
        lambda row: 1)
    assert found["hybridlm_time_to_first_token_seconds_count"] == totals(
        [row for row in served if row["stream"]], route, lambda row: 1)
    # Here every served request made one call, and a failed one none that answered.
    assert found["hybridlm_upstream_call_latency_seconds_count"] == totals(
        served, lambda row: frozenset({"tier": row["tier"], "model": row["model"]}.items()), lambda row: 1)

    upstream = frozenset({"tier": "llm", "upstream": faulty.base_url}.items())
    assert found["hybridlm_upstream_retries_total"] == {upstream: 1}  # the failed call's second try
    assert found["hybridlm_circuit_state"] == {upstream: 2}  # open
    llm_state = httpx.get(gateway.url + "/healthz", timeout=5).json()["tiers"]["llm"]["upstreams"][0]["state"]
    assert llm_state == "open"
    [(queue, depth)] = found["hybridlm_local_queue_depth"].items()
    assert dict(queue)["tier"] == "slm" and depth == 0


def test_the_scrape_says_what_the_request_log_says(gateway: Gateway, faulty: FaultyUpstream) -> None:
    send_burst(gateway, faulty)
    assert_metrics_match_the_log(gateway, faulty)


def test_with_a_multiprocess_folder_the_scrape_merges_the_processes_files(
        faulty: FaultyUpstream, tmp_path: Path) -> None:
    folder = tmp_path / "prometheus"
    folder.mkdir()
    gateway = start(faulty, tmp_path / "gateway", **{MULTIPROC_DIR_ENV: str(folder)})
    try:
        send_burst(gateway, faulty)
        assert_metrics_match_the_log(gateway, faulty)
    finally:
        stop(gateway.proc)
    files = {path.name.rsplit("_", 1)[0] for path in folder.glob("*.db")}
    assert files == {"counter", "histogram", "gauge_sum"}  # the live gauges (circuit, queue) left with the process


def test_with_keys_the_metrics_need_an_admin_key(gateway: Gateway) -> None:
    store = KeyStore(default_keys_path(gateway.data_dir))
    try:
        made = [store.create("ops", admin=True), store.create("app")]
        try:
            (_, admin), (_, plain) = made
            assert scrape(gateway).status_code == 401
            refused = scrape(gateway, plain)
            assert (refused.status_code, refused.json()["error"]["code"]) == (403, "admin_key_required")
            assert scrape(gateway, admin).status_code == 200
        finally:
            for key_id, _ in made:
                store.revoke(key_id)
    finally:
        store.close()
