"""hybridlm: small and large language models working together.

The public names load on first use, so `import hybridlm` (and so any `hybridlm.x` submodule, or
the command line's start) costs the standard library alone, whatever the extras installed.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from hybridlm.api import ChatResult, HybridLM
    from hybridlm.config import Config, ConfigError, load_config
    from hybridlm.plugins import load_checked_config
    from hybridlm.types import Decision, Trace, Usage

_HOMES = {
    "ChatResult": "hybridlm.api",
    "HybridLM": "hybridlm.api",
    "Config": "hybridlm.config",
    "ConfigError": "hybridlm.config",
    "load_config": "hybridlm.config",
    "load_checked_config": "hybridlm.plugins",
    "Decision": "hybridlm.types",
    "Trace": "hybridlm.types",
    "Usage": "hybridlm.types",
}

__all__ = ["ChatResult", "Config", "ConfigError", "Decision", "HybridLM", "Trace", "Usage", "__version__",
           "load_checked_config", "load_config"]


def __getattr__(name: str) -> Any:
    """A public name, imported from the module it lives in the first time it is asked for."""
    if name not in _HOMES:
        raise AttributeError(f"module 'hybridlm' has no attribute '{name}'")
    value = getattr(import_module(_HOMES[name]), name)
    globals()[name] = value
    return value
