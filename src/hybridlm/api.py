"""The Python API: the same pipeline as the gateway, called in-process."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hybridlm.config import Config, load_config
from hybridlm.models.base import GenerationParams
from hybridlm.pipeline import Pipeline
from hybridlm.targets import HYBRID, RAG
from hybridlm.tools.protocol import parse_response_format, parse_tools
from hybridlm.types import Message, ToolCall, Trace


@dataclass(frozen=True)
class ChatResult:
    text: str
    trace: Trace
    tool_calls: tuple[ToolCall, ...] = ()

    @property
    def route(self) -> dict[str, Any]:
        return self.trace.metadata()


def as_messages(prompt: str | list[Message], system: str | None = None) -> list[Message]:
    if isinstance(prompt, list):
        return prompt
    messages: list[Message] = [{"role": "system", "content": system}] if system else []
    return [*messages, {"role": "user", "content": prompt}]


class HybridLM:
    """`HybridLM().chat("...")` routes, answers, falls back and logs exactly as the gateway does."""

    def __init__(self, config: Config | str | Path | None = None, pipeline: Pipeline | None = None) -> None:
        self.config = config if isinstance(config, Config) else load_config(config)
        self.pipeline = pipeline or Pipeline.from_config(self.config)
        self._loop = asyncio.new_event_loop()

    def explain(self, prompt: str | list[Message], model: str = HYBRID) -> Trace:
        """The routing decision alone (with any planned fallback); no model is called, nothing logged."""
        messages = as_messages(prompt)
        trace = self.pipeline.start_trace(messages, model, stream=False)
        self.pipeline.plan(messages, model, trace)
        return trace

    async def achat(self, prompt: str | list[Message], model: str = HYBRID, max_tokens: int | None = None,
                    temperature: float | None = None, system: str | None = None,
                    tools: list[dict[str, Any]] | None = None, tool_choice: Any = None,
                    response_format: dict[str, Any] | None = None) -> ChatResult:
        """`tools`, `tool_choice` and `response_format` take OpenAI's shapes; calls come back in `tool_calls`."""
        messages = as_messages(prompt, system)
        trace = self.pipeline.start_trace(messages, model, stream=False)
        try:
            tool_request = parse_tools(tools, tool_choice)
            params = GenerationParams(max_tokens=max_tokens or self.config.server.default_max_tokens,
                                      temperature=temperature, tools=tool_request,
                                      response_format=parse_response_format(response_format))
            self.pipeline.plan(messages, model, trace, tools=tool_request)
            result = await self.pipeline.complete(messages, params, trace)
        except Exception as err:
            trace.status, trace.error = "error", str(err)
            self.pipeline.record(trace, "python")
            raise
        self.pipeline.record(trace, "python")
        return ChatResult(result.text, trace, result.tool_calls)

    def chat(self, prompt: str | list[Message], **kwargs: Any) -> ChatResult:
        return self._loop.run_until_complete(self.achat(prompt, **kwargs))

    def ask(self, question: str, **kwargs: Any) -> ChatResult:
        """A grounded answer from the ingested documents, with sources and its fact-check in `route['rag']`."""
        return self.chat(question, model=f"{HYBRID}/{RAG}", **kwargs)

    def close(self) -> None:
        self._loop.run_until_complete(self.pipeline.aclose())
        self._loop.close()

    def __enter__(self) -> HybridLM:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
