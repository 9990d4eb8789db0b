"""Fallback: when the primary backend fails in a way that allows it, the secondary answers and the
ledger says why. A stream falls back only before its first chunk; after it, the failure is the answer's."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

from hybridlm.ledger import Ledger
from hybridlm.models.base import BackendError, ChatBackend, GenerationParams
from hybridlm.models.wrappers.base import BackendWrapper
from hybridlm.types import Chunk, Completion, Message

LeaveWhen = Callable[[BackendError], str | None]  # the reason to try the secondary, or None to give up


class Fallback(BackendWrapper):
    def __init__(self, primary: ChatBackend, secondary: ChatBackend, leave_when: LeaveWhen, kind: str,
                 ledger: Ledger) -> None:
        super().__init__(primary)
        self.secondary, self.leave_when, self.kind, self.ledger = secondary, leave_when, kind, ledger

    def _leave(self, err: BackendError) -> None:
        reason = self.leave_when(err)
        if reason is None:
            raise err
        self.ledger.note_fallback(self.kind, reason)

    async def complete(self, messages: list[Message], params: GenerationParams) -> Completion:
        try:
            return await self.inner.complete(messages, params)
        except BackendError as err:
            self._leave(err)
        return await self.secondary.complete(messages, params)

    async def stream(self, messages: list[Message], params: GenerationParams) -> AsyncIterator[Chunk]:
        chunks: AsyncIterator[Chunk] | None = None
        try:
            chunks = self.inner.stream(messages, params)
            first = await anext(chunks)
        except StopAsyncIteration:
            return
        except BackendError as err:
            if chunks is not None:
                await chunks.aclose()  # type: ignore[attr-defined]
            self._leave(err)
            async for chunk in self.secondary.stream(messages, params):
                yield chunk
            return
        try:
            yield first
            async for chunk in chunks:
                yield chunk
        finally:
            await chunks.aclose()  # type: ignore[attr-defined]
