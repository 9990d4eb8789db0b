"""The local model's `<tool_call>` blocks to OpenAI tool calls, tidied before anyone sees them.

The call grammar fixes the shape (`{"name": "...", "arguments": {...}}`, blocks separated by the
end and start tags), so parsing needs no guesswork. Small models add two kinds of noise the
grammar cannot forbid, and `tidy` removes both: the same call written again and again, and
optional arguments filled with values the conversation never gave, or with one of their enumerated
choices it never names (a default the function would have used anyway is better than an invented one). Numbers the schema declares as `number` are
written as floats, which is what strict clients (and BFCL) expect of them. A rate the user gave in
per cent is written as the parameter describes it: as a percentage (5) where its name or description
says so, else as a fraction (0.05), the usual meaning of a rate; small models pick either at random.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from collections.abc import Sequence
from typing import Any

from hybridlm.tools.grammar import CALL_CLOSE, CALL_OPEN
from hybridlm.tools.grounding import conversation_text, ground_call, unsaid_choices
from hybridlm.tools.protocol import ToolRequest
from hybridlm.types import Message, ToolCall

OPEN_TAG, CLOSE_TAG = CALL_OPEN.strip(), CALL_CLOSE.strip()
PER_CENT = re.compile(r"(\d+(?:\.\d+)?)\s*(?:%|percent\b|per cent\b)", re.IGNORECASE)
RATE = re.compile(r"rate|ratio|fraction|percent|interest|discount|tax|growth|yield|return|probability|share")

Call = tuple[str, dict[str, Any]]


def new_call_id() -> str:
    return f"call_{uuid.uuid4().hex[:24]}"


def parse_block(block: str) -> Call | None:
    """One block's (name, arguments), or None for a block cut short (max_tokens)."""
    block = block.strip()
    if block.startswith(OPEN_TAG):
        block = block[len(OPEN_TAG):]
    try:
        data = json.loads(block, strict=False)
    except ValueError:
        return None
    if isinstance(data, dict) and isinstance(data.get("name"), str) and isinstance(data.get("arguments"), dict):
        return data["name"], data["arguments"]
    return None


def complete_blocks(text: str) -> list[str]:
    """The closed blocks in `text` (the model's output after the first opening tag)."""
    return text.split(CLOSE_TAG)[:-1]


def _as_floats(value: Any, schema: dict[str, Any]) -> Any:
    if schema.get("type") == "number" and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if schema.get("type") == "array" and isinstance(value, list):
        return [_as_floats(v, schema.get("items") or {}) for v in value]
    if schema.get("type") == "object" and isinstance(value, dict):
        properties = schema.get("properties") or {}
        return {k: _as_floats(v, properties.get(k) or {}) for k, v in value.items()}
    return value


def _rate_as_described(name: str, value: Any, schema: dict[str, Any], per_cents: frozenset[float]) -> Any:
    """A number the user said in per cent, as a percentage or as a fraction, as its name or description asks."""
    if schema.get("type") != "number" or isinstance(value, bool) or not isinstance(value, int | float):
        return value
    described = f"{name} {schema.get('description', '')}".lower()
    if not RATE.search(described):  # "5% for 5 years": the years are not a rate
        return value
    as_percentage = "percent" in described
    for said in per_cents:
        if as_percentage and math.isclose(value, said / 100):
            return said
        if not as_percentage and math.isclose(value, said) and said:
            return said / 100
    return value


def tidy(call: Call, tools: ToolRequest, messages: Sequence[Message]) -> Call:
    """Drop optional arguments (values or enumerated choices) not found in the conversation; numbers of `number` type as floats; rates
    given in per cent as their parameters describe them."""
    name, arguments = call
    function = tools.function(name)
    if function is None:
        return call
    invented = {*ground_call(function, arguments, messages).optional_missing,
                *unsaid_choices(function, arguments, messages)}
    kept = {k: v for k, v in arguments.items() if k not in invented}
    per_cents = frozenset(float(n) for n in PER_CENT.findall(conversation_text(messages)))
    if per_cents:
        properties = function.parameters.get("properties") or {}
        kept = {k: _rate_as_described(k, v, properties.get(k) or {}, per_cents) for k, v in kept.items()}
    return name, _as_floats(kept, function.parameters)


def as_tool_call(call: Call, call_id: str | None = None) -> ToolCall:
    name, arguments = call
    return ToolCall(call_id or new_call_id(), name, json.dumps(arguments, ensure_ascii=False))
