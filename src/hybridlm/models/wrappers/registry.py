"""Wrappers a tier can name in its `wrappers:` list, outermost last: the one place a new one is registered
(a wrapper is one module with a `BackendWrapper` subclass, plus one line here).

The wrappers every request gets (accounting, budget, fallback, shadow sampling) are applied by the
executor per request; those listed here wrap a tier's backend once, when the deployment is built.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from hybridlm.config import ConfigError
from hybridlm.models.base import ChatBackend

WrapperFactory = Callable[[ChatBackend, str], ChatBackend]  # (the backend, its tier's name) -> the wrapped backend

WRAPPERS: dict[str, WrapperFactory] = {}


def wrap(backend: ChatBackend, tier: str, names: Sequence[str]) -> ChatBackend:
    for name in names:
        if name not in WRAPPERS:
            known = ", ".join(sorted(WRAPPERS)) or "none registered"
            raise ConfigError(f"tiers.{tier}.wrappers: unknown wrapper '{name}' (known: {known})")
        backend = WRAPPERS[name](backend, tier)
    return backend
