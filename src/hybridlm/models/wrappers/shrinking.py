"""The shrinking wrapper: a tier reads the best sentences of long context instead of all of it. Messages
over `min_tokens` have their long earlier content cut to `budget_tokens` for the last user message
(`hybridlm.shrinking`), in the worker pool, before the call; the answer passes through unchanged."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

from hybridlm.models.base import ChatBackend, GenerationParams
from hybridlm.models.wrappers.base import BackendWrapper
from hybridlm.shrinking import ContextShrinker, Shrunk
from hybridlm.types import Chunk, Completion, Message


class Shrinking(BackendWrapper):
    """`on_shrunk` hears of every call whose context was cut (for the log or the ledger)."""

    def __init__(self, inner: ChatBackend, shrinker: ContextShrinker, budget_tokens: int, min_tokens: int,
                 on_shrunk: Callable[[Shrunk], None] | None = None) -> None:
        super().__init__(inner)
        self.shrinker, self.budget_tokens, self.min_tokens = shrinker, budget_tokens, min_tokens
        self.on_shrunk = on_shrunk

    async def _shrunk(self, messages: list[Message]) -> list[Message]:
        """Encoding the sentences is CPU-bound: it runs in the worker pool."""
        messages, shrunk = await asyncio.to_thread(self.shrinker.shrink_messages, messages, self.budget_tokens,
                                                   self.min_tokens)
        if shrunk is not None and self.on_shrunk is not None:
            self.on_shrunk(shrunk)
        return messages

    async def complete(self, messages: list[Message], params: GenerationParams) -> Completion:
        return await self.inner.complete(await self._shrunk(messages), params)

    async def stream(self, messages: list[Message], params: GenerationParams) -> AsyncIterator[Chunk]:
        async for chunk in self.inner.stream(await self._shrunk(messages), params):
            yield chunk
