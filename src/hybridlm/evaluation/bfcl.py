"""The Berkeley Function Calling Leaderboard (BFCL): its single-turn data and its AST checker.

The rules are BFCL's own (gorilla `bfcl_eval/eval_checker/ast_eval/ast_checker.py` and
`eval_runner.py`), quirks included, so that accuracies compare with published ones:

- a call matches when its name is the function's (or the name with '.' replaced by '_', as BFCL
  shows dotted names to OpenAI-style models), every required parameter is given, no parameter
  is given that is outside the schema or the answer, and every answer parameter without ""
  among its accepted values is given;
- each value passes BFCL's Python type check (exact types: bool is not int; an int is taken for
  a float; a value of the answer's type is taken as a variable and compared as it is) and is one
  of the accepted values: strings after standardisation (lowercase; spaces and ,./-_*^ removed;
  ' read as "), list elements the same way, dict values one level deep;
- simple: exactly one call, against the only function; multiple: exactly one call, against the
  expected function; parallel: as many calls as expected, each expected call (in the answer's
  order) taking the first unused call that matches it; irrelevance: no call; relevance: any call.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hybridlm.errors import HybridLMError

KNOWN_CATEGORIES = (
    "simple_python", "multiple", "parallel", "parallel_multiple", "irrelevance",
    "live_simple", "live_multiple", "live_parallel", "live_parallel_multiple",
    "live_irrelevance", "live_relevance",
)
FILE_NAME = re.compile(r"BFCL_v\d+_(?P<category>\w+)\.json")
ANSWER_FOLDER = "possible_answer"

# BFCL's types as the checker reads them (its PYTHON_TYPE_MAPPING): "any" must be a string.
PYTHON_TYPES: dict[str, type] = {
    "string": str, "integer": int, "float": float, "boolean": bool,
    "array": list, "tuple": list, "dict": dict, "any": str,
}
# BFCL's types as OpenAI-style models are shown them (its GORILLA_TO_OPENAPI, Python part).
# "any" is shown as a string, as BFCL does, since its checker then wants a string.
JSON_TYPES = {
    "integer": "integer", "number": "number", "float": "number", "string": "string",
    "boolean": "boolean", "bool": "boolean", "array": "array", "list": "array",
    "tuple": "array", "dict": "object", "object": "object", "any": "string",
}
FLOAT_NOTE = " This is a float type value."
_STRIPPED = re.compile(r"[ ,./\-_*^]")
_OMIT = object()


class BfclError(HybridLMError, ValueError):
    """BFCL data that cannot be read or used, with the file and the reason."""


@dataclass(frozen=True)
class BfclItem:
    """One BFCL question: the turn to send, the tools on offer and the calls BFCL accepts."""

    id: str
    category: str
    messages: list[dict[str, Any]]
    functions: list[dict[str, Any]]
    tools: list[dict[str, Any]]
    expected: tuple[dict[str, dict[str, list[Any]]], ...] | None
    expects_call: bool


@dataclass(frozen=True)
class BfclSet:
    """Items in file order; `skipped` counts, per category, questions with no answer (never scored)."""

    items: list[BfclItem]
    skipped: dict[str, int]
    categories: tuple[str, ...]


@dataclass(frozen=True)
class Verdict:
    """Right or wrong by BFCL's rules, and what was wrong (the first thing found)."""

    correct: bool
    reason: str


# -- schemas ---------------------------------------------------------------------------------


def to_json_schema(bfcl_parameters: dict[str, Any]) -> dict[str, Any]:
    """BFCL's parameter schema as the JSON Schema BFCL sends OpenAI-style models.

    Types map as BFCL's GORILLA_TO_OPENAPI (dict->object, float->number, tuple->array,
    any->string, a missing or unknown type->string), all the way down; a float property also
    gets `format: float` and " This is a float type value." after its description, as BFCL adds.
    Every other key (description, enum, default, required...) is kept.
    """
    schema = _schema(bfcl_parameters, is_property=False)
    schema["type"] = "object"
    return schema


