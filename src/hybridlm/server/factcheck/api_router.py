"""The HTTP edge of /v1/factcheck."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from hybridlm.server.factcheck.serving import FactCheckService
from hybridlm.server.responses import serve_json

router = APIRouter()


@router.post("/v1/factcheck")
async def factcheck(request: Request) -> Response:
    service: FactCheckService = request.app.state.factcheck
    return await serve_json(request, service, service.pipeline.config.server.max_body_bytes)
