"""What one part of a task did (a planning attempt, a step, the final answer): kept in the request's row of the
request log, shown by `hybridlm trace ID` and on the progress display of `hybridlm run`."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from hybridlm.ledger import Ledger

StepKind = Literal["plan", "step", "answer"]
StepStatus = Literal["running", "ok", "invalid", "failed", "skipped"]
Observer = Callable[["StepRecord"], None]
"""Told of each record as it starts and as it ends (the progress display of `hybridlm run`)."""


@dataclass
class StepRecord:
    id: str
    kind: StepKind
    worker: str | None = None
    depends_on: list[str] = field(default_factory=list)
    status: StepStatus = "running"
    tier: str | None = None
    model: str | None = None
    attempts: int = 0
    escalated: bool = False
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    latency_ms: float = 0.0
    inputs: Any = None
    output: Any = None
    error: str | None = None
    note: str | None = None  # why it was escalated, skipped or re-planned
    started: float = field(default_factory=time.time)

    def settle(self, ledger: Ledger) -> None:
        """Tokens, cost and the answering model from the part's own ledger; its time so far."""
        self.tier = ledger.tier or self.tier
        model, _ = ledger.served()
        self.model = model or self.model
        self.prompt_tokens = sum(s.usage.prompt_tokens for s in ledger.spends)
        self.completion_tokens = sum(s.usage.completion_tokens for s in ledger.spends)
        self.cost_usd = ledger.cost_usd
        self.latency_ms = round((time.time() - self.started) * 1000.0, 1)

    def as_dict(self, keep_text: bool) -> dict[str, Any]:
        """For the log: inputs and outputs as they were with `keep_text` (server.store_text), else their shape
        alone (every text replaced by its length; numbers, flags and names of fields kept)."""
        data = asdict(self)
        data.pop("started")
        if not keep_text:
            data["inputs"], data["output"] = shape(self.inputs), shape(self.output)
        return data


def shape(value: Any) -> Any:
    if isinstance(value, str):
        return f"<{len(value)} chars>"
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [shape(v) for v in value]
    return value
