"""The one interface of a local skill: read a conversation, return signals. Policies read signals and
never call a skill's own methods, so a skill can be swapped, added or moved off the event loop alone."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from hybridlm.types import Message


@dataclass(frozen=True)
class Signals:
    """What one skill found: numbers and labels for explanations and the log, and its own typed finding."""

    skill: str
    values: dict[str, Any] = field(default_factory=dict)
    finding: Any = None  # e.g. a Sentiment, an IntentPrediction, a FAQMatch; None when it found nothing


@runtime_checkable
class Skill(Protocol):
    name: str

    def analyse(self, messages: list[Message]) -> Signals: ...
