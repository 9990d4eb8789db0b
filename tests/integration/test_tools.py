"""Function calls and structured output through the gateway, with the official openai client.

The local tier is the catalogued Qwen2.5-Coder-0.5B, because here behaviour depends on the model;
the stand-in cloud is the llama.cpp server with SmolLM2, which makes calls when a request names
the function (its grammar does the rest).
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import openai
import pytest

from hybridlm.models.catalogue import DEFAULT_LOCAL_MODEL
from tests.integration.servers import Gateway, Upstream, hybrid_config, start_gateway, stop

ALARM = {"type": "function", "function": {
    "name": "set_alarm", "description": "Set an alarm at a time of day.",
    "parameters": {"type": "object", "properties": {
        "time": {"type": "string", "description": "The time, HH:MM in 24-hour format."},
        "label": {"type": "string", "description": "What the alarm is for."}}, "required": ["time"]}}}
MUSIC = {"type": "function", "function": {
    "name": "play_music", "description": "Play music by an artist.",
    "parameters": {"type": "object", "properties": {"artist": {"type": "string"}}, "required": ["artist"]}}}
WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "The weather forecast for a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
SET_ALARM = [{"role": "user", "content": "Set an alarm for 7:30 please."}]


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """No LLM tier at all: everything the gateway does here, it does offline."""
    config = {"tiers": {"slm": {"backend": "local", "model": DEFAULT_LOCAL_MODEL}}, "server": {"default_max_tokens": 96}}
    gw = start_gateway(tmp_path_factory.mktemp("tools-local"), config)
    yield gw
    stop(gw.proc)


@pytest.fixture(scope="module")
def hybrid(upstream: Upstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    config = hybrid_config(upstream.base_url, slm_model=DEFAULT_LOCAL_MODEL)
    config["router"] = {"tools": {"max_local_tools": 2}}
    config["server"]["default_max_tokens"] = 96
    gw = start_gateway(tmp_path_factory.mktemp("tools-hybrid"), config)
    yield gw
    stop(gw.proc)


def client(gateway: Gateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.base_url, api_key="unused", max_retries=0)


def test_a_tool_call_is_made_locally_with_no_llm_configured(local: Gateway) -> None:
    raw = client(local).chat.completions.with_raw_response.create(model="hybrid", messages=SET_ALARM,
                                                                  tools=[ALARM, MUSIC])
    reply = raw.parse()
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    (call,) = choice.message.tool_calls
    assert call.type == "function" and call.id.startswith("call_")
    assert call.function.name == "set_alarm"
    assert json.loads(call.function.arguments)["time"] in ("07:30", "7:30")
    meta = reply.model_extra["hybridlm"]
    assert (meta["tier"], meta["router"]) == ("slm", "tools")
    assert "draft verifier score" in meta["reason"]
    assert meta["fallback"] in (None, "llm_unavailable")  # a doubted draft has no LLM to go to: kept, marked
    row = local.row(raw.headers["x-hybridlm-request-id"])
    assert (row["status"], row["tier"]) == ("ok", "slm")


def test_a_streamed_tool_call_arrives_as_openai_deltas(local: Gateway) -> None:
    chunks = list(client(local).chat.completions.create(model="slm", messages=SET_ALARM, tools=[ALARM], stream=True))
    deltas = [c.choices[0].delta for c in chunks if c.choices and c.choices[0].delta.tool_calls]
    first = deltas[0].tool_calls[0]
    assert (first.index, first.function.name, first.type) == (0, "set_alarm", "function") and first.id
    arguments = "".join(d.tool_calls[0].function.arguments or "" for d in deltas)
    assert json.loads(arguments)["time"] in ("07:30", "7:30")
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["tool_calls"]


def test_tool_choice_none_required_and_named(local: Gateway) -> None:
    api = client(local)
    none = api.chat.completions.create(model="slm", messages=SET_ALARM, tools=[ALARM], tool_choice="none")
    assert not none.choices[0].message.tool_calls and none.choices[0].message.content
    assert none.choices[0].finish_reason in ("stop", "length")

    required = api.chat.completions.create(model="slm", messages=[{"role": "user", "content": "Hello there"}],
                                           tools=[ALARM, MUSIC], tool_choice="required")
    assert required.choices[0].message.tool_calls
    assert {c.function.name for c in required.choices[0].message.tool_calls} <= {"set_alarm", "play_music"}

    named = api.chat.completions.create(model="slm", messages=SET_ALARM, tools=[ALARM, MUSIC],
                                        tool_choice={"type": "function", "function": {"name": "play_music"}})
    calls = named.choices[0].message.tool_calls
    assert calls and {c.function.name for c in calls} == {"play_music"}
    assert "artist" in json.loads(calls[0].function.arguments)  # required arguments are always there


def test_a_question_no_tool_fits_is_answered_in_words(local: Gateway) -> None:
    reply = client(local).chat.completions.create(
        model="slm", messages=[{"role": "user", "content": "What is the capital of France?"}], tools=[ALARM])
    assert not reply.choices[0].message.tool_calls
    assert "paris" in (reply.choices[0].message.content or "").lower()


def test_a_multi_turn_exchange_with_tool_results(local: Gateway) -> None:
    messages = [
        {"role": "user", "content": "What's the weather in Lisbon?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Lisbon"}'}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": '{"forecast": "sunny", "high_c": 24}'},
    ]
    reply = client(local).chat.completions.create(model="slm", messages=messages, tools=[WEATHER], tool_choice="none",
                                                  max_tokens=48)
    text = (reply.choices[0].message.content or "").lower()
    assert "sunny" in text or "24" in text


def test_json_schema_answers_validate(local: Gateway) -> None:
    schema = {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"},
                                               "tags": {"type": "array", "items": {"type": "string"}}},
              "required": ["name", "age", "tags"], "additionalProperties": False}
    api = client(local)
    reply = api.chat.completions.create(
        model="slm", messages=[{"role": "user", "content": "Make up a customer called Ann, aged 31, with two tags."}],
        response_format={"type": "json_schema", "json_schema": {"name": "customer", "schema": schema, "strict": True}})
    data = json.loads(reply.choices[0].message.content or "")
    assert set(data) == {"name", "age", "tags"}
    assert isinstance(data["age"], int) and all(isinstance(t, str) for t in data["tags"])

    any_object = list(api.chat.completions.create(
        model="slm", messages=[{"role": "user", "content": "Paris: its country and population, as JSON."}],
        response_format={"type": "json_object"}, stream=True, max_tokens=200))
    text = "".join(c.choices[0].delta.content or "" for c in any_object if c.choices)
    finish = [c.choices[0].finish_reason for c in any_object if c.choices and c.choices[0].finish_reason]
    assert finish == ["stop"]  # within max_tokens the grammar closes every object it opens
    assert isinstance(json.loads(text), dict)


def test_forced_llm_tier_relays_the_upstreams_tool_calls(hybrid: Gateway) -> None:
    api = client(hybrid)
    named = {"type": "function", "function": {"name": "get_weather"}}
    reply = api.chat.completions.create(model="llm", messages=[{"role": "user", "content": "Weather in Oslo?"}],
                                        tools=[WEATHER], tool_choice=named)
    (call,) = reply.choices[0].message.tool_calls
    assert call.function.name == "get_weather" and "city" in json.loads(call.function.arguments)
    assert reply.model_extra["hybridlm"]["tier"] == "llm"

    chunks = list(api.chat.completions.create(model="llm", messages=[{"role": "user", "content": "Weather in Oslo?"}],
                                              tools=[WEATHER], tool_choice=named, stream=True))
    deltas = [c.choices[0].delta.tool_calls[0] for c in chunks if c.choices and c.choices[0].delta.tool_calls]
    assert deltas[0].function.name == "get_weather"
    assert "city" in json.loads("".join(d.function.arguments or "" for d in deltas))


def test_a_request_for_several_steps_goes_to_the_llm_and_its_call_is_relayed(hybrid: Gateway) -> None:
    raw = client(hybrid).chat.completions.with_raw_response.create(
        model="hybrid", messages=[{"role": "user", "content": "Check the weather in Oslo, then set an alarm for 7."}],
        tools=[ALARM, MUSIC, WEATHER], tool_choice={"type": "function", "function": {"name": "get_weather"}})
    reply = raw.parse()
    meta = reply.model_extra["hybridlm"]
    assert (meta["tier"], meta["router"]) == ("llm", "tools")
    assert "several_steps" in meta["reason"]
    assert reply.choices[0].message.tool_calls[0].function.name == "get_weather"
    assert hybrid.row(raw.headers["x-hybridlm-request-id"])["tier"] == "llm"
