"""Reading request bodies within their limit, and fast JSON responses (orjson), for every endpoint."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable
from typing import Any, Protocol

import orjson
from fastapi import Request
from fastapi.responses import Response

from hybridlm.failures import APIError
from hybridlm.request import Caller
from hybridlm.server.access import caller_of
from hybridlm.server.results import JSONResult


class JSONService(Protocol):
    """A service behind one JSON endpoint: bytes and who sent them in, a result out, every refusal logged by
    `reject`."""

    def handle(self, raw: bytes, caller: Caller | None) -> JSONResult | Awaitable[JSONResult]: ...

    def reject(self, err: APIError, caller: Caller | None) -> JSONResult: ...


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status_code=status, headers=headers, media_type="application/json")


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise APIError(413, f"Request body of {declared} bytes exceeds the limit of {limit} bytes",
                       code="request_too_large")
    body = bytearray()
    async for part in request.stream():
        body += part
        if len(body) > limit:
            raise APIError(413, f"Request body exceeds the limit of {limit} bytes", code="request_too_large")
    return bytes(body)


async def serve_json(request: Request, service: JSONService, limit: int) -> Response:
    """Read the body, let the service answer (or refuse) it, send the JSON."""
    caller = caller_of(request)
    try:
        outcome = service.handle(await read_body(request, limit), caller)
        result = await outcome if inspect.isawaitable(outcome) else outcome
    except APIError as err:
        result = service.reject(err, caller)
    return json_response(result.body, result.status, result.headers)
