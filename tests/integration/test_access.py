"""Access control over real HTTP: the gateway with keys in its store, the official openai client and raw
httpx requests; every refusal in OpenAI's shape with exactly one log row naming its key."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from hybridlm.access.keys import KeyStore, default_keys_path
from hybridlm.cli.keys import revoke
from tests.integration.servers import Gateway, free_port, hybrid_config, start_gateway, stop

HI = [{"role": "user", "content": "hi"}]


@dataclass(frozen=True)
class Key:
    key_id: str
    secret: str


@dataclass(frozen=True)
class Keys:
    admin: Key
    plain: Key
    local_only: Key  # tiers: slm
    plain_routing: Key  # profiles: hybrid
    slow: Key  # 2 requests per minute
    thrifty: Key  # 30 tokens per minute


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """A dead cloud (nothing listens on the 'llm' tier's port): every answer here is the local model's."""
    gw = start_gateway(tmp_path_factory.mktemp("access"), hybrid_config(f"http://127.0.0.1:{free_port()}/v1"))
    yield gw
    stop(gw.proc)


@pytest.fixture(scope="module")
def keys(gateway: Gateway) -> Keys:
    """Made while the gateway runs: from the first key on, it asks for one."""
    store = KeyStore(default_keys_path(gateway.data_dir))
    try:
        made = [Key(*store.create(name, **limits)) for name, limits in (
            ("admin", {"admin": True}), ("plain", {}), ("local", {"tiers": ["slm"]}),
            ("routing", {"profiles": ["hybrid"]}), ("slow", {"requests_per_minute": 2}),
            ("thrifty", {"tokens_per_minute": 30}))]
    finally:
        store.close()
    return Keys(*made)


def client(gateway: Gateway, key: Key | str) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.base_url, api_key=key.secret if isinstance(key, Key) else key,
                         max_retries=0)


def ask(gateway: Gateway, key: Key | str, model: str = "hybrid") -> Any:
    with client(gateway, key) as openai_client:
        return openai_client.chat.completions.with_raw_response.create(model=model, messages=HI, max_tokens=2)


def refused_by(gateway: Gateway, err: openai.APIStatusError, status: int, code: str,
               key: Key | None = None) -> dict[str, Any]:
    """The refusal's status, OpenAI's error shape and its one log row (with the key it came with)."""
    return assert_refusal(gateway, err.response, status, code, key)


def assert_refusal(gateway: Gateway, reply: httpx.Response, status: int, code: str,
                   key: Key | None = None) -> dict[str, Any]:
    assert reply.status_code == status, reply.text
    error = reply.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["code"] == code and error["message"]
    row = gateway.row(reply.headers["x-hybridlm-request-id"])
    assert (row["status"], row["http_status"], row["error_code"]) == ("error", status, code)
    assert row["key_id"] == (key.key_id if key else None)
    return row


def rows_of(gateway: Gateway, key: Key) -> int:
    log = gateway.log()
    try:
        return sum(row["key_id"] == key.key_id for row in log.recent(1000))
    finally:
        log.close()


def test_a_request_without_a_key_is_refused(gateway: Gateway, keys: Keys) -> None:
    reply = httpx.post(gateway.base_url + "/chat/completions", json={"model": "hybrid", "messages": HI})
    assert_refusal(gateway, reply, 401, "invalid_api_key")
    assert reply.headers["www-authenticate"].startswith("Bearer")
    models = httpx.get(gateway.base_url + "/models")
    assert_refusal(gateway, models, 401, "invalid_api_key")


def test_a_wrong_key_is_refused(gateway: Gateway, keys: Keys) -> None:
    with pytest.raises(openai.AuthenticationError) as err:
        ask(gateway, keys.plain.secret + "x")
    refused_by(gateway, err.value, 401, "invalid_api_key")
    assert keys.plain.secret not in err.value.response.text


def test_a_key_is_served_and_its_row_names_it(gateway: Gateway, keys: Keys) -> None:
    raw = ask(gateway, keys.plain)
    row = gateway.row(raw.headers["x-hybridlm-request-id"])
    assert (row["status"], row["tier"], row["key_id"]) == ("ok", "slm", keys.plain.key_id)
    with client(gateway, keys.plain) as openai_client:
        assert "hybrid" in [m.id for m in openai_client.models.list()]


def test_a_key_revoked_from_the_cli_is_refused_by_the_running_gateway(
        gateway: Gateway, monkeypatch: pytest.MonkeyPatch) -> None:
    store = KeyStore(default_keys_path(gateway.data_dir))
    key = Key(*store.create("leaving"))
    store.close()
    ask(gateway, key)
    monkeypatch.setenv("HYBRIDLM_DATA_DIR", str(gateway.data_dir))
    revoke(key.key_id, config=None)
    with pytest.raises(openai.AuthenticationError) as err:
        ask(gateway, key)
    refused_by(gateway, err.value, 401, "invalid_api_key")


def test_a_key_may_force_only_its_tiers(gateway: Gateway, keys: Keys) -> None:
    with pytest.raises(openai.PermissionDeniedError) as err:
        ask(gateway, keys.local_only, model="llm")
    row = refused_by(gateway, err.value, 403, "tier_not_allowed", keys.local_only)
    assert row["tier"] is None and row["cost_usd"] == 0
    assert ask(gateway, keys.local_only, model="slm").headers["x-hybridlm-tier"] == "slm"


def test_a_key_may_use_only_its_profiles(gateway: Gateway, keys: Keys) -> None:
    with pytest.raises(openai.PermissionDeniedError) as err:
        ask(gateway, keys.plain_routing, model="hybrid/cheap")
    refused_by(gateway, err.value, 403, "model_not_allowed", keys.plain_routing)
    ask(gateway, keys.plain_routing, model="hybrid")


def test_a_key_over_its_requests_per_minute_is_told_when_to_retry(gateway: Gateway, keys: Keys) -> None:
    ask(gateway, keys.slow)
    ask(gateway, keys.slow)
    with pytest.raises(openai.RateLimitError) as err:
        ask(gateway, keys.slow)
    refused_by(gateway, err.value, 429, "rate_limit_exceeded", keys.slow)
    assert 1 <= int(err.value.response.headers["retry-after"]) <= 60
    assert rows_of(gateway, keys.slow) == 3


def test_concurrent_requests_of_a_key_cannot_overshoot_its_tokens_per_minute(gateway: Gateway, keys: Keys) -> None:
    """Four requests at once, each estimated at 24 tokens against a limit of 30: the first holds its estimate
    while it runs, so the others are refused rather than all let through on an empty window."""
    start = threading.Barrier(4)

    def one() -> httpx.Response:
        start.wait()
        return httpx.post(f"{gateway.base_url}/chat/completions", timeout=120,
                          headers={"authorization": f"Bearer {keys.thrifty.secret}"},
                          json={"model": "slm", "messages": HI, "max_tokens": 24})

    with ThreadPoolExecutor(4) as pool:
        replies = list(pool.map(lambda _: one(), range(4)))
    served = [r for r in replies if r.status_code == 200]
    assert len(served) == 1, [r.status_code for r in replies]
    for reply in replies:
        if reply.status_code != 200:
            assert_refusal(gateway, reply, 429, "rate_limit_exceeded", keys.thrifty)
    assert rows_of(gateway, keys.thrifty) == 4


def test_a_text_plain_body_is_refused(gateway: Gateway, keys: Keys) -> None:
    reply = httpx.post(gateway.base_url + "/chat/completions", content='{"model": "hybrid", "messages": []}',
                       headers={"content-type": "text/plain", "authorization": f"Bearer {keys.plain.secret}"})
    assert_refusal(gateway, reply, 415, "unsupported_media_type", keys.plain)


def dashboard(gateway: Gateway, key: Key | None, host: str | None = None, path: str = "/dashboard") -> httpx.Response:
    headers = {"authorization": f"Bearer {key.secret}"} if key else {}
    return httpx.get(gateway.url + path, headers={**headers, **({"host": host} if host else {})})


def test_the_dashboard_answers_only_to_its_own_host(gateway: Gateway, keys: Keys) -> None:
    # Checked before the key: a page that rebinds its name to this machine has none to send anyway.
    assert_refusal(gateway, dashboard(gateway, keys.admin, host="attacker.example"), 421, "host_not_allowed")
    assert dashboard(gateway, keys.admin, host=f"localhost:{gateway.port}").status_code == 200


def test_the_dashboard_needs_an_admin_key(gateway: Gateway, keys: Keys) -> None:
    assert_refusal(gateway, dashboard(gateway, None), 401, "invalid_api_key")
    assert_refusal(gateway, dashboard(gateway, keys.plain), 403, "admin_key_required", keys.plain)
    assert_refusal(gateway, dashboard(gateway, keys.plain, path="/dashboard/api/overview"), 403,
                   "admin_key_required", keys.plain)
    page = dashboard(gateway, keys.admin)
    assert page.status_code == 200 and "Recent requests" in page.text
    for path in ("/dashboard/api/overview", "/dashboard/api/requests", "/dashboard/api/lab"):
        data = dashboard(gateway, keys.admin, path=path)
        assert data.status_code == 200, data.text
        assert str(gateway.data_dir) not in data.text and "requests.db" not in data.text


def test_admin_keys_lists_keys_without_secrets(gateway: Gateway, keys: Keys) -> None:
    auth = {"authorization": f"Bearer {keys.admin.secret}"}
    listed = httpx.get(gateway.url + "/admin/keys", headers=auth)
    assert listed.status_code == 200
    assert {k["key_id"] for k in listed.json()["data"]} >= {keys.admin.key_id, keys.slow.key_id}
    assert not any(key.secret in listed.text for key in (keys.admin, keys.plain))
    assert "sha256" not in listed.text
    plain = httpx.get(gateway.url + "/admin/keys", headers={"authorization": f"Bearer {keys.plain.secret}"})
    assert_refusal(gateway, plain, 403, "admin_key_required", keys.plain)


def test_healthz_is_open_and_shows_no_paths(gateway: Gateway, keys: Keys) -> None:
    health = httpx.get(gateway.url + "/healthz")
    assert health.status_code == 200 and health.json()["tiers"]["slm"]["backend"] == "local"
    assert str(Path(gateway.data_dir).parent) not in health.text
    assert not any(key.secret in health.text for key in (keys.admin, keys.plain))
