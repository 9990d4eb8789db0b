"""GET /dashboard: one self-refreshing HTML page over the request log: traffic per tier, cost and
savings, fallbacks and errors, what the fact-check did to grounded answers, and the latest requests
with their route and reason."""

from __future__ import annotations

import datetime as dt
import html
import time

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from hybridlm.pipeline import Pipeline

router = APIRouter()
STYLE = ("body{font-family:system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:1em 0}"
         "td,th{border:1px solid #ccc;padding:4px 8px;font-size:13px;text-align:left}th{background:#f3f3f3}"
         ".err{color:#b00}.fb{color:#a60}.card{display:inline-block;margin:0 2em 1em 0}.big{font-size:1.6em}")


def _cards(pipeline: Pipeline, since: float) -> str:
    totals = pipeline.log.totals(since)
    cards = [("requests (24 h)", f"{totals.requests}"), ("cost", f"${totals.cost_usd:.4f}"),
             ("all-LLM cost", f"${totals.baseline_cost_usd:.4f}"), ("saved", f"${totals.saved_usd:.4f}"),
             ("fallbacks", f"{totals.fallbacks}"), ("errors", f"{totals.errors}")]
    grounded = pipeline.log.grounding_totals(since)
    if grounded.answers:
        cards += [("grounded answers", f"{grounded.answers}"), ("claims checked", f"{grounded.claims}"),
                  ("claims flagged", f"{grounded.flagged}"),
                  ("correction rounds", f"{grounded.rounds}"), ("claims removed", f"{grounded.removed}")]
    out = "".join(f"<div class=card><div>{html.escape(k)}</div><div class=big>{html.escape(v)}</div></div>"
                  for k, v in cards)
    rows = "".join(f"<tr><td>{html.escape(t.tier)}</td><td>{t.requests}</td>"
                   f"<td>{t.requests / max(1, totals.requests):.0%}</td><td>{t.prompt_tokens}</td>"
                   f"<td>{t.completion_tokens}</td><td>${t.cost_usd:.5f}</td></tr>" for t in totals.by_tier)
    return (out + "<table><tr><th>tier</th><th>requests</th><th>share</th><th>tokens in</th><th>tokens out</th>"
            f"<th>cost</th></tr>{rows}</table>")


def _recent(pipeline: Pipeline, limit: int) -> str:
    rows = []
    for r in pipeline.log.recent(limit):
        status = (f"<span class=err>{r['http_status']} {html.escape(r['error_code'] or '')}</span>"
                  if r["status"] != "ok" else "ok")
        if r["fallback"]:
            status += f" <span class=fb>fallback: {html.escape(r['fallback_reason'] or '')}</span>"
        score = "" if r["score"] is None else f"{r['score']:.2f}"
        rows.append(
            f"<tr><td>{dt.datetime.fromtimestamp(r['ts']).strftime('%H:%M:%S')}</td>"
            f"<td>{html.escape(r['endpoint'])}</td><td>{html.escape(r['tier'] or '')}</td><td>{score}</td>"
            f"<td>{html.escape((r['reason'] or '')[:140])}</td><td>{status}</td>"
            f"<td>{r['prompt_tokens']}/{r['completion_tokens']}</td><td>${r['cost_usd']:.5f}</td>"
            f"<td>{r['latency_ms']:.0f}</td><td>{html.escape((r['prompt_preview'] or '')[:80])}</td></tr>")
    return ("<table><tr><th>time</th><th>endpoint</th><th>tier</th><th>score</th><th>reason</th><th>status</th>"
            "<th>tokens</th><th>cost</th><th>ms</th><th>prompt</th></tr>" + "".join(rows) + "</table>")


@router.get("/dashboard", response_class=HTMLResponse)
async def dashboard(request: Request, limit: int = 50) -> HTMLResponse:
    pipeline: Pipeline = request.app.state.pipeline
    body = (f"<h1>hybridlm</h1><p>tiers: {html.escape(', '.join(pipeline.backends))}; router: "
            f"{html.escape(pipeline.router.name)}</p>"
            f"{_cards(pipeline, time.time() - 86400)}<h2>latest requests</h2>{_recent(pipeline, min(limit, 500))}")
    return HTMLResponse(f"<!doctype html><meta charset=utf-8><meta http-equiv=refresh content=5>"
                        f"<title>hybridlm dashboard</title><style>{STYLE}</style><body>{body}</body>")
