"""The one interface every model backend implements."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from hybridlm.errors import HybridLMError
from hybridlm.types import Chunk, Completion, Message

if TYPE_CHECKING:
    from hybridlm.tools.protocol import ResponseFormat, ToolRequest
    from hybridlm.tools.relevance import ToolRelevance


def estimate_tokens(text: str) -> int:
    """A rough count for upstreams that report no usage; about four characters a token."""
    return max(1, len(text) // 4) if text else 0


def estimate_prompt_tokens(messages: list[Message]) -> int:
    return sum(estimate_tokens(str(m.get("content") or "")) for m in messages)


@dataclass(frozen=True)
class GenerationParams:
    """The sampling knobs a client may set; None means the backend's default."""

    max_tokens: int = 256
    temperature: float | None = None
    top_p: float | None = None
    stop: list[str] | None = None
    seed: int | None = None
    logprobs: bool = False  # ask for each produced token's log-probability (a cascade's self-check reads them)
    tools: ToolRequest | None = None
    response_format: ResponseFormat | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def as_openai(self) -> dict[str, Any]:
        body: dict[str, Any] = {"max_tokens": self.max_tokens}
        for key in ("temperature", "top_p", "stop", "seed"):
            value = getattr(self, key)
            if value is not None:
                body[key] = value
        if self.logprobs:  # top_logprobs 0: the chosen tokens only (llama.cpp's server needs it said)
            body["logprobs"], body["top_logprobs"] = True, 0
        if self.tools is not None:
            body.update(self.tools.raw)
        if self.response_format is not None:
            body["response_format"] = self.response_format.raw
        return body


class BackendError(HybridLMError):
    """A model call that failed; `kind` says how, so the caller can choose fallback or status.

    kinds: "unavailable" (cannot connect, or the upstream's circuit is open), "timeout",
    "upstream" (bad status or reply; `retry_after` from a 429 or 5xx that sent one),
    "auth" (the upstream rejected the credentials, HTTP 401/403: the deployment's configuration is
    wrong, so it is never retried and opens the circuit at once),
    "invalid_request" (the request itself is unacceptable, e.g. too long for the context),
    "busy" (a local model's queue is full; `retry_after` says when to try again, in seconds),
    "over_budget" (a budget of the tier's or the caller's key's cannot afford the call; `retry_after`: until
    the budget's day or month starts again),
    "redaction_failed" (personal data could not be checked, so nothing was sent to the remote tier).
    """

    def __init__(self, kind: str, message: str, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.status = status
        self.retry_after = retry_after

    @property
    def message(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True)
class BackendContext:
    """What a backend may need from the deployment beyond its own options."""

    data_dir: Path
    tool_relevance: ToolRelevance | None = None  # shared with the tool router: one encoder, one cache


@runtime_checkable
class ChatBackend(Protocol):
    """A chat model: one answer at once, or the same answer as a stream of chunks."""

    model_name: str

    async def complete(self, messages: list[Message], params: GenerationParams) -> Completion: ...

    def stream(self, messages: list[Message], params: GenerationParams) -> AsyncIterator[Chunk]:
        """Yield chunks; raise BackendError before the first chunk if the call cannot start."""
        ...

    async def aclose(self) -> None: ...
