"""The Python API: the same pipeline as the gateway, called in-process."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hybridlm.config import Config
from hybridlm.failures import APIError
from hybridlm.models.base import GenerationParams
from hybridlm.pipeline import Pipeline, RequestFailed
from hybridlm.plugins import load_checked_config
from hybridlm.request import Request
from hybridlm.server.results import rejected
from hybridlm.targets import AGENT, HYBRID, RAG
from hybridlm.tools.protocol import ToolRequestError, parse_response_format, parse_tools
from hybridlm.types import Message, ToolCall, Trace

if TYPE_CHECKING:
    from hybridlm.agents.step_record import Observer

ENDPOINT = "python"
TASK_MAX_TOKENS = 512


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
        self.config = config if isinstance(config, Config) else load_checked_config(config)
        self.pipeline = pipeline or Pipeline.from_config(self.config)
        self._loop = asyncio.new_event_loop()
        # CPU-bound planning runs in a bounded pool, as in the gateway; closing the loop shuts it down
        self._loop.set_default_executor(ThreadPoolExecutor(self.config.server.workers, thread_name_prefix="hybridlm-cpu"))

    def explain(self, prompt: str | list[Message], model: str = HYBRID) -> Trace:
        """The routing decision alone (with any planned fallback); no model is called, nothing logged."""
        return self._loop.run_until_complete(self.pipeline.explain(Request(as_messages(prompt), model)))

    async def achat(self, prompt: str | list[Message], model: str = HYBRID, max_tokens: int | None = None,
                    temperature: float | None = None, system: str | None = None,
                    tools: list[dict[str, Any]] | None = None, tool_choice: Any = None,
                    response_format: dict[str, Any] | None = None) -> ChatResult:
        """`tools`, `tool_choice` and `response_format` take OpenAI's shapes; calls come back in `tool_calls`.

        Raises RequestFailed (its `error` has the status and code the gateway would send); the request is
        recorded either way."""
        messages = as_messages(prompt, system)
        try:
            params = GenerationParams(max_tokens=max_tokens or self.config.server.default_max_tokens,
                                      temperature=temperature, tools=parse_tools(tools, tool_choice),
                                      response_format=parse_response_format(response_format))
        except ToolRequestError as err:
            refusal = APIError(400, str(err), code="invalid_value", param=err.param)
            trace = self.pipeline.start_trace(Request(messages, model), stream=False)
            rejected(self.pipeline, refusal, ENDPOINT, trace)
            raise RequestFailed(refusal, trace) from None
        answer = await self.pipeline.run(Request(messages, model, params, ENDPOINT))
        return ChatResult(answer.completion.text, answer.trace, answer.completion.tool_calls)

    def chat(self, prompt: str | list[Message], **kwargs: Any) -> ChatResult:
        return self._loop.run_until_complete(self.achat(prompt, **kwargs))

    def ask(self, question: str, **kwargs: Any) -> ChatResult:
        """A grounded answer from the ingested documents, with sources and its fact-check in `route['rag']`."""
        return self.chat(question, model=f"{HYBRID}/{RAG}", **kwargs)

    async def arun(self, task: str, files: Sequence[str | Path] = (), documents: Mapping[str, str] | None = None,
                   max_tokens: int = TASK_MAX_TOKENS, observer: Observer | None = None) -> ChatResult:
        """A task over documents (`files` read as text, Markdown, HTML or PDF, or `documents` by name): the LLM
        plans it, local workers do the steps, the LLM writes the answer; every part is in `trace.steps`.

        Raises DocumentError for a file that cannot be read, RequestFailed as `achat` does."""
        from hybridlm.rag.readers import DocumentError, read_text

        for f in files:
            if not Path(f).is_file():
                raise DocumentError(f"{f}: no such file")
        named = {Path(f).name: await asyncio.to_thread(read_text, Path(f)) for f in files}
        named.update(documents or {})
        request = Request(as_messages(task), f"{HYBRID}/{AGENT}", GenerationParams(max_tokens=max_tokens), ENDPOINT,
                          documents=tuple(named.items()), observer=observer)
        answer = await self.pipeline.run(request)
        return ChatResult(answer.completion.text, answer.trace)

    def run(self, task: str, **kwargs: Any) -> ChatResult:
        return self._loop.run_until_complete(self.arun(task, **kwargs))

    def close(self) -> None:
        self._loop.run_until_complete(self.pipeline.aclose())
        self._loop.close()

    def __enter__(self) -> HybridLM:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
