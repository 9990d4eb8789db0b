"""The HTTP edge of /v1/summarize."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from hybridlm.server.responses import serve_json
from hybridlm.server.summarize.serving import SummarizeService

router = APIRouter()


@router.post("/v1/summarize")
async def summarize(request: Request) -> Response:
    service: SummarizeService = request.app.state.summarize
    return await serve_json(request, service, service.pipeline.config.server.max_body_bytes)
