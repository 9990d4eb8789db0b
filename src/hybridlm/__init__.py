"""hybridlm: small and large language models working together."""

__version__ = "0.1.0"

from hybridlm.api import ChatResult, HybridLM  # noqa: E402
from hybridlm.config import Config, ConfigError, load_config  # noqa: E402
from hybridlm.types import Decision, Trace, Usage  # noqa: E402

__all__ = ["ChatResult", "Config", "ConfigError", "Decision", "HybridLM", "Trace", "Usage", "__version__", "load_config"]
