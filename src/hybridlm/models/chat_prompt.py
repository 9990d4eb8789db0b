"""OpenAI messages (with tools, calls and tool results) to the prompt text a GGUF model was trained on.

The model's own chat template (stored in the GGUF) renders the prompt, through llama-cpp-python's
Jinja formatter. Templates differ in what they accept, so the messages are normalised first:
content parts joined into text, `developer` turns as `system`, call arguments as objects. A template
that knows nothing of tools (SmolLM2's, say) still gets them: they are described in the system
prompt, and earlier calls and results written as text, in the `<tool_call>` convention the call
grammar uses.
"""

from __future__ import annotations

import json
from typing import Any

from hybridlm.tools.grammar import CALL_CLOSE, CALL_OPEN
from hybridlm.tools.protocol import ToolRequest
from hybridlm.types import Message, text_of

TOOLS_PREAMBLE = (
    "\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
    "You are provided with function signatures within <tools></tools> XML tags:\n<tools>"
)
TOOLS_RULES = (
    "\n</tools>\n\nFor each function call, return a json object with function name and arguments within "
    "<tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": "
    "<args-json-object>}\n</tool_call>"
)
DEFAULT_SYSTEM = "You are a helpful assistant."
TOOL_GUIDANCE = (
    "When you call a function, take each argument value from the user's message, converted to the units and "
    "format the function's description asks for, and leave out optional arguments the user did not mention."
)


def _arguments(call: dict[str, Any]) -> dict[str, Any]:
    function = call.get("function") or {}
    try:
        value = json.loads(function.get("arguments") or "{}")
    except (TypeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def with_system_note(messages: list[Message], note: str) -> list[Message]:
    """The messages with `note` added to the system prompt (or as one, when there is none)."""
    if messages and messages[0].get("role") in ("system", "developer"):
        first = {**messages[0], "role": "system", "content": f"{text_of(messages[0].get('content'))}\n\n{note}"}
        return [first, *messages[1:]]
    return [{"role": "system", "content": f"{DEFAULT_SYSTEM} {note}"}, *messages]


def tool_json(request: ToolRequest) -> list[dict[str, Any]]:
    """The offered functions in OpenAI's shape, as the template prints them."""
    return [{"type": "function", "function": {"name": f.name, "description": f.description,
                                              "parameters": f.parameters}} for f in request.offered()]


class ChatPrompt:
    """Renders messages with one model's template; `knows_tools` says if the template renders tools."""

    def __init__(self, template: str, eos_token: str, bos_token: str) -> None:
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        self._formatter = Jinja2ChatFormatter(template=template, eos_token=eos_token, bos_token=bos_token)
        self.knows_tools = "tools" in template and "tool_call" in template

    @classmethod
    def for_model(cls, llama: Any) -> ChatPrompt:
        template = llama.metadata.get("tokenizer.chat_template")
        if not template:  # an old GGUF without a template: ChatML, which most small instruct models use
            template = ("{% for m in messages %}{{'<|im_start|>' + m['role'] + '\n' + m['content'] + '<|im_end|>\n'}}"
                        "{% endfor %}{% if add_generation_prompt %}{{'<|im_start|>assistant\n'}}{% endif %}")
        eos, bos = llama.token_eos(), llama.token_bos()
        return cls(template, llama._model.token_get_text(eos) if eos != -1 else "",
                   llama._model.token_get_text(bos) if bos != -1 else "")

    def render(self, messages: list[Message], tools: ToolRequest | None = None) -> str:
        """The prompt, ending where the assistant's answer begins; with tools, the system prompt says how
        to fill arguments (small models otherwise invent optional ones)."""
        normalised = [self._normalise(m) for m in messages]
        if tools is None:
            return self._formatter(messages=normalised).prompt
        if normalised and normalised[0]["role"] == "system":
            system = normalised.pop(0)["content"] + "\n\n" + TOOL_GUIDANCE
        else:
            system = DEFAULT_SYSTEM + " " + TOOL_GUIDANCE
        if not self.knows_tools:
            return self._formatter(messages=self._as_text_turns(system, normalised, tools)).prompt
        return self._formatter(messages=[{"role": "system", "content": system}, *normalised],
                               tools=tool_json(tools)).prompt

    @staticmethod
    def _normalise(message: Message) -> dict[str, Any]:
        role = "system" if message.get("role") == "developer" else str(message.get("role"))
        out: dict[str, Any] = {"role": role, "content": text_of(message.get("content"))}
        if role == "assistant" and message.get("tool_calls"):
            out["tool_calls"] = [{"id": c.get("id"), "type": "function",
                                  "function": {"name": (c.get("function") or {}).get("name"), "arguments": _arguments(c)}}
                                 for c in message["tool_calls"]]
        if role == "tool":
            out["tool_call_id"] = message.get("tool_call_id")
        return out

    @staticmethod
    def _as_text_turns(system: str, turns: list[dict[str, Any]], tools: ToolRequest) -> list[dict[str, Any]]:
        """Tools described in the system prompt, calls and results as plain turns, for a template without tools."""
        listing = "".join("\n" + json.dumps(t) for t in tool_json(tools))
        out: list[dict[str, Any]] = [{"role": "system", "content": system + TOOLS_PREAMBLE + listing + TOOLS_RULES}]
        for turn in turns:
            if turn["role"] == "assistant" and turn.get("tool_calls"):
                calls = "\n".join(CALL_OPEN + json.dumps({"name": c["function"]["name"],
                                                           "arguments": c["function"]["arguments"]}) + CALL_CLOSE
                                  for c in turn["tool_calls"])
                out.append({"role": "assistant", "content": (turn["content"] + "\n" + calls).strip()})
            elif turn["role"] == "tool":
                out.append({"role": "user", "content": f"<tool_response>\n{turn['content']}\n</tool_response>"})
            else:
                out.append({"role": turn["role"], "content": turn["content"]})
        return out
