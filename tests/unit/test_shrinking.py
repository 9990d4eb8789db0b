"""Context shrinking with the real MiniLM: what the LLM reads of long context, under a budget."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import pytest

from hybridlm.config import ConfigError, parse_config
from hybridlm.models.base import GenerationParams, estimate_prompt_tokens, estimate_tokens
from hybridlm.models.wrappers.shrinking import Shrinking
from hybridlm.shrinking import GAP, ContextShrinker, Shrunk, units_of
from hybridlm.types import Message
from tests.fakes import ScriptedBackend

QUESTION = "What time does the Lyon branch open on Saturdays?"
ANSWER = "On Saturdays the Lyon branch opens at 9:30 and closes at noon."
DISTRACTORS = [
    "The company was founded in 1987 by two engineers from Grenoble.",
    "Its head office moved to a larger building near the river in 2004.",
    "Customers can order spare parts online and have them delivered within three days.",
    "The Paris branch has twelve employees and a showroom for heating systems.",
    "Every invoice can be paid by bank transfer, card or cheque.",
    "The annual report lists revenue, staff numbers and the new product lines.",
    "Warranty claims are handled by the service desk, which answers by e-mail.",
    "The Marseille branch was renovated last spring and reopened in June.",
]
DOCUMENT = " ".join([*DISTRACTORS[:5], ANSWER, *DISTRACTORS[5:]])
OTHER = "Heat pumps need a yearly check. Filters should be cleaned every three months. Old boilers waste energy."


@pytest.fixture(scope="module")
def shrinker() -> ContextShrinker:
    return ContextShrinker()  # MiniLM, loaded on first use


def conversation(copies: int = 6) -> list[Message]:
    return [{"role": "system", "content": "You answer questions about the company from its documents."},
            {"role": "user", "content": f"Here is our handbook. {DOCUMENT} " * copies},
            {"role": "assistant", "content": "Thanks, I have read it."},
            {"role": "tool", "tool_call_id": "call_1", "content": OTHER * 4},
            {"role": "user", "content": QUESTION}]


def test_the_sentence_that_answers_is_kept_among_distractors_under_a_small_budget(shrinker: ContextShrinker) -> None:
    shrunk = shrinker.select(QUESTION, [("handbook", DOCUMENT), ("maintenance", OTHER)], budget_tokens=24)
    assert [e.text for e in shrunk.excerpts] == [ANSWER]
    assert shrunk.excerpts[0].index == 5 and shrunk.excerpts[0].source == "handbook"
    assert shrunk.original_tokens == estimate_tokens(DOCUMENT) + estimate_tokens(OTHER)
    assert shrunk.saved_tokens == shrunk.original_tokens - shrunk.kept_tokens > 0


def test_excerpts_keep_their_positions_and_order_and_the_rendering_shows_them(shrinker: ContextShrinker) -> None:
    sources = [("handbook", DOCUMENT), ("maintenance", OTHER)]
    shrunk = shrinker.select(QUESTION + " Which branch was renovated?", sources, budget_tokens=80)
    units = {(u.source, u.index): u.text for u in units_of(sources)}
    assert all(units[e.source, e.index] == e.text for e in shrunk.excerpts)
    order = [(["handbook", "maintenance"].index(e.source), e.index) for e in shrunk.excerpts]
    assert order == sorted(order) and len(order) > 2
    rendered = shrunk.render()
    assert rendered.startswith("handbook:\n") and f"[5] {ANSWER}" in rendered and GAP in rendered
    assert rendered.index(f"[5] {ANSWER}") < rendered.index("Marseille")


@pytest.mark.parametrize("budget", [8, 24, 60, 150, 1000])
def test_the_rendered_selection_stays_within_the_budget(shrinker: ContextShrinker, budget: int) -> None:
    shrunk = shrinker.select(QUESTION, [("handbook", DOCUMENT), ("maintenance", OTHER)], budget)
    assert shrunk.kept_tokens == estimate_tokens(shrunk.render()) <= budget


def test_the_same_selection_from_many_threads_at_once(shrinker: ContextShrinker) -> None:
    alone = shrinker.select(QUESTION, [("handbook", DOCUMENT)], 60)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: shrinker.select(QUESTION, [("handbook", DOCUMENT)], 60), range(16)))
    assert all(r.excerpts == alone.excerpts for r in results)


def test_long_earlier_content_is_replaced_and_the_question_and_system_prompt_are_never_cut(
        shrinker: ContextShrinker) -> None:
    messages = conversation()
    out, shrunk = shrinker.shrink_messages(messages, budget_tokens=64, min_tokens=200)
    assert isinstance(shrunk, Shrunk)
    assert out[0] == messages[0] and out[-1] == messages[-1] and out[2] == messages[2]  # short reply kept whole
    assert out[3]["tool_call_id"] == "call_1" and out[3]["content"].startswith("tool message 3:")
    assert out[1]["content"].startswith("user message 1:") and out[1]["content"].count(ANSWER) == 1  # copies once
    assert estimate_prompt_tokens(out) < estimate_prompt_tokens(messages) - 200
    assert messages == conversation()  # the caller's messages are left as they were


def test_nothing_changes_at_or_below_min_tokens_or_when_the_long_content_fits(shrinker: ContextShrinker) -> None:
    messages = conversation()
    assert shrinker.shrink_messages(messages, 64, min_tokens=estimate_prompt_tokens(messages)) == (messages, None)
    assert shrinker.shrink_messages(messages, 5000, min_tokens=10) == (messages, None)
    only_question = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": DOCUMENT * 20}]
    assert shrinker.shrink_messages(only_question, 64, min_tokens=10) == (only_question, None)


def test_the_wrapper_sends_the_shrunk_messages_to_the_inner_backend(shrinker: ContextShrinker) -> None:
    inner = ScriptedBackend("big")
    seen: list[Shrunk] = []
    backend = Shrinking(inner, shrinker, budget_tokens=64, min_tokens=200, on_shrunk=seen.append)
    expected, _ = shrinker.shrink_messages(conversation(), 64, 200)

    async def stream() -> str:
        return "".join([chunk.text async for chunk in backend.stream(conversation(), GenerationParams())])

    assert asyncio.run(backend.complete(conversation(), GenerationParams())).text == "big says hi"
    assert asyncio.run(stream()).strip() == "big says hi"
    assert inner.history == [expected, expected] and len(seen) == 2
    asyncio.run(backend.complete(conversation(copies=1)[-1:], GenerationParams()))
    assert inner.history[-1] == conversation()[-1:] and len(seen) == 2  # short: sent whole, nothing reported


def test_the_context_section_has_defaults_and_refuses_a_budget_of_nothing() -> None:
    context = parse_config({}).context
    assert (context.shrink, context.budget_tokens, context.min_tokens) == (False, 1024, 2048)
    with pytest.raises(ConfigError, match=r"context\.budget_tokens"):
        parse_config({"context": {"budget_tokens": 0}})
