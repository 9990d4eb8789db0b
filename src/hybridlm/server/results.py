"""What a service hands back to the HTTP edge, and the one way a refused request is answered and logged."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hybridlm.server.errors import APIError
from hybridlm.types import Trace

if TYPE_CHECKING:
    from hybridlm.pipeline import Pipeline


@dataclass
class JSONResult:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


def rejected(pipeline: Pipeline, err: APIError, endpoint: str, trace: Trace | None = None) -> JSONResult:
    """Record a request that will not be served and build its OpenAI-style error response."""
    trace = trace or Trace()
    trace.status = "error"
    trace.http_status = err.status
    trace.error = err.message
    trace.error_code = err.code
    pipeline.record(trace, endpoint)
    return JSONResult(err.status, err.body(), {"x-hybridlm-request-id": trace.request_id})
