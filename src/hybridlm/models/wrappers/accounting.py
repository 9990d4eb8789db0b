"""Accounting: every call a tier makes for a request goes on the request's ledger, at the tier's price, with
how long it took (and, streamed, how long its first token took)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

from hybridlm.config import Price
from hybridlm.ledger import Ledger, Spend
from hybridlm.models.base import ChatBackend, GenerationParams, estimate_prompt_tokens
from hybridlm.models.wrappers.base import BackendWrapper
from hybridlm.types import Chunk, Completion, Message, Usage


class Accounted(BackendWrapper):
    def __init__(self, inner: ChatBackend, tier: str, price: Price, ledger: Ledger) -> None:
        super().__init__(inner)
        self.tier, self.price, self.ledger = tier, price, ledger

    def _spend(self, model: str, usage: Usage, started: float, first_token: float | None = None) -> None:
        cost = self.price.cost(usage.prompt_tokens, usage.completion_tokens)
        ended = time.perf_counter()
        self.ledger.add(Spend(self.tier, model, usage, cost, (ended - started) * 1000.0,
                              None if first_token is None else (first_token - started) * 1000.0))

    async def complete(self, messages: list[Message], params: GenerationParams) -> Completion:
        self.ledger.tier = self.tier
        started = time.perf_counter()
        result = await self.inner.complete(messages, params)
        self._spend(result.model, result.usage, started)
        return result

    async def stream(self, messages: list[Message], params: GenerationParams) -> AsyncIterator[Chunk]:
        """What the tier used is booked at the end, from the usage it reports or, failing that, an estimate."""
        self.ledger.tier = self.tier
        usage: Usage | None = None
        written = 0
        started = time.perf_counter()
        first_token: float | None = None
        try:
            async for chunk in self.inner.stream(messages, params):
                first_token = first_token or time.perf_counter()
                usage = chunk.usage or usage
                written += bool(chunk.text)
                yield chunk
        finally:
            if first_token is not None:
                self._spend(self.inner.model_name, usage or Usage(estimate_prompt_tokens(messages), written), started,
                            first_token)
