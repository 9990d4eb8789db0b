"""The OpenAI-compatible HTTP gateway."""

from hybridlm.server.app import build_app

__all__ = ["build_app"]
