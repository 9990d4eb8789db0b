"""An OpenAI-compatible upstream that misbehaves on command: the stand-in for a cloud LLM having a
bad day, so retries, the circuit breaker and failover can be tested over real HTTP.

Run: python -m tests.integration.faulty_upstream --port PORT [--reply TEXT]
POST /control with {"fault": NAME, ...options} sets how every later chat request is answered;
GET /stats says how many chat requests came. Faults:
  ok        the reply (streamed word by word when asked)
  slow      the same after `latency_ms`
  http_500  500 with an OpenAI error body
  http_429  429 with `Retry-After: retry_after` (seconds)
  http_401  401: the key is refused
  reset     the connection closed without a response
  stall     `chunks` stream chunks, then nothing (a non-streamed answer: part of its body, then nothing)
  bad_json  200 with a body that is not JSON
  bad_sse   `chunks` stream chunks, then an event that is not JSON (a non-streamed answer: as bad_json)
  flaky     http_500 for a share `p` of requests (seeded, so a run repeats), ok for the rest
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
from collections.abc import AsyncIterator
from typing import Any, ClassVar, Literal

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from uvicorn.protocols.http.h11_impl import H11Protocol

HANGS_FOR = 3600.0  # seconds: longer than any test waits
SSE = "text/event-stream"
MALFORMED_EVENT = b'data: {"choices": [{"delta": \n\n'
Address = tuple[str, int]


class Behaviour(BaseModel):
    model_config = ConfigDict(extra="forbid")
    fault: Literal["ok", "slow", "http_500", "http_429", "http_401", "reset", "stall", "bad_json", "bad_sse",
                   "flaky"] = "ok"
    latency_ms: int = Field(0, ge=0)
    retry_after: str = "1"
    chunks: int = Field(2, ge=0)
    p: float = Field(0.5, ge=0.0, le=1.0)
    seed: int = 0


class ConnectionTrackingH11(H11Protocol):
    """uvicorn's HTTP/1.1 protocol that files each connection by the client's address, so a handler can drop it."""

    by_client: ClassVar[dict[Address, asyncio.Transport]] = {}

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._client_address: Address = transport.get_extra_info("peername")[:2]
        self.by_client[self._client_address] = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.by_client.pop(self._client_address, None)
        super().connection_lost(exc)


def _error(status: int, message: str, code: str) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": "server_error", "param": None, "code": code}}, status)


def _completion(model: str, text: str) -> dict[str, Any]:
    return {"id": "chatcmpl-faulty", "object": "chat.completion", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 20, "completion_tokens": len(text.split()),
                      "total_tokens": 20 + len(text.split())}}


def _event(model: str, text: str | None, finish: str | None = None) -> bytes:
    delta = {"content": text} if text is not None else {}
    body = {"id": "chatcmpl-faulty", "object": "chat.completion.chunk", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    return b"data: " + json.dumps(body).encode() + b"\n\n"


def build(reply: str) -> FastAPI:
    app = FastAPI()
    state: dict[str, Any] = {"behaviour": Behaviour(), "requests": 0, "random": random.Random(0)}

    @app.post("/control")
    async def control(behaviour: Behaviour) -> dict[str, Any]:
        state["behaviour"], state["random"] = behaviour, random.Random(behaviour.seed)
        return behaviour.model_dump()

    @app.get("/stats")
    async def stats() -> dict[str, Any]:
        return {"requests": state["requests"], "fault": state["behaviour"].fault}

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return {"object": "list", "data": [{"id": "faulty", "object": "model"}]}

    def words(model: str) -> list[bytes]:
        return [_event(model, word + " ") for word in reply.split()]

    @app.post("/v1/chat/completions")
    async def complete(request: Request) -> Response:
        state["requests"] += 1
        behaviour: Behaviour = state["behaviour"]
        body = await request.json()
        model, streams = str(body.get("model", "faulty")), bool(body.get("stream"))
        fault = behaviour.fault
        if fault == "flaky":
            fault = "http_500" if state["random"].random() < behaviour.p else "ok"
        if fault == "slow":
            await asyncio.sleep(behaviour.latency_ms / 1000)
        if fault == "http_500":
            return _error(500, "the upstream failed", "server_error")
        if fault == "http_429":
            response = _error(429, "slow down", "rate_limit_exceeded")
            response.headers["retry-after"] = behaviour.retry_after
            return response
        if fault == "http_401":
            return _error(401, "Incorrect API key provided", "invalid_api_key")
        if fault == "reset":
            assert request.client is not None
            ConnectionTrackingH11.by_client[(request.client.host, request.client.port)].abort()
            return Response()  # never sent: the connection is gone
        if fault == "bad_json" or (fault == "bad_sse" and not streams):
            return Response(b"{\"choices\": [", media_type="application/json")
        if fault == "stall" and not streams:
            return StreamingResponse(_sent([json.dumps(_completion(model, reply)).encode()[:20]], then_hang=True),
                                     media_type="application/json")
        if fault == "stall":
            return StreamingResponse(_sent(words(model)[:behaviour.chunks], then_hang=True), media_type=SSE)
        if fault == "bad_sse":
            return StreamingResponse(_sent([*words(model)[:behaviour.chunks], MALFORMED_EVENT]), media_type=SSE)
        if streams:
            return StreamingResponse(_sent([*words(model), _event(model, None, "stop"), b"data: [DONE]\n\n"]),
                                     media_type=SSE)
        return JSONResponse(_completion(model, reply))

    return app


async def _sent(events: list[bytes], then_hang: bool = False) -> AsyncIterator[bytes]:
    for event in events:
        yield event
    if then_hang:
        await asyncio.sleep(HANGS_FOR)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--reply", default="the faulty upstream answers")
    args = parser.parse_args()
    uvicorn.run(build(args.reply), host="127.0.0.1", port=args.port, log_level="warning", http=ConnectionTrackingH11)


if __name__ == "__main__":
    main()
