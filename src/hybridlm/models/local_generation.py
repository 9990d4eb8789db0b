"""One answer of the local model: free text, JSON held to a schema, or function calls held to the
offered functions, produced token by token on the model's worker thread.

With `tools` and `tool_choice: auto` the model first shows what it wants to do: the probability
it gives to starting a call (a `<tool_call>` tag, a JSON object or a code fence) is read from its
first token. When it starts a call, the call is written again under a grammar built from the
offered functions' schemas, so the name is one on offer and the arguments have the declared types,
with every required one present. When it means to answer in words, or no offered function fits
the request, it answers in words and no call is made. `tool_choice: required` or a named function
skip the choice. The best fitting function (by sentence-embedding similarity to the request) is
listed first: small models lean to the first one listed, and this turns the lean into help.

Two checks let it decline, as a careful assistant would: when no offered function fits the
request (by sentence-embedding similarity, `tool_fit_floor`) it answers in words without the tools,
and a call whose required value the conversation does not contain (an alarm with no time) is not
made: it asks for the value instead (`ask_for_missing`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from hybridlm.models.base import BackendError, GenerationParams
from hybridlm.models.chat_prompt import ChatPrompt, with_system_note
from hybridlm.models.llama_runtime import PromptCache, Sampling, Step, generate, log_softmax_at
from hybridlm.tools.grammar import CALL_CLOSE, CALL_OPEN, GrammarError, call_grammar, check_compiles, response_grammar
from hybridlm.tools.parsing import Call, as_tool_call, complete_blocks, parse_block, tidy
from hybridlm.tools.grounding import ground_call
from hybridlm.tools.protocol import Function, ToolRequest
from hybridlm.tools.relevance import ToolRelevance
from hybridlm.types import Chunk, Completion, Message, ToolCall, ToolCallDelta, Usage

CALL_TAG = CALL_OPEN.strip()
CLOSE_TAG = CALL_CLOSE.strip()
CALL_STARTS = ("{", "```", CALL_TAG)
NO_CALL_START = r"root ::= [^{<`\[ \t\n] [^\x00]*"  # a first token that starts words, not JSON or a tag
TEXT_TEMPERATURE = 0.2  # free text when the client sets none; constrained output is greedy


def call_start_tokens(llama: Any) -> np.ndarray:
    """Token ids whose text opens a call: a tag (or the start of one), a JSON object, a code fence."""
    ids = []
    for token in range(llama.n_vocab()):
        text = llama.detokenize([token], special=True).decode("utf-8", "ignore").lstrip()
        if text and (text.startswith(CALL_STARTS) or CALL_TAG.startswith(text)):
            ids.append(token)
    return np.array(ids, dtype=np.int64)


@dataclass
class LocalModel:
    """A loaded model and what its answers need: template, prompt cache, call-start tokens, and the
    checks that let it decline a call (see the module docstring)."""

    llama: Any
    name: str
    prompt: ChatPrompt
    cache: PromptCache
    call_starts: np.ndarray
    repeat_penalty: float
    call_threshold: float = 0.5
    relevance: ToolRelevance | None = None
    fit_floor: float | None = None
    ask_for_missing: bool = True


def _held_back(text: str, stops: list[str]) -> int:
    """How many trailing characters could be the start of a stop string (kept until known)."""
    longest = 0
    for stop in stops:
        for n in range(min(len(stop) - 1, len(text)), 0, -1):
            if text.endswith(stop[:n]):
                longest = max(longest, n)
                break
    return longest


class Answer:
    """One answer in the making: iterate `chunks()`, then read `completion()`."""

    def __init__(self, model: LocalModel, messages: list[Message], params: GenerationParams,
                 stopped: Callable[[], bool]) -> None:
        self.model = model
        self.messages = messages
        self.params = params
        self.stopped = stopped
        self.text = ""
        self.calls: list[ToolCall] = []
        self.logprobs: list[float] = []
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.finish_reason = "stop"
        self.call_probability: float | None = None  # auto tool choice: how much the model wanted to call
        self.tool_fit: float | None = None  # auto tool choice: how well the best offered function fits

    @property
    def tools(self) -> ToolRequest | None:
        tools = self.params.tools
        return tools if tools is not None and tools.choice != "none" else None

    @property
    def tool_context(self) -> bool:
        """Do functions figure in the prompt (offered, or called earlier), so that a model may write a call?"""
        return self.params.tools is not None or any(m.get("tool_calls") or m.get("role") == "tool"
                                                    for m in self.messages)

    def _tokens(self, prompt: str) -> list[int]:
        llama = self.model.llama
        tokens = llama.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)
        if len(tokens) >= llama.n_ctx():
            raise BackendError("invalid_request", f"{self.model.name}: the prompt is {len(tokens)} tokens, more than "
                               f"the model's context of {llama.n_ctx()} tokens", 400)
        self.prompt_tokens = len(tokens)
        return tokens

    def _budget(self, prompt: list[int]) -> int:
        return max(1, min(self.params.max_tokens - self.completion_tokens, self.model.llama.n_ctx() - len(prompt)))

    def _sampling(self, constrained: bool) -> Sampling:
        temperature = self.params.temperature
        if temperature is None:
            temperature = 0.0 if constrained else TEXT_TEMPERATURE
        return Sampling(temperature, self.params.top_p if self.params.top_p is not None else 0.95,
                        1.0 if constrained else self.model.repeat_penalty, self.params.seed)

    def _steps(self, prompt: list[int], constrained: bool, grammar: str | None = None, spent: int = 0) -> Iterator[Step]:
        """Generation after `prompt`, within what is left of max_tokens (less `spent` not yet counted)."""
        return generate(self.model.llama, prompt, self._sampling(constrained), self._budget(prompt) - spent,
                        grammar=grammar, stopped=self.stopped, logprobs=self.params.logprobs or grammar is not None)

    def chunks(self) -> Iterator[Chunk]:
        tools, response_format = self.tools, self.params.response_format
        if (tools is not None and self.model.relevance is not None and self.model.relevance.ready()
                and len(tools.offered()) > 1):
            # Small models lean to the first function listed: list the best fitting first.
            scores = self.model.relevance.scores(self.messages, tools.offered())
            self.tool_fit = max(scores)
            tools = tools.best_first(scores)
        prompt_text = self.model.prompt.render(self.messages, tools or self.params.tools)
        prompt = self._tokens(prompt_text)
        self.model.cache.restore(self.model.llama, prompt)
        if tools is not None and tools.must_call:
            yield from self._calls(prompt_text, tools)
        elif tools is not None:
            yield from self._auto(prompt_text, prompt, tools)
        elif response_format is not None:
            grammar = self._grammar(response_grammar(response_format))
            scored: list[tuple[int, int, float]] = []
            yield from self._text(_scoring(self._steps(prompt, constrained=True, grammar=grammar), scored),
                                  watch_calls=False)
            self.logprobs = _value_logprobs(self.text, scored)
        elif self.tool_context:  # tool_choice none, or an answer after tool results: words, not a call
            if self.messages and self.messages[-1].get("role") == "tool":
                note = "The function results are above: answer the user's request from them, in words."
                prompt = self._tokens(self.model.prompt.render(with_system_note(self.messages, note),
                                                               self.params.tools))
            yield from self._text(self._words_first(prompt), watch_calls=False)
        else:
            yield from self._text(self._steps(prompt, constrained=False), watch_calls=False)
        self.model.cache.remember(self.model.llama)
        yield Chunk(finish_reason=self.finish_reason, usage=Usage(self.prompt_tokens, self.completion_tokens))

    def _grammar(self, grammar: str) -> str:
        try:
            check_compiles(self.model.llama, grammar)
        except GrammarError as err:
            raise BackendError("invalid_request", f"{self.model.name}: {err}", 400) from None
        return grammar

    def _auto(self, prompt_text: str, prompt: list[int], tools: ToolRequest) -> Iterator[Chunk]:
        model = self.model
        if model.relevance is not None and model.fit_floor is not None and model.relevance.can_judge(self.messages):
            if self.tool_fit is None:
                self.tool_fit = model.relevance.best(self.messages, tools.offered())
            if self.tool_fit < model.fit_floor:  # no offered function fits: an answer in words
                yield from self._words(self.messages)
                return
        steps = self._steps(prompt, constrained=False)
        first = next(steps, None)
        if first is None:
            return
        distribution = log_softmax_at(self.model.llama)
        self.call_probability = float(np.exp(distribution[self.model.call_starts]).sum())
        starts_call = first.token in set(self.model.call_starts.tolist())
        if self.call_probability >= self.model.call_threshold:
            steps.close()
            yield from self._calls(prompt_text, tools)
            return
        if starts_call:  # it leans to words, but its sampled start opens a call: answer without the tools
            steps.close()
            yield from self._words(self.messages)
            return
        yield from self._text(_chain(first, steps), watch_calls=True, prompt_text=prompt_text, tools=tools)

    def _text(self, steps: Iterator[Step], watch_calls: bool, prompt_text: str = "",
              tools: ToolRequest | None = None) -> Iterator[Chunk]:
        stops = list(self.params.stop or []) + ([CALL_TAG] if watch_calls else [])
        held = ""
        produced = 0
        for step in steps:
            produced += 1
            self._count(step)
            held += step.text
            found = [(held.find(s), s) for s in stops if s in held]
            if found:
                at, stop = min(found)
                if at:
                    yield self._say(held[:at])
                steps.close()
                if stop == CALL_TAG and tools is not None:  # a call after some words: written under the grammar
                    yield from self._calls(prompt_text + self.text, tools)
                return
            keep = _held_back(held, stops)
            if len(held) > keep:
                yield self._say(held[: len(held) - keep])
                held = held[len(held) - keep:]
        if held:
            yield self._say(held)
        if produced and self.completion_tokens >= self.params.max_tokens:
            self.finish_reason = "length"

    def _words(self, messages: list[Message]) -> Iterator[Chunk]:
        """An answer in words, with no tools in the prompt and a first token that opens no call."""
        prompt = self._tokens(self.model.prompt.render(messages))
        yield from self._text(self._words_first(prompt), watch_calls=False)

    def _words_first(self, prompt: list[int]) -> Iterator[Step]:
        """Free text whose first token cannot open a call (the grammar holds that one token only)."""
        first = next(generate(self.model.llama, prompt, self._sampling(False), 1, grammar=NO_CALL_START,
                              stopped=self.stopped, logprobs=self.params.logprobs), None)
        if first is None:
            return iter(())
        if self._budget(prompt) <= 1:
            return iter((first,))
        return _chain(first, self._steps([*prompt, first.token], constrained=False, spent=1))

    def _say(self, text: str) -> Chunk:
        self.text += text
        return Chunk(text=text)

    def _count(self, step: Step) -> None:
        self.completion_tokens += 1
        if step.logprob is not None and math.isfinite(step.logprob):
            self.logprobs.append(step.logprob)

    def _calls(self, prompt_text: str, tools: ToolRequest) -> Iterator[Chunk]:
        """Calls written under the grammar; each is tidied and sent once it is closed (a repeat is dropped).

        With tool_choice auto, a call missing a required value the conversation does not contain is
        not made: the model asks for the value instead.
        """
        grammar = self._grammar(call_grammar(tools.offered(), tools.parallel))
        prompt = self._tokens(prompt_text + CALL_OPEN)
        written, seen = "", 0
        made: list[Call] = []
        wanting: list[tuple[Function, tuple[str, ...]]] = []
        scored: list[tuple[int, int, float]] = []  # (start, end, log-probability) of each token written
        for step in _scoring(self._steps(prompt, constrained=True, grammar=grammar), scored):
            self.completion_tokens += 1
            written += step.text
            blocks = complete_blocks(written)
            for block in blocks[seen:]:
                parsed = parse_block(block)
                call = tidy(parsed, tools, self.messages) if parsed else None
                if call is None or call in made:
                    continue
                missing = self._missing(call, tools)
                if missing:
                    wanting.append(missing)
                    continue
                made.append(call)
                yield from self._announce(as_tool_call(call))
            seen = len(blocks)
        self.logprobs = _json_logprobs(written, scored)
        if not self.calls and wanting:
            yield from self._ask_for(*wanting[0])
            return
        self.finish_reason = "tool_calls" if self.calls and written.rstrip().endswith(CLOSE_TAG) else "length"

    def _missing(self, call: Call, tools: ToolRequest) -> tuple[Function, tuple[str, ...]] | None:
        function = tools.function(call[0])
        if tools.must_call or not self.model.ask_for_missing or function is None:
            return None
        missing = ground_call(function, call[1], self.messages).required_missing
        return (function, missing) if missing else None

    def _ask_for(self, function: Function, missing: tuple[str, ...]) -> Iterator[Chunk]:
        """Words instead of a call made up of values nobody gave: ask for them."""
        self.logprobs = []
        self.finish_reason = "stop"
        wanted = ", ".join(missing)
        note = (f"You could help with `{function.name}` ({function.description.strip()}), but the user has not "
                f"given: {wanted}. Do not pretend to have done it. Answer what you can, and ask for what is missing.")
        yield from self._words(with_system_note(self.messages, note))

    def _announce(self, call: ToolCall) -> Iterator[Chunk]:
        """A finished call as OpenAI streams one: its id and name first, then its arguments."""
        index = len(self.calls)
        self.calls.append(call)
        yield Chunk(tool_calls=(ToolCallDelta(index, call.id, call.name, ""),))
        yield Chunk(tool_calls=(ToolCallDelta(index, arguments=call.arguments),))

    def completion(self) -> Completion:
        return Completion(
            text=self.text, model=self.model.name, usage=Usage(self.prompt_tokens, self.completion_tokens),
            finish_reason=self.finish_reason, token_logprobs=tuple(self.logprobs) if self.params.logprobs or self.calls
            else None, tool_calls=tuple(self.calls),
            call_probability=self.call_probability,
        )


def _json_logprobs(written: str, scored: list[tuple[int, int, float]]) -> list[float]:
    """The log-probabilities of the calls' JSON only: what the grammar forces around it (the end tag,
    which the model would rather not write) says nothing of how sure it was of the call."""
    spans, offset = [], 0
    for block in complete_blocks(written):
        if "{" in block:
            spans.append((offset + block.index("{"), offset + block.rindex("}") + 1))
        offset += len(block) + len(CLOSE_TAG)
    return [lp for start, end, lp in scored if any(a <= start and end <= b for a, b in spans)]


def _scoring(steps: Iterator[Step], scored: list[tuple[int, int, float]]) -> Iterator[Step]:
    """The steps as they come, each one's (start, end, log-probability) in the text noted on the way."""
    offset = 0
    for step in steps:
        if step.logprob is not None and math.isfinite(step.logprob):
            scored.append((offset, offset + len(step.text), step.logprob))
        offset += len(step.text)
        yield step


