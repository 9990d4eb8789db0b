"""One request as every door hands it in: the gateway's endpoints, the CLI, the Python API and the demos."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from hybridlm.models.base import GenerationParams
from hybridlm.types import Message

if TYPE_CHECKING:
    from hybridlm.agents.step_record import Observer


@dataclass(frozen=True)
class Caller:
    """Who sent the request: the API key it came with and what that key may do (None: no limit)."""

    key_id: str
    name: str
    admin: bool = False
    tenant: str | None = None
    profiles: tuple[str, ...] | None = None  # model names / profiles it may ask for
    tiers: tuple[str, ...] | None = None  # tiers it may reach, routed or forced
    budget_usd_per_day: float | None = None
    budget_usd_per_month: float | None = None
    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None


@dataclass(frozen=True)
class Request:
    messages: list[Message]
    model: str
    params: GenerationParams = field(default_factory=GenerationParams)
    endpoint: str = "/v1/chat/completions"
    conversation: str | None = None  # support flows keep their state per conversation
    profile: str | None = None  # an endpoint's own profile (e.g. summaries), instead of the one `model` names
    caller: Caller | None = None  # None when the gateway runs without keys, and for the CLI and the Python API
    documents: tuple[tuple[str, str], ...] = ()  # a task's documents (name, text), for `hybrid/agent`
    observer: Observer | None = None  # told of each part of a task as it starts and ends (`hybridlm run`)
