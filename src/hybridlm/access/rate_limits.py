"""Requests and tokens per minute per key, over a moving window in memory (one gateway process).

`admit` refuses a request that would go over either limit, judging its tokens by an estimate
(the prompt's characters / 4 plus `max_tokens`), and holds that estimate while the request runs, so
concurrent requests of one key cannot together go over the token limit on their estimates;
`settle` then swaps the estimate for the tokens the request really used, so a key is charged for
what it got. A request estimated at more than the whole token limit is let through once the window
is empty and nothing else of the key is running, rather than never.

Hand-rolled rather than `limits`: a token limit needs a hit counted after the fact, whatever it
comes to, and `limits`' moving window only takes hits that fit.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from hybridlm.failures import APIError
from hybridlm.request import Caller, Request
from hybridlm.routing.base import message_text

WINDOW_S = 60.0
CHARS_PER_TOKEN = 4
IN_FLIGHT_RETRY_S = 1  # what Retry-After says when only running requests stand in the way


def estimated_tokens(request: Request) -> int:
    """What a request may use before it is run: its prompt, roughly, and the most it may write."""
    return sum(len(message_text(m)) for m in request.messages) // CHARS_PER_TOKEN + request.params.max_tokens


@dataclass
class MovingWindow:
    """(when, amount) of the last `WINDOW_S` seconds, their sum, and what running requests hold."""

    entries: deque[tuple[float, int]] = field(default_factory=deque)
    total: int = 0
    held: int = 0

    def prune(self, now: float) -> None:
        while self.entries and self.entries[0][0] <= now - WINDOW_S:
            self.total -= self.entries.popleft()[1]

    def add(self, now: float, amount: int) -> None:
        self.entries.append((now, amount))
        self.total += amount

    def wait_for_room(self, amount: int, limit: int, now: float) -> float:
        """Seconds until `amount` more (at most the whole limit) fits under `limit`; 0 when it fits now."""
        excess = self.total + self.held + min(amount, limit) - limit
        if excess <= 0:
            return 0.0
        for when, used in self.entries:
            excess -= used
            if excess <= 0:
                return when + WINDOW_S - now
        return IN_FLIGHT_RETRY_S  # it would fit once running requests settle, however soon that is


class RateLimits:
    """The windows of every key that has a limit; safe to use from several threads."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._requests: dict[str, MovingWindow] = {}
        self._tokens: dict[str, MovingWindow] = {}

    def admit(self, caller: Caller | None, estimated_tokens: int) -> int:
        """Count the request and hold its estimated tokens (returned: 0 without a token limit), or raise 429
        with Retry-After when it would go over one of the key's limits."""
        if caller is None:
            return 0
        limits = ((self._requests, caller.requests_per_minute, 1, "requests"),
                  (self._tokens, caller.tokens_per_minute, estimated_tokens, "tokens"))
        with self._lock:
            now = self._clock()
            for windows, limit, amount, what in limits:
                if limit is None:
                    continue
                window = windows.setdefault(caller.key_id, MovingWindow())
                window.prune(now)
                if wait := window.wait_for_room(amount, limit, now):
                    seconds = max(1, math.ceil(wait))
                    raise APIError(429, f"Rate limit reached for this API key: {limit} {what} per minute; "
                                        f"try again in {seconds} s", type="rate_limit_error",
                                   code="rate_limit_exceeded", headers={"retry-after": str(seconds)})
            if caller.requests_per_minute is not None:
                self._requests[caller.key_id].add(now, 1)
            if caller.tokens_per_minute is None:
                return 0
            self._tokens[caller.key_id].held += estimated_tokens
            return estimated_tokens

    def settle(self, key_id: str | None, tokens: int, held: int = 0) -> None:
        """Count the tokens a request of this key used in place of the `held` estimate `admit` returned for
        it (nothing for a key without a token limit)."""
        with self._lock:
            window = self._tokens.get(key_id) if key_id is not None else None
            if window is None:
                return
            window.held = max(0, window.held - held)
            if tokens <= 0:
                return
            now = self._clock()
            window.prune(now)
            window.add(now, tokens)
