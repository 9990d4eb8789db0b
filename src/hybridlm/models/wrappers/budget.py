"""A daily budget: once a tier's spend today reaches it, routed calls to the tier are refused before they start."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable

from hybridlm.models.base import BackendError, ChatBackend, GenerationParams
from hybridlm.models.wrappers.base import BackendWrapper
from hybridlm.request_log import local_midnight
from hybridlm.types import Chunk, Completion, Message

SpendSince = Callable[[str, float], float]  # (tier, since timestamp) -> US dollars spent


def over_budget(tier: str, budget: float | None, spend_since: SpendSince) -> str | None:
    """Why the tier may take no more routed traffic today, or None."""
    if budget is None:
        return None
    spent = spend_since(tier, local_midnight(time.time()))
    return f"over budget: tier '{tier}' spent ${spent:.4f} of ${budget:.4f} today" if spent >= budget else None


class Budgeted(BackendWrapper):
    def __init__(self, inner: ChatBackend, tier: str, budget: float | None, spend_since: SpendSince) -> None:
        super().__init__(inner)
        self.tier, self.budget, self.spend_since = tier, budget, spend_since

    def _check(self) -> None:
        if reason := over_budget(self.tier, self.budget, self.spend_since):
            raise BackendError("over_budget", reason)

    async def complete(self, messages: list[Message], params: GenerationParams) -> Completion:
        self._check()
        return await self.inner.complete(messages, params)

    def stream(self, messages: list[Message], params: GenerationParams) -> AsyncIterator[Chunk]:
        self._check()
        return self.inner.stream(messages, params)
