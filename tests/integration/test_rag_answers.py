"""Grounded answers through the gateway: ingest, ask, cite; a false claim from the LLM flagged and
corrected (or removed); nothing relevant -> no invented answer; /v1/factcheck and its bad input."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from openai import OpenAI

from hybridlm.access.keys import KeyStore, default_keys_path
from tests.conftest import DATA
from tests.integration.commands import hybridlm
from tests.integration.servers import (
    Gateway,
    Upstream,
    hybrid_config,
    start_gateway,
    start_scripted_upstream,
    stop,
)

FALSE = "Card payments abroad cost 5% [1]."
TRUE = "Card payments abroad cost 1% above 500 GBP a month [1]."
STUBBORN = "Below that they cost 3% [1]."
SCRIPT = [  # the first rule whose text is in the question answers
    # never corrects its false claim: it must be removed, the true one kept
    {"when": "each month", "answer": f"{TRUE} {STUBBORN}"},
    {"when": "payments abroad", "answer": FALSE, "corrected": TRUE},
]


def ingest(gateway: Gateway, folder: Path) -> None:
    proc = hybridlm("ingest", str(folder), data_dir=gateway.data_dir)
    assert proc.returncode == 0, proc.stderr


@pytest.fixture(scope="module")
def scripted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Upstream]:
    server = start_scripted_upstream(tmp_path_factory.mktemp("scripted"), SCRIPT)
    yield server
    stop(server.proc)


@pytest.fixture(scope="module")
def rag_gateway(scripted: Upstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    workdir = tmp_path_factory.mktemp("rag-gateway")
    config = hybrid_config(scripted.base_url)
    config["router"] = {"threshold": 0.0}  # every grounded question goes to the (scripted) LLM
    gw = start_gateway(workdir, config)
    docs = workdir / "docs"
    shutil.copytree(DATA / "docs", docs)
    ingest(gw, docs)  # while the gateway runs: it must see the new chunks
    yield gw
    stop(gw.proc)


def rag_answer(gateway: Gateway, question: str) -> tuple[str, dict]:
    client = OpenAI(base_url=gateway.base_url, api_key="unused")
    raw = client.chat.completions.with_raw_response.create(
        model="hybrid/rag", messages=[{"role": "user", "content": question}])
    completion = raw.parse()
    return completion.choices[0].message.content or "", completion.model_extra["hybridlm"]


def test_false_claim_is_flagged_sent_back_and_corrected(rag_gateway: Gateway) -> None:
    answer, meta = rag_answer(rag_gateway, "How much do card payments abroad cost?")
    assert answer == TRUE
    rag = meta["rag"]
    assert Path(rag["sources"][0]["path"]).name == "fees.html" and rag["sources"][0]["n"] == 1
    verification = rag["verification"]
    assert verification["rounds"] == 1 and verification["supported"] and verification["removed"] == []
    assert meta["tier"] == "llm"
    row = rag_gateway.row(meta["request_id"])
    assert row["status"] == "ok" and row["cost_usd"] > 0
    logged = json.loads(row["grounding"])  # the log keeps where the answer came from and its check
    assert logged["rounds"] == 1 and logged["claims"] == ["supported"] and logged["sources"][0].endswith("fees.html")


def test_claim_still_false_after_the_last_round_is_removed(rag_gateway: Gateway) -> None:
    answer, meta = rag_answer(rag_gateway, "What do card payments abroad cost each month?")
    verification = meta["rag"]["verification"]
    assert verification["rounds"] == 2  # the configured maximum
    assert verification["removed"] == [STUBBORN]
    assert answer == TRUE
    flagged = [c for c in verification["claims"] if c["label"] != "supported"]
    assert [c["claim"] for c in flagged] == ["Below that they cost 3%."]
    assert "1% above 500 GBP" in flagged[0]["evidence"] and flagged[0]["label"] == "contradicted"


def test_nothing_relevant_is_said_not_invented(rag_gateway: Gateway) -> None:
    answer, meta = rag_answer(rag_gateway, "What is the capital of Peru?")
    assert meta["tier"] == "no_source" and "could not find" in answer
    assert meta["rag"]["sources"] == [] and all(g["grade"] != "relevant" for g in meta["rag"]["graded"])
    assert rag_gateway.row(meta["request_id"])["cost_usd"] == 0


def test_grounded_answer_from_the_real_models(gateway: Gateway, tmp_path: Path) -> None:
    """The embedded SmolLM2 and the llama.cpp upstream answer for real; sources and a fact-check come back."""
    ingest(gateway, DATA / "docs")
    for question in ("When do new cards arrive?", "Explain in detail what happens to a frozen card, and why"):
        answer, meta = rag_answer(gateway, question)
        rag = meta["rag"]
        assert rag["sources"] and Path(rag["sources"][0]["path"]).name == "cards.md"
        claims = rag["verification"]["claims"]
        assert claims and all(c["label"] in ("supported", "unsupported", "contradicted") for c in claims)
        assert answer.strip()
        if any(c["label"] == "supported" for c in claims):  # kept claims carry a citation
            assert re.search(r"\[\d+\]", answer), answer


def test_factcheck_endpoint(rag_gateway: Gateway) -> None:
    body = {"context": ["Card payments abroad cost 1% above 500 GBP a month.",
                        "Branches are closed on Sundays."],
            "answer": "Card payments abroad cost 1% above 500 GBP a month. Branches open on Sundays at 9."}
    r = httpx.post(rag_gateway.url + "/v1/factcheck", json=body, timeout=60)
    assert r.status_code == 200
    report = r.json()
    assert [c["label"] for c in report["claims"]] == ["supported", "contradicted"]
    assert report["claims"][1]["source"] == 1 and not report["supported"]
    assert rag_gateway.row(report["id"])["status"] == "ok"


@pytest.mark.parametrize(("body", "status", "code"), [
    (b"{not json", 400, "invalid_json"),
    (b'{"context": "x"}', 400, "invalid_value"),
    (b'{"answer": "x", "context": ["", "  "]}', 400, "invalid_value"),
    (b'{"answer": 5, "context": "x"}', 400, "invalid_value"),
    (b'{"answer": "   ", "context": "x"}', 400, "invalid_value"),
    (b'{"answer": "x", "context": "' + b"a" * 1_100_000 + b'"}', 413, "request_too_large"),
    (b'{"context": "x", "answer": "' + b"It rained. " * 150 + b'"}', 400, "invalid_value"),
    (b'{"answer": "x", "context": "' + b"It rained. " * 700 + b'"}', 400, "invalid_value"),
])
def test_factcheck_bad_input(rag_gateway: Gateway, body: bytes, status: int, code: str) -> None:
    r = httpx.post(rag_gateway.url + "/v1/factcheck", content=body, timeout=30,
                   headers={"content-type": "application/json"})
    assert r.status_code == status
    assert r.json()["error"]["code"] == code
    assert rag_gateway.row(r.headers["x-hybridlm-request-id"])["http_status"] == status


def test_factcheck_counts_against_a_keys_requests_per_minute(rag_gateway: Gateway) -> None:
    """With a key in the store the endpoint needs one, and its rate limit holds here too."""
    store = KeyStore(default_keys_path(rag_gateway.data_dir))
    key_id, secret = store.create("checker", requests_per_minute=1)
    body = {"context": ["Branches are closed on Sundays."], "answer": "Branches are closed on Sundays."}
    try:
        replies = [httpx.post(rag_gateway.url + "/v1/factcheck", json=body, timeout=60,
                              headers={"authorization": f"Bearer {secret}"}) for _ in range(2)]
    finally:
        store.revoke(key_id)  # the gateway is open again for the tests after this one
        store.close()
    assert [r.status_code for r in replies] == [200, 429]
    assert replies[1].json()["error"]["code"] == "rate_limit_exceeded" and replies[1].headers["retry-after"]
    row = rag_gateway.row(replies[1].headers["x-hybridlm-request-id"])
    assert (row["http_status"], row["key_id"]) == (429, key_id)


def test_streamed_grounded_answer_is_checked_before_it_is_sent(rag_gateway: Gateway) -> None:
    client = OpenAI(base_url=rag_gateway.base_url, api_key="unused")
    question = [{"role": "user", "content": "How much do card payments abroad cost?"}]
    stream = client.chat.completions.create(model="hybrid/rag", stream=True, messages=question)
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == TRUE  # the false first draft never reaches the client
    verification = chunks[-1].model_extra["hybridlm"]["rag"]["verification"]
    assert verification["rounds"] == 1 and verification["supported"]


def test_dashboard_counts_what_the_fact_check_did(rag_gateway: Gateway) -> None:
    rag_answer(rag_gateway, "How much do card payments abroad cost?")  # one correction round at least
    overview = httpx.get(rag_gateway.url + "/dashboard/api/overview", params={"window": "1h"}, timeout=30).json()
    shown = {fact["value"]: fact["n"] for fact in overview["facts"]["factcheck"]}
    log = rag_gateway.log()
    try:
        checks = [json.loads(r[0]) for r in log.read("SELECT grounding FROM requests WHERE ts >= ? AND grounding "
                                                      "IS NOT NULL", (overview["window"]["since"],))]
    finally:
        log.close()
    assert shown["answers"] == len(checks) >= 1
    assert shown.get("corrections", 0) == sum(c.get("rounds", 0) for c in checks) >= 1
    assert shown.get("claims", 0) == sum(len(c.get("claims") or []) for c in checks) >= shown.get("flagged", 0)
