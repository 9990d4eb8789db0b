"""GET /dashboard: one static page (its charts drawn by a vendored Chart.js) over a JSON API of the
request log's roll-ups, for a time window and filters; one request's whole trace; the router lab's
latest evaluations; the upstreams' breakers as they are now. No build step: the files ship as they are.

Behind the admin key when keys are on (the front door checks every /dashboard path); a browser is
asked for it by HTTP Basic (any user name, the key as password), so the page needs no login code.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, Response

from hybridlm.evaluation.lab_results import latest_results
from hybridlm.failures import APIError
from hybridlm.log_queries import WINDOWS_S, LogQueries, Window
from hybridlm.pipeline import Pipeline
from hybridlm.server.health import tier_states
from hybridlm.server.responses import json_response

router = APIRouter()
STATIC = Path(__file__).with_name("static")
ASSETS = {"chart.umd.min.js": "text/javascript", "dashboard.js": "text/javascript", "dashboard.css": "text/css"}
FACT_KINDS = ("intent", "escalation", "sentiment", "pii", "error", "fallback", "tools", "factcheck")
MAX_RECENT = 500


def _queries(request: Request) -> LogQueries:
    pipeline: Pipeline = request.app.state.pipeline
    return LogQueries(pipeline.log)


def _window(window: str, tier: str | None, profile: str | None, key: str | None, status: str | None) -> Window:
    try:
        return Window.last(window, tier=tier, profile=profile, key_id=key, status=status)
    except ValueError as err:
        raise APIError(400, str(err), code="invalid_request", param="window") from None


WindowParam = Query("24h", description=f"One of {', '.join(WINDOWS_S)}.")


@router.get("/dashboard")
async def page() -> Response:
    return FileResponse(STATIC / "index.html", media_type="text/html", headers={"cache-control": "no-store"})


@router.get("/dashboard/static/{name}")
async def asset(name: str) -> Response:
    if name not in ASSETS:
        raise APIError(404, f"no dashboard file '{name[:100]}'", code="not_found")
    return FileResponse(STATIC / name, media_type=ASSETS[name])


@router.get("/dashboard/api/overview")
async def overview(request: Request, window: str = WindowParam, tier: str | None = None, profile: str | None = None,
                   key: str | None = None, status: str | None = None) -> Response:
    """Everything the charts draw for the window and filters, in one answer."""
    pipeline: Pipeline = request.app.state.pipeline
    w = _window(window, tier, profile, key, status)
    q = _queries(request)

    def read() -> dict[str, Any]:
        return {"window": {"name": window, "since": w.since, "until": w.until, "span_s": w.span},
                "totals": q.totals(w), "traffic": q.traffic(w), "cost": q.cost(w),
                "latency": q.latency(w), "first_token": q.latency(w, "first_token"), "scores": q.scores(w),
                "threshold": pipeline.config.router.threshold, "router": pipeline.router.name,
                "facts": {kind: q.top(kind, w) for kind in FACT_KINDS}, "options": q.options()}

    body = await asyncio.to_thread(read)
    body["upstreams"] = tier_states(pipeline)
    return json_response(body)


@router.get("/dashboard/api/requests")
async def recent(request: Request, window: str = WindowParam, tier: str | None = None, profile: str | None = None,
                 key: str | None = None, status: str | None = None,
                 limit: int = Query(50, ge=1, le=MAX_RECENT)) -> Response:
    w = _window(window, tier, profile, key, status)
    rows = await asyncio.to_thread(_queries(request).recent, w, limit)
    return json_response({"object": "list", "data": rows})


@router.get("/dashboard/api/requests/{request_id}")
async def trace(request: Request, request_id: str) -> Response:
    row = await asyncio.to_thread(_queries(request).trace, request_id)
    if row is None:
        raise APIError(404, f"no request '{request_id[:100]}' in the log", code="not_found", param="request_id")
    return json_response(row)


@router.get("/dashboard/api/lab")
async def lab(request: Request) -> Response:
    """The latest `eval router --report` and `eval tools --report` results, with the thresholds configured."""
    pipeline: Pipeline = request.app.state.pipeline
    config = pipeline.config
    return json_response({"results": latest_results(config.resolved_data_dir()),
                          "threshold": config.router.threshold, "tools_threshold": config.router.tools.threshold})
