"""An OpenAI-compatible server that answers from a script: the stand-in for an LLM that states a
known falsehood, so the fact-check and correction loop can be tested over real HTTP.

Run: python -m tests.integration.scripted_upstream --port PORT --script FILE
The script is a JSON list of {"when": substring of the question, "answer": first answer,
"corrected": answer once asked to correct (omit to repeat the first)}. A rule may instead match
the system prompt ("in": "system") and give "answers": one per request it matches, in order, the last
repeated (a planner that first writes a broken plan). GET /recorded returns the bodies received.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI, Request

CORRECTION_MARK = "not supported by the sources"


def _matches(rule: dict[str, Any], messages: list[dict[str, Any]]) -> bool:
    role = rule.get("in", "user")
    text = next((m["content"] for m in messages if m["role"] == role), "")
    return rule["when"] in text


def build(script: list[dict[str, Any]]) -> FastAPI:
    app = FastAPI()
    recorded: list[dict[str, Any]] = []
    used: dict[int, int] = {}

    @app.get("/recorded")
    async def bodies() -> list[dict[str, Any]]:
        return recorded

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return {"object": "list", "data": [{"id": "scripted", "object": "model"}]}

    @app.post("/v1/chat/completions")
    async def complete(request: Request) -> dict[str, Any]:
        body = await request.json()
        recorded.append(body)
        messages = body["messages"]
        correcting = CORRECTION_MARK in messages[-1]["content"]
        index, rule = next(((i, r) for i, r in enumerate(script) if _matches(r, messages)),
                           (-1, {"answer": "I do not know."}))
        if "answers" in rule:
            used[index] = used.get(index, 0) + 1
            text = rule["answers"][min(used[index], len(rule["answers"])) - 1]
        else:
            text = rule.get("corrected", rule["answer"]) if correcting else rule["answer"]
        return {"id": "chatcmpl-scripted", "object": "chat.completion", "created": int(time.time()),
                "model": body.get("model", "scripted"),
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 50, "completion_tokens": len(text.split()),
                          "total_tokens": 50 + len(text.split())}}

    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--script", type=Path, required=True)
    args = parser.parse_args()
    uvicorn.run(build(json.loads(args.script.read_text())), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
