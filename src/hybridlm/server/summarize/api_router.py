"""The HTTP edge of /v1/summarize."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from hybridlm.server.chat.api_router import read_body
from hybridlm.server.errors import APIError
from hybridlm.server.responses import json_response
from hybridlm.server.summarize.serving import SummarizeService

router = APIRouter()


@router.post("/v1/summarize")
async def summarize(request: Request) -> Response:
    service: SummarizeService = request.app.state.summarize
    try:
        result = await service.handle(await read_body(request, service.pipeline.config.server.max_body_bytes))
    except APIError as err:
        result = service.reject(err)
    return json_response(result.body, result.status, result.headers)