def _schema(node: dict[str, Any], *, is_property: bool) -> dict[str, Any]:
    kind = node.get("type")
    out: dict[str, Any] = {"type": JSON_TYPES.get(kind, "string") if isinstance(kind, str) else "string"}
    for key, value in node.items():
        if key == "properties" and isinstance(value, dict):
            out[key] = {name: _schema(sub, is_property=True) for name, sub in value.items()}
        elif key == "items" and isinstance(value, dict):
            out[key] = _schema(value, is_property=False)
        elif key != "type":
            out[key] = copy.deepcopy(value)
    if is_property and kind == "float":
        out["format"] = "float"
        out["description"] = str(out.get("description", "")) + FLOAT_NOTE
    # BFCL's checker rejects a parameter outside the function's properties (simple_function_checker)
    # and a dict key outside the answer's (dict_checker), so declared objects are closed; a dict
    # that declares no properties is left open, since its keys cannot be listed.
    if out["type"] == "object" and "properties" in out:
        out.setdefault("additionalProperties", False)
    return out


def to_openai_tools(functions: Sequence[dict[str, Any]], underscore_names: bool = False) -> list[dict[str, Any]]:
    """OpenAI `tools` for BFCL's function docs; `underscore_names` writes '.' as '_' (OpenAI forbids dots)."""
    tools = []
    for function in functions:
        name = str(function["name"])
        tools.append({"type": "function", "function": {
            "name": name.replace(".", "_") if underscore_names else name,
            "description": function.get("description", ""),
            "parameters": to_json_schema(function.get("parameters", {"type": "dict", "properties": {}})),
        }})
    return tools


# -- loading ---------------------------------------------------------------------------------


def _kind(category: str) -> str:
    """How a category is judged, read from its name as BFCL does: 'none', 'any' or 'ast'."""
    if "irrelevance" in category:
        return "none"
    return "any" if "relevance" in category else "ast"


def _unknown(categories: Sequence[str]) -> BfclError:
    return BfclError(f"unknown BFCL categor{'y' if len(categories) == 1 else 'ies'} "
                     f"{', '.join(map(repr, categories))}; known: {', '.join(KNOWN_CATEGORIES)}")


def _question_files(path: Path) -> dict[str, Path]:
    if path.is_file():
        match = FILE_NAME.fullmatch(path.name)
        if match is None:
            raise BfclError(f"{path}: not a BFCL question file (expected a name like BFCL_v4_simple_python.json)")
        if match["category"] not in KNOWN_CATEGORIES:
            raise _unknown([match["category"]])
        return {match["category"]: path}
    files: dict[str, Path] = {}
    for file in sorted(path.glob("BFCL_v*_*.json")):
        match = FILE_NAME.fullmatch(file.name)
        if match is None or match["category"] not in KNOWN_CATEGORIES:
            continue  # categories this checker does not judge (Java, multi-turn, ...) are left out
        if match["category"] in files:
            raise BfclError(f"{path}: two files for category {match['category']!r}: "
                            f"{files[match['category']].name} and {file.name}")
        files[match["category"]] = file
    return files


def _read_rows(path: Path, needed: tuple[str, ...]) -> list[dict[str, Any]]:
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise BfclError(f"{path}:{number}: not BFCL's JSON lines ({err.msg})") from None
        if not isinstance(row, dict) or any(key not in row for key in needed):
            raise BfclError(f"{path}:{number}: not a BFCL row (needs {', '.join(needed)})")
        rows.append(row)
    return rows


def _expected(answer: dict[str, Any], functions: list[dict[str, Any]], where: str) -> tuple[dict[str, Any], ...]:
    calls = answer["ground_truth"]
    names = {f.get("name") for f in functions}
    if not isinstance(calls, list) or not calls:
        raise BfclError(f"{where}: ground_truth is not a list of calls")
    for call in calls:
        if not (isinstance(call, dict) and len(call) == 1 and isinstance(next(iter(call.values())), dict)):
            raise BfclError(f"{where}: a ground_truth call is not {{name: {{parameter: [values]}}}}")
        if next(iter(call)) not in names:
            raise BfclError(f"{where}: ground_truth calls {next(iter(call))!r}, which is not on offer")
    return tuple(calls)


def _item(row: dict[str, Any], category: str, answer: dict[str, Any] | None, where: str) -> BfclItem:
    turns, functions = row["question"], row["function"]
    functions = [functions] if isinstance(functions, dict) else functions
    if not (isinstance(turns, list) and len(turns) == 1 and isinstance(turns[0], list)):
        raise BfclError(f"{where}: not a single-turn question")
    if not isinstance(functions, list) or not all(isinstance(f, dict) and "name" in f for f in functions):
        raise BfclError(f"{where}: 'function' is not a list of function docs")
    return BfclItem(
        id=str(row["id"]), category=category, messages=copy.deepcopy(turns[0]),
        functions=functions, tools=to_openai_tools(functions),
        expected=None if answer is None else _expected(answer, functions, where),
        expects_call=_kind(category) != "none",
    )


