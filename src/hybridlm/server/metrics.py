"""GET /metrics: the gateway's Prometheus metrics (`telemetry.metrics`). An admin path: with API keys
configured the front door asks for an admin key, as it does for /dashboard."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST

from hybridlm.pipeline import Pipeline

router = APIRouter()


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    pipeline: Pipeline = request.app.state.pipeline
    return Response(pipeline.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)
