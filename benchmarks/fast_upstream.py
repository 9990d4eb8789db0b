"""An OpenAI-compatible upstream that answers instantly, so a benchmark sees only the gateway's cost.

Run: python benchmarks/fast_upstream.py PORT
"""

from __future__ import annotations

import sys
from typing import Any

import orjson
import uvicorn

REPLY = orjson.dumps({
    "id": "chatcmpl-fast", "object": "chat.completion", "created": 0, "model": "fast",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Done."}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 20, "completion_tokens": 2, "total_tokens": 22},
})
MODELS = orjson.dumps({"object": "list", "data": [{"id": "fast", "object": "model"}]})


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    body = MODELS if scope["method"] == "GET" else REPLY
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
