"""What the backends did for one request: each paid call, the tier that answered, any fallback taken.

The wrappers of one request's backends write to its ledger; the trace is filled from it once,
at the end, so no control state rides on the trace while the request runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hybridlm.types import Usage

if TYPE_CHECKING:
    from hybridlm.agents.step_record import StepRecord
    from hybridlm.privacy.placeholders import Redaction
    from hybridlm.shrinking import Shrunk


@dataclass(frozen=True)
class Spend:
    """One call a tier made: what it used and cost, how long it took and, streamed, when its first token came."""

    tier: str
    model: str
    usage: Usage
    cost_usd: float
    latency_ms: float = 0.0
    first_token_ms: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"tier": self.tier, "model": self.model, "prompt_tokens": self.usage.prompt_tokens,
                "completion_tokens": self.usage.completion_tokens, "cost_usd": self.cost_usd,
                "latency_ms": round(self.latency_ms, 2),
                "first_token_ms": None if self.first_token_ms is None else round(self.first_token_ms, 2)}


@dataclass
class Ledger:
    spends: list[Spend] = field(default_factory=list)
    tier: str | None = None  # the tier last asked: the one answering, or the one that failed
    fallback: str | None = None
    fallback_reason: str | None = None
    redaction: Redaction | None = None  # the request's placeholders, shared by all its calls to remote tiers
    steps: list[StepRecord] = field(default_factory=list)  # a task's planning, steps and answer, in order
    baseline: Usage | None = None  # a task: what sending it all to the LLM would have used
    shrunk: list[Shrunk] = field(default_factory=list)  # long context cut before a remote tier read it
    held_tokens: int = 0  # the estimate the caller's token rate limit holds until the request is recorded

    def add(self, spend: Spend) -> None:
        self.spends.append(spend)

    def note_fallback(self, kind: str, reason: str) -> None:
        self.fallback, self.fallback_reason = kind, reason

    @property
    def cost_usd(self) -> float:
        return sum(s.cost_usd for s in self.spends)

    def served(self) -> tuple[str | None, Usage]:
        """The model that answered and what the answering tier's calls used (a draft's, if escalated, is not
        the answer's usage, though it is in the cost). A task's usage is all of its calls'."""
        mine = [s for s in self.spends if s.tier == self.tier]
        counted = self.spends if self.steps else mine
        return (mine[-1].model if mine else None), sum((s.usage for s in counted), Usage())
