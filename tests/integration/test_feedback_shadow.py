"""Production feedback: shadow answers from the LLM, ratings over HTTP, a router retrained from the log."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from hybridlm.routing.learned import load_router
from tests.integration.servers import (
    Gateway,
    Upstream,
    hybrid_config,
    start_gateway,
    stop,
)

QUESTIONS = [f"What time does branch number {i} open on Saturdays?" for i in range(10)]


@pytest.fixture(scope="module")
def shadow_gateway(upstream: Upstream, tmp_path_factory: pytest.TempPathFactory):
    config = hybrid_config(upstream.base_url)
    config["router"] = {"shadow_share": 1.0}
    config["server"]["store_text"] = True  # training from the log reads the full prompts
    gw = start_gateway(tmp_path_factory.mktemp("shadow"), config)
    yield gw
    stop(gw.proc)


def shadows(gateway: Gateway) -> list[dict]:
    log = gateway.log()
    try:
        return [r for r in log.recent(1000) if r["shadow_of"]]
    finally:
        log.close()


def post_feedback(gateway: Gateway, body: dict | str) -> httpx.Response:
    content = body if isinstance(body, str) else None
    return httpx.post(gateway.base_url + "/feedback", json=None if content else body, content=content,
                      headers={"content-type": "application/json"}, timeout=10)


def test_shadow_answers_feedback_and_training_from_the_log(shadow_gateway: Gateway) -> None:
    gw = shadow_gateway
    served = []
    for q in QUESTIONS:
        reply = httpx.post(gw.base_url + "/chat/completions", timeout=60,
                           json={"model": "hybrid", "max_tokens": 6, "messages": [{"role": "user", "content": q}]})
        assert reply.status_code == 200 and reply.json()["hybridlm"]["tier"] == "slm"
        served.append(reply.json()["id"])
    deadline = time.monotonic() + 90
    while len(shadows(gw)) < len(served) and time.monotonic() < deadline:
        time.sleep(0.2)
    rows = shadows(gw)
    assert {r["shadow_of"] for r in rows} == set(served)
    assert all(r["tier"] == "llm" and r["endpoint"] == "shadow" and r["answer"] and r["cost_usd"] > 0 for r in rows)

    for i, row in enumerate(rows):
        assert post_feedback(gw, {"request_id": row["shadow_of"], "score": 0.2 + 0.05 * i}).status_code == 200
        thumbs = post_feedback(gw, {"request_id": row["request_id"], "thumbs": "up", "comment": "clear"})
        assert thumbs.json() == {"object": "feedback", "request_id": row["request_id"], "score": 1.0}

    out = gw.data_dir.parent / "from-log.npz"
    env = {**os.environ, "HYBRIDLM_DATA_DIR": str(gw.data_dir)}
    proc = subprocess.run([sys.executable, "-m", "hybridlm", "train", "router", "--from-log", "--kind", "knn",
                           "--out", str(out)], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    router = load_router(out)
    assert router.header["trained_on"]["prompts"] == len(served)
    assert router.header["weak"] == "slm" and router.header["strong"] == "llm"


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ("{not json", 400, "invalid_json"),
        ({"request_id": "chatcmpl-nope", "score": 0.5}, 404, "request_not_found"),
        ({"request_id": "x", "score": 0.5, "thumbs": "up"}, 400, "invalid_value"),
        ({"request_id": "x", "score": 2}, 400, "invalid_value"),
        ({"request_id": "x", "thumbs": "sideways"}, 400, "invalid_value"),
        ({"score": 0.5}, 400, "invalid_value"),
    ],
)
def test_bad_feedback_is_refused_and_recorded(shadow_gateway: Gateway, body: dict | str, status: int, code: str) -> None:
    reply = post_feedback(shadow_gateway, body)
    assert reply.status_code == status
    assert reply.json()["error"]["code"] == code
    row = shadow_gateway.row(reply.headers["x-hybridlm-request-id"])
    assert (row["endpoint"], row["http_status"]) == ("/v1/feedback", status)


def test_training_from_an_empty_log_says_what_to_do(tmp_path: Path) -> None:
    env = {**os.environ, "HYBRIDLM_DATA_DIR": str(tmp_path)}
    from hybridlm.request_log import RequestLog, default_log_path

    RequestLog(default_log_path(tmp_path)).close()
    proc = subprocess.run([sys.executable, "-m", "hybridlm", "train", "router", "--from-log", "--out",
                           str(tmp_path / "r.npz")], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2
    assert "shadow_share" in proc.stderr and "Traceback" not in proc.stderr
