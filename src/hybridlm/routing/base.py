"""A router returns one number; a threshold decides."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from hybridlm.types import Message


@dataclass(frozen=True)
class Score:
    """How much a query needs the large model, in [0, 1], with the parts that made it up."""

    value: float
    contributions: dict[str, float] = field(default_factory=dict)
    evidence: dict[str, list[str]] = field(default_factory=dict)

    def explain(self, limit: int = 4) -> str:
        """The largest contributions, largest first, e.g. `analytical ('compare') +0.25`."""
        parts = sorted(self.contributions.items(), key=lambda kv: -abs(kv[1]))[:limit]
        out = []
        for name, weight in parts:
            if weight == 0:
                continue
            seen = self.evidence.get(name)
            hint = f" ({', '.join(repr(s) for s in seen[:3])})" if seen else ""
            out.append(f"{name}{hint} {weight:+.2f}")
        return ", ".join(out) or "no complexity signals"


@runtime_checkable
class Router(Protocol):
    name: str

    def score(self, messages: list[Message]) -> Score: ...


class DraftsFirst:
    """Base of the cascades: before a draft exists, the small model always starts."""

    def score(self, messages: list[Message]) -> Score:
        return Score(0.0, {"cascade_draft_first": 0.0})


def message_text(message: Message) -> str:
    """The text of a message whether `content` is a string or a list of typed parts."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


def last_user_text(messages: list[Message]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            return message_text(message)
    return message_text(messages[-1]) if messages else ""
