"""`hybridlm`: the command line. Each module adds its commands to the one app."""

from hybridlm.cli import factcheck, gateway, lab, rag, skills  # noqa: F401  (registers the commands)
from hybridlm.cli.common import app

__all__ = ["app"]
