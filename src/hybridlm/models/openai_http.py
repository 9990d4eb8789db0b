"""Any OpenAI-compatible chat endpoint over HTTP: OpenAI, vLLM, Ollama, llama.cpp server, OpenRouter."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
from pydantic import BaseModel, ConfigDict, Field

from hybridlm.models.base import BackendContext, BackendError, GenerationParams, estimate_prompt_tokens, estimate_tokens
from hybridlm.tools.parsing import new_call_id
from hybridlm.types import Chunk, Completion, Message, ToolCall, ToolCallDelta, Usage


class OpenAIOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    base_url: str
    model: str
    api_key_env: str | None = Field(None, description="Name of the environment variable holding the key.")
    timeout: float = Field(60.0, gt=0, description="Seconds to wait for the whole answer (or between stream chunks).")
    connect_timeout: float = Field(3.0, gt=0)
    headers: dict[str, str] = Field(default_factory=dict)


def _usage(raw: dict[str, Any] | None) -> Usage | None:
    if not raw:
        return None
    return Usage(int(raw.get("prompt_tokens") or 0), int(raw.get("completion_tokens") or 0))


class OpenAIBackend:
    """Talks to `{base_url}/chat/completions`; one pooled HTTP client per tier."""

    Options = OpenAIOptions

    def __init__(self, options: OpenAIOptions, context: BackendContext | None = None) -> None:
        self.options = options
        self.model_name = options.model
        headers = {"content-type": "application/json", **options.headers}
        key = os.environ.get(options.api_key_env) if options.api_key_env else None
        if key:
            headers["authorization"] = f"Bearer {key}"
        self._url = options.base_url.rstrip("/") + "/chat/completions"
        self._client = httpx.AsyncClient(
            headers=headers,
            timeout=httpx.Timeout(options.timeout, connect=options.connect_timeout),
            limits=httpx.Limits(max_connections=256, max_keepalive_connections=64),
            trust_env=False,
        )

    def _body(self, messages: list[Message], params: GenerationParams, stream: bool) -> bytes:
        body: dict[str, Any] = {**params.extra, "model": self.model_name, "messages": messages, **params.as_openai()}
        if stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        return orjson.dumps(body)

    def _failure(self, err: Exception) -> BackendError:
        where = self.options.base_url
        if isinstance(err, httpx.TimeoutException):
            return BackendError("timeout", f"upstream {where} timed out ({type(err).__name__})")
        if isinstance(err, httpx.TransportError):
            return BackendError("unavailable", f"cannot reach upstream {where}: {type(err).__name__} {err}".strip())
        return BackendError("upstream", f"upstream {where} gave an unreadable answer: {err}")

    def _status_error(self, resp: httpx.Response) -> BackendError:
        detail = resp.text[:300].strip()
        return BackendError(
            "upstream", f"upstream {self.options.base_url} answered HTTP {resp.status_code} {detail}".strip(),
            resp.status_code,
        )

    async def complete(self, messages: list[Message], params: GenerationParams) -> Completion:
        try:
            resp = await self._client.post(self._url, content=self._body(messages, params, stream=False))
            if resp.status_code >= 400:
                raise self._status_error(resp)
            data = orjson.loads(resp.content)
            choice = data["choices"][0]
            text = choice["message"].get("content") or ""
            calls = _tool_calls(choice["message"].get("tool_calls"))
        except (httpx.HTTPError, orjson.JSONDecodeError, KeyError, IndexError, TypeError, AttributeError) as err:
            raise self._failure(err) from err
        written = text + "".join(call.name + call.arguments for call in calls)
        usage = _usage(data.get("usage")) or Usage(estimate_prompt_tokens(messages), estimate_tokens(written))
        return Completion(text=text, model=data.get("model") or self.model_name, usage=usage,
                          finish_reason=choice.get("finish_reason") or "stop", token_logprobs=_token_logprobs(choice),
                          tool_calls=calls)

    async def stream(self, messages: list[Message], params: GenerationParams) -> AsyncIterator[Chunk]:
        request = self._client.build_request("POST", self._url, content=self._body(messages, params, stream=True))
        try:
            resp = await self._client.send(request, stream=True)
        except httpx.HTTPError as err:
            raise self._failure(err) from err
        try:
            if resp.status_code >= 400:
                await resp.aread()
                raise self._status_error(resp)
            async for chunk in self._parse_sse(resp):
                yield chunk
        except httpx.HTTPError as err:
            raise self._failure(err) from err
        finally:
            await resp.aclose()

    async def _parse_sse(self, resp: httpx.Response) -> AsyncIterator[Chunk]:
        async for line in resp.aiter_lines():
            if not line.startswith("data:"):
                continue
            payload = line[5:].strip()
            if payload == "[DONE]":
                return
            try:
                event = orjson.loads(payload)
            except orjson.JSONDecodeError as err:
                raise BackendError("upstream", f"upstream sent a malformed stream event: {payload[:120]}") from err
            if "error" in event:
                raise BackendError("upstream", f"upstream stream error: {event['error']}")
            try:
                choices = event.get("choices") or []
                delta = (choices[0].get("delta") or {}) if choices else {}
                finish = choices[0].get("finish_reason") if choices else None
                usage = _usage(event.get("usage"))
                text = delta.get("content") or ""
                calls = _call_deltas(delta.get("tool_calls"))
            except (AttributeError, TypeError, ValueError) as err:
                raise BackendError("upstream", f"upstream sent a malformed stream event: {payload[:120]}") from err
            if text or finish or usage or calls:
                yield Chunk(text=text, finish_reason=finish, usage=usage, tool_calls=calls)

    async def aclose(self) -> None:
        await self._client.aclose()


def _tool_calls(raw: Any) -> tuple[ToolCall, ...]:
    """`message.tool_calls` of the OpenAI format; arguments stay the JSON text the upstream wrote."""
    if not raw:
        return ()
    calls = []
    for call in raw:
        function = call["function"]
        calls.append(ToolCall(str(call.get("id") or new_call_id()), str(function["name"]),
                              str(function.get("arguments") or "{}")))
    return tuple(calls)


def _call_deltas(raw: Any) -> tuple[ToolCallDelta, ...]:
    """`delta.tool_calls` of a stream event: the first piece of a call names it, later ones add arguments."""
    if not raw:
        return ()
    deltas = []
    for position, call in enumerate(raw):
        function = call.get("function") or {}
        name = function.get("name")
        deltas.append(ToolCallDelta(int(call.get("index", position)), call.get("id"), name,
                                    str(function.get("arguments") or "")))
    return tuple(deltas)


def _token_logprobs(choice: dict[str, Any]) -> tuple[float, ...] | None:
    """`choices[0].logprobs.content[*].logprob` of the OpenAI format, when the server sent them."""
    content = (choice.get("logprobs") or {}).get("content")
    if not isinstance(content, list):
        return None
    try:
        return tuple(float(item["logprob"]) for item in content)
    except (KeyError, TypeError, ValueError):
        return None
