"""Backends by name: the one place a new kind of model is registered."""

from __future__ import annotations

from typing import Any, Protocol

from pydantic import BaseModel, ValidationError

from hybridlm.config import validation_problems
from hybridlm.models.base import BackendContext, ChatBackend
from hybridlm.models.local_gguf import LocalGGUFBackend
from hybridlm.models.remote_tier import RemoteTier


class BackendFactory(Protocol):
    Options: type[BaseModel]

    def __call__(self, options: Any, context: BackendContext) -> ChatBackend: ...


BACKENDS: dict[str, BackendFactory] = {
    "local": LocalGGUFBackend,
    "openai": RemoteTier(),
}


def on_device(name: str) -> bool:
    """Whether a backend kind runs on this machine (personal data sent to it stays here)."""
    return bool(getattr(BACKENDS.get(name), "on_device", False))


def _factory(name: str) -> BackendFactory:
    try:
        return BACKENDS[name]
    except KeyError:
        raise ValueError(f"unknown backend '{name}'; known: {', '.join(sorted(BACKENDS))}") from None


def validate_options(name: str, options: dict[str, Any]) -> BaseModel:
    """Check a tier's backend-specific fields; a ValueError names each wrong field."""
    factory = _factory(name)
    try:
        return factory.Options.model_validate(options)
    except ValidationError as err:
        details = "; ".join(f"{where}: {what}" if where else what for where, what in validation_problems(err, ""))
        raise ValueError(f"backend '{name}': {details}") from None


def build_backend(name: str, options: dict[str, Any], context: BackendContext) -> ChatBackend:
    return _factory(name)(validate_options(name, options), context)
