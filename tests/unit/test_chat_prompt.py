"""Messages, tools, calls and tool results rendered with a chat template, including one that knows no tools."""

from __future__ import annotations

from hybridlm.models.chat_prompt import TOOL_GUIDANCE, ChatPrompt, with_system_note
from hybridlm.types import text_of
from hybridlm.tools.protocol import parse_tools

CHATML = ("{% for m in messages %}{{'<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n'}}{% endfor %}"
          "{% if add_generation_prompt %}{{'<|im_start|>assistant\\n'}}{% endif %}")
TOOLS = parse_tools([{"type": "function", "function": {"name": "get_weather", "description": "Weather for a city.",
                                                       "parameters": {"type": "object", "properties": {
                                                           "city": {"type": "string"}}, "required": ["city"]}}}])
CALLED = [
    {"role": "user", "content": [{"type": "text", "text": "Weather in "}, {"type": "text", "text": "Lisbon?"}]},
    {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Lisbon"}'}}]},
    {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
]


def test_a_template_without_tools_gets_them_in_the_system_prompt_and_calls_as_text() -> None:
    prompt = ChatPrompt(CHATML, "<|im_end|>", "")
    assert not prompt.knows_tools
    text = prompt.render(CALLED, TOOLS)
    assert text.startswith("<|im_start|>system\nYou are a helpful assistant. " + TOOL_GUIDANCE)
    assert '"name": "get_weather"' in text and "<tools>" in text
    assert "Weather in Lisbon?" in text  # content parts joined
    assert '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Lisbon"}}\n</tool_call>' in text
    assert "<|im_start|>user\n<tool_response>\nsunny\n</tool_response>" in text
    assert text.endswith("<|im_start|>assistant\n")


def test_without_tools_the_messages_render_as_they_are() -> None:
    prompt = ChatPrompt(CHATML, "<|im_end|>", "")
    text = prompt.render([{"role": "developer", "content": "Be brief."}, {"role": "user", "content": "Hi"}])
    assert text == "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"


def test_a_note_joins_the_system_prompt() -> None:
    noted = with_system_note([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}], "Ask.")
    assert noted[0] == {"role": "system", "content": "Be brief.\n\nAsk."} and len(noted) == 2
    assert with_system_note([{"role": "user", "content": "Hi"}], "Ask.")[0]["role"] == "system"
    assert text_of(None) == "" and text_of([{"type": "image_url"}, {"type": "text", "text": "x"}]) == "x"