def _value_logprobs(written: str, scored: list[tuple[int, int, float]]) -> list[float]:
    """The log-probabilities of the tokens of a JSON answer's values only. The grammar forces its braces, keys
    and quotes, which the model may not have meant to write there (it would open a code fence first: about
    0.05 for the opening brace), so they say nothing of how sure it was of the values. All of them when the
    answer has no value."""
    spans = json_value_spans(written)
    kept = [lp for start, end, lp in scored if any(start < b and a < end for a, b in spans)]
    return kept or [lp for _, _, lp in scored]


def json_value_spans(text: str) -> list[tuple[int, int]]:
    """Where a JSON text's values are (the insides of strings that are not keys, numbers, true, false, null),
    as (start, end) offsets; a text cut short is read as far as it goes."""
    spans: list[tuple[int, int]] = []
    open_: list[str] = []  # per open container: "key" (an object expecting a key), "value", or "array"
    i = 0
    while i < len(text):
        char = text[i]
        if char == '"':
            end = i + 1
            while end < len(text) and text[end] != '"':
                end += 2 if text[end] == "\\" else 1
            if not open_ or open_[-1] != "key":
                spans.append((i + 1, min(end, len(text))))
            i = end + 1
            continue
        if char in "{[":
            open_.append("key" if char == "{" else "array")
        elif char in "}]" and open_:
            open_.pop()
        elif char == ":" and open_:
            open_[-1] = "value"
        elif char == "," and open_ and open_[-1] == "value":
            open_[-1] = "key"
        elif char in "-0123456789tfn":
            end = i
            while end < len(text) and (text[end].isalnum() or text[end] in "+-."):
                end += 1
            spans.append((i, end))
            i = end
            continue
        i += 1
    return spans


def _chain(first: Step, rest: Iterator[Step]) -> Iterator[Step]:
    """The already-produced first step, then the rest; closing it closes the generation."""
    try:
        yield first
        yield from rest
    finally:
        rest.close()  # type: ignore[attr-defined]
