"""The local model's `<tool_call>` blocks to OpenAI tool calls, whole or as stream deltas.

The call grammar fixes the shape (`{"name": "...", "arguments": {...}}`, blocks separated by the
end and start tags), so parsing needs no guesswork; the stream parser only has to find the name
and then pass the arguments' characters on as they come, the way OpenAI streams them.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from hybridlm.tools.grammar import CALL_CLOSE, CALL_OPEN
from hybridlm.types import ToolCall, ToolCallDelta

NAME_START = re.compile(r'\{\s*"name"\s*:\s*"')
ARGUMENTS_START = re.compile(r'"arguments"\s*:\s*')


def new_call_id() -> str:
    return f"call_{uuid.uuid4().hex[:24]}"


def parse_calls(text: str) -> list[tuple[str, dict[str, Any]]]:
    """(name, arguments) of each block in `text`, which follows an opening tag."""
    calls = []
    for block in (CALL_OPEN + text).split(CALL_CLOSE.strip()):
        block = block.strip()
        if not block.startswith(CALL_OPEN.strip()):
            continue
        try:
            data = json.loads(block[len(CALL_OPEN.strip()):], strict=False)
        except ValueError:
            continue  # cut short by max_tokens: not a call
        if isinstance(data, dict) and isinstance(data.get("name"), str) and isinstance(data.get("arguments"), dict):
            calls.append((data["name"], data["arguments"]))
    return calls


def as_tool_calls(calls: list[tuple[str, dict[str, Any]]], ids: list[str] | None = None) -> tuple[ToolCall, ...]:
    ids = ids or []
    return tuple(ToolCall(ids[i] if i < len(ids) else new_call_id(), name, json.dumps(arguments, ensure_ascii=False))
                 for i, (name, arguments) in enumerate(calls))


class CallStream:
    """Turns the model's call text, piece by piece, into OpenAI tool-call deltas."""

    def __init__(self) -> None:
        self.ids: list[str] = []
        self._pending = ""  # text not yet understood (a name or the start of the arguments)
        self._state = "name"  # name -> arguments -> inside -> between
        self._depth = 0
        self._in_string = False
        self._escaped = False

    def feed(self, text: str) -> list[ToolCallDelta]:
        deltas: list[ToolCallDelta] = []
        for char in text:
            delta = self._char(char)
            if delta is not None:
                if deltas and delta.id is None and deltas[-1].id is None and deltas[-1].index == delta.index:
                    deltas[-1] = ToolCallDelta(delta.index, arguments=deltas[-1].arguments + delta.arguments)
                else:
                    deltas.append(delta)
        return deltas

    def _char(self, char: str) -> ToolCallDelta | None:
        index = len(self.ids) - 1
        if self._state == "inside":
            return self._argument_char(char, index)
        self._pending += char
        if self._state == "name":
            start = NAME_START.search(self._pending)
            if start and self._pending.endswith('"') and len(self._pending) > start.end():
                name = self._pending[start.end():-1]
                self.ids.append(new_call_id())
                self._pending, self._state = "", "arguments"
                return ToolCallDelta(len(self.ids) - 1, self.ids[-1], name, "")
        elif self._state == "arguments":
            start = ARGUMENTS_START.search(self._pending)
            if start and char == "{":
                self._pending, self._state, self._depth = "", "inside", 0
                return self._argument_char(char, index)
        elif self._state == "between" and self._pending.endswith(CALL_OPEN.strip()):
            self._pending, self._state = "", "name"
        return None

    def _argument_char(self, char: str, index: int) -> ToolCallDelta:
        if self._in_string:
            if self._escaped:
                self._escaped = False
            elif char == "\\":
                self._escaped = True
            elif char == '"':
                self._in_string = False
        elif char == '"':
            self._in_string = True
        elif char in "{[":
            self._depth += 1
        elif char in "}]":
            self._depth -= 1
            if self._depth == 0:
                self._state = "between"
        return ToolCallDelta(index, arguments=char)
