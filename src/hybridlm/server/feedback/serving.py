"""Feedback without the web framework: validate, check the request exists, store (answered once
committed, so a rating acknowledged is a rating kept); errors logged too."""

from __future__ import annotations

from hybridlm.failures import APIError
from hybridlm.request import Caller
from hybridlm.server.feedback.protocol import FeedbackRequest
from hybridlm.server.results import JSONResult, PipelineService, parse_json_body

ENDPOINT = "/v1/feedback"


class FeedbackService(PipelineService):
    endpoint = ENDPOINT

    async def handle(self, raw: bytes, caller: Caller | None) -> JSONResult:
        try:
            feedback = parse_json_body(raw, FeedbackRequest)
            if self.pipeline.log.get(feedback.request_id) is None:
                raise APIError(404, f"No request '{feedback.request_id}' in the log", code="request_not_found",
                               param="request_id")
        except APIError as err:
            return self.reject(err, caller)
        await self.pipeline.log.aadd_feedback(feedback.request_id, feedback.value, feedback.comment)
        return JSONResult(200, {"object": "feedback", "request_id": feedback.request_id, "score": feedback.value})
