"""Fallback: when the primary backend fails in a way that allows it, the secondary answers and the
ledger says why. A stream falls back only before its first chunk; after it, the failure is the answer's."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

from hybridlm.ledger import Ledger
from hybridlm.models.base import BackendError, ChatBackend, GenerationParams
from hybridlm.models.wrappers.base import BackendWrapper
from hybridlm.models.wrappers.streams import OpenedStream, open_stream, relay
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

    def stream(self, messages: list[Message], params: GenerationParams) -> AsyncIterator[Chunk]:
        async def opening() -> OpenedStream:
            try:
                return await open_stream(self.inner.stream(messages, params))
            except BackendError as err:
                self._leave(err)
            return await open_stream(self.secondary.stream(messages, params))

        return relay(opening)
