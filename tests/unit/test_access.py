"""The key store, permissions, rate limits and the exposure rule, without a server."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hybridlm.access.exposure import is_loopback, open_exposure
from hybridlm.access.keys import KeyStore, UnknownKey, default_keys_path
from hybridlm.access.permissions import check_allowed
from hybridlm.access.rate_limits import RateLimits
from hybridlm.cli import app
from hybridlm.failures import APIError
from hybridlm.request import Caller
from hybridlm.server.access import host_name
from hybridlm.server.health import without_paths
from hybridlm.targets import Target


@pytest.fixture
def keys_path(isolated_env: Path) -> Path:
    return default_keys_path(isolated_env)


def test_the_store_keeps_a_hash_never_the_secret(keys_path: Path) -> None:
    store = KeyStore(keys_path)
    key_id, secret = store.create("alice", tiers=["slm"], requests_per_minute=5)
    store.close()
    assert secret.startswith("hlm-") and len(secret) > 40
    assert secret.encode() not in keys_path.read_bytes()
    with sqlite3.connect(keys_path) as db:
        (stored,) = db.execute("SELECT secret_sha256 FROM keys WHERE key_id = ?", (key_id,)).fetchone()
    assert len(stored) == 64 and secret not in stored
    caller = KeyStore(keys_path).lookup(secret)
    assert caller == Caller(key_id, "alice", tiers=("slm",), requests_per_minute=5)


def test_list_shows_no_secret_and_lookup_refuses_what_it_does_not_know(keys_path: Path) -> None:
    store = KeyStore(keys_path)
    assert not store.active()
    key_id, secret = store.create("ops", admin=True, profiles=["hybrid", "rag"])
    [info] = store.list()
    shown = str(info.as_dict())
    assert info.caller.key_id == key_id and info.caller.admin and info.caller.profiles == ("hybrid", "rag")
    assert secret not in shown and "sha256" not in shown
    assert store.active()
    assert store.lookup(secret + "x") is None
    assert store.lookup("") is None


def test_a_revoke_in_another_process_reaches_a_store_that_cached_the_key(keys_path: Path) -> None:
    serving, cli = KeyStore(keys_path), KeyStore(keys_path)
    key_id, secret = serving.create("bob")
    assert serving.lookup(secret) is not None  # now cached
    cli.revoke(key_id)
    assert serving.lookup(secret) is None
    assert not serving.active()
    cli.revoke(key_id)  # a second revoke is no error
    with pytest.raises(UnknownKey):
        cli.revoke("key-000000000000")


@pytest.mark.parametrize(
    ("caller", "target", "code"),
    [
        (None, Target("llm", None, 0.5), None),
        (Caller("k", "n", tiers=("slm",)), Target("slm", None, 0.5), None),
        (Caller("k", "n", tiers=("slm",)), Target("llm", None, 0.5), "tier_not_allowed"),
        (Caller("k", "n", tiers=("slm",)), Target(None, None, 0.5), None),  # routed: policy, not refused here
        (Caller("k", "n", profiles=("hybrid",)), Target(None, None, 0.5), None),
        (Caller("k", "n", profiles=("hybrid",)), Target(None, "cheap", 0.7), "model_not_allowed"),
        (Caller("k", "n", profiles=("rag",)), Target(None, "rag", 0.5), None),
    ],
)
def test_check_allowed(caller: Caller | None, target: Target, code: str | None) -> None:
    if code is None:
        check_allowed(caller, target)
        return
    with pytest.raises(APIError) as refused:
        check_allowed(caller, target)
    assert (refused.value.status, refused.value.code, refused.value.param) == (403, code, "model")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_requests_per_minute_refuse_with_the_wait_until_the_oldest_leaves() -> None:
    clock, caller = Clock(), Caller("k", "n", requests_per_minute=2)
    limits = RateLimits(clock)
    limits.admit(caller, 10)
    clock.now += 20
    limits.admit(caller, 10)
    clock.now += 10
    with pytest.raises(APIError) as refused:
        limits.admit(caller, 10)
    assert (refused.value.status, refused.value.code) == (429, "rate_limit_exceeded")
    assert refused.value.headers == {"retry-after": "30"}
    clock.now += 30  # the first request leaves the window
    limits.admit(caller, 10)
    limits.admit(None, 10**9)  # no key, no limit


def test_tokens_per_minute_count_what_was_used() -> None:
    clock, caller = Clock(), Caller("k", "n", tokens_per_minute=1000)
    limits = RateLimits(clock)
    held = limits.admit(caller, 600)
    limits.settle("k", 900, held)  # it used more than estimated: that is what counts
    clock.now += 5
    with pytest.raises(APIError) as refused:
        limits.admit(caller, 200)
    assert refused.value.headers == {"retry-after": "55"}
    held = limits.admit(caller, 100)
    limits.settle("k", 50, held)
    limits.settle("other", 10**6)  # a key without a token limit is not tracked
    clock.now += 60
    held = limits.admit(caller, 5000)  # more than the whole limit: let through once the window is empty
    limits.settle("k", 5000, held)
    with pytest.raises(APIError):
        limits.admit(caller, 1)


def test_tokens_per_minute_hold_running_requests_estimates() -> None:
    """Concurrent requests of one key are judged with the estimates of those still running."""
    clock, caller = Clock(), Caller("k", "n", tokens_per_minute=1000)
    limits = RateLimits(clock)
    first = limits.admit(caller, 600)  # running: its 600 are held
    assert first == 600
    with pytest.raises(APIError) as refused:
        limits.admit(caller, 600)  # would fit against what was settled (nothing), not with the first running
    assert refused.value.headers == {"retry-after": "1"}  # nothing settled leaves: only running ones stand in the way
    limits.settle("k", 100, first)  # it used 100: the hold becomes what it used
    second = limits.admit(caller, 600)
    with pytest.raises(APIError):
        limits.admit(caller, 400)  # 100 used + 600 held + 400 > 1000
    limits.settle("k", 0, second)  # failed before using any
    assert limits.admit(caller, 900) == 900
    assert limits.admit(Caller("u", "n", requests_per_minute=5), 10) == 0  # no token limit: nothing held
    assert limits.admit(None, 10) == 0


@pytest.mark.parametrize(("host", "loopback"), [("127.0.0.1", True), ("127.1.2.3", True), ("::1", True),
                                                ("[::1]", True), ("localhost", True), ("0.0.0.0", False),
                                                ("::", False), ("192.168.1.5", False), ("gateway.lan", False)])
def test_loopback_hosts(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback
    assert (open_exposure(host, keys_active=False, allow_open=False) is None) is loopback
    assert open_exposure(host, keys_active=True, allow_open=False) is None
    assert open_exposure(host, keys_active=False, allow_open=True) is None


def test_serve_refuses_an_open_non_loopback_address_before_loading_anything() -> None:
    result = CliRunner().invoke(app, ["serve", "--host", "0.0.0.0"])
    assert result.exit_code == 2
    message = " ".join(result.output.split())
    assert "hybridlm keys create" in message and "--allow-open" in message and "server.allow_open" in message


@pytest.mark.parametrize(("header", "name"), [("localhost:8000", "localhost"), ("[::1]:8000", "[::1]"),
                                              ("Example.COM", "example.com"), ("127.0.0.1", "127.0.0.1")])
def test_host_name_drops_the_port(header: str, name: str) -> None:
    assert host_name(header) == name


def test_healthz_values_lose_their_paths_but_keep_urls() -> None:
    described = {"note": "model-x is not available ([Errno 2] No such file: '/home/me/models/x.gguf'); serving y",
                 "url": "http://127.0.0.1:8080/v1", "upstreams": [{"path": "C:\\models\\a.gguf"}], "n": 3}
    assert without_paths(described) == {"note": "model-x is not available ([Errno 2] No such file: 'x.gguf'); "
                                                 "serving y",
                                        "url": "http://127.0.0.1:8080/v1", "upstreams": [{"path": "a.gguf"}], "n": 3}
