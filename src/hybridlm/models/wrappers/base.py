"""The base of every wrapper: a backend that hands everything it does not change to the one inside."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from hybridlm.models.base import ChatBackend, GenerationParams
from hybridlm.types import Chunk, Completion, Message


class BackendWrapper:
    """Wraps `inner`; a subclass overrides `complete` and/or `stream` and inherits the rest."""

    def __init__(self, inner: ChatBackend) -> None:
        self.inner = inner

    @property
    def model_name(self) -> str:
        return self.inner.model_name

    async def complete(self, messages: list[Message], params: GenerationParams) -> Completion:
        return await self.inner.complete(messages, params)

    def stream(self, messages: list[Message], params: GenerationParams) -> AsyncIterator[Chunk]:
        return self.inner.stream(messages, params)

    def describe(self) -> dict[str, Any]:
        """State for /healthz; wrappers add their own keys to the inner backend's."""
        describe = getattr(self.inner, "describe", None)
        return dict(describe()) if callable(describe) else {}

    async def aclose(self) -> None:
        await self.inner.aclose()
