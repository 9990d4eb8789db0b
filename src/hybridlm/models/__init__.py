"""Model backends: the embedded local SLM and any OpenAI-compatible HTTP endpoint."""

from hybridlm.models.base import BackendError, ChatBackend, GenerationParams
from hybridlm.models.registry import BACKENDS, build_backend

__all__ = ["BACKENDS", "BackendError", "ChatBackend", "GenerationParams", "build_backend"]
