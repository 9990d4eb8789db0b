"""BFCL loading and the AST checker, on hand-made items and on the shipped subset of the real data."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from hybridlm.errors import HybridLMError
from hybridlm.evaluation.bfcl import (
    KNOWN_CATEGORIES,
    BfclError,
    BfclItem,
    Verdict,
    check,
    load_bfcl,
    reference_calls,
    score,
    to_json_schema,
    to_openai_tools,
)

BFCL = Path(__file__).resolve().parent.parent / "data" / "tools" / "bfcl"
SHIPPED = ("simple_python", "multiple", "parallel", "parallel_multiple", "irrelevance",
           "live_simple", "live_irrelevance", "live_relevance")
AST = ("simple_python", "multiple", "parallel", "parallel_multiple", "live_simple")


@pytest.fixture(scope="module")
def real() -> list[BfclItem]:
    return load_bfcl(BFCL).items


def fn(name: str, properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    return {"name": name, "description": f"{name} does a thing.",
            "parameters": {"type": "dict", "properties": properties, "required": required or []}}


def item(category: str, functions: list[dict[str, Any]], *expected: dict[str, Any]) -> BfclItem:
    return BfclItem(id=f"{category}_0", category=category, messages=[{"role": "user", "content": "hi"}],
                    functions=functions, tools=to_openai_tools(functions),
                    expected=tuple(expected) if expected else None,
                    expects_call="irrelevance" not in category)


FACTORIAL = fn("math.factorial", {"number": {"type": "integer"}}, ["number"])


def simple(properties: dict[str, Any], accepted: dict[str, list[Any]], required: list[str] | None = None) -> BfclItem:
    return item("simple_python", [fn("f", properties, required)], {"f": accepted})


def verdict(it: BfclItem, *calls: tuple[str, dict[str, Any]]) -> Verdict:
    return check(it, list(calls))


# -- names, parameters, counts ----------------------------------------------------------------


def test_a_dotted_name_matches_as_written_or_with_underscores() -> None:
    it = item("simple_python", [FACTORIAL], {"math.factorial": {"number": [5]}})
    assert verdict(it, ("math.factorial", {"number": 5})) == Verdict(True, "correct")
    assert verdict(it, ("math_factorial", {"number": 5})).correct
    wrong = verdict(it, ("math.fact", {"number": 5}))
    assert not wrong.correct and wrong.reason == "wrong function: expected math.factorial, got math.fact"


def test_required_unexpected_and_answer_parameters() -> None:
    props = {"x": {"type": "integer"}, "y": {"type": "integer"}, "unit": {"type": "string"}}
    it = simple(props, {"x": [1], "unit": ["cm", ""]}, required=["x"])
    assert verdict(it, ("f", {"x": 1})).correct  # "" lets 'unit' be left out
    assert verdict(it, ("f", {"x": 1, "unit": "CM"})).correct
    assert verdict(it, ("f", {})).reason == "missing required parameter 'x'"
    assert verdict(it, ("f", {"x": 1, "z": 2})).reason == "unexpected parameter 'z'"
    # in the schema but not in the answer: BFCL rejects it too
    assert verdict(it, ("f", {"x": 1, "y": 2})).reason == "unexpected parameter 'y'"
    optional_but_expected = simple(props, {"x": [1], "y": [2]}, required=["x"])
    reason = verdict(optional_but_expected, ("f", {"x": 1})).reason
    assert not verdict(optional_but_expected, ("f", {"x": 1})).correct and "'y'" in reason


def test_a_value_must_be_accepted() -> None:
    it = item("simple_python", [FACTORIAL], {"math.factorial": {"number": [5]}})
    assert verdict(it, ("math.factorial", {"number": 3})) == Verdict(False, "value of 'number' 3 not in [5]")


def test_simple_and_multiple_take_exactly_one_call() -> None:
    it = item("simple_python", [FACTORIAL], {"math.factorial": {"number": [5]}})
    assert verdict(it).reason == "expected 1 call, got 0"
    assert verdict(it, ("math.factorial", {"number": 5}), ("math.factorial", {"number": 5})).reason == \
        "expected 1 call, got 2"
    other = fn("math.gcd", {"a": {"type": "integer"}, "b": {"type": "integer"}}, ["a", "b"])
    multiple = item("multiple", [other, FACTORIAL], {"math.factorial": {"number": [5]}})
    assert verdict(multiple, ("math_factorial", {"number": 5})).correct
    assert verdict(multiple, ("math.gcd", {"a": 5, "b": 1})).reason == \
        "wrong function: expected math.factorial, got math.gcd"
    assert not verdict(multiple, ("math.factorial", {"number": 5}), ("math.gcd", {"a": 5, "b": 1})).correct


# -- types ------------------------------------------------------------------------------------


def test_types_as_bfcl_checks_them() -> None:
    floats = simple({"r": {"type": "float"}}, {"r": [5.0]})
    assert verdict(floats, ("f", {"r": 5})).correct  # an int is taken for a float
    assert verdict(floats, ("f", {"r": 5.0})).correct
    ints = simple({"n": {"type": "integer"}}, {"n": [5]})
    assert not verdict(ints, ("f", {"n": 5.0})).correct
    assert not verdict(ints, ("f", {"n": "5"})).correct
    ones = simple({"n": {"type": "integer"}}, {"n": [1]})
    assert "expected integer, got bool" in verdict(ones, ("f", {"n": True})).reason
    flags = simple({"b": {"type": "boolean"}}, {"b": [True]})
    assert verdict(flags, ("f", {"b": True})).correct
    assert not verdict(flags, ("f", {"b": 1})).correct
    assert not verdict(flags, ("f", {"b": "true"})).correct


def test_a_value_of_the_answers_own_type_is_compared_as_it_is() -> None:
    # BFCL's "variable" case: a string parameter whose answer lists a bool or None
    it = simple({"s": {"type": "string"}}, {"s": [True]})
    assert verdict(it, ("f", {"s": True})).correct
    assert not verdict(it, ("f", {"s": "true"})).correct
    nullable = simple({"s": {"type": "string"}}, {"s": ["", None]})
    assert verdict(nullable, ("f", {"s": None})).correct
    assert verdict(nullable, ("f", {})).correct
    assert not verdict(nullable, ("f", {"s": "red"})).correct  # compared as it is, not standardised


def test_any_is_checked_as_a_string() -> None:
    it = simple({"v": {"type": "any"}}, {"v": ["say hi"]})
    assert verdict(it, ("f", {"v": "Say hi"})).correct
    assert not verdict(it, ("f", {"v": 3})).correct


def test_array_elements_are_type_checked() -> None:
    it = simple({"xs": {"type": "array", "items": {"type": "integer"}}}, {"xs": [[1, 2]]})
    assert verdict(it, ("f", {"xs": [1, 2]})).correct
    assert "expected array of integer" in verdict(it, ("f", {"xs": ["1", "2"]})).reason
    assert not verdict(it, ("f", {"xs": 1})).correct
    floats = simple({"xs": {"type": "array", "items": {"type": "float"}}}, {"xs": [[1.5, 2.0]]})
    assert not verdict(floats, ("f", {"xs": [1.5, 2]})).correct  # no int-to-float inside lists


def test_tuples_are_lists() -> None:
    it = simple({"p": {"type": "tuple", "items": {"type": "float"}}}, {"p": [[46.6, 1.9]]})
    assert verdict(it, ("f", {"p": [46.6, 1.9]})).correct
    assert verdict(it, ("f", {"p": (46.6, 1.9)})).correct


# -- values -----------------------------------------------------------------------------------


def test_strings_are_standardised() -> None:
    it = simple({"city": {"type": "string"}}, {"city": ["San Francisco, CA"]})
    for given in ("san francisco ca", "SanFrancisco,CA", "San-Francisco_CA.", "san/francisco*^ca"):
        assert verdict(it, ("f", {"city": given})).correct, given
    assert not verdict(it, ("f", {"city": "San Francisco, CA!"})).correct
    quoted = simple({"q": {"type": "string"}}, {"q": ["served 'boiling hot'"]})
    assert verdict(quoted, ("f", {"q": 'served "boiling hot"'})).correct


def test_lists_compare_element_wise_in_order() -> None:
    it = simple({"xs": {"type": "array", "items": {"type": "string"}}}, {"xs": [["New York", "Boston"], ""]})
    assert verdict(it, ("f", {"xs": ["new york", "BOSTON"]})).correct
    assert not verdict(it, ("f", {"xs": ["Boston", "New York"]})).correct
    assert not verdict(it, ("f", {"xs": ["New York"]})).correct
    assert verdict(it, ("f", {})).correct
    assert verdict(it, ("f", {"xs": []})).correct  # BFCL reads an empty list against "" as a match


def test_dicts_compare_key_by_key_one_level_deep() -> None:
    props = {"d": {"type": "dict", "properties": {"size": {"type": "string"}, "milk": {"type": "string"},
                                                  "at": {"type": "dict"}}}}
    it = simple(props, {"d": [{"size": ["large"], "milk": ["coconut", ""], "at": [{"x": 1}, ""]}]})
    assert verdict(it, ("f", {"d": {"size": "Large"}})).correct
    assert verdict(it, ("f", {"d": {"size": "large", "milk": "coconut", "at": {"x": 1}}})).correct
    assert verdict(it, ("f", {"d": {"milk": "coconut"}})).reason == "missing key 'size' in 'd'"
    assert verdict(it, ("f", {"d": {"size": "large", "sugar": 1}})).reason == "unexpected key 'sugar' in 'd'"
    assert not verdict(it, ("f", {"d": {"size": "small"}})).correct
    assert not verdict(it, ("f", {"d": {"size": "large", "at": {"x": 2}}})).correct


def test_lists_of_dicts_match_in_order() -> None:
    props = {"items": {"type": "array", "items": {"type": "dict"}}}
    it = simple(props, {"items": [[{"id": ["a"], "n": [5]}, {"id": ["b"], "n": [6]}]]})
    assert verdict(it, ("f", {"items": [{"id": "A", "n": 5}, {"id": "b", "n": 6}]})).correct
    assert not verdict(it, ("f", {"items": [{"id": "b", "n": 6}, {"id": "a", "n": 5}]})).correct
    assert not verdict(it, ("f", {"items": [{"id": "a", "n": 5}]})).correct


# -- parallel, irrelevance, relevance ---------------------------------------------------------


PLAY = fn("spotify.play", {"artist": {"type": "string"}, "duration": {"type": "integer"}}, ["artist", "duration"])
TWO_PLAYS = item("parallel", [PLAY], {"spotify.play": {"artist": ["Taylor Swift"], "duration": [20]}},
                 {"spotify.play": {"artist": ["Maroon 5"], "duration": [15]}})


def test_parallel_calls_match_in_any_order_each_used_once() -> None:
    taylor = ("spotify.play", {"artist": "Taylor Swift", "duration": 20})
    maroon = ("spotify_play", {"artist": "maroon 5", "duration": 15})
    assert verdict(TWO_PLAYS, taylor, maroon).correct
    assert verdict(TWO_PLAYS, maroon, taylor).correct
    assert verdict(TWO_PLAYS, taylor).reason == "expected 2 calls, got 1"
    assert verdict(TWO_PLAYS, taylor, maroon, maroon).reason == "expected 2 calls, got 3"
    twice = verdict(TWO_PLAYS, taylor, taylor)
    assert not twice.correct and twice.reason.startswith("expected call 2 (spotify.play) matched by no call")
    wrong = verdict(TWO_PLAYS, taylor, ("spotify.play", {"artist": "Maroon 5", "duration": 16}))
    assert wrong.reason.endswith("value of 'duration' 16 not in [15]")


def test_parallel_matching_is_greedy_as_in_bfcl() -> None:
    # the first expected call accepts either artist; it takes the first call that fits it
    loose = item("parallel", [PLAY], {"spotify.play": {"artist": ["Adele", "Maroon 5"], "duration": [15]}},
                 {"spotify.play": {"artist": ["Maroon 5"], "duration": [15]}})
    adele = ("spotify.play", {"artist": "Adele", "duration": 15})
    maroon = ("spotify.play", {"artist": "Maroon 5", "duration": 15})
    assert verdict(loose, adele, maroon).correct
    assert not verdict(loose, maroon, adele).correct


def test_irrelevance_wants_no_call() -> None:
    it = item("irrelevance", [FACTORIAL])
    assert verdict(it) == Verdict(True, "correct")
    assert verdict(it, ("math.factorial", {"number": 5})) == Verdict(False, "expected no call, got 1")
    assert verdict(it, ("math.factorial", "{not json")).correct  # not a call, as BFCL decodes it


def test_relevance_wants_any_call() -> None:
    it = item("live_relevance", [FACTORIAL])
    assert verdict(it, ("math.factorial", {"number": 12345})).correct
    assert verdict(it, ("anything", {})).correct
    assert verdict(it) == Verdict(False, "expected a call, got none")


def test_score_is_the_plain_mean_over_items() -> None:
    items = [item("irrelevance", [FACTORIAL])] * 3 + [TWO_PLAYS]
    result = score(items, [Verdict(True, ""), Verdict(True, ""), Verdict(False, ""), Verdict(True, "")])
    assert result["accuracy"] == 0.75 and result["n"] == 4
    assert result["categories"] == {"irrelevance": {"n": 3, "accuracy": pytest.approx(2 / 3)},
                                    "parallel": {"n": 1, "accuracy": 1.0}}
    assert score([], []) == {"n": 0, "accuracy": 0.0, "categories": {}}
    with pytest.raises(ValueError):
        score(items, [])


# -- schemas ----------------------------------------------------------------------------------


def walk(schema: dict[str, Any]) -> list[dict[str, Any]]:
    nodes = [schema]
    for sub in schema.get("properties", {}).values():
        nodes += walk(sub)
    if isinstance(schema.get("items"), dict):
        nodes += walk(schema["items"])
    return nodes


def test_to_json_schema_converts_types_all_the_way_down() -> None:
    schema = to_json_schema({"type": "dict", "required": ["a"], "properties": {
        "a": {"type": "float", "description": "A."},
        "b": {"type": "tuple", "items": {"type": "float"}},
        "c": {"type": "dict", "properties": {"d": {"type": "array", "items": {"type": "dict", "properties": {
            "e": {"type": "integer", "enum": [1, 2], "default": 1}}}}}},
        "f": {"type": "any"}, "g": {"type": "dict"}, "h": {"type": "boolean", "default": True}}})
    assert schema["type"] == "object" and schema["required"] == ["a"] and schema["additionalProperties"] is False
    props = schema["properties"]
    assert props["a"] == {"type": "number", "description": "A. This is a float type value.", "format": "float"}
    assert props["b"] == {"type": "array", "items": {"type": "number"}}
    e = props["c"]["properties"]["d"]["items"]["properties"]["e"]
    assert e == {"type": "integer", "enum": [1, 2], "default": 1}
    assert props["c"]["additionalProperties"] is False
    assert props["f"] == {"type": "string"}
    assert props["g"] == {"type": "object"}  # no declared keys: left open
    assert props["h"] == {"type": "boolean", "default": True}


def test_real_functions_convert_recursively(real: list[BfclItem]) -> None:
    bfcl_only = {"dict", "float", "tuple", "any"}
    converted = 0
    for it in real:
        for function, tool in zip(it.functions, it.tools, strict=True):
            assert tool["type"] == "function" and tool["function"]["name"] == function["name"]
            schema = tool["function"]["parameters"]
            assert schema["required"] == function["parameters"]["required"]
            assert set(schema["properties"]) == set(function["parameters"]["properties"])
            for node in walk(schema):
                assert node["type"] not in bfcl_only
                assert node["type"] in {"object", "number", "array", "string", "integer", "boolean"}
                if node["type"] == "object" and "properties" in node:
                    assert node["additionalProperties"] is False
            converted += 1
    assert converted > 150
    requests_get = next(it for it in real if it.id == "live_irrelevance_0-0-0").tools[0]["function"]
    headers = requests_get["parameters"]["properties"]["headers"]
    assert requests_get["name"] == "requests.get" and headers["type"] == "object"
    content_type = headers["properties"]["Content-Type"]
    assert content_type["type"] == "string" and content_type["default"] == "application/json"
    assert content_type["description"].startswith("The media type of the resource")
    assert requests_get["parameters"]["properties"]["timeout"]["type"] == "number"


def test_openai_tools_can_spell_dots_as_underscores() -> None:
    assert to_openai_tools([FACTORIAL])[0]["function"]["name"] == "math.factorial"
    tool = to_openai_tools([FACTORIAL], underscore_names=True)[0]
    assert tool["function"]["name"] == "math_factorial"
    assert tool["function"]["parameters"]["properties"] == {"number": {"type": "integer"}}


# -- the shipped subset of the real data ------------------------------------------------------


def test_the_subset_loads(real: list[BfclItem]) -> None:
    data = load_bfcl(BFCL)
    assert set(data.categories) == set(SHIPPED)
    assert data.skipped == dict.fromkeys(data.categories, 0)
    assert {c: sum(i.category == c for i in real) for c in SHIPPED} == dict.fromkeys(SHIPPED, 12)
    first = next(i for i in real if i.id == "simple_python_1")
    assert first.messages == [{"role": "user", "content": "Calculate the factorial of 5 using math functions."}]
    assert first.expected == ({"math.factorial": {"number": [5]}},) and first.expects_call
    assert all(i.expected is None and not i.expects_call for i in real if "irrelevance" in i.category)
    assert all(i.expected is None and i.expects_call for i in real if i.category == "live_relevance")
    assert all(i.expected is not None for i in real if i.category in AST)


def test_the_answers_fed_back_score_one_everywhere(real: list[BfclItem]) -> None:
    calls = [[(i.functions[0]["name"], {})] if i.category == "live_relevance" else reference_calls(i) for i in real]
    result = score(real, [check(i, c) for i, c in zip(real, calls, strict=True)])
    assert result["accuracy"] == 1.0
    assert set(result["categories"]) == set(SHIPPED)
    assert all(r["accuracy"] == 1.0 for r in result["categories"].values())


def test_any_call_on_irrelevance_rows_is_wrong(real: list[BfclItem]) -> None:
    irrelevant = [i for i in real if not i.expects_call]
    verdicts = [check(i, [(i.functions[0]["name"], {})]) if i.functions else check(i, [("x", {})])
                for i in irrelevant]
    assert len(irrelevant) == 24 and not any(v.correct for v in verdicts)


def changed(value: Any) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float):
        return value + 1000
    if isinstance(value, str):
        return value + " zzz"
    if isinstance(value, list):
        return value + ["zzz"]
    if isinstance(value, dict):
        return {**value, "zzz": 1}
    return "zzz"


def test_broken_calls_on_real_rows_are_wrong(real: list[BfclItem]) -> None:
    dropped = 0
    for it in (i for i in real if i.category in AST):
        calls = reference_calls(it)
        name, args = calls[0]
        rest = calls[1:]
        param = next(iter(args))
        assert not check(it, [(name, {**args, param: changed(args[param])}), *rest]).correct, it.id
        assert check(it, [(name, {**args, "not_a_parameter": 1}), *rest]).reason.endswith(
            "unexpected parameter 'not_a_parameter'"), it.id
        assert not check(it, [(name + "_x", args), *rest]).correct, it.id
        required = [p for p in next(f for f in it.functions if f["name"] == name)["parameters"]["required"]
                    if p in args]
        if required:
            without = {k: v for k, v in args.items() if k != required[0]}
            assert required[0] in check(it, [(name, without), *rest]).reason, it.id
            dropped += 1
    assert dropped >= 50


def test_parallel_rows_take_any_order_but_every_call(real: list[BfclItem]) -> None:
    parallel = [i for i in real if "parallel" in i.category]
    assert len(parallel) == 24
    for it in parallel:
        calls = reference_calls(it)
        assert len(calls) >= 2
        assert check(it, list(reversed(calls))).correct, it.id
        assert check(it, calls[1:] + calls[:1]).correct, it.id
        missing = check(it, calls[:-1])
        assert not missing.correct and missing.reason == f"expected {len(calls)} calls, got {len(calls) - 1}"


# -- loading ----------------------------------------------------------------------------------


def test_one_file_a_category_filter_and_a_limit() -> None:
    one = load_bfcl(BFCL / "BFCL_v4_parallel.json")
    assert one.categories == ("parallel",) and len(one.items) == 12
    assert [i.id for i in one.items][:2] == ["parallel_0", "parallel_1"]
    irrelevant = load_bfcl(BFCL / "BFCL_v4_irrelevance.json", limit=5)
    assert len(irrelevant.items) == 5 and irrelevant.skipped == {"irrelevance": 0}
    some = load_bfcl(BFCL, categories=["multiple", "live_relevance"], limit=3)
    assert some.categories == ("multiple", "live_relevance")
    assert [i.id for i in some.items] == ["multiple_0", "multiple_1", "multiple_2",
                                          "live_relevance_0-0-0", "live_relevance_1-1-0", "live_relevance_2-2-0"]
    assert load_bfcl(BFCL, limit=0).items == []


def test_an_offset_skips_the_first_items_so_a_tuning_split_stays_apart() -> None:
    whole = [i.id for i in load_bfcl(BFCL / "BFCL_v4_parallel.json").items]
    assert [i.id for i in load_bfcl(BFCL / "BFCL_v4_parallel.json", limit=3, offset=4).items] == whole[4:7]
    assert [i.id for i in load_bfcl(BFCL / "BFCL_v4_parallel.json", offset=10).items] == whole[10:]
    with pytest.raises(BfclError, match="offset must be 0 or more"):
        load_bfcl(BFCL, offset=-1)


def test_questions_without_an_answer_are_skipped_and_counted(tmp_path: Path) -> None:
    shutil.copy(BFCL / "BFCL_v4_parallel.json", tmp_path)
    (tmp_path / "possible_answer").mkdir()
    answers = (BFCL / "possible_answer" / "BFCL_v4_parallel.json").read_text(encoding="utf-8").splitlines()
    withheld = {json.loads(answers[i])["id"] for i in (0, 5)}
    kept = [a for i, a in enumerate(answers) if i not in (0, 5)]
    (tmp_path / "possible_answer" / "BFCL_v4_parallel.json").write_text("\n".join(kept) + "\n", encoding="utf-8")
    data = load_bfcl(tmp_path)
    assert data.skipped == {"parallel": 2} and len(data.items) == 10
    assert not withheld & {i.id for i in data.items}
    limited = load_bfcl(tmp_path / "BFCL_v4_parallel.json", limit=4)
    assert len(limited.items) == 4 and limited.skipped == {"parallel": 2}
    assert limited.items[0].id == "parallel_1"


@pytest.mark.parametrize(("make", "message"), [
    (lambda p: p / "nowhere", "no such file or folder"),
    (lambda p: p / "questions.json", "not a BFCL question file"),
    (lambda p: p / "BFCL_v4_simple_java.json", "unknown BFCL category 'simple_java'"),
    (lambda p: p / "BFCL_v4_simple_python.json", "no answers"),
    (lambda p: p / "BFCL_v4_irrelevance.json", "not BFCL's JSON lines"),
    (lambda p: p / "BFCL_v4_live_relevance.json", "not a BFCL row"),
    (lambda p: p / "empty", "no BFCL question files"),
])
def test_errors_say_what_is_wrong(tmp_path: Path, make: Any, message: str) -> None:
    (tmp_path / "questions.json").write_text("{}\n", encoding="utf-8")
    (tmp_path / "BFCL_v4_simple_java.json").write_text("{}\n", encoding="utf-8")
    shutil.copy(BFCL / "BFCL_v4_simple_python.json", tmp_path)
    (tmp_path / "BFCL_v4_irrelevance.json").write_text("{not json\n", encoding="utf-8")
    (tmp_path / "BFCL_v4_live_relevance.json").write_text('{"id": "x"}\n', encoding="utf-8")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BfclError, match=message) as caught:
        load_bfcl(make(tmp_path))
    assert isinstance(caught.value, HybridLMError)


def test_unknown_categories_list_the_known_ones() -> None:
    with pytest.raises(BfclError) as caught:
        load_bfcl(BFCL, categories=["simple", "parallel"])
    assert "'simple'" in str(caught.value) and all(c in str(caught.value) for c in KNOWN_CATEGORIES)
    with pytest.raises(BfclError, match="no question file for live_multiple"):
        load_bfcl(BFCL, categories=["live_multiple"])
    with pytest.raises(BfclError, match="limit"):
        load_bfcl(BFCL, limit=-1)
