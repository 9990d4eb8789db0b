"""What a profile decides a request needs; the executor carries it out. Plans are immutable values:
a newcomer reads one to know what will happen, and a test can assert on it without calling a model."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from hybridlm.models.base import GenerationParams
from hybridlm.routing.base import Score
from hybridlm.types import Completion, Decision, Message

if TYPE_CHECKING:
    from hybridlm.rag.grounded import Grounding

Sample = Callable[[GenerationParams], Awaitable[Completion]]  # one more answer of the drafting tier
CheckDraft = Callable[[Completion, Sample], Awaitable[Score]]  # how likely the draft is wrong, in [0, 1]


@dataclass(frozen=True)
class Canned:
    """An answer given without any model: a FAQ entry, a flow step, "the documents do not cover it"."""

    decision: Decision
    text: str
    grounding: Grounding | None = None  # hybrid/rag: what was searched and graded before deciding there is nothing


@dataclass(frozen=True)
class Call:
    """Ask the decided tier. `messages` replaces the request's (a brief or sources added); `wants_llm`: the
    LLM was wanted, so with none configured the local tier answers as a fallback."""

    decision: Decision
    messages: list[Message] | None = None
    wants_llm: bool = False


@dataclass(frozen=True)
class Draft:
    """The local tier answers first; `check` scores its draft and at `threshold` or above the LLM answers instead."""

    decision: Decision
    check: CheckDraft
    threshold: float
    kind: str  # "tools" or "cascade": named in the decision's reason
    logprobs: bool = False  # the check reads the draft's token log-probabilities


@dataclass(frozen=True, kw_only=True)
class Grounded(Call):
    """A call whose messages carry numbered sources; with `check`, the answer is fact-checked against them and
    flagged claims go back to the tier that answered, for correction."""

    grounding: Grounding
    check: bool = True


@dataclass(frozen=True)
class Orchestrated:
    """A task (`hybridlm run`, `hybrid/agent`): planned into worker steps, the steps run, the answer written from
    their results. `decision.tier` answers; `local_only`: a rule keeps every part of it on this machine."""

    decision: Decision
    task: str
    documents: tuple[tuple[str, str], ...] = ()  # (name, text)
    local_only: bool = False


Plan = Canned | Call | Draft | Orchestrated  # Grounded is a Call
