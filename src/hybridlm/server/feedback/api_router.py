"""The HTTP edge of /v1/feedback."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from hybridlm.server.feedback.serving import FeedbackService
from hybridlm.server.responses import serve_json

router = APIRouter()
FEEDBACK_MAX_BYTES = 100_000


@router.post("/v1/feedback")
async def feedback(request: Request) -> Response:
    service: FeedbackService = request.app.state.feedback
    return await serve_json(request, service, FEEDBACK_MAX_BYTES)
