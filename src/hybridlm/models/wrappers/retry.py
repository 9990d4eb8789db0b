"""Another try at the same upstream after a failure that may pass (429, 5xx, no connection).

Waits are jittered and exponential, never shorter than the upstream's Retry-After and never past
the request's deadline: a try that could only start after it is not made. A stream is retried
only until its first chunk.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, wait_random_exponential

from hybridlm.models.base import BackendError, ChatBackend, GenerationParams
from hybridlm.models.deadline import remaining
from hybridlm.models.openai_http import RetryOptions
from hybridlm.models.wrappers.base import BackendWrapper
from hybridlm.models.wrappers.upstream_faults import is_transient
from hybridlm.models.wrappers.streams import open_stream, relay
from hybridlm.types import Chunk, Completion, Message

log = logging.getLogger(__name__)

T = TypeVar("T")


def _failure(state: RetryCallState) -> BackendError:
    assert state.outcome is not None  # tenacity asks for a wait or a stop only after a failed try
    err = state.outcome.exception()
    assert isinstance(err, BackendError)  # only BackendErrors are retried
    return err


class RetryingBackend(BackendWrapper):
    """Retries `inner` with tenacity; `sleep` is replaceable so tests need not wait."""

    def __init__(self, inner: ChatBackend, options: RetryOptions,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        super().__init__(inner)
        self.options = options
        self._sleep = sleep
        self._jitter = wait_random_exponential(multiplier=options.initial_backoff, max=options.max_backoff)
        self.retries = 0  # tries beyond the first, since start: the metrics read it

    def _wait(self, state: RetryCallState) -> float:
        return max(self._jitter(state), _failure(state).retry_after or 0.0)

    def _give_up(self, state: RetryCallState) -> bool:
        """Out of tries, told to wait longer than allowed, or the wait would end past the deadline."""
        left = remaining()
        return (state.attempt_number >= self.options.attempts
                or state.upcoming_sleep > self.options.max_backoff
                or (left is not None and state.upcoming_sleep >= left))

    def _before_retry(self, state: RetryCallState) -> None:
        self.retries += 1
        log.info("retrying in %.2f s (try %d of %d): %s", state.upcoming_sleep,
                 state.attempt_number + 1, self.options.attempts, _failure(state).message)

    async def _retrying(self, call: Callable[[], Awaitable[T]]) -> T:
        """The first try is made directly (most calls succeed at once, and tenacity's machinery costs about a
        tenth of a millisecond per call); after a transient failure tenacity takes over as if it had made it."""
        try:
            return await call()
        except BackendError as err:
            if not is_transient(err):
                raise
            first_failure: BackendError | None = err
        retrying = AsyncRetrying(
            retry=retry_if_exception(lambda err: isinstance(err, BackendError) and is_transient(err)),
            wait=self._wait, stop=self._give_up, sleep=self._sleep, before_sleep=self._before_retry, reraise=True)

        async def attempt() -> T:  # tenacity awaits what a coroutine function returns, not what other callables return
            nonlocal first_failure
            if first_failure is not None:  # tenacity's first try is the one already made
                failure, first_failure = first_failure, None
                raise failure
            return await call()

        return await retrying(attempt)

    async def complete(self, messages: list[Message], params: GenerationParams) -> Completion:
        return await self._retrying(lambda: self.inner.complete(messages, params))

    def stream(self, messages: list[Message], params: GenerationParams) -> AsyncIterator[Chunk]:
        return relay(lambda: self._retrying(lambda: open_stream(self.inner.stream(messages, params))))
