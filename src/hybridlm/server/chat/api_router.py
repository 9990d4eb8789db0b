"""The HTTP edge of /v1/chat/completions: read the body within its limit, hand it to the service.

A client that disconnects while its (non-streamed) answer is being made cancels the work: the
local model stops at its next token and the request is logged as `client_disconnected`.
"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse

from hybridlm.server.chat.serving import ChatService, StreamResult
from hybridlm.failures import APIError
from hybridlm.server.access import caller_of
from hybridlm.server.responses import json_response, read_body
from hybridlm.server.results import JSONResult

router = APIRouter()


async def _disconnected(request: Request) -> None:
    """Returns when the client has gone (the body is read, so the next message is the disconnect)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


@router.post("/v1/chat/completions")
async def chat_completions(request: Request) -> Response:
    service: ChatService = request.app.state.chat
    caller = caller_of(request)
    try:
        raw = await read_body(request, service.pipeline.config.server.max_body_bytes)
    except APIError as err:
        result: JSONResult | StreamResult = service.reject(err, caller)
    else:
        handling = asyncio.ensure_future(service.handle(raw, caller))
        watching = asyncio.ensure_future(_disconnected(request))
        await asyncio.wait({handling, watching}, return_when=asyncio.FIRST_COMPLETED)
        watching.cancel()
        if not handling.done():
            handling.cancel()
            await asyncio.gather(handling, return_exceptions=True)
            return Response(status_code=499)
        result = handling.result()
    if isinstance(result, StreamResult):
        return StreamingResponse(result.events, media_type="text/event-stream", headers=result.headers)
    return json_response(result.body, result.status, result.headers)
