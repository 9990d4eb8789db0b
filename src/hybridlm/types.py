"""Plain data that flows through one request: messages in, a decision, a completion, a trace out."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

Message = dict[str, Any]
"""One OpenAI chat message (`role`, `content`, ...); kept as a dict so unknown fields survive."""


def text_of(content: Any) -> str:
    """A message's content as text: OpenAI allows a string, None, or a list of typed parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, dict) and p.get("type") == "text")
    return str(content)


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(self.prompt_tokens + other.prompt_tokens, self.completion_tokens + other.completion_tokens)


@dataclass(frozen=True)
class ToolCall:
    """One function call a model made, as OpenAI returns it: `arguments` is JSON text."""

    id: str
    name: str
    arguments: str

    def as_openai(self) -> dict[str, Any]:
        return {"id": self.id, "type": "function", "function": {"name": self.name, "arguments": self.arguments}}


@dataclass(frozen=True)
class ToolCallDelta:
    """A piece of a streamed call: the first piece of call `index` names it, later ones add argument text."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""

    def as_openai(self) -> dict[str, Any]:
        delta: dict[str, Any] = {"index": self.index}
        function: dict[str, Any] = {"arguments": self.arguments}
        if self.id is not None:
            delta["id"], delta["type"] = self.id, "function"
        if self.name is not None:
            function["name"] = self.name
        delta["function"] = function
        return delta


@dataclass(frozen=True)
class Completion:
    """What a backend returns for a non-streaming call: text, function calls, or both."""

    text: str
    model: str
    usage: Usage
    finish_reason: str = "stop"
    # the model's log-probability of each token it wrote, if asked; under a grammar, of the JSON's values (or the
    # calls') only, not of what the grammar forced around them
    token_logprobs: tuple[float, ...] | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    call_probability: float | None = None  # a local model offered tools: how likely it was to start a call

    @property
    def mean_logprob(self) -> float | None:
        return sum(self.token_logprobs) / len(self.token_logprobs) if self.token_logprobs else None


@dataclass(frozen=True)
class Chunk:
    """One piece of a streamed answer; the last one may carry usage."""

    text: str = ""
    finish_reason: str | None = None
    usage: Usage | None = None
    tool_calls: tuple[ToolCallDelta, ...] = ()


@dataclass(frozen=True)
class Decision:
    """The router's verdict: which tier, and why, in numbers a person can check."""

    tier: str
    score: float | None
    threshold: float | None
    reason: str
    router: str
    features: dict[str, float] = field(default_factory=dict)
    forced: bool = False
    draft: bool = False  # the local tier answers first and a verifier keeps its answer or escalates
    labels: dict[str, str] = field(default_factory=dict)  # what the skills named, e.g. {"intent": "refund"}

    def as_dict(self) -> dict[str, Any]:
        return {
            "tier": self.tier,
            "score": self.score,
            "threshold": self.threshold,
            "reason": self.reason,
            "router": self.router,
            "features": self.features,
            "forced": self.forced,
        }


Status = Literal["ok", "error"]


class Evidence(Protocol):
    """What an answer was grounded on, and how its check went (e.g. hybrid/rag's sources and fact-check)."""

    def as_dict(self) -> dict[str, Any]:
        """For the response: everything, texts of the sources excepted."""
        ...

    def summary(self) -> dict[str, Any]:
        """For the request log: no text at all."""
        ...


@dataclass
class Trace:
    """Everything that happened to one request; the log, the CLI and the response read it."""

    request_id: str = field(default_factory=lambda: f"chatcmpl-{secrets.token_hex(12)}")
    started: float = field(default_factory=time.time)
    requested_model: str | None = None
    profile: str | None = None
    stream: bool = False
    decision: Decision | None = None
    tier: str | None = None
    model: str | None = None
    usage: Usage = field(default_factory=Usage)
    cost_usd: float = 0.0
    baseline_cost_usd: float = 0.0
    latency_ms: float = 0.0
    status: Status = "ok"
    http_status: int = 200
    fallback: str | None = None
    fallback_reason: str | None = None
    error: str | None = None
    error_code: str | None = None
    prompt_preview: str = ""
    prompt_text: str | None = None
    answer_text: str | None = None
    shadow_of: str | None = None
    grounding: Evidence | None = None  # what the answer was grounded on and how its check went
    key_id: str | None = None  # the API key the request came with
    redactions: dict[str, int] = field(default_factory=dict)  # personal data replaced before a remote tier, by type
    steps: list[dict[str, Any]] = field(default_factory=list)  # a task's planning, steps and answer (StepRecord.as_dict)
    context_tokens: dict[str, int] = field(default_factory=dict)  # long context shrunk: tokens before and kept
    calls: list[dict[str, Any]] = field(default_factory=list)  # each call a tier made (Spend.as_dict)
    first_token_ms: float | None = None  # streamed: from arrival to the first chunk the client could be sent
    tool_calls: int = 0  # functions the answer called
    served_locally: bool | None = None  # the answering tier runs on this machine (a canned answer does)

    def finish(self) -> None:
        self.latency_ms = (time.time() - self.started) * 1000.0

    def metadata(self) -> dict[str, Any]:
        """The `hybridlm` object attached to every response."""
        d = self.decision
        return {
            "request_id": self.request_id,
            "tier": self.tier,
            "model": self.model,
            "router": d.router if d else None,
            "score": d.score if d else None,
            "threshold": d.threshold if d else None,
            "reason": d.reason if d else None,
            "routed_tier": d.tier if d else None,
            "fallback": self.fallback,
            "fallback_reason": self.fallback_reason,
            "cost_usd": round(self.cost_usd, 10),
            "baseline_cost_usd": round(self.baseline_cost_usd, 10),
            "latency_ms": round(self.latency_ms, 2),
            **({"rag": self.grounding.as_dict()} if self.grounding is not None else {}),
            **({"steps": self.steps} if self.steps else {}),
            **({"context": self.context_tokens} if self.context_tokens else {}),
        }
