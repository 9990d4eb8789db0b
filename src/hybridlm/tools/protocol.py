"""OpenAI's function-calling and structured-output fields, checked once at the edge.

`tools`, `tool_choice`, `parallel_tool_calls`, `response_format` and the tool turns of the
history (assistant `tool_calls`, `role: "tool"` results) arrive as loose JSON. Here they become
small frozen values every tier can rely on, or a `ToolRequestError` naming the field, so a
malformed request is refused with a 400 before any model sees it. The original JSON is kept so a
remote tier receives exactly what the client sent.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import orjson

from hybridlm.errors import HybridLMError
from hybridlm.types import Message

FUNCTION_NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
EMPTY_PARAMETERS: dict[str, Any] = {"type": "object", "properties": {}}

Choice = Literal["auto", "none", "required"]


class ToolRequestError(HybridLMError):
    """A tool or response-format field that cannot be used; `param` names it the OpenAI way."""

    def __init__(self, message: str, param: str) -> None:
        super().__init__(message)
        self.param = param


@dataclass(frozen=True)
class Function:
    """One function on offer: its name, what it is for, and its arguments as a JSON Schema object."""

    name: str
    description: str
    parameters: dict[str, Any]

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(self.parameters.get("required") or ())


@dataclass(frozen=True)
class ToolRequest:
    """The functions offered and how the model may use them."""

    functions: tuple[Function, ...]
    choice: Choice = "auto"
    named: str | None = None  # tool_choice naming one function: it must be called
    parallel: bool = True
    raw: dict[str, Any] = field(default_factory=dict, compare=False)  # the client's fields, for a remote tier

    @property
    def must_call(self) -> bool:
        return self.choice == "required" or self.named is not None

    def function(self, name: str) -> Function | None:
        return next((f for f in self.functions if f.name == name), None)

    def offered(self) -> tuple[Function, ...]:
        """What the model may call: every function, or the one `tool_choice` names."""
        return tuple(f for f in self.functions if self.named is None or f.name == self.named)

    def best_first(self, scores: Sequence[float]) -> ToolRequest:
        """The same request with its best scored function moved to the front, the rest in their order.

        Only the first place changes, so a tool list sent again and again has one prompt per
        leading function, and those prompts' states stay in the prompt cache.
        """
        offered = self.offered()
        best = max(range(len(offered)), key=lambda i: scores[i])
        return replace(self, functions=(offered[best], *offered[:best], *offered[best + 1:]))


@dataclass(frozen=True)
class ResponseFormat:
    """`json_object` (any JSON object) or `json_schema` (this schema); `text` needs no value."""

    kind: Literal["json_object", "json_schema"]
    schema: dict[str, Any] | None = None
    name: str | None = None
    strict: bool = False
    raw: dict[str, Any] = field(default_factory=dict, compare=False)


def _function(index: int, tool: Any) -> Function:
    where = f"tools[{index}]"
    if not isinstance(tool, dict):
        raise ToolRequestError(f"'{where}' must be an object", where)
    if tool.get("type", "function") != "function":
        raise ToolRequestError(f"'{where}.type' must be 'function', not {tool.get('type')!r}", f"{where}.type")
    spec = tool.get("function")
    if not isinstance(spec, dict):
        raise ToolRequestError(f"'{where}.function' must be an object with a 'name'", f"{where}.function")
    name = spec.get("name")
    if not isinstance(name, str) or not name:
        raise ToolRequestError(f"'{where}.function.name' is missing", f"{where}.function.name")
    if not FUNCTION_NAME.match(name):
        raise ToolRequestError(f"'{where}.function.name' {name!r} must be 1-64 letters, digits, '_', '.' or '-'",
                               f"{where}.function.name")
    description = spec.get("description", "")
    if not isinstance(description, str):
        raise ToolRequestError(f"'{where}.function.description' must be a string", f"{where}.function.description")
    parameters = spec.get("parameters", EMPTY_PARAMETERS)
    if not isinstance(parameters, dict):
        raise ToolRequestError(f"'{where}.function.parameters' must be a JSON Schema object, "
                               f"not {type(parameters).__name__}", f"{where}.function.parameters")
    if parameters.get("type", "object") != "object":
        raise ToolRequestError(f"'{where}.function.parameters' must describe an object (type 'object')",
                               f"{where}.function.parameters.type")
    required = parameters.get("required", [])
    properties = parameters.get("properties", {})
    if not isinstance(properties, dict) or not isinstance(required, list):
        raise ToolRequestError(f"'{where}.function.parameters' needs 'properties' as an object and 'required' "
                               "as a list", f"{where}.function.parameters")
    if missing := [r for r in required if r not in properties]:
        raise ToolRequestError(f"'{where}.function.parameters.required' names {missing}, which 'properties' does "
                               "not define", f"{where}.function.parameters.required")
    return Function(name, description, parameters)


def parse_tools(tools: Any, tool_choice: Any = None, parallel_tool_calls: Any = None) -> ToolRequest | None:
    """The request's tool fields as one value, or None when it offers no tools."""
    if tools is None:
        if tool_choice not in (None, "none", "auto"):
            raise ToolRequestError("'tool_choice' asks for a call but the request has no 'tools'", "tool_choice")
        return None
    if not isinstance(tools, list):
        raise ToolRequestError("'tools' must be a list of functions", "tools")
    if not tools:
        raise ToolRequestError("'tools' is empty: leave it out or offer at least one function", "tools")
    functions = tuple(_function(i, tool) for i, tool in enumerate(tools))
    names = [f.name for f in functions]
    if len(set(names)) != len(names):
        twice = sorted({n for n in names if names.count(n) > 1})
        raise ToolRequestError(f"'tools' offers {twice} more than once", "tools")
    if parallel_tool_calls is not None and not isinstance(parallel_tool_calls, bool):
        raise ToolRequestError("'parallel_tool_calls' must be true or false", "parallel_tool_calls")
    raw: dict[str, Any] = {"tools": tools}
    if tool_choice is not None:
        raw["tool_choice"] = tool_choice
    if parallel_tool_calls is not None:
        raw["parallel_tool_calls"] = parallel_tool_calls
    parallel = parallel_tool_calls is not False
    if tool_choice is None or tool_choice in ("auto", "none", "required"):
        return ToolRequest(functions, tool_choice or "auto", None, parallel, raw)
    named = _named_choice(tool_choice)
    if named not in names:
        raise ToolRequestError(f"'tool_choice' names the function {named!r}, which 'tools' does not offer "
                               f"(offered: {', '.join(names)})", "tool_choice")
    return ToolRequest(functions, "required", named, parallel, raw)


