"""Any OpenAI-compatible chat endpoint over HTTP: OpenAI, vLLM, Ollama, llama.cpp server, OpenRouter.

One `OpenAIBackend` talks to one upstream URL. A tier's options may list several upstreams, with
retries and a circuit breaker for each and failover between them; `remote_tier.py` builds that stack.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import os
import time
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from contextlib import aclosing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import urlsplit

import aiohttp
import orjson
from pydantic import BaseModel, ConfigDict, Field, model_validator

from hybridlm.models.base import BackendError, GenerationParams, estimate_prompt_tokens, estimate_tokens
from hybridlm.models.deadline import bounded_timeout
from hybridlm.tools.parsing import new_call_id
from hybridlm.types import Chunk, Completion, Message, ToolCall, ToolCallDelta, Usage

log = logging.getLogger(__name__)

AUTH_STATUSES = (401, 403)


class UpstreamOptions(BaseModel):
    """One endpoint of a tier; a field left out takes the tier's value."""

    model_config = ConfigDict(extra="forbid")
    base_url: str
    model: str | None = None
    api_key_env: str | None = Field(None, description="Name of the environment variable holding this upstream's key.")
    headers: dict[str, str] = Field(default_factory=dict, description="Added to the tier's headers, winning a clash.")


class RetryOptions(BaseModel):
    """Another try at the same upstream after a 429, a 5xx or a failed connection."""

    model_config = ConfigDict(extra="forbid")
    attempts: int = Field(3, ge=1, le=10, description="Tries per call, the first included.")
    initial_backoff: float = Field(0.25, gt=0, description="Scale of the jittered exponential wait, in seconds.")
    max_backoff: float = Field(4.0, gt=0, description="Longest wait between tries; an upstream whose Retry-After "
                                                      "asks for longer is not tried again.")


class BreakerOptions(BaseModel):
    """When to stop calling a failing upstream, and when to look again."""

    model_config = ConfigDict(extra="forbid")
    failures: int = Field(5, ge=1, description="Failed calls within `window` seconds that open the circuit.")
    window: float = Field(30.0, gt=0)
    cooldown: float = Field(15.0, gt=0, description="Seconds the circuit stays open before one probe is let through.")


class OpenAIOptions(BaseModel):
    """A remote tier: its upstreams, the limits of each call, and how failures are handled."""

    model_config = ConfigDict(extra="forbid")
    base_url: str | None = Field(None, description="The one upstream; or list several in `upstreams`.")
    model: str | None = Field(None, description="The model asked for; an upstream may name its own.")
    api_key_env: str | None = Field(None, description="Name of the environment variable holding the key.")
    headers: dict[str, str] = Field(default_factory=dict)
    upstreams: list[UpstreamOptions] = Field(default_factory=list)
    upstream_order: Literal["ordered", "lowest_latency"] = Field(
        "ordered", description="'ordered': the first healthy upstream first; 'lowest_latency': the fastest lately.")
    timeout: float = Field(60.0, gt=0, description="Seconds for the whole call, a stream's last chunk included.")
    connect_timeout: float = Field(3.0, gt=0)
    first_token_timeout: float | None = Field(
        None, gt=0, description="Streams: seconds until the response headers and the first chunk (default: timeout).")
    read_timeout: float | None = Field(
        None, gt=0, description="Streams: longest gap between two chunks, for a stream that stalls (default: timeout).")
    retries: RetryOptions = Field(default_factory=RetryOptions)
    breaker: BreakerOptions = Field(default_factory=BreakerOptions)

    @model_validator(mode="after")
    def _upstreams_named(self) -> OpenAIOptions:
        if (self.base_url is None) == (not self.upstreams):
            raise ValueError("give either 'base_url' or a list of 'upstreams'")
        if not all(endpoint.model for endpoint in self.endpoints()):
            raise ValueError("'model': set it on the tier or on every upstream")
        return self

    def endpoints(self) -> list[Endpoint]:
        """Each upstream with the tier's values filled in, in the configured order."""
        listed = self.upstreams or [UpstreamOptions(base_url=self.base_url or "")]
        return [Endpoint(u.base_url, u.model or self.model or "", u.api_key_env or self.api_key_env,
                         {**self.headers, **u.headers}) for u in listed]


@dataclass(frozen=True)
class Endpoint:
    """One upstream, every field settled."""

    base_url: str
    model: str
    api_key_env: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


