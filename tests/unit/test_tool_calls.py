"""Function-calling logic without a model: request checks, grammars, parsing and tidying, grounding."""

from __future__ import annotations

import json

import pytest

from hybridlm.tools.grammar import CALL_CLOSE, GrammarError, call_grammar, response_grammar
from hybridlm.tools.grounding import Evidence, ground_call
from hybridlm.tools.parsing import complete_blocks, parse_block, tidy
from hybridlm.tools.protocol import (
    ToolRequestError,
    check_tool_turns,
    parse_response_format,
    parse_tools,
)

ALARM = {"type": "function", "function": {
    "name": "set_alarm", "description": "Set an alarm.",
    "parameters": {"type": "object", "properties": {"time": {"type": "string"}, "label": {"type": "string"},
                                                    "volume": {"type": "number"}}, "required": ["time"]}}}
MUSIC = {"type": "function", "function": {"name": "play_music", "parameters": {
    "type": "object", "properties": {"artist": {"type": "string"}}}}}


def test_tool_fields_become_one_value_and_keep_what_the_client_sent() -> None:
    request = parse_tools([ALARM, MUSIC], {"type": "function", "function": {"name": "play_music"}}, False)
    assert request is not None
    assert [f.name for f in request.functions] == ["set_alarm", "play_music"]
    assert (request.named, request.must_call, request.parallel) == ("play_music", True, False)
    assert [f.name for f in request.offered()] == ["play_music"]
    assert request.raw == {"tools": [ALARM, MUSIC], "tool_choice": {"type": "function", "function": {"name": "play_music"}},
                           "parallel_tool_calls": False}
    assert parse_tools(None) is None
    assert parse_tools([ALARM]).choice == "auto"  # type: ignore[union-attr]


def test_best_first_moves_only_the_best_scored_function() -> None:
    third = {"type": "function", "function": {"name": "call_contact"}}
    request = parse_tools([ALARM, MUSIC, third])
    assert request is not None
    assert [f.name for f in request.best_first([0.1, 0.2, 0.7]).functions] == ["call_contact", "set_alarm",
                                                                                "play_music"]


@pytest.mark.parametrize(("tools", "choice", "param"), [
    ([{"type": "function", "function": {}}], None, "tools[0].function.name"),
    ([{"type": "function", "function": {"name": "has space"}}], None, "tools[0].function.name"),
    ([{"type": "retrieval"}], None, "tools[0].type"),
    ([ALARM, ALARM], None, "tools"),
    ([], None, "tools"),
    ([ALARM], "sometimes", "tool_choice"),
    ([ALARM], {"type": "function", "function": {"name": "nope"}}, "tool_choice"),
    (None, "required", "tool_choice"),
])
def test_bad_tool_fields_name_the_field(tools: object, choice: object, param: str) -> None:
    with pytest.raises(ToolRequestError) as err:
        parse_tools(tools, choice)
    assert err.value.param == param


