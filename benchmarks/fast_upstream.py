"""An OpenAI-compatible upstream that answers instantly, so a benchmark sees only the gateway's cost.

With --fail-share F, that share of chat requests gets a 500 with an OpenAI error body, spread evenly
and deterministically by a request counter (F = 0.5: every second request fails); GET /v1/models
always answers, so readiness checks pass.

Run: python benchmarks/fast_upstream.py PORT [--fail-share 0.5]
"""

from __future__ import annotations

import argparse
import math
from typing import Any

import orjson
import uvicorn

REPLY = orjson.dumps({
    "id": "chatcmpl-fast", "object": "chat.completion", "created": 0, "model": "fast",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Done."}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 20, "completion_tokens": 2, "total_tokens": 22},
})
FAILURE = orjson.dumps({"error": {"message": "upstream failure (fast_upstream --fail-share)", "type": "server_error",
                                  "param": None, "code": None}})
MODELS = orjson.dumps({"object": "list", "data": [{"id": "fast", "object": "model"}]})
JSON = [(b"content-type", b"application/json")]


class FailEvery:
    """Request n fails when floor((n + 1) * share) > floor(n * share): `share` of them, evenly spread."""

    def __init__(self, share: float) -> None:
        self.share = share
        self.count = 0

    def __call__(self) -> bool:
        n, self.count = self.count, self.count + 1
        return math.floor((n + 1) * self.share) > math.floor(n * self.share)


def make_app(fail_share: float = 0.0) -> Any:
    fails = FailEvery(fail_share)

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        more = True
        while more:
            message = await receive()
            more = message.get("more_body", False)
        status, body = 200, MODELS
        if scope["method"] != "GET":
            status, body = (500, FAILURE) if fails() else (200, REPLY)
        await send({"type": "http.response.start", "status": status, "headers": JSON})
        await send({"type": "http.response.body", "body": body})

    return app


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("port", type=int)
    parser.add_argument("--fail-share", type=float, default=0.0, help="share of chat requests answered 500 (0-1)")
    args = parser.parse_args()
    if not 0.0 <= args.fail_share <= 1.0:
        parser.error("--fail-share is a share between 0 and 1")
    uvicorn.run(make_app(args.fail_share), host="127.0.0.1", port=args.port, log_level="warning", access_log=False)
