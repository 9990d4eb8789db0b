"""The HTTP edge of /v1/chat/completions: read the body within its limit, hand it to the service."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse

from hybridlm.server.chat.serving import ChatService, StreamResult
from hybridlm.server.results import JSONResult
from hybridlm.server.errors import APIError
from hybridlm.server.responses import json_response, read_body

router = APIRouter()


@router.post("/v1/chat/completions")
async def chat_completions(request: Request) -> Response:
    service: ChatService = request.app.state.chat
    try:
        raw = await read_body(request, service.pipeline.config.server.max_body_bytes)
    except APIError as err:
        result: JSONResult | StreamResult = service.reject(err)
    else:
        result = await service.handle(raw)
    if isinstance(result, StreamResult):
        return StreamingResponse(result.events, media_type="text/event-stream", headers=result.headers)
    return json_response(result.body, result.status, result.headers)