def test_tool_turns_must_answer_a_call_made_before_them() -> None:
    call = {"id": "call_1", "type": "function", "function": {"name": "set_alarm", "arguments": '{"time": "07:00"}'}}
    good = [{"role": "user", "content": "x"}, {"role": "assistant", "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "call_1", "content": "done"}]
    check_tool_turns(good)
    with pytest.raises(ToolRequestError, match="answers no earlier"):
        check_tool_turns([good[0], good[2]])
    with pytest.raises(ToolRequestError, match="without a 'tool_call_id'"):
        check_tool_turns([good[0], {"role": "tool", "content": "done"}])


def test_response_format_kinds() -> None:
    assert parse_response_format({"type": "text"}) is None
    assert parse_response_format({"type": "json_object"}).kind == "json_object"  # type: ignore[union-attr]
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    fmt = parse_response_format({"type": "json_schema", "json_schema": {"name": "x", "schema": schema, "strict": True}})
    assert fmt is not None and (fmt.kind, fmt.schema, fmt.strict) == ("json_schema", schema, True)
    with pytest.raises(ToolRequestError):
        parse_response_format({"type": "json_schema", "json_schema": {"name": "x"}})


def test_grammars_name_only_offered_functions_and_refuse_schemas_they_cannot_hold() -> None:
    request = parse_tools([ALARM, MUSIC])
    assert request is not None
    grammar = call_grammar(request.functions, parallel=True)
    assert '\\"set_alarm\\"' in grammar and '\\"play_music\\"' in grammar
    assert grammar.startswith("root ::= call (")  # several calls allowed
    assert not call_grammar(request.functions, parallel=False).startswith("root ::= call (")
    assert "\\x00-\\x1F" in grammar  # no raw control characters inside strings
    fmt = parse_response_format({"type": "json_schema", "json_schema": {"schema": {"$ref": "http://x.test/s"}}})
    assert fmt is not None
    with pytest.raises(GrammarError):
        response_grammar(fmt)


def test_blocks_are_parsed_and_tidied() -> None:
    text = ('{"name": "set_alarm", "arguments": {"time": "07:30", "label": "gym", "volume": 3}}\n</tool_call>\n'
            '<tool_call>\n{"name": "set_alarm", "arguments": {"time": "07:30"')
    blocks = complete_blocks(text)
    assert len(blocks) == 1  # the second one is cut short
    call = parse_block(blocks[0])
    assert call == ("set_alarm", {"time": "07:30", "label": "gym", "volume": 3})
    request = parse_tools([ALARM])
    assert request is not None
    messages = [{"role": "user", "content": "Alarm at 7:30, volume 3"}]
    name, arguments = tidy(call, request, messages)
    assert name == "set_alarm"
    assert arguments == {"time": "07:30", "volume": 3.0}  # 'gym' was never said; a number is a float
    assert json.dumps(arguments["volume"]) == "3.0"
    assert parse_block("not json" + CALL_CLOSE) is None


def test_grounding_finds_numbers_words_and_clock_times() -> None:
    evidence = Evidence.of("Wake me at 10pm, then text Sam I'm 15% late, twice.")
    assert evidence.has_number(0.15) and evidence.has_number(15) and evidence.has_number(2)
    with_units = Evidence.of("Two charges of 5C and 7C, 100µF, a 1kg block at 0°C on 2024-03-05, 3 meters apart")
    assert all(with_units.has_number(n) for n in (5, 7, 100, 1, 0, 3, 2024))
    assert not with_units.has_number(3e6) and not with_units.has_number(8)
    said = Evidence.of("Remove their social security numbers; the forecast for next month")
    assert said.has_text("ssn") and said.has_number(1) and not said.has_text("passport")
    assert evidence.has_text("22:00") and evidence.has_text("Sam") and not evidence.has_text("Priya")
    request = parse_tools([ALARM])
    assert request is not None
    alarm = request.functions[0]
    made_up = ground_call(alarm, {"time": "14:30", "label": "lunch"}, [{"role": "user", "content": "Capital of France?"}])
    assert made_up.required_missing == ("time",) and made_up.optional_missing == ("label",)
    said = ground_call(alarm, {"time": "06:45"}, [{"role": "user", "content": "wake me up at 6:45"}])
    assert said.required_missing == () and said.share_found == 1.0


def test_periods_and_frequencies_stand_for_their_counts() -> None:
    said = Evidence.of("Movies near LA for the next week, compounded quarterly")
    assert said.has_number(7) and said.has_number(4) and not said.has_number(12)


INVEST = {"type": "function", "function": {"name": "invest", "parameters": {"type": "object", "properties": {
    "rate": {"type": "number", "description": "The annual interest rate."},
    "rate_pct": {"type": "number", "description": "The same rate as a percentage."},
    "years": {"type": "number"}}, "required": ["rate", "rate_pct", "years"]}}}


def test_a_rate_said_in_per_cent_is_written_as_its_parameter_describes_it() -> None:
    request = parse_tools([INVEST])
    assert request is not None
    messages = [{"role": "user", "content": "Invest at 5% a year for 5 years"}]
    assert tidy(("invest", {"rate": 5, "rate_pct": 0.05, "years": 5}), request, messages)[1] == {
        "rate": 0.05, "rate_pct": 5.0, "years": 5.0}  # years is 5 too, but no rate: not said in per cent
    assert tidy(("invest", {"rate": 0.05, "rate_pct": 5, "years": 5}), request, messages)[1] == {
        "rate": 0.05, "rate_pct": 5.0, "years": 5.0}
    plain = [{"role": "user", "content": "Invest at a rate of 5 for 5 years"}]
    assert tidy(("invest", {"rate": 5, "rate_pct": 5, "years": 5}), request, plain)[1]["rate"] == 5.0


def test_an_optional_choice_nobody_named_is_left_to_the_default() -> None:
    loan = {"type": "function", "function": {"name": "loan", "parameters": {"type": "object", "properties": {
        "amount": {"type": "number"}, "frequency": {"type": "string", "enum": ["Monthly", "Annually"]},
        "currency": {"type": "string", "enum": ["USD", "EUR"]}}, "required": ["amount", "currency"]}}}
    request = parse_tools([loan])
    assert request is not None
    unsaid = tidy(("loan", {"amount": 500, "frequency": "Monthly", "currency": "USD"}), request,
                  [{"role": "user", "content": "A loan of 500"}])
    assert unsaid[1] == {"amount": 500.0, "currency": "USD"}  # a required choice stays: it must be made
    said = tidy(("loan", {"amount": 500, "frequency": "Monthly", "currency": "EUR"}), request,
                [{"role": "user", "content": "A loan of 500 euros, paid back every month"}])
    assert said[1]["frequency"] == "Monthly"
