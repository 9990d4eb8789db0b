"""Feedback without the web framework: validate, check the request exists, store; errors logged too."""

from __future__ import annotations

import orjson
from pydantic import ValidationError

from hybridlm.pipeline import Pipeline
from hybridlm.server.errors import APIError
from hybridlm.server.feedback.protocol import FeedbackRequest
from hybridlm.server.results import JSONResult, rejected

ENDPOINT = "/v1/feedback"


class FeedbackService:
    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline

    def _parse(self, raw: bytes) -> FeedbackRequest:
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as err:
            raise APIError(400, f"We could not parse the JSON body of your request: {err}", code="invalid_json") from None
        try:
            return FeedbackRequest.model_validate(data)
        except ValidationError as err:
            first = err.errors()[0]
            param = ".".join(str(p) for p in first["loc"]) or None
            raise APIError(400, f"Invalid feedback: {first['msg']}", code="invalid_value", param=param) from None

    def reject(self, err: APIError) -> JSONResult:
        return rejected(self.pipeline, err, ENDPOINT)

    def handle(self, raw: bytes) -> JSONResult:
        try:
            feedback = self._parse(raw)
            if self.pipeline.log.get(feedback.request_id) is None:
                raise APIError(404, f"No request '{feedback.request_id}' in the log", code="request_not_found",
                               param="request_id")
        except APIError as err:
            return self.reject(err)
        self.pipeline.log.add_feedback(feedback.request_id, feedback.value, feedback.comment)
        return JSONResult(200, {"object": "feedback", "request_id": feedback.request_id, "score": feedback.value})
