"""A stream split at its first chunk: before it a call may still be retried or sent elsewhere, after it not.

Once a chunk has gone to the client, another try would repeat or contradict it, so retries and
failover act on `open_stream` only, and `relay` passes the rest through.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from hybridlm.types import Chunk


@dataclass
class OpenedStream:
    first: Chunk | None  # None: the stream ended without a chunk
    rest: AsyncIterator[Chunk]


async def open_stream(chunks: AsyncIterator[Chunk]) -> OpenedStream:
    """Wait for the first chunk; a failure to start raises here, where it can still be handled."""
    try:
        first = await anext(chunks)
    except StopAsyncIteration:
        first = None
    return OpenedStream(first, chunks)


async def relay(opening: Callable[[], Awaitable[OpenedStream]]) -> AsyncGenerator[Chunk, None]:
    """Open the stream once iterated, then pass on its first chunk and the rest; the inner stream is
    closed however the caller stops."""
    opened = await opening()
    try:
        if opened.first is not None:
            yield opened.first
            async for chunk in opened.rest:
                yield chunk
    finally:
        await opened.rest.aclose()  # type: ignore[attr-defined]
