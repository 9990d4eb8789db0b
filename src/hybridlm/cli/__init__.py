"""`hybridlm`: the command line. Each module adds its commands to the one app."""

from hybridlm.cli import gateway, agents, keys, lab, rag, factcheck, skills, privacy, tools, models  # noqa: F401, I001  (registers the commands, in help order)
from hybridlm.cli.common import app

__all__ = ["app"]