def load_bfcl(path: Path, categories: Sequence[str] | None = None, limit: int | None = None,
              offset: int = 0) -> BfclSet:
    """BFCL questions with their answers from a data folder or one `BFCL_v4_<category>.json`.

    Answers come from `possible_answer/` beside the question files. A question whose category
    has answers but whose row is missing is skipped and counted, never scored. `limit` keeps
    the first N scorable questions of each category, in file order, after the first `offset` (so
    items tuned on and items measured on can be kept apart). In a folder, files of
    categories this checker does not judge are left out.
    """
    path = Path(path)
    if not path.exists():
        raise BfclError(f"{path}: no such file or folder")
    if limit is not None and limit < 0:
        raise BfclError(f"limit must be 0 or more, not {limit}")
    if offset < 0:
        raise BfclError(f"offset must be 0 or more, not {offset}")
    if categories is not None:
        unknown = [c for c in categories if c not in KNOWN_CATEGORIES]
        if unknown:
            raise _unknown(unknown)
    files = _question_files(path)
    wanted = list(dict.fromkeys(categories)) if categories is not None else list(files)
    absent = [c for c in wanted if c not in files]
    if absent:
        raise BfclError(f"{path}: no question file for {', '.join(absent)} (found: {', '.join(files) or 'none'})")
    if not wanted:
        raise BfclError(f"{path}: no BFCL question files (BFCL_v4_<category>.json) of a known category")
    items: list[BfclItem] = []
    skipped: dict[str, int] = {}
    for category in wanted:
        question_file = files[category]
        answers: dict[str, dict[str, Any]] | None = None
        if _kind(category) == "ast":
            answer_file = question_file.parent / ANSWER_FOLDER / question_file.name
            if not answer_file.is_file():
                raise BfclError(f"{question_file}: no answers ({answer_file} is missing)")
            answers = {str(a["id"]): a for a in _read_rows(answer_file, ("id", "ground_truth"))}
        skipped[category], seen = 0, 0
        for row in _read_rows(question_file, ("id", "question", "function")):
            answer = None if answers is None else answers.get(str(row["id"]))
            if answers is not None and answer is None:
                skipped[category] += 1
                continue
            if offset <= seen and (limit is None or seen < offset + limit):
                items.append(_item(row, category, answer, f"{question_file}: {row['id']}"))
            seen += 1
    return BfclSet(items=items, skipped=skipped, categories=tuple(wanted))


# -- checking --------------------------------------------------------------------------------


def _standardize(text: str) -> str:
    """BFCL's standardize_string: 'April 1, 2024' and 'april 1 2024' compare equal."""
    return _STRIPPED.sub("", text).lower().replace("'", '"')


def _std(value: Any) -> Any:
    return _standardize(value) if type(value) is str else value


def _python_type(kind: Any, param: str) -> type:
    if kind not in PYTHON_TYPES:
        raise BfclError(f"parameter {param!r} has type {kind!r}, which BFCL's Python checker does not know")
    return PYTHON_TYPES[kind]


def _types_match(value: Any, accepted: list[Any], expected: type, inner: type | None) -> tuple[bool, bool]:
    """(type ok, compared as a variable): BFCL's type_checker, nested one level for lists."""
    answer_type = next((type(a) for a in accepted if a != ""), None)
    variable = answer_type is not None and answer_type is not expected
    if type(value) is expected:
        if inner is None:
            return True, variable
        for option in accepted:  # a non-list option ("" for one) puts no bound on the elements
            if type(option) is not list or all(_types_match(v, option, inner, None)[0] for v in value):
                return True, variable
        return False, variable
    if answer_type is not None and type(value) is answer_type:
        return True, True
    return False, False