def public_url(url: str) -> str:
    """scheme://host:port/path: what logs, errors and /healthz may show of a URL (no credentials, no query)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return f"{parts.scheme}://{host}{f':{port}' if port else ''}{parts.path.rstrip('/')}"


def retry_after_seconds(value: str | None) -> float | None:
    """A Retry-After header, in seconds or as an HTTP date, as seconds from now."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _usage(raw: dict[str, Any] | None) -> Usage | None:
    if not raw:
        return None
    return Usage(int(raw.get("prompt_tokens") or 0), int(raw.get("completion_tokens") or 0))


class _CallClock:
    """One call's time limits: the total (cut to the request's deadline), the first chunk, the gap between chunks."""

    def __init__(self, options: OpenAIOptions, where: str) -> None:
        self.where = where
        self.total = bounded_timeout(options.timeout, f"calling upstream {where}")
        self._started = time.monotonic()
        self._first_token = options.first_token_timeout or options.timeout
        self._gap = options.read_timeout or options.timeout
        self._connect = options.connect_timeout
        self.answered = False  # a stream's first chunk arrived: from now on the gap limit applies

    def left(self) -> float:
        return self.total - (time.monotonic() - self._started)

    def http_timeout(self) -> aiohttp.ClientTimeout:
        """aiohttp's own limits, a backstop under the finer ones this clock applies."""
        return aiohttp.ClientTimeout(total=self.total, sock_connect=min(self._connect, self.total))

    def next_wait(self) -> tuple[float, str]:
        """How long to wait for what comes next, and what waiting too long is called."""
        if self.answered:
            wait, waited_for = self._gap, f"the stream stalled: no chunk for {self._gap:g} s"
        else:
            wait = self._first_token - (time.monotonic() - self._started)
            waited_for = f"no first chunk within {self._first_token:g} s"
        left = self.left()
        if left <= wait:
            return left, f"no complete answer within {self.total:g} s"
        return wait, waited_for

    def expired(self, waited_for: str) -> BackendError:
        return BackendError("timeout", f"upstream {self.where} timed out: {waited_for}")


