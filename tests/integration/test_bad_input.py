"""Each kind of bad request against the running gateway: OpenAI-style error, right status, a log row."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.servers import (
    Gateway,
    free_port,
    hybrid_config,
    start_gateway,
    stop,
)

MAX_BODY = 200_000


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """An 'llm' tier on a port where nothing listens: a dead cloud."""
    config = hybrid_config(f"http://127.0.0.1:{free_port()}/v1")
    config["server"]["max_body_bytes"] = MAX_BODY
    gw = start_gateway(tmp_path_factory.mktemp("bad-input"), config)
    yield gw
    stop(gw.proc)


def post(gateway: Gateway, content: bytes | str, **headers: str) -> httpx.Response:
    body = content.encode() if isinstance(content, str) else content
    return httpx.post(gateway.base_url + "/chat/completions", content=body, timeout=60,
                      headers={"content-type": "application/json", **headers})


def assert_error(gateway: Gateway, reply: httpx.Response, status: int, code: str, param: str | None = None) -> dict:
    assert reply.status_code == status, reply.text
    error = reply.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["code"] == code
    assert error["message"]
    if param is not None:
        assert error["param"] == param
    row = gateway.row(reply.headers["x-hybridlm-request-id"])
    assert (row["status"], row["http_status"], row["error_code"]) == ("error", status, code)
    assert row["error"] == error["message"]
    return error


GOOD_MESSAGES = '[{"role": "user", "content": "hi"}]'


@pytest.mark.parametrize(
    ("body", "code", "param"),
    [
        ('{"model": "hybrid", "messages": [', "invalid_json", None),
        ("not json at all", "invalid_json", None),
        ('["a", "list"]', "invalid_json", None),
        ('{"model": "hybrid"}', "missing_required_parameter", "messages"),
        ('{"model": "hybrid", "messages": []}', "invalid_value", "messages"),
        ('{"model": "hybrid", "messages": "hello"}', "invalid_type", "messages"),
        ('{"model": "hybrid", "messages": [{"role": "wizard", "content": "hi"}]}', "invalid_type", "messages.0.role"),
        ('{"model": "hybrid", "messages": [{"role": "user", "content": 42}]}', "invalid_type", None),
        ('{"model": "hybrid", "messages": [{"role": "user", "content": "   "}]}', "empty_messages", "messages"),
        ('{"model": 7, "messages": ' + GOOD_MESSAGES + "}", "invalid_type", "model"),
        ('{"model": "hybrid", "stream": "yes", "messages": ' + GOOD_MESSAGES + "}", "invalid_type", "stream"),
        ('{"model": "hybrid", "max_tokens": "ten", "messages": ' + GOOD_MESSAGES + "}", "invalid_type", "max_tokens"),
        ('{"model": "hybrid", "max_tokens": -1, "messages": ' + GOOD_MESSAGES + "}", "invalid_value", "max_tokens"),
        ('{"model": "hybrid", "temperature": 9, "messages": ' + GOOD_MESSAGES + "}", "invalid_value", "temperature"),
    ],
)
def test_malformed_requests_get_400(gateway: Gateway, body: str, code: str, param: str | None) -> None:
    assert_error(gateway, post(gateway, body), 400, code, param)


ALARM = {"type": "function", "function": {"name": "set_alarm", "description": "Set an alarm",
                                          "parameters": {"type": "object", "properties": {"time": {"type": "string"}},
                                                         "required": ["time"]}}}
HI = [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize(
    ("fields", "code", "param"),
    [
        ({"tools": [{"type": "function", "function": {"description": "no name"}}]}, "invalid_value",
         "tools[0].function.name"),
        ({"tools": [{"type": "function", "function": {"name": "f", "parameters": "an object, please"}}]},
         "invalid_value", "tools[0].function.parameters"),
        ({"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {},
                                                                                   "required": ["x"]}}}]},
         "invalid_value", "tools[0].function.parameters.required"),
        ({"tools": "set_alarm"}, "invalid_value", "tools"),
        ({"tools": [ALARM], "tool_choice": {"type": "function", "function": {"name": "play_music"}}}, "invalid_value",
         "tool_choice"),
        ({"tool_choice": "required"}, "invalid_value", "tool_choice"),
        ({"response_format": {"type": "json_schema", "json_schema": {"name": "x",
                                                                       "schema": {"$ref": "http://example.com/x"}}}},
         "invalid_schema", "response_format"),
        ({"response_format": {"type": "yaml"}}, "invalid_value", "response_format.type"),
        ({"messages": [*HI, {"role": "tool", "tool_call_id": "call_1", "content": "42"}]}, "invalid_value",
         "messages[1].tool_call_id"),
        ({"messages": [*HI, {"role": "assistant", "tool_calls": [{"id": "call_1", "type": "function",
                                                                  "function": {"name": "f", "arguments": "{oops"}}]}]},
         "invalid_value", "messages[1].tool_calls[0].function.arguments"),
    ],
)
def test_malformed_tool_and_format_fields_get_400(gateway: Gateway, fields: dict, code: str, param: str) -> None:
    body = {"model": "hybrid", "messages": HI, **fields}
    assert_error(gateway, post(gateway, json.dumps(body)), 400, code, param)


def test_unknown_model_gets_404(gateway: Gateway) -> None:
    error = assert_error(gateway, post(gateway, '{"model": "gpt-17", "messages": ' + GOOD_MESSAGES + "}"),
                         404, "model_not_found", "model")
    assert "hybrid" in error["message"]  # says what would work


def test_unknown_profile_gets_404(gateway: Gateway) -> None:
    error = assert_error(gateway, post(gateway, '{"model": "hybrid/turbo", "messages": ' + GOOD_MESSAGES + "}"),
                         404, "model_not_found", "model")
    assert "unknown profile 'turbo'" in error["message"]


def test_oversized_body_gets_413(gateway: Gateway) -> None:
    huge = '{"model": "hybrid", "messages": [{"role": "user", "content": "' + "a" * (MAX_BODY + 10) + '"}]}'
    assert_error(gateway, post(gateway, huge), 413, "request_too_large")


def test_message_longer_than_the_context_gets_400_after_fallback(gateway: Gateway) -> None:
    text = "please analyze this log line in detail. " * 3000  # ~120 kB: inside the body limit, far over 2048 tokens
    reply = post(gateway, '{"model": "hybrid", "messages": [{"role": "user", "content": "' + text + '"}]}')
    assert_error(gateway, reply, 400, "context_length_exceeded")
    row = gateway.row(reply.headers["x-hybridlm-request-id"])
    assert (row["routed_tier"], row["tier"], row["fallback"]) == ("llm", "slm", "llm_unavailable")


def test_forced_dead_upstream_gets_503(gateway: Gateway) -> None:
    reply = post(gateway, '{"model": "llm", "messages": ' + GOOD_MESSAGES + "}")
    error = assert_error(gateway, reply, 503, "upstream_unavailable")
    assert "cannot reach upstream" in error["message"]


def test_dead_upstream_streaming_falls_back(gateway: Gateway) -> None:
    body = ('{"model": "hybrid", "stream": true, "max_tokens": 6, "messages": [{"role": "user", "content": '
            '"Analyze and compare these options step by step in detail."}]}')
    with httpx.stream("POST", gateway.base_url + "/chat/completions", content=body, timeout=60,
                      headers={"content-type": "application/json"}) as reply:
        assert reply.status_code == 200
        assert reply.headers["x-hybridlm-fallback"] == "llm_unavailable"
        lines = [line for line in reply.iter_lines() if line.startswith("data: ")]
    assert lines[-1] == "data: [DONE]"
    assert gateway.row(reply.headers["x-hybridlm-request-id"])["fallback"] == "llm_unavailable"


def test_wrong_method_and_path_use_openai_error_shape(gateway: Gateway) -> None:
    wrong_method = httpx.get(gateway.base_url + "/chat/completions")
    assert wrong_method.status_code == 405
    assert wrong_method.json()["error"]["code"] == "method_not_allowed"
    missing = httpx.get(gateway.base_url + "/nothing-here")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"


def test_broken_config_refuses_to_start_with_a_clear_message(tmp_path: Path) -> None:
    import subprocess
    import sys

    bad = tmp_path / "hybridlm.yaml"
    bad.write_text("tiers:\n  slm: {backend: local}\nrouter:\n  threshold: high\n")
    proc = subprocess.run([sys.executable, "-m", "hybridlm", "serve", "--config", str(bad)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "router.threshold" in proc.stderr and str(bad) in proc.stderr.replace("\n", "")
    assert "Traceback" not in proc.stderr


def test_a_fallback_to_the_local_tier_keeps_the_response_format(gateway: Gateway) -> None:
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"],
              "additionalProperties": False}
    body = {"model": "hybrid", "max_tokens": 32, "messages": [{"role": "user", "content": (
        "Analyze and compare these options step by step in detail, then answer in JSON.")}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "verdict", "schema": schema}}}
    reply = post(gateway, json.dumps(body))
    assert reply.status_code == 200, reply.text
    meta = reply.json()["hybridlm"]
    assert (meta["routed_tier"], meta["tier"], meta["fallback"]) == ("llm", "slm", "llm_unavailable")
    assert set(json.loads(reply.json()["choices"][0]["message"]["content"])) == {"ok"}
