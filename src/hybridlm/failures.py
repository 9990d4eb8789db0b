"""Failures in OpenAI's shape: `{"error": {"message", "type", "param", "code"}}`, with a status; shared by the
pipeline (which records them) and the gateway (which sends them)."""

from __future__ import annotations

import math
from typing import Any

from hybridlm.models.base import BackendError
from hybridlm.types import Trace


class APIError(Exception):
    def __init__(self, status: int, message: str, type: str = "invalid_request_error",
                 code: str | None = None, param: str | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


UPSTREAM_STATUS = {
    "unavailable": (503, "upstream_unavailable"),
    "timeout": (504, "upstream_timeout"),
    "upstream": (502, "upstream_error"),
    "auth": (502, "upstream_auth_failed"),  # the gateway's key for the upstream, not the client's, was refused
    "redaction_failed": (503, "redaction_failed"),  # personal data could not be checked: nothing was sent
}


def from_backend(err: BackendError, forced: bool = False) -> APIError:
    """A model failure the caller should see: the request's fault (400), a full local queue (429 for a
    request that named the tier, 503 otherwise, both with Retry-After), a spent budget (429
    `budget_exhausted`, Retry-After: when its period starts again) or the upstream's (5xx)."""
    if err.kind == "busy":
        retry = {"retry-after": str(math.ceil(err.retry_after or 1.0))}
        if forced:
            return APIError(429, err.message, type="rate_limit_error", code="local_model_busy", headers=retry)
        return APIError(503, err.message, type="server_error", code="local_model_busy", headers=retry)
    if err.kind == "invalid_request":
        code = "context_length_exceeded" if "context" in err.message else "invalid_request"
        return APIError(400, err.message, code=code)
    if err.kind == "over_budget":  # a budget (the tier's or the key's) is spent and budgets refuse: like OpenAI's quota
        headers = {"x-should-retry": "false"}  # not before the period turns: SDKs should not retry at once
        if err.retry_after is not None:
            headers["retry-after"] = str(math.ceil(err.retry_after))
        return APIError(429, err.message, type="insufficient_quota", code="budget_exhausted", headers=headers)
    status, code = UPSTREAM_STATUS.get(err.kind, (502, "upstream_error"))
    return APIError(status, err.message, type="upstream_error", code=code)


def mark_failed(trace: Trace, err: APIError) -> None:
    """What the request log keeps of a failure."""
    trace.status, trace.http_status = "error", err.status
    trace.error, trace.error_code = err.message, err.code