class OpenAIBackend:
    """Talks to one upstream's `{base_url}/chat/completions`, with one pooled HTTP session.

    aiohttp rather than httpx: a call to an instant upstream takes under half the time (measured in
    docs/BENCHMARKS.md). The session is made on first use, inside the loop that uses it.
    """

    def __init__(self, endpoint: Endpoint, options: OpenAIOptions) -> None:
        self.options = options
        self.endpoint = endpoint
        self.model_name = endpoint.model
        self.where = public_url(endpoint.base_url)
        self._headers = {"content-type": "application/json", **endpoint.headers}
        key = os.environ.get(endpoint.api_key_env) if endpoint.api_key_env else None
        if key:
            self._headers["authorization"] = f"Bearer {key}"
        self._url = endpoint.base_url.rstrip("/") + "/chat/completions"
        self._session: aiohttp.ClientSession | None = None
        self._session_loop: asyncio.AbstractEventLoop | None = None  # (aiohttp deprecates asking the session)
        self._credentials_rejected = False  # logged once: every later call would only repeat it

    def _client(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        if self._session is None or self._session.closed or self._session_loop is not loop:
            connector = aiohttp.TCPConnector(limit=256, limit_per_host=256)
            # No cookie jar: a cookie one request's answer set must never ride along with another caller's request.
            self._session = aiohttp.ClientSession(headers=self._headers, connector=connector, trust_env=False,
                                                  timeout=aiohttp.ClientTimeout(total=None),
                                                  cookie_jar=aiohttp.DummyCookieJar())
            self._session_loop = loop
        return self._session

    def _body(self, messages: list[Message], params: GenerationParams, stream: bool) -> bytes:
        body: dict[str, Any] = {**params.extra, "model": self.model_name, "messages": messages, **params.as_openai()}
        if stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        return orjson.dumps(body)

    def _failure(self, err: Exception) -> BackendError:
        if isinstance(err, aiohttp.ConnectionTimeoutError):
            return BackendError("unavailable", f"cannot reach upstream {self.where}: connecting timed out")
        if isinstance(err, (aiohttp.ServerTimeoutError, TimeoutError)):
            return BackendError("timeout", f"upstream {self.where} timed out ({type(err).__name__})")
        if isinstance(err, aiohttp.ClientConnectionError):
            return BackendError("unavailable", f"cannot reach upstream {self.where}: {type(err).__name__}")
        return BackendError("upstream", f"upstream {self.where} gave an unreadable answer ({type(err).__name__})")

    def _status_error(self, status: int, raw: bytes, headers: Mapping[str, str]) -> BackendError:
        if status in AUTH_STATUSES:
            message = f"upstream {self.where} rejected the credentials (HTTP {status})"
            if not self._credentials_rejected:
                self._credentials_rejected = True
                key_source = f"the key in ${self.endpoint.api_key_env}" if self.endpoint.api_key_env else "no key"
                log.error("%s; it was sent %s: check the tier's api_key_env", message, key_source)
            return BackendError("auth", message, status)
        detail = raw[:300].decode("utf-8", "replace").strip()
        return BackendError("upstream", f"upstream {self.where} answered HTTP {status} {detail}".strip(), status,
                            retry_after_seconds(headers.get("retry-after")))

    async def complete(self, messages: list[Message], params: GenerationParams) -> Completion:
        clock = _CallClock(self.options, self.where)
        try:
            async with asyncio.timeout(clock.total):
                async with self._client().post(self._url, data=self._body(messages, params, stream=False),
                                               timeout=clock.http_timeout()) as resp:
                    status, raw, headers = resp.status, await resp.read(), resp.headers
            if status >= 400:
                raise self._status_error(status, raw, headers)
            data = orjson.loads(raw)
            choice = data["choices"][0]
            text = choice["message"].get("content") or ""
            calls = _tool_calls(choice["message"].get("tool_calls"))
        except TimeoutError:
            raise clock.expired(f"no answer within {clock.total:g} s") from None
        except (aiohttp.ClientError, orjson.JSONDecodeError, KeyError, IndexError, TypeError, AttributeError) as err:
            raise self._failure(err) from err
        written = text + "".join(call.name + call.arguments for call in calls)
        usage = _usage(data.get("usage")) or Usage(estimate_prompt_tokens(messages), estimate_tokens(written))
        return Completion(text=text, model=data.get("model") or self.model_name, usage=usage,
                          finish_reason=choice.get("finish_reason") or "stop", token_logprobs=_token_logprobs(choice),
                          tool_calls=calls)

    async def stream(self, messages: list[Message], params: GenerationParams) -> AsyncIterator[Chunk]:
        clock = _CallClock(self.options, self.where)
        wait, waited_for = clock.next_wait()
        try:
            async with asyncio.timeout(wait):
                resp = await self._client().post(self._url, data=self._body(messages, params, stream=True),
                                                 timeout=clock.http_timeout())
        except TimeoutError:
            raise clock.expired(waited_for) from None
        except aiohttp.ClientError as err:
            raise self._failure(err) from err
        try:
            if resp.status >= 400:
                raise self._status_error(resp.status, await resp.read(), resp.headers)
            async with aclosing(_timed_lines(resp, clock)) as lines:
                async for chunk in _parse_sse(lines, self.where):
                    clock.answered = True
                    yield chunk
        except aiohttp.ClientError as err:
            raise self._failure(err) from err
        finally:
            resp.release()

    def describe(self) -> dict[str, Any]:
        return {"url": self.where, "model": self.model_name}

    async def aclose(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()


async def _timed_lines(resp: aiohttp.ClientResponse, clock: _CallClock) -> AsyncGenerator[str, None]:
    """The response's lines, each awaited no longer than the clock allows (no limit runs while the caller holds one)."""
    while True:
        wait, waited_for = clock.next_wait()
        try:
            async with asyncio.timeout(wait):
                line = await resp.content.readline()
        except TimeoutError:
            raise clock.expired(waited_for) from None
        if not line:
            return
        yield line.decode("utf-8", "replace").rstrip("\r\n")


async def _parse_sse(lines: AsyncIterator[str], where: str) -> AsyncIterator[Chunk]:
    events = 0
    async for line in lines:
        if not line.startswith("data:"):
            continue
        events += 1
        payload = line[5:].strip()
        if payload == "[DONE]":
            return
        try:
            event = orjson.loads(payload)
        except orjson.JSONDecodeError as err:
            raise BackendError("upstream", f"upstream {where} sent a malformed stream event: {payload[:120]}") from err
        if "error" in event:
            raise BackendError("upstream", f"upstream {where} sent a stream error: {event['error']}")
        try:
            choices = event.get("choices") or []
            delta = (choices[0].get("delta") or {}) if choices else {}
            finish = choices[0].get("finish_reason") if choices else None
            usage = _usage(event.get("usage"))
            text = delta.get("content") or ""
            calls = _call_deltas(delta.get("tool_calls"))
        except (AttributeError, TypeError, ValueError) as err:
            raise BackendError("upstream", f"upstream {where} sent a malformed stream event: {payload[:120]}") from err
        if text or finish or usage or calls:
            yield Chunk(text=text, finish_reason=finish, usage=usage, tool_calls=calls)
    if not events:  # e.g. a JSON body where a stream was asked for
        raise BackendError("upstream", f"upstream {where} answered a stream request without a single stream event")


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
