"""Several upstreams behind one tier: a call that fails on one, before any answer, goes to the next.

'ordered' tries them as listed, 'lowest_latency' by how fast each answered lately (an
exponentially weighted mean; one not measured yet goes first, so each gets measured). Either way
an upstream whose circuit is open is tried last, where it fails fast. A stream that fails
after its first chunk is not moved: the client has part of one upstream's answer already.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, Literal, TypeVar

from hybridlm.models.base import BackendError, GenerationParams
from hybridlm.models.wrappers.base import BackendWrapper
from hybridlm.models.wrappers.breaker import CircuitBreaker
from hybridlm.models.wrappers.upstream_faults import is_upstream_fault
from hybridlm.models.wrappers.streams import OpenedStream, open_stream, relay
from hybridlm.types import Chunk, Completion, Message

T = TypeVar("T")
Order = Literal["ordered", "lowest_latency"]
LATENCY_WEIGHT = 0.3  # share of the newest measurement in the running mean


class FailoverBackend(BackendWrapper):
    """Over `members`, each one upstream's stack with its breaker outermost; the first names the tier's model."""

    def __init__(self, members: Sequence[CircuitBreaker], order: Order = "ordered",
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not members:
            raise ValueError("failover needs at least one upstream")
        super().__init__(members[0])
        self.members = list(members)
        self.order = order
        self._clock = clock
        self._latency: dict[int, float] = {}  # member index -> seconds to the first answer, smoothed

    def _candidates(self) -> list[int]:
        """Member indexes in the order to try them."""
        indexes = list(range(len(self.members)))
        if self.order == "lowest_latency":
            indexes = sorted(indexes, key=lambda i: self._latency.get(i, 0.0))
        return sorted(indexes, key=lambda i: not self.members[i].admits())  # stable: open circuits last

    def _measured(self, index: int, seconds: float) -> None:
        before = self._latency.get(index)
        self._latency[index] = seconds if before is None else LATENCY_WEIGHT * seconds + (1 - LATENCY_WEIGHT) * before

    async def _first_answer(self, call: Callable[[CircuitBreaker], Awaitable[T]]) -> T:
        failures: list[BackendError] = []
        for index in self._candidates():
            started = self._clock()
            try:
                result = await call(self.members[index])
            except BackendError as err:
                if not is_upstream_fault(err):
                    raise
                failures.append(err)
                continue
            self._measured(index, self._clock() - started)
            return result
        last = failures[-1]
        if len(failures) == 1:
            raise last
        raise BackendError(last.kind, f"all {len(failures)} upstreams failed: " + "; ".join(f.message for f in failures),
                           last.status, last.retry_after)

    async def complete(self, messages: list[Message], params: GenerationParams) -> Completion:
        return await self._first_answer(lambda member: member.complete(messages, params))

    def stream(self, messages: list[Message], params: GenerationParams) -> AsyncIterator[Chunk]:
        def opening(member: CircuitBreaker) -> Awaitable[OpenedStream]:
            return open_stream(member.stream(messages, params))

        return relay(lambda: self._first_answer(opening))

    def describe(self) -> dict[str, Any]:
        upstreams = [member.describe() for member in self.members]
        degraded = any(u["state"] == "open" for u in upstreams)
        return {"status": "degraded" if degraded else "ok", "upstream_order": self.order, "upstreams": upstreams}

    async def aclose(self) -> None:
        for member in self.members:
            await member.aclose()
