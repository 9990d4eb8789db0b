"""Edge-cloud behaviour: when the cloud LLM dies or hangs, the embedded SLM answers and says so."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from tests.integration.servers import (
    LOOPBACK,
    Gateway,
    hybrid_config,
    start_gateway,
    start_llama_server,
    stop,
)
from tests.integration.test_gateway import COMPLEX

MESSAGES = [{"role": "user", "content": COMPLEX}]


def request_ids(gateway: Gateway) -> set[str]:
    log = gateway.log()
    try:
        return {r["request_id"] for r in log.recent(1000)}
    finally:
        log.close()


def test_llm_killed_mid_test_slm_takes_over_and_nothing_is_lost(tmp_path: Path) -> None:
    upstream = start_llama_server(tmp_path)
    gateway = start_gateway(tmp_path / "gw", hybrid_config(upstream.base_url))
    client = openai.OpenAI(base_url=gateway.base_url, api_key="unused", max_retries=0)
    sent: list[str] = []
    try:
        before = client.chat.completions.create(model="hybrid", messages=MESSAGES, max_tokens=8)
        sent.append(before.id)
        assert before.model_extra["hybridlm"]["tier"] == "llm"

        stop(upstream.proc)

        for _ in range(3):
            after = client.chat.completions.create(model="hybrid", messages=MESSAGES, max_tokens=8)
            sent.append(after.id)
            meta = after.model_extra["hybridlm"]
            assert (meta["tier"], meta["routed_tier"], meta["fallback"]) == ("slm", "llm", "llm_unavailable")
            assert "cannot reach upstream" in meta["fallback_reason"]
            assert after.choices[0].message.content

        chunks = list(client.chat.completions.create(model="hybrid", messages=MESSAGES, max_tokens=8, stream=True))
        sent.append(chunks[0].id)
        assert chunks[-1].model_extra["hybridlm"]["fallback"] == "llm_unavailable"

        with pytest.raises(openai.APIStatusError) as forced:
            client.chat.completions.create(model="llm", messages=MESSAGES, max_tokens=8)
        assert forced.value.status_code == 503
        assert forced.value.body["code"] == "upstream_unavailable"
        forced_id = forced.value.response.headers["x-hybridlm-request-id"]

        fallback_rows = [gateway.row(i) for i in sent[1:]]
        assert all(r["fallback"] == "llm_unavailable" and r["tier"] == "slm" for r in fallback_rows)
        assert gateway.row(forced_id)["http_status"] == 503
        logged = request_ids(gateway)
        assert set(sent) | {forced_id} <= logged
        assert len(logged) == len(sent) + 1
    finally:
        stop(gateway.proc)
        stop(upstream.proc)


@pytest.fixture
def silent_upstream() -> Iterator[str]:
    """Accepts connections and never answers: a cloud that hangs."""
    server = socket.socket()
    server.bind((LOOPBACK, 0))
    server.listen(16)
    held: list[socket.socket] = []
    stopping = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stopping.is_set():
            try:
                conn, _ = server.accept()
                held.append(conn)
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://{LOOPBACK}:{server.getsockname()[1]}/v1"
    stopping.set()
    thread.join()
    for conn in held:
        conn.close()
    server.close()


def test_slow_llm_times_out_and_slm_answers(tmp_path: Path, silent_upstream: str) -> None:
    gateway = start_gateway(tmp_path, hybrid_config(silent_upstream, timeout=1.5))
    try:
        reply = httpx.post(gateway.base_url + "/chat/completions", timeout=30,
                           json={"model": "hybrid", "messages": MESSAGES, "max_tokens": 8})
        assert reply.status_code == 200
        meta = reply.json()["hybridlm"]
        assert (meta["tier"], meta["fallback"]) == ("slm", "llm_unavailable")
        assert "timed out" in meta["fallback_reason"]

        forced = httpx.post(gateway.base_url + "/chat/completions", timeout=30,
                            json={"model": "llm", "messages": MESSAGES, "max_tokens": 8})
        assert forced.status_code == 504
        assert forced.json()["error"]["code"] == "upstream_timeout"
        assert gateway.row(forced.headers["x-hybridlm-request-id"])["http_status"] == 504
    finally:
        stop(gateway.proc)
