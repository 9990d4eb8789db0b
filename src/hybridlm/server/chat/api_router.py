"""The HTTP edge of /v1/chat/completions: read the body within its limit, hand it to the service.

A client that disconnects while its (non-streamed) answer is being made cancels the work: the
local model stops at its next token and the request is logged as `client_disconnected`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse

from hybridlm.server.chat.serving import ChatService, StreamResult
from hybridlm.failures import APIError
from hybridlm.server.access import caller_of
from hybridlm.server.responses import json_response, read_body
from hybridlm.server.results import JSONResult

router = APIRouter()


async def _cancel_when_gone(request: Request, task: asyncio.Task[object]) -> None:
    """Cancels `task` once the client has gone (the body is read, so the next message is the disconnect)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass
    task.cancel()


async def _unless_gone(request: Request,
                       work: Awaitable[JSONResult | StreamResult]) -> JSONResult | StreamResult | None:
    """`work`'s result, made in this task while a watcher waits for the client to leave; None if it left first."""
    this = asyncio.current_task()
    assert this is not None
    watcher = asyncio.create_task(_cancel_when_gone(request, this))
    try:
        return await work
    except asyncio.CancelledError:
        if not watcher.done() or watcher.cancelled():  # cancelled from elsewhere (the server stopping)
            raise
        this.uncancel()  # the cancellation was the watcher's, and is spent: the task carries on to answer
        return None
    finally:
        watcher.cancel()


async def chat_completions(request: Request) -> Response:
    service: ChatService = request.app.state.chat
    caller = caller_of(request)
    try:
        raw = await read_body(request, service.pipeline.config.server.max_body_bytes)
    except APIError as err:
        result: JSONResult | StreamResult | None = service.reject(err, caller)
    else:
        result = await _unless_gone(request, service.handle(raw, caller))
    if result is None:
        return Response(status_code=499)
    if isinstance(result, StreamResult):
        return StreamingResponse(result.events, media_type="text/event-stream", headers=result.headers)
    return json_response(result.body, result.status, result.headers)


# A plain route rather than a FastAPI one: the endpoint reads its own body, so FastAPI's dependency and
# validation machinery would only add time to every request (about 25 µs measured).
router.add_route("/v1/chat/completions", chat_completions, methods=["POST"])
