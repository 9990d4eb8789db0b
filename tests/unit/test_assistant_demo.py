"""The assistant demo's judging of outcomes, its data file, and its totals, without a model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hybridlm.config import parse_config
from hybridlm.demo.assistant import (
    AssistantDataError,
    AssistantResult,
    Expectation,
    Kind,
    Outcome,
    argument_matches,
    escalation,
    judge,
    load_assistant_data,
    normalise,
    room_for_tools,
    write_assistant_report,
)
from hybridlm.pipeline import LLM_UNAVAILABLE
from hybridlm.types import Decision, ToolCall, Trace


def call(name: str, **arguments: object) -> ToolCall:
    return ToolCall("call_1", name, json.dumps(arguments))


ALARM = Expectation("call", "set_alarm", {"time": "06:45"})


@pytest.mark.parametrize(("actual", "expected"), [
    ("6:45", "06:45"), ("06:45", "6:45"), (10, "10"), (10.0, 10), ("10", 10), ("Paris", "paris"),
    ("I'm running late.", "I'm running late"), ("  Taylor   Swift ", "taylor swift"),
])
def test_arguments_match_after_light_normalisation(actual: object, expected: object) -> None:
    assert argument_matches(actual, expected)


@pytest.mark.parametrize(("actual", "expected"), [
    ("6:45", "18:45"), ("07:30", "06:45"), (10.5, 10), ("Paris", "London"), ("tomorrow", "today"),
])
def test_different_values_do_not_match(actual: object, expected: object) -> None:
    assert not argument_matches(actual, expected)


def test_a_list_gives_the_accepted_values() -> None:
    assert argument_matches("tomorrow 5pm", ["tomorrow at 5pm", "tomorrow 5pm"])
    assert not argument_matches("next week", ["tomorrow at 5pm", "tomorrow 5pm"])


def test_normalise_keeps_times_and_numbers_apart_from_text() -> None:
    assert normalise("6:45") == "06:45"
    assert normalise("25") == 25.0
    assert normalise(True) is True
    assert normalise("Call MUM!") == "call mum"


def test_a_call_is_right_with_the_expected_function_and_named_arguments() -> None:
    assert judge(ALARM, [call("set_alarm", time="6:45")], escalated=False)
    assert judge(ALARM, [call("set_alarm", time="06:45", label="wake up")], escalated=False)  # unnamed: not judged
    assert judge(Expectation("call", "set_timer", {"minutes": 10}), [call("set_timer", minutes=10.0)], False)


def test_a_call_is_wrong_with_another_function_a_wrong_or_missing_value_or_extra_calls() -> None:
    assert not judge(ALARM, [call("set_timer", minutes=6)], escalated=False)
    assert not judge(ALARM, [call("set_alarm", time="07:45")], escalated=False)
    assert not judge(ALARM, [call("set_alarm", label="6:45")], escalated=False)
    assert not judge(ALARM, [call("set_alarm", time="06:45"), call("play_music", genre="jazz")], escalated=False)
    assert not judge(ALARM, [], escalated=False)
    assert not judge(ALARM, [ToolCall("call_1", "set_alarm", "not json")], escalated=False)


def test_words_are_right_without_a_call_and_cloud_when_escalated() -> None:
    assert judge(Expectation("words"), [], escalated=False)
    assert not judge(Expectation("words"), [call("set_alarm", time="06:45")], escalated=False)
    assert judge(Expectation("cloud"), [call("plan_trip", destination="Japan", days=5)], escalated=True)
    assert not judge(Expectation("cloud"), [call("plan_trip", destination="Japan", days=5)], escalated=False)


def test_the_bundled_data_offers_the_assistants_functions_and_starts_with_plain_calls() -> None:
    data = load_assistant_data()
    names = {tool["function"]["name"] for tool in data.tools}
    assert {"set_alarm", "set_timer", "add_reminder", "play_music", "send_message", "call_contact", "get_weather",
            "plan_trip", "web_search"} <= names
    assert len(data.requests) >= 25
    assert {r.expect.kind for r in data.requests} == {"call", "words", "cloud"}
    assert data.requests[0].expect == ALARM
    assert all(r.expect.kind == "call" for r in data.requests[:6])


def test_an_expected_call_of_a_function_not_on_offer_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "assistant.yaml"
    path.write_text("tools:\n  - {type: function, function: {name: set_alarm}}\n"
                    "requests:\n  - {text: play jazz, expect: {call: play_music}}\n", encoding="utf-8")
    with pytest.raises(AssistantDataError, match="play_music"):
        load_assistant_data(path)


def test_the_demo_makes_room_for_its_functions_unless_the_config_says_otherwise() -> None:
    assert room_for_tools(parse_config({}), 9).router.tools.max_local_tools == 9
    own = parse_config({"router": {"tools": {"max_local_tools": 4}}})
    assert room_for_tools(own, 9).router.tools.max_local_tools == 4


def _trace(tier: str, draft: bool, features: dict[str, float], fallback: str | None = None) -> Trace:
    trace = Trace(decision=Decision(tier, 1.0, 0.5, "tools: ...", "tools", features, draft=draft), tier=tier)
    trace.fallback = fallback
    return trace


def test_escalations_are_named_by_their_main_reason() -> None:
    assert escalation(_trace("llm", False, {"several_steps": 1.0, "many_tools": 0.0}), "llm") == \
        "straight: several_steps"
    assert escalation(_trace("slm", True, {"doubt": 5.1, "poor_fit": 1.4}, LLM_UNAVAILABLE), None) == "verifier: doubt"
    assert escalation(_trace("slm", True, {"doubt": 0.1}), None) is None


def _outcome(expect: Kind, right: bool, escalated: bool, latency: float) -> Outcome:
    route = {"tier": "slm", "routed_tier": "slm", "fallback": LLM_UNAVAILABLE if escalated else None,
             "reason": "tools: ...", "latency_ms": latency}
    return Outcome("a request", expect, "", (), route, "straight: several_steps" if escalated else None, right)


def test_totals_add_up_and_the_report_has_a_row_per_request(tmp_path: Path) -> None:
    result = AssistantResult([_outcome("call", True, False, 100), _outcome("call", False, False, 200),
                              _outcome("words", True, False, 300), _outcome("cloud", True, True, 400)],
                             remote=None, max_local_tools=9)
    totals = result.summary()
    assert totals["requests"] == 4
    assert totals["decided_locally"] + totals["escalated"] == 4
    assert totals["escalated_fell_back"] == 1
    assert totals["local_accuracy"] == round(2 / 3, 4)
    assert totals["accuracy_call"] == 0.5 and totals["accuracy_words"] == 1.0 and totals["accuracy_cloud"] == 1.0
    assert totals["escalation_reasons"] == {"straight: several_steps": 1}
    assert totals["latency_p50_ms"] == 250.0
    report = write_assistant_report(result, tmp_path).read_text(encoding="utf-8")
    assert report.count("| a request |") == 4