def _dict_error(param: str, value: dict[str, Any], accepted: list[Any]) -> str | None:
    """BFCL's dict_checker: keys within one accepted dict, values standardised one level deep."""
    error = f"value of {param!r} {value!r} not in {accepted!r}"
    for option in accepted:
        if not isinstance(option, dict):
            continue
        error = ""
        for key, item in value.items():
            if key not in option:
                error = f"unexpected key {key!r} in {param!r}"
            elif _std(item) not in [_std(o) for o in option[key]]:
                error = f"value of {param!r}[{key!r}] {item!r} not in {option[key]!r}"
            if error:
                break
        missing = [k for k, options in option.items() if k not in value and "" not in options]
        if not error and missing:
            error = f"missing key {missing[0]!r} in {param!r}"
        if not error:
            return None
    return error


def _dict_list_error(param: str, value: list[Any], accepted: list[Any]) -> str | None:
    """BFCL's list_dict_checker: as many dicts as an accepted list, each matched in order."""
    error = f"value of {param!r} {value!r} not in {accepted!r}"
    for option in accepted:
        option = [] if option == "" else option
        if not isinstance(option, list):
            continue
        if len(value) != len(option):
            error = f"{param!r} has {len(value)} items, expected {len(option)}"
            continue
        errors = [_dict_error(f"{param}[{i}]", v, [o]) if isinstance(v, dict)
                  else f"{param}[{i}] is not a dict" for i, (v, o) in enumerate(zip(value, option, strict=True))]
        first = next((e for e in errors if e), None)
        if first is None:
            return None
        error = first
    return error


def _value_error(param: str, value: Any, schema: dict[str, Any], accepted: list[Any]) -> str | None:
    kind = schema.get("type")
    expected = _python_type(kind, param)
    inner = None
    items = schema.get("items")
    if kind in ("array", "tuple") and isinstance(items, dict) and "type" in items:
        inner = _python_type(items["type"], f"{param}[]")
    if kind == "tuple" and type(value) is tuple:
        value = list(value)
    if kind == "float" and type(value) is int:
        value = float(value)
    type_ok, variable = _types_match(value, accepted, expected, inner)
    if not type_ok:
        of = f" of {items['type']}" if inner is not None and isinstance(items, dict) else ""
        return f"type of {param!r}: expected {kind}{of}, got {type(value).__name__} {value!r}"
    if not variable:
        if expected is dict:
            return _dict_error(param, value, accepted)
        if expected is list and inner is dict:
            return _dict_list_error(param, value, accepted)
        if expected is str:
            ok = _standardize(value) in [_standardize(a) for a in accepted if type(a) is str]
            return None if ok else f"value of {param!r} {value!r} not in {accepted!r}"
        if expected is list:
            options = [[_std(x) for x in ([] if a == "" else a)] for a in accepted if a == "" or type(a) is list]
            ok = [_std(x) for x in value] in options
            return None if ok else f"value of {param!r} {value!r} not in {accepted!r}"
    return None if value in accepted else f"value of {param!r} {value!r} not in {accepted!r}"


def _call_error(function: dict[str, Any], accepted: dict[str, list[Any]],
                name: str, arguments: dict[str, Any]) -> str | None:
    """BFCL's simple_function_checker: why one call does not match one expected call, or None."""
    wanted = str(function["name"])
    if name not in (wanted, wanted.replace(".", "_")):
        return f"wrong function: expected {wanted}, got {name}"
    parameters = function.get("parameters", {})
    properties = parameters.get("properties", {})
    for param in parameters.get("required", []):
        if param not in arguments:
            return f"missing required parameter {param!r}"
    for param, value in arguments.items():
        if param not in properties or param not in accepted:
            return f"unexpected parameter {param!r}"
        error = _value_error(param, value, properties[param], accepted[param])
        if error:
            return error
    for param, values in accepted.items():
        if param not in arguments and "" not in values:
            return f"missing parameter {param!r} (the answer does not let it be left out)"
    return None


def _function(item: BfclItem, name: str) -> dict[str, Any]:
    for function in item.functions:
        if function.get("name") == name:
            return function
    raise BfclError(f"{item.id}: the answer calls {name!r}, which is not on offer")


def _count(n: int) -> str:
    return f"{n} call" if n == 1 else f"{n} calls"


