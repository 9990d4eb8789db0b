"""One request as every door hands it in: the gateway's endpoints, the CLI, the Python API and the demos."""

from __future__ import annotations

from dataclasses import dataclass, field

from hybridlm.models.base import GenerationParams
from hybridlm.types import Message


@dataclass(frozen=True)
class Request:
    messages: list[Message]
    model: str
    params: GenerationParams = field(default_factory=GenerationParams)
    endpoint: str = "/v1/chat/completions"
    conversation: str | None = None  # support flows keep their state per conversation
    profile: str | None = None  # an endpoint's own profile (e.g. summaries), instead of the one `model` names
