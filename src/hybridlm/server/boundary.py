"""The app-wide error boundary: an error no endpoint handled becomes a 500 in OpenAI's shape with the
request id, recorded in the request log; neither the body nor the logs carry its text or a path."""

from __future__ import annotations

import logging

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hybridlm.failures import APIError
from hybridlm.server.access import CALLER
from hybridlm.server.results import rejected
from hybridlm.types import Trace

log = logging.getLogger(__name__)


class ErrorBoundary:
    """Pure ASGI, so it guards streamed responses too; once a response has started, the error is recorded and
    the connection closed (the client sees a cut response, never a traceback)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watched_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watched_send)
        except Exception as err:  # noqa: BLE001 - the boundary: whatever it was, answer in OpenAI's shape
            trace = Trace()
            log.error("unhandled %s on %s (request %s)", type(err).__name__, scope.get("path"), trace.request_id)
            log.debug("unhandled error", exc_info=True)
            error = APIError(500, f"internal error (request {trace.request_id})", "server_error", "internal_error")
            caller = scope.get("state", {}).get(CALLER)
            result = rejected(scope["app"].state.pipeline, error, str(scope.get("path")), trace, caller)
            if started:
                return
            await send({"type": "http.response.start", "status": 500,
                        "headers": [(b"content-type", b"application/json"),
                                    *((k.encode(), v.encode()) for k, v in result.headers.items())]})
            await send({"type": "http.response.body", "body": orjson.dumps(result.body)})
