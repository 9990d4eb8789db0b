"""Shadow sampling: a share of what the small model answered is also sent to the LLM in the background,
so both answers can be rated and become training data."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable

from hybridlm.models.base import ChatBackend, GenerationParams
from hybridlm.models.wrappers.base import BackendWrapper
from hybridlm.types import Chunk, Completion, Message

SendShadow = Callable[[list[Message], GenerationParams], None]  # starts the background call; returns at once


class Shadowed(BackendWrapper):
    def __init__(self, inner: ChatBackend, share: float, sampler: random.Random, send: SendShadow) -> None:
        super().__init__(inner)
        self.share, self.sampler, self.send = share, sampler, send

    def _maybe_send(self, messages: list[Message], params: GenerationParams) -> None:
        if self.sampler.random() < self.share:
            self.send(messages, params)

    async def complete(self, messages: list[Message], params: GenerationParams) -> Completion:
        result = await self.inner.complete(messages, params)
        self._maybe_send(messages, params)
        return result

    async def stream(self, messages: list[Message], params: GenerationParams) -> AsyncIterator[Chunk]:
        async for chunk in self.inner.stream(messages, params):
            yield chunk
        self._maybe_send(messages, params)  # only after a stream that ended cleanly
