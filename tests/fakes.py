"""A scripted backend for unit tests of pipeline logic (the integration tests use real servers)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from hybridlm.models.base import GenerationParams
from hybridlm.types import Chunk, Completion, Message, Usage


class ScriptedBackend:
    """Answers from a queue of replies or errors, and remembers every call."""

    def __init__(self, model_name: str) -> None:
        self.model_name = model_name
        self.replies: list[str | Exception] = []
        self.history: list[list[Message]] = []

    def enqueue(self, *replies: str | Exception) -> None:
        self.replies.extend(replies)

    def _next(self, messages: list[Message]) -> str:
        self.history.append(messages)
        reply = self.replies.pop(0) if self.replies else f"{self.model_name} says hi"
        if isinstance(reply, Exception):
            raise reply
        return reply

    async def complete(self, messages: list[Message], params: GenerationParams) -> Completion:
        text = self._next(messages)
        return Completion(text=text, model=self.model_name, usage=Usage(100, len(text.split())))

    async def stream(self, messages: list[Message], params: GenerationParams) -> AsyncIterator[Chunk]:
        text = self._next(messages)
        for word in text.split():
            yield Chunk(text=word + " ")
        yield Chunk(finish_reason="stop", usage=Usage(100, len(text.split())))

    async def aclose(self) -> None:
        return None
