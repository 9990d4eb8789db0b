"""/v1/chat/completions without the web framework: bytes in, a JSON or SSE result out.

Every outcome, rejected input included, ends in exactly one request-log row.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import orjson
from pydantic import ValidationError

from hybridlm.models.base import GenerationParams
from hybridlm.pipeline import RequestFailed, StreamAnswer
from hybridlm.request import Caller, Request
from hybridlm.routing.base import message_text
from hybridlm.tools.grammar import GrammarError, call_grammar, response_grammar
from hybridlm.tools.protocol import (
    ResponseFormat,
    ToolRequest,
    ToolRequestError,
    check_tool_turns,
    parse_response_format,
    parse_tools,
)
from hybridlm.server.chat.protocol import (
    ChatCompletionRequest,
    chunk_body,
    closing_chunk_body,
    completion_body,
    metadata_headers,
)
from hybridlm.failures import APIError
from hybridlm.server.results import JSONResult, PipelineService, error_result
from hybridlm.types import Message

ENDPOINT = "/v1/chat/completions"
PASSTHROUGH_EXCLUDE = {"stream_options", "user", "conversation_id", "documents"}


@dataclass(frozen=True)
class ChatRequest:
    """A request that passed every check: its messages, and its tool and output-format fields as values."""

    body: ChatCompletionRequest
    messages: list[Message]
    tools: ToolRequest | None
    response_format: ResponseFormat | None
    documents: tuple[tuple[str, str], ...] = ()


@dataclass
class StreamResult:
    events: AsyncIterator[bytes]
    headers: dict[str, str] = field(default_factory=dict)


def sse(payload: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


SSE_DONE = b"data: [DONE]\n\n"


def parse_request(raw: bytes) -> ChatRequest:
    """Bytes to a validated request, or an APIError that says exactly what is wrong."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as err:
        raise APIError(400, f"We could not parse the JSON body of your request: {err}", code="invalid_json") from None
    if not isinstance(data, dict):
        raise APIError(400, f"The request body must be a JSON object, not {type(data).__name__}", code="invalid_json")
    try:
        request = ChatCompletionRequest.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        param = ".".join(str(p) for p in first["loc"])
        code = "missing_required_parameter" if first["type"] == "missing" else "invalid_type"
        if first["type"] in ("too_short", "greater_than", "less_than_equal", "greater_than_equal", "less_than"):
            code = "invalid_value"
        raise APIError(400, f"Invalid value for '{param}': {first['msg']}", code=code, param=param) from None
    messages: list[Message] = [m.model_dump(exclude_none=True) for m in request.messages]
    if not any(message_text(m).strip() or m.get("tool_calls") for m in messages):
        raise APIError(400, "'messages' has no text: every message is empty", code="empty_messages", param="messages")
    try:
        check_tool_turns(messages)
        tools = parse_tools(request.tools, request.tool_choice, request.parallel_tool_calls)
        response_format = parse_response_format(request.response_format)
    except ToolRequestError as err:
        raise APIError(400, str(err), code="invalid_value", param=err.param) from None
    try:  # the local tier may answer any routed request: its grammar must exist
        if tools is not None:
            call_grammar(tools.functions, tools.parallel)
        if response_format is not None:
            response_grammar(response_format)
    except GrammarError as err:
        param = "tools" if tools is not None and response_format is None else "response_format"
        raise APIError(400, f"'{param}' has a schema the local model cannot follow: {err}", code="invalid_schema",
                       param=param) from None
    return ChatRequest(request, messages, tools, response_format, _documents((request.model_extra or {}).get("documents")))


def _documents(value: Any) -> tuple[tuple[str, str], ...]:
    """`documents` (for `hybrid/agent`): a list of {"name", "text"} with distinct names."""
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(d, dict) and isinstance(d.get("name"), str)
                                              and d["name"].strip() and isinstance(d.get("text"), str) for d in value):
        raise APIError(400, "'documents' must be a list of objects with a 'name' and a 'text' (strings)",
                       code="invalid_value", param="documents")
    names = [d["name"] for d in value]
    if len(set(names)) != len(names):
        raise APIError(400, "'documents' has two documents of the same name", code="invalid_value", param="documents")
    return tuple((d["name"], d["text"]) for d in value)


class ChatService(PipelineService):
    endpoint = ENDPOINT

    def _params(self, chat: ChatRequest) -> GenerationParams:
        request = chat.body
        stop = [request.stop] if isinstance(request.stop, str) else request.stop
        extra = {k: v for k, v in (request.model_extra or {}).items() if k not in PASSTHROUGH_EXCLUDE}
        return GenerationParams(
            max_tokens=request.max_completion_tokens or request.max_tokens or self.pipeline.config.server.default_max_tokens,
            temperature=request.temperature, top_p=request.top_p, stop=stop, seed=request.seed,
            tools=chat.tools, response_format=chat.response_format, extra=extra,
        )

    async def handle(self, raw: bytes, caller: Caller | None) -> JSONResult | StreamResult:
        try:
            chat = parse_request(raw)
        except APIError as err:
            return self.reject(err, caller)
        body = chat.body
        conversation = (body.model_extra or {}).get("conversation_id")
        request = Request(chat.messages, body.model, self._params(chat), ENDPOINT,
                          str(conversation) if conversation is not None else None, caller=caller,
                          documents=chat.documents)
        try:
            if body.stream:
                stream = await self.pipeline.run_stream(request)
                include_usage = bool((body.stream_options or {}).get("include_usage"))
                return StreamResult(self._events(stream, include_usage), metadata_headers(stream.trace))
            answer = await self.pipeline.run(request)
        except RequestFailed as failed:
            return error_result(failed.error, failed.trace.request_id)
        return JSONResult(200, completion_body(answer.completion, answer.trace), metadata_headers(answer.trace))

    @staticmethod
    async def _events(stream: StreamAnswer, include_usage: bool) -> AsyncIterator[bytes]:
        """The pipeline records the request before the last event, so a client that reads the log once the
        stream has ended finds the row."""
        trace = stream.trace
        try:
            yield sse(chunk_body(trace, {"role": "assistant", "content": ""}, None))
            async for chunk in stream.chunks:
                if chunk.text or chunk.finish_reason or chunk.tool_calls:
                    delta: dict[str, Any] = {"content": chunk.text} if chunk.text else {}
                    if chunk.tool_calls:
                        delta["tool_calls"] = [call.as_openai() for call in chunk.tool_calls]
                    yield sse(chunk_body(trace, delta, chunk.finish_reason))
            last_event = sse(closing_chunk_body(trace, include_usage))
        except RequestFailed as failed:
            last_event = sse(failed.error.body())
        finally:
            await stream.chunks.aclose()  # type: ignore[attr-defined]
        yield last_event
        yield SSE_DONE
