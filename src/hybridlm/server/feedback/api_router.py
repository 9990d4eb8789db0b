"""The HTTP edge of /v1/feedback."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from hybridlm.server.chat.api_router import read_body
from hybridlm.server.errors import APIError
from hybridlm.server.feedback.serving import FeedbackService
from hybridlm.server.responses import json_response

router = APIRouter()
FEEDBACK_MAX_BYTES = 100_000


@router.post("/v1/feedback")
async def feedback(request: Request) -> Response:
    service: FeedbackService = request.app.state.feedback
    try:
        result = service.handle(await read_body(request, FEEDBACK_MAX_BYTES))
    except APIError as err:
        result = service.reject(err)
    return json_response(result.body, result.status, result.headers)
