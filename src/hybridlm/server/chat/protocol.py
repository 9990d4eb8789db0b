"""The shapes of /v1/chat/completions: what a client may send, what it gets back."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from hybridlm.types import Completion, Trace

CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")

Role = Literal["system", "developer", "user", "assistant", "tool", "function"]


class ChatMessageIn(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)
    role: Role
    content: str | list[dict[str, Any]] | None = None


class ChatCompletionRequest(BaseModel):
    """OpenAI's request; unknown fields are kept (and passed upstream), wrong types rejected."""

    model_config = ConfigDict(extra="allow", strict=True)
    model: str = "hybrid"
    messages: list[ChatMessageIn] = Field(..., min_length=1)
    stream: bool = False
    max_tokens: int | None = Field(None, gt=0)
    max_completion_tokens: int | None = Field(None, gt=0)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    stop: str | list[str] | None = None
    seed: int | None = None
    n: int | None = Field(None, ge=1, le=1)
    stream_options: dict[str, Any] | None = None
    user: str | None = None
    tools: Any = None  # checked by hybridlm.tools.protocol, which names the exact field at fault
    tool_choice: Any = None
    parallel_tool_calls: Any = None
    response_format: Any = None


def assistant_message(result: Completion) -> dict[str, Any]:
    """The answer as OpenAI sends it: with calls, `content` is null unless the model also wrote words."""
    if not result.tool_calls:
        return {"role": "assistant", "content": result.text}
    return {"role": "assistant", "content": result.text or None,
            "tool_calls": [call.as_openai() for call in result.tool_calls]}


def completion_body(result: Completion, trace: Trace) -> dict[str, Any]:
    return {
        "id": trace.request_id,
        "object": "chat.completion",
        "created": int(trace.started),
        "model": result.model,
        "choices": [{
            "index": 0,
            "message": assistant_message(result),
            "finish_reason": result.finish_reason,
        }],
        "usage": {
            "prompt_tokens": result.usage.prompt_tokens,
            "completion_tokens": result.usage.completion_tokens,
            "total_tokens": result.usage.total_tokens,
        },
        "hybridlm": trace.metadata(),
    }


def chunk_body(trace: Trace, delta: dict[str, Any], finish_reason: str | None) -> dict[str, Any]:
    return {
        "id": trace.request_id,
        "object": "chat.completion.chunk",
        "created": int(trace.started),
        "model": trace.model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
    }


def closing_chunk_body(trace: Trace, include_usage: bool) -> dict[str, Any]:
    """The last event: no choices, the usage if asked for, and the routing metadata with cost."""
    body: dict[str, Any] = {
        "id": trace.request_id,
        "object": "chat.completion.chunk",
        "created": int(trace.started),
        "model": trace.model,
        "choices": [],
        "hybridlm": trace.metadata(),
    }
    if include_usage:
        body["usage"] = {
            "prompt_tokens": trace.usage.prompt_tokens,
            "completion_tokens": trace.usage.completion_tokens,
            "total_tokens": trace.usage.total_tokens,
        }
    return body


def metadata_headers(trace: Trace) -> dict[str, str]:
    """`x-hybridlm-*` headers; values are made ASCII so any HTTP stack accepts them."""
    meta = trace.metadata()
    names = ("request_id", "tier", "model", "score", "threshold", "reason", "fallback", "fallback_reason", "cost_usd")
    headers = {}
    for name in names:
        value = meta.get(name)
        if value is None:
            continue
        text = f"{value:.6g}" if isinstance(value, float) else str(value)
        text = CONTROL_CHARS.sub(" ", text).encode("ascii", "replace").decode()[:400]
        headers["x-hybridlm-" + name.replace("_", "-")] = text
    return headers
