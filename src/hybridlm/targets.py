"""What a request's `model` field asks for: `hybrid` (route), `hybrid/<profile>` (route with that
profile's threshold), the built-in profiles `hybrid/support`, `hybrid/rag` and `hybrid/agent`, or one tier by its
name or its model's name (forced, no routing)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from hybridlm.config import Config
from hybridlm.errors import HybridLMError
from hybridlm.models.base import ChatBackend

HYBRID = "hybrid"
SUPPORT = "support"
RAG = "rag"
AGENT = "agent"
BUILT_IN_PROFILES = (SUPPORT, RAG, AGENT)


class UnknownModel(HybridLMError):
    """The request names a model that is neither `hybrid[/profile]` nor a tier."""


@dataclass(frozen=True)
class Target:
    """A forced tier, or routing with a threshold (and a profile, if one was named)."""

    forced_tier: str | None
    profile: str | None
    threshold: float


def model_names(config: Config, backends: Mapping[str, ChatBackend]) -> list[str]:
    """Everything a client may put in `model`."""
    return [HYBRID, *(f"{HYBRID}/{p}" for p in (*config.profiles, *BUILT_IN_PROFILES)), *backends]


def resolve(model: str, config: Config, backends: Mapping[str, ChatBackend]) -> Target:
    threshold = config.router.threshold
    if model == HYBRID:
        return Target(None, None, threshold)
    if model.startswith(HYBRID + "/"):
        profile = model.split("/", 1)[1]
        if profile in BUILT_IN_PROFILES:
            return Target(None, profile, threshold)
        if profile not in config.profiles:
            known = ", ".join(sorted(config.profiles)) or "none configured"
            raise UnknownModel(f"The model '{model}' does not exist: unknown profile '{profile}' (known: {known})")
        return Target(None, profile, config.profiles[profile].threshold)
    if model in backends:
        return Target(model, None, threshold)
    for name, backend in backends.items():
        if backend.model_name == model:
            return Target(name, None, threshold)
    raise UnknownModel(f"The model '{model}' does not exist; use one of: {', '.join(model_names(config, backends))}")
