"""An OpenAI-compatible server that answers with the last user message it was sent, word for word,
and keeps every request body: the stand-in cloud for checking what leaves the machine, and that
what comes back is restored exactly.

Run: python -m tests.integration.recording_upstream --port PORT
GET /recorded returns the bodies received so far, GET /cookies the Cookie header each came with
(every answer sets a cookie, as some clouds do); streams come in chunks of three characters, so any
placeholder is cut across chunks.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import uvicorn
from fastapi import FastAPI, Request, Response
from fastapi.responses import StreamingResponse

CHUNK_CHARS = 3


def _event(body: dict[str, Any], delta: dict[str, Any], finish: str | None = None) -> bytes:
    chunk = {"id": "chatcmpl-rec", "object": "chat.completion.chunk", "created": int(time.time()),
             "model": body.get("model", "recording"),
             "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    return f"data: {json.dumps(chunk)}\n\n".encode()


def build() -> FastAPI:
    app = FastAPI()
    recorded: list[dict[str, Any]] = []
    cookies: list[str | None] = []

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return {"object": "list", "data": [{"id": "recording", "object": "model"}]}

    @app.get("/recorded")
    async def bodies() -> list[dict[str, Any]]:
        return recorded

    @app.get("/cookies")
    async def sent_cookies() -> list[str | None]:
        return cookies

    @app.post("/v1/chat/completions")
    async def complete(request: Request, response: Response) -> Any:
        body = await request.json()
        recorded.append(body)
        cookies.append(request.headers.get("cookie"))
        response.set_cookie("upstream_session", f"caller-{len(recorded)}")
        text = next(m["content"] for m in reversed(body["messages"]) if m["role"] == "user")
        if body.get("stream"):
            async def events() -> AsyncIterator[bytes]:
                for i in range(0, len(text), CHUNK_CHARS):
                    yield _event(body, {"content": text[i:i + CHUNK_CHARS]})
                yield _event(body, {}, "stop")
                yield b"data: [DONE]\n\n"

            return StreamingResponse(events(), media_type="text/event-stream")
        return {"id": "chatcmpl-rec", "object": "chat.completion", "created": int(time.time()),
                "model": body.get("model", "recording"),
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 20, "completion_tokens": 20, "total_tokens": 40}}

    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(build(), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
