"""The local model's worker and queue over real HTTP: a full queue is refused or routed away at once,
and a client that leaves stops its generation (the model is free again long before it would have
finished)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.integration.servers import Gateway, Upstream, hybrid_config, start_gateway, stop

LONG = [{"role": "user", "content": "Write a very long story about a lighthouse keeper, with many chapters."}]
SIMPLE = [{"role": "user", "content": "What are your opening hours?"}]


def local_only_config(max_queue: int) -> dict:
    return {"tiers": {"slm": {"backend": "local", "model": "smollm2-135m", "max_queue": max_queue}},
            "server": {"default_max_tokens": 16}}


@pytest.fixture(scope="module")
def lonely(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """One request at a time, none may wait, and no LLM to send the rest to."""
    gw = start_gateway(tmp_path_factory.mktemp("queue-local"), local_only_config(0))
    yield gw
    stop(gw.proc)


@pytest.fixture(scope="module")
def with_llm(upstream: Upstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    config = hybrid_config(upstream.base_url)
    config["tiers"]["slm"]["max_queue"] = 0
    gw = start_gateway(tmp_path_factory.mktemp("queue-hybrid"), config)
    yield gw
    stop(gw.proc)


def chat(gateway: Gateway, model: str, messages: list, **fields: object) -> httpx.Response:
    return httpx.post(gateway.base_url + "/chat/completions", json={"model": model, "messages": messages, **fields},
                      timeout=120)


def queue(gateway: Gateway) -> dict:
    return httpx.get(gateway.url + "/healthz", timeout=10).json()["tiers"]["slm"]["queue"]


def wait_until_idle(gateway: Gateway, within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not queue(gateway)["running"]:
            return True
        time.sleep(0.1)
    return False


class Occupier:
    """A long streamed answer that holds the local model until it is closed."""

    def __init__(self, gateway: Gateway) -> None:
        self.started = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(gateway,), daemon=True)
        self._thread.start()
        assert self.started.wait(60), "the long answer never started"

    def _run(self, gateway: Gateway) -> None:
        body = {"model": "slm", "messages": LONG, "max_tokens": 4000, "stream": True}
        with httpx.stream("POST", gateway.base_url + "/chat/completions", json=body, timeout=120) as reply:
            for _ in reply.iter_lines():
                self.started.set()
                if self._stop.is_set():
                    return

    def close(self) -> None:
        self._stop.set()
        self._thread.join(30)


def test_a_full_queue_refuses_at_once_with_retry_after(lonely: Gateway) -> None:
    holder = Occupier(lonely)
    try:
        forced = chat(lonely, "slm", SIMPLE)
        routed = chat(lonely, "hybrid", SIMPLE)
    finally:
        holder.close()
    assert forced.status_code == 429, forced.text
    assert routed.status_code == 503, routed.text
    for reply in (forced, routed):
        assert reply.json()["error"]["code"] == "local_model_busy"
        assert int(reply.headers["retry-after"]) >= 1
        row = lonely.row(reply.headers["x-hybridlm-request-id"])
        assert (row["status"], row["http_status"], row["error_code"]) == ("error", reply.status_code,
                                                                        "local_model_busy")
    assert wait_until_idle(lonely, 30)
    assert chat(lonely, "slm", SIMPLE).status_code == 200  # free again once the long answer is closed


def test_a_routed_request_goes_to_the_llm_when_the_local_model_is_busy(with_llm: Gateway) -> None:
    holder = Occupier(with_llm)
    try:
        reply = chat(with_llm, "hybrid", SIMPLE)
    finally:
        holder.close()
    assert reply.status_code == 200, reply.text
    meta = reply.json()["hybridlm"]
    assert (meta["routed_tier"], meta["tier"], meta["fallback"]) == ("slm", "llm", "local_busy")
    assert "busy" in meta["fallback_reason"]
    assert with_llm.row(meta["request_id"])["tier"] == "llm"


def test_a_client_that_leaves_stops_its_generation(lonely: Gateway) -> None:
    assert wait_until_idle(lonely, 30)
    before = lonely.newest_request_id()
    with pytest.raises(httpx.ReadTimeout):  # 4,000 tokens would take a minute or more: leave after 2 s
        httpx.post(lonely.base_url + "/chat/completions", json={"model": "slm", "messages": LONG, "max_tokens": 4000},
                   timeout=httpx.Timeout(60, read=2.0))
    assert wait_until_idle(lonely, 15), "the model kept generating for a client that had gone"
    assert lonely.row_after(before)["error_code"] == "client_disconnected"


def test_a_stream_the_client_closes_stops_its_generation(lonely: Gateway) -> None:
    assert wait_until_idle(lonely, 30)
    before = lonely.newest_request_id()
    holder = Occupier(lonely)
    holder.close()
    assert wait_until_idle(lonely, 15), "the model kept generating for a stream nobody reads"
    assert lonely.row_after(before)["error_code"] == "client_disconnected"
