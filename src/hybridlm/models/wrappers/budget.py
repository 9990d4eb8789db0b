"""Budgets: a paid call to a tier with a budget (the tier's own, per day or month, or its caller's API key's)
reserves its worst-case cost before it starts, and gives the reservation back when it ends, however it ends.

A call the budgets cannot afford fails with `BackendError("over_budget", reason)` before it starts;
the executor then lets the local tier answer or the client get 429, per `budgets.when_exhausted`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from hybridlm.config import Config
from hybridlm.models.base import BackendError, ChatBackend, GenerationParams, estimate_prompt_tokens
from hybridlm.models.wrappers.base import BackendWrapper
from hybridlm.request import Caller
from hybridlm.spend import Budget, Hold, SpendBook
from hybridlm.types import Chunk, Completion, Message

OVER_BUDGET = "over_budget"


def budgets_for(config: Config, tier: str, caller: Caller | None) -> tuple[Budget, ...]:
    """The budgets a call to `tier` for `caller` counts against: the tier's, and the key's when the tier costs
    anything."""
    t = config.tiers[tier]
    budgets = [Budget(("tier", tier), period, limit) for period, limit in
               (("day", t.budget_usd_per_day), ("month", t.budget_usd_per_month)) if limit is not None]
    if caller is not None and (t.price.input > 0 or t.price.output > 0):
        label = f"key '{caller.key_id}'" + (f" ({caller.name})" if caller.name and caller.name != caller.key_id else "")
        budgets += [Budget(("key", caller.key_id), period, limit, label) for period, limit in
                    (("day", caller.budget_usd_per_day), ("month", caller.budget_usd_per_month)) if limit is not None]
    return tuple(budgets)


def worst_case_usd(config: Config, tier: str, messages: list[Message], params: GenerationParams) -> float:
    """What the call may cost at most: the estimated prompt, and every token it may write."""
    max_tokens = params.max_tokens or config.server.default_max_tokens
    return config.tiers[tier].price.cost(estimate_prompt_tokens(messages), max_tokens)


def over_budget(book: SpendBook, budgets: tuple[Budget, ...]) -> str | None:
    """Why no more calls may go to the tier now (a budget reached, counting calls in flight), or None."""
    refusal = book.check(budgets) if budgets else None
    return refusal.reason if refusal else None


class Budgeted(BackendWrapper):
    """Reserve -> call -> release. Sits outside `Accounted`, so what the call used is on the request's ledger
    (and so in its log row, which the book counts) when the reservation goes."""

    def __init__(self, inner: ChatBackend, tier: str, config: Config, book: SpendBook,
                 budgets: tuple[Budget, ...]) -> None:
        super().__init__(inner)
        self.tier, self.config, self.book, self.budgets = tier, config, book, budgets

    def _reserve(self, messages: list[Message], params: GenerationParams) -> Hold:
        held = self.book.reserve(self.budgets, worst_case_usd(self.config, self.tier, messages, params))
        if not isinstance(held, Hold):
            raise BackendError(OVER_BUDGET, held.reason, retry_after=held.retry_after_s)
        return held

    async def complete(self, messages: list[Message], params: GenerationParams) -> Completion:
        hold = self._reserve(messages, params)
        try:
            return await self.inner.complete(messages, params)
        finally:
            self.book.release(hold)

    async def stream(self, messages: list[Message], params: GenerationParams) -> AsyncIterator[Chunk]:
        """Reserved when the stream is first read (a refusal raises there, before any chunk), released when
        it closes: at its end, on a failure, or when the reader stops."""
        hold = self._reserve(messages, params)
        try:
            chunks = self.inner.stream(messages, params)
            try:
                async for chunk in chunks:
                    yield chunk
            finally:
                aclose = getattr(chunks, "aclose", None)
                if aclose is not None:
                    await aclose()
        finally:
            self.book.release(hold)
