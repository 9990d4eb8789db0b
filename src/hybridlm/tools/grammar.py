"""GBNF grammars that make the local model's output valid by construction.

llama.cpp samples only tokens a grammar allows, so a JSON answer always parses and a function
call always names an offered function with arguments of the right shape. The grammars come from
JSON Schema through llama-cpp-python's converter (the one llama.cpp ships); only the string
character rule is tightened so a raw control character can never make the JSON unreadable.

A call is written the way Qwen-style templates describe it, `<tool_call>\\n{"name": ..., "arguments":
{...}}\\n</tool_call>`, one block per call; the opening tag is part of the prompt, so the grammar
starts at the JSON.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from hybridlm.errors import HybridLMError
from hybridlm.tools.protocol import Function, ResponseFormat

CALL_OPEN = "<tool_call>\n"
CALL_CLOSE = "\n</tool_call>"
STRICT_CHAR = r'char ::= [^"\\\x7F\x00-\x1F] | "\\" (["\\/bfnrt] | "u" [0-9a-fA-F]{4})'


class GrammarError(HybridLMError):
    """A schema the local model cannot be constrained to; the request is refused with a 400."""


def _converter() -> Any:
    from llama_cpp.llama_grammar import SchemaConverter

    return SchemaConverter(prop_order={}, allow_fetch=False, dotall=False, raw_pattern=False)


def _strict(grammar: str) -> str:
    return "\n".join(STRICT_CHAR if line.startswith("char ::= ") else line for line in grammar.splitlines())


def _render(schemas: Sequence[tuple[str, dict[str, Any]]], root: str) -> str:
    """Rules for each (name, schema) pair in one converter, plus the given root rule."""
    converter = _converter()
    try:
        for name, schema in schemas:
            converter.visit(converter.resolve_refs(json.loads(json.dumps(schema)), name), name)
    except (AssertionError, KeyError, TypeError, ValueError, RecursionError) as err:
        raise GrammarError(f"the schema cannot be turned into a grammar: {err}") from None
    return _strict(f"{root}\n{converter.format_grammar()}")


def response_grammar(response_format: ResponseFormat) -> str:
    """The whole answer is one JSON object, or one value of the given schema."""
    if response_format.kind == "json_object" or response_format.schema is None:
        return _render([("answer", {"type": "object"})], "root ::= answer")
    return _render([("answer", response_format.schema)], "root ::= answer")


def call_schema(function: Function) -> dict[str, Any]:
    """The JSON of one call of `function`, name first, as the model writes it."""
    return {
        "type": "object",
        "properties": {"name": {"const": function.name}, "arguments": function.parameters},
        "required": ["name", "arguments"],
    }


def call_grammar(functions: Sequence[Function], parallel: bool) -> str:
    """One call (or several, when parallel) of the given functions, each closed by its end tag."""
    schemas = [(f"fn{i}", call_schema(f)) for i, f in enumerate(functions)]
    call = " | ".join(name for name, _ in schemas)
    closing = json.dumps(CALL_CLOSE)
    between = json.dumps(CALL_CLOSE + "\n" + CALL_OPEN)
    repeat = f" ({between} call)*" if parallel else ""
    return _render(schemas, f"root ::= call{repeat} {closing}\ncall ::= {call}")


def check_compiles(llama: Any, grammar: str) -> None:
    """llama.cpp's own parser accepts the grammar (it returns no sampler for one it rejects)."""
    import llama_cpp

    sampler = llama_cpp.llama_sampler_init_grammar(llama._model.vocab, grammar.encode("utf-8"), b"root")
    if not sampler:
        raise GrammarError("llama.cpp cannot compile the grammar for this schema")
    llama_cpp.llama_sampler_free(sampler)
