"""What a service hands back to the HTTP edge, and the one way a refused request is answered and logged."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import orjson
from pydantic import BaseModel, ValidationError

from hybridlm.failures import APIError, mark_failed
from hybridlm.request import Caller
from hybridlm.types import Trace

if TYPE_CHECKING:
    from hybridlm.pipeline import Pipeline


Shape = TypeVar("Shape", bound=BaseModel)


def parse_json_body(raw: bytes, shape: type[Shape]) -> Shape:
    """A request body as `shape`, or a 400 that names the first thing wrong with it."""
    try:
        return shape.model_validate(orjson.loads(raw))
    except orjson.JSONDecodeError as err:
        raise APIError(400, f"We could not parse the JSON body of your request: {err}", code="invalid_json") from None
    except ValidationError as err:
        first = err.errors()[0]
        param = ".".join(str(p) for p in first["loc"]) or None
        raise APIError(400, f"Invalid value for '{param}': {first['msg']}", code="invalid_value", param=param) from None


@dataclass
class JSONResult:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


class PipelineService:
    """A service behind one gateway endpoint: every refusal is answered and logged the same way."""

    endpoint: ClassVar[str]

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline

    def reject(self, err: APIError, caller: Caller | None, trace: Trace | None = None) -> JSONResult:
        return rejected(self.pipeline, err, self.endpoint, trace, caller)


def rejected(pipeline: Pipeline, err: APIError, endpoint: str, trace: Trace | None = None,
             caller: Caller | None = None) -> JSONResult:
    """Record a request that will not be served (with the key it came with) and build its OpenAI-style
    error response."""
    trace = trace or Trace()
    if caller is not None:
        trace.key_id = caller.key_id
    mark_failed(trace, err)
    pipeline.record(trace, endpoint)
    return error_result(err, trace.request_id)


def error_result(err: APIError, request_id: str) -> JSONResult:
    return JSONResult(err.status, err.body(), {**err.headers, "x-hybridlm-request-id": request_id})
