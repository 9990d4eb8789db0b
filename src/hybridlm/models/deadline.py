"""The time a request has left, carried in a contextvar so every remote call under it can honour it.

Retries, failover and each HTTP call read the same clock: none of them waits past the moment
the client was promised an answer (or an error) by.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from hybridlm.models.base import BackendError

_ends_at: ContextVar[float | None] = ContextVar("hybridlm_deadline", default=None)  # time.monotonic() seconds


@contextmanager
def deadline_scope(seconds: float | None) -> Iterator[None]:
    """Everything inside must be done within `seconds` (None: no limit); nested scopes keep the tighter end."""
    if seconds is None:
        yield
        return
    ends = time.monotonic() + seconds
    outer = _ends_at.get()
    token = _ends_at.set(ends if outer is None else min(outer, ends))
    try:
        yield
    finally:
        _ends_at.reset(token)


def remaining() -> float | None:
    """Seconds left before the deadline (0 or less once it passed), or None when there is none."""
    ends = _ends_at.get()
    return None if ends is None else ends - time.monotonic()


def bounded_timeout(configured: float, waiting_for: str) -> float:
    """`configured`, cut to what the deadline leaves; a deadline already passed is a timeout now."""
    left = remaining()
    if left is None:
        return configured
    if left <= 0:
        raise BackendError("timeout", f"the request's deadline passed before {waiting_for}")
    return min(configured, left)
