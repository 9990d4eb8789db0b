"""GET /healthz: open to anyone who can reach the gateway (no key), so what it shows of each tier is
scrubbed of absolute paths (a model file, a missing file in a note): names only, nothing of the
machine's layout."""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from hybridlm import __version__
from hybridlm.pipeline import Pipeline
from hybridlm.server.responses import json_response

router = APIRouter()
# The folders of an absolute POSIX or Windows path, not a URL's path (which follows a host name).
ABSOLUTE_DIRS = re.compile(r"(?<![\w:/\\.])(?:[A-Za-z]:)?[/\\](?:[^\s/\\'\"]+[/\\])+")


def without_paths(value: Any) -> Any:
    """`value` with every absolute path cut to its last part, in strings at any depth."""
    if isinstance(value, str):
        return ABSOLUTE_DIRS.sub("", value)
    if isinstance(value, dict):
        return {key: without_paths(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [without_paths(item) for item in value]
    return value


def tier_states(pipeline: Pipeline) -> dict[str, Any]:
    """Each tier's backend, model and state now (an upstream's circuit breaker), without paths."""
    tiers = {name: {"backend": pipeline.config.tiers[name].backend, "model": backend.model_name,
                    **(backend.describe() if hasattr(backend, "describe") else {})}
             for name, backend in pipeline.backends.items()}
    return dict(without_paths(tiers))


@router.get("/healthz")
async def healthz(request: Request) -> Response:
    pipeline: Pipeline = request.app.state.pipeline
    tiers = tier_states(pipeline)
    degraded = any(tier.get("status") == "degraded" for tier in tiers.values())  # e.g. an upstream's circuit open
    return json_response(without_paths({"status": "degraded" if degraded else "ok", "version": __version__,
                                        "tiers": tiers, "router": pipeline.router.name,
                                        "remote_tier": pipeline.remote_tier}))