def check(item: BfclItem, calls: Sequence[tuple[str, dict[str, Any]]]) -> Verdict:
    """Whether a model's calls, (name, parsed arguments) pairs, are right by BFCL's rules; why not."""
    calls = list(calls)
    well_formed = all(isinstance(name, str) and isinstance(args, dict) for name, args in calls)
    made = len(calls) if well_formed else 0  # BFCL: output not in call format counts as no call
    if item.expected is None:
        if item.expects_call:
            return Verdict(made > 0, "correct" if made else "expected a call, got none")
        return Verdict(made == 0, "correct" if made == 0 else f"expected no call, got {made}")
    if not well_formed:
        return Verdict(False, "calls must be (name, arguments as a dict) pairs")
    expected = [next(iter(call.items())) for call in item.expected]
    if "parallel" in item.category:
        return _check_parallel(item, expected, calls)
    if len(calls) != len(expected):
        return Verdict(False, f"expected {_count(len(expected))}, got {len(calls)}")
    name, accepted = expected[0]
    # BFCL's simple checker judges against the first (only) function doc, multiple against the expected one.
    function = _function(item, name) if "multiple" in item.category else item.functions[0]
    error = _call_error(function, accepted, *calls[0])
    return Verdict(error is None, error or "correct")


def _check_parallel(item: BfclItem, expected: list[tuple[str, dict[str, list[Any]]]],
                    calls: list[tuple[str, dict[str, Any]]]) -> Verdict:
    """BFCL's parallel_function_checker_no_order: greedy, each expected call takes the first unused match."""
    if len(calls) != len(expected):
        return Verdict(False, f"expected {_count(len(expected))}, got {len(calls)}")
    used: set[int] = set()
    for number, (name, accepted) in enumerate(expected, 1):
        function = _function(item, name)
        errors: dict[int, str] = {}
        for index, (call_name, arguments) in enumerate(calls):
            if index in used:
                continue
            error = _call_error(function, accepted, call_name, arguments)
            if error is None:
                used.add(index)
                break
            errors[index] = error
        else:
            same_name = [i for i in errors if calls[i][0] in (name, name.replace(".", "_"))]
            why = errors[same_name[0]] if same_name else next(iter(errors.values()), "no call left")
            return Verdict(False, f"expected call {number} ({name}) matched by no call: {why}")
    return Verdict(True, "correct")


def reference_calls(item: BfclItem) -> list[tuple[str, dict[str, Any]]]:
    """BFCL's answers as calls: each parameter's first accepted value, "" meaning left out.

    A required parameter takes its first value other than ""; one outside the function's schema
    is left out when "" allows it. Fed back, these are right by BFCL's rules, except where its
    data leaves none right (no accepted value listed, or a value only outside the schema).
    """
    if item.expected is None:
        return []
    calls = []
    for call in item.expected:
        name, accepted = next(iter(call.items()))
        parameters = _function(item, name).get("parameters", {})
        properties, required = parameters.get("properties", {}), parameters.get("required", [])
        arguments = {}
        for param, values in accepted.items():
            if param not in properties and "" in values:
                continue
            value = _first([v for v in values if v != ""] if param in required else values)
            if value is _OMIT:
                continue
            schema = properties.get(param, {})
            items = schema.get("items") if isinstance(schema.get("items"), dict) else {}
            # A dict answer (or a list of them) lists accepted values per key, one level deep.
            if schema.get("type") == "dict" and isinstance(value, dict):
                value = _first_per_key(value)
            elif items.get("type") == "dict" and isinstance(value, list):
                value = [_first_per_key(v) if isinstance(v, dict) else v for v in value]
            arguments[param] = value
        calls.append((name, arguments))
    return calls


def _first(values: list[Any]) -> Any:
    return _OMIT if not values or values[0] == "" else values[0]


def _first_per_key(option: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, values in option.items() if (v := _first(values)) is not _OMIT}


def score(items: Sequence[BfclItem], verdicts: Sequence[Verdict]) -> dict[str, Any]:
    """Accuracy overall and per category.

    Overall is the plain mean over all items, not BFCL's summary figure (which averages
    categories with weights of its own).
    """
    if len(items) != len(verdicts):
        raise ValueError(f"{len(items)} items but {len(verdicts)} verdicts")
    tallies: dict[str, list[int]] = {}
    for item, verdict in zip(items, verdicts, strict=True):
        tally = tallies.setdefault(item.category, [0, 0])
        tally[0] += 1
        tally[1] += int(verdict.correct)
    right = sum(t[1] for t in tallies.values())
    return {
        "n": len(items),
        "accuracy": right / len(items) if items else 0.0,
        "categories": {c: {"n": n, "accuracy": r / n} for c, (n, r) in tallies.items()},
    }