def _named_choice(tool_choice: Any) -> str:
    if isinstance(tool_choice, dict) and tool_choice.get("type", "function") == "function":
        function = tool_choice.get("function")
        if isinstance(function, dict) and isinstance(function.get("name"), str):
            return str(function["name"])
    raise ToolRequestError("'tool_choice' must be 'auto', 'none', 'required' or "
                           "{\"type\": \"function\", \"function\": {\"name\": ...}}", "tool_choice")


def parse_response_format(value: Any) -> ResponseFormat | None:
    """`response_format` as a value, or None for free text."""
    if value is None:
        return None
    if not isinstance(value, dict) or not isinstance(value.get("type"), str):
        raise ToolRequestError("'response_format' must be an object with a 'type'", "response_format")
    kind = value["type"]
    if kind == "text":
        return None
    if kind == "json_object":
        return ResponseFormat("json_object", raw=value)
    if kind != "json_schema":
        raise ToolRequestError(f"'response_format.type' must be 'text', 'json_object' or 'json_schema', not {kind!r}",
                               "response_format.type")
    spec = value.get("json_schema")
    if not isinstance(spec, dict):
        raise ToolRequestError("'response_format.json_schema' must be an object with a 'schema'",
                               "response_format.json_schema")
    schema = spec.get("schema")
    if not isinstance(schema, dict):
        raise ToolRequestError("'response_format.json_schema.schema' must be a JSON Schema object",
                               "response_format.json_schema.schema")
    name = spec.get("name")
    if name is not None and not isinstance(name, str):
        raise ToolRequestError("'response_format.json_schema.name' must be a string", "response_format.json_schema.name")
    return ResponseFormat("json_schema", schema, name, spec.get("strict") is True, value)


def check_tool_turns(messages: Sequence[Message]) -> None:
    """Assistant `tool_calls` are well formed and every tool result answers a call made before it."""
    called: set[str] = set()
    for i, message in enumerate(messages):
        role = message.get("role")
        if role == "assistant" and message.get("tool_calls") is not None:
            called.update(_call_ids(i, message["tool_calls"]))
        elif role == "tool":
            call_id = message.get("tool_call_id")
            if not isinstance(call_id, str) or not call_id:
                raise ToolRequestError(f"'messages[{i}]' is a tool result without a 'tool_call_id'",
                                       f"messages[{i}].tool_call_id")
            if call_id not in called:
                raise ToolRequestError(f"'messages[{i}].tool_call_id' {call_id!r} answers no earlier assistant tool "
                                       "call", f"messages[{i}].tool_call_id")


def _call_ids(index: int, calls: Any) -> list[str]:
    where = f"messages[{index}].tool_calls"
    if not isinstance(calls, list):
        raise ToolRequestError(f"'{where}' must be a list", where)
    ids = []
    for j, call in enumerate(calls):
        spec = call.get("function") if isinstance(call, dict) else None
        if not isinstance(spec, dict) or not isinstance(spec.get("name"), str) or not isinstance(call.get("id"), str):
            raise ToolRequestError(f"'{where}[{j}]' needs an 'id' and a 'function' with a 'name'", f"{where}[{j}]")
        arguments = spec.get("arguments", "{}")
        if not isinstance(arguments, str):
            raise ToolRequestError(f"'{where}[{j}].function.arguments' must be a JSON string",
                                   f"{where}[{j}].function.arguments")
        try:
            orjson.loads(arguments or "{}")
        except orjson.JSONDecodeError:
            raise ToolRequestError(f"'{where}[{j}].function.arguments' is not valid JSON",
                                   f"{where}[{j}].function.arguments") from None
        ids.append(call["id"])
    return ids
