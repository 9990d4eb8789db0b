"""A circuit breaker: an upstream that keeps failing is not called for a while, so requests fail
fast (and fall back or fail over) instead of each waiting out its timeouts.

closed -> open after `failures` failed calls within `window` seconds, or one rejection of the
credentials; open -> half_open after `cooldown` seconds, when one probe is let through;
half_open -> closed when the probe succeeds, open again when it fails.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import aclosing, contextmanager
from typing import Any, Literal

from hybridlm.models.base import BackendError, ChatBackend, GenerationParams
from hybridlm.models.openai_http import BreakerOptions
from hybridlm.models.wrappers.base import BackendWrapper
from hybridlm.models.wrappers.upstream_faults import is_upstream_fault
from hybridlm.types import Chunk, Completion, Message

log = logging.getLogger(__name__)

State = Literal["closed", "open", "half_open"]


def error_summary(err: BackendError) -> str:
    """`<kind> <status>`: what a failure was, without its text (which may quote the upstream)."""
    return f"{err.kind} {err.status}" if err.status is not None else err.kind


class CircuitBreaker(BackendWrapper):
    """Guards one upstream; `name` says which in messages and logs, `clock` is replaceable for tests."""

    def __init__(self, inner: ChatBackend, options: BreakerOptions, name: str,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(inner)
        self.options = options
        self.name = name
        self._clock = clock
        self._failures: deque[float] = deque()  # when each recent failure happened
        self._opened_at: float | None = None
        self._probing = False
        self._last_error: str | None = None

    @property
    def state(self) -> State:
        if self._opened_at is None:
            return "closed"
        return "half_open" if self._clock() >= self._opened_at + self.options.cooldown else "open"

    def admits(self) -> bool:
        """Would a call go through now (rather than fail fast)?"""
        return self.state == "closed" or (self.state == "half_open" and not self._probing)

    def _admit(self) -> bool:
        """Let a call through, or fail fast; True when the call is the half-open probe."""
        state = self.state
        if state == "closed":
            return False
        if state == "half_open" and not self._probing:
            self._probing = True
            log.warning("circuit for upstream %s half-open: letting one probe through", self.name)
            return True
        if state == "open":
            assert self._opened_at is not None
            wait = self._opened_at + self.options.cooldown - self._clock()
            raise BackendError("unavailable", f"circuit open for upstream {self.name}; "
                                              f"next probe in {math.ceil(wait)} s")
        raise BackendError("unavailable", f"circuit half-open for upstream {self.name}; a probe is under way")

    def _recent_failures(self) -> int:
        horizon = self._clock() - self.options.window
        while self._failures and self._failures[0] < horizon:
            self._failures.popleft()
        return len(self._failures)

    def _open(self, why: str) -> None:
        self._opened_at = self._clock()
        self._probing = False
        log.warning("circuit for upstream %s opened (%s); next probe in %g s", self.name, why, self.options.cooldown)

    def _succeeded(self, probe: bool) -> None:
        if probe:
            self._opened_at, self._probing = None, False
            self._failures.clear()
            log.warning("circuit for upstream %s closed: the probe succeeded", self.name)

    def _failed(self, err: BackendError, probe: bool) -> None:
        self._last_error = error_summary(err)
        if probe:
            self._open(f"the probe failed: {self._last_error}")
        elif self.state == "closed":  # a call let through before the circuit opened changes nothing now
            self._failures.append(self._clock())
            if err.kind == "auth":
                self._open("the upstream rejected the credentials")
            elif self._recent_failures() >= self.options.failures:
                self._open(f"{len(self._failures)} failures within {self.options.window:g} s, "
                           f"the last {self._last_error}")

    def _released(self, probe: bool) -> None:
        """A call that ended without a verdict (the caller left, or the request was at fault)."""
        if probe:
            self._probing = False

    @contextmanager
    def _guarded(self) -> Iterator[None]:
        probe = self._admit()
        try:
            yield
        except BackendError as err:
            if is_upstream_fault(err):
                self._failed(err, probe)
            else:
                self._released(probe)
            raise
        except BaseException:
            self._released(probe)
            raise
        self._succeeded(probe)

    async def complete(self, messages: list[Message], params: GenerationParams) -> Completion:
        with self._guarded():
            return await self.inner.complete(messages, params)

    async def stream(self, messages: list[Message], params: GenerationParams) -> AsyncIterator[Chunk]:
        """A stream is a success once it ends; a failure midway counts like one before the first chunk."""
        with self._guarded():
            async with aclosing(self.inner.stream(messages, params)) as chunks:  # type: ignore[type-var]
                async for chunk in chunks:
                    yield chunk

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "state": self.state, "failures": self._recent_failures(),
                "last_error": self._last_error}
