"""What the dashboard asks of the request log, for a time window and filters: charts from the roll-ups
(`log_rollups`), the recent requests and one request's whole trace from the rows, each query on an index.

A window starts at the start of its first bucket, so a chart's sums are exactly those of the rows
logged from `since` on; every answer says which `since` it used.
"""

from __future__ import annotations

import json
import math
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from hybridlm.log_rollups import LATENCY_BOUNDS_MS, NONE, span_for
from hybridlm.request_log import RequestLog

WINDOWS_S = {"1h": 3600, "6h": 6 * 3600, "24h": 86400, "7d": 7 * 86400, "30d": 30 * 86400}
PERCENTILES = (50, 90, 99)
RECENT_COLUMNS = ("request_id", "ts", "endpoint", "profile", "tier", "model", "score", "threshold", "reason",
                  "status", "http_status", "error_code", "fallback", "fallback_reason", "prompt_tokens",
                  "completion_tokens", "cost_usd", "latency_ms", "key_id", "prompt_preview")
JSON_COLUMNS = ("grounding", "redactions", "steps", "signals", "calls")
FILTERS = ("tier", "profile", "key_id", "status")


@dataclass(frozen=True)
class Window:
    """A time window and the filters on it; `span` is the bucket size its charts are drawn at."""

    since: float
    until: float
    span: int
    tier: str | None = None
    profile: str | None = None
    key_id: str | None = None
    status: str | None = None

    @classmethod
    def last(cls, window: str, now: float | None = None, **filters: str | None) -> Window:
        """The last `window` ("1h", "24h", "7d"...) up to `now`, begun at a bucket's start."""
        if window not in WINDOWS_S:
            raise ValueError(f"unknown window {window!r}; one of {', '.join(WINDOWS_S)}")
        now = time.time() if now is None else now
        span = span_for(WINDOWS_S[window])
        since = math.floor((now - WINDOWS_S[window]) / span) * span
        return cls(float(since), now, span, **{k: v or None for k, v in filters.items()})

    def where(self, ts: str, rows: bool = False) -> tuple[str, tuple[Any, ...]]:
        """The SQL condition of this window on the roll-ups (time column `bucket`) or, with `rows`, on the
        request rows (`ts`). A filter of "(none)" matches what has no value: NULL in a row; in a roll-up
        `(none)` for the tier and '' for the rest (`log_rollups.upserts`)."""
        clauses, params = [f"{ts} >= ?", f"{ts} <= ?"], [self.since, self.until]
        for name in FILTERS:
            value = getattr(self, name)
            if value is None:
                continue
            if value == "(none)" and rows:
                clauses.append(f"{name} IS NULL")
                continue
            clauses.append(f"{name} = ?")
            params.append(NONE if value == "(none)" and name != "tier" else value)
        return " AND ".join(clauses), tuple(params)


class LogQueries:
    """The dashboard's questions; each one a single indexed query."""

    def __init__(self, log: RequestLog) -> None:
        self.log = log

    def _facts(self, kinds: str | tuple[str, ...], w: Window, by: str = "value") -> list[tuple[Any, ...]]:
        """(*group, n, total) of one or more kinds of fact in the window, grouped `by` roll-up columns."""
        kinds = (kinds,) if isinstance(kinds, str) else kinds
        where, params = w.where("bucket")
        return [tuple(r) for r in self.log.read(
            f"SELECT {by}, SUM(n), SUM(total) FROM request_rollup WHERE span = ? AND kind IN "
            f"({', '.join('?' for _ in kinds)}) AND {where} GROUP BY {by} ORDER BY {by}", (w.span, *kinds, *params))]

    def buckets(self, w: Window) -> list[int]:
        """The start of every bucket in the window, the x axis of the charts over time."""
        return list(range(int(w.since), int(w.until) + 1, w.span))

    def totals(self, w: Window) -> dict[str, Any]:
        lanes = {lane: int(n) for lane, n, _ in self._facts("requests", w)}
        sums = {kind: float(total) for kind, _, total in self._facts(("cost", "baseline"), w, by="kind")}
        tokens = {value: int(total) for value, _, total in self._facts("tokens", w)}
        return {"requests": sum(lanes.values()), "errors": sum(int(n) for _, n, _ in self._facts("error", w)),
                "fallbacks": lanes.get("fallback", 0), "cost_usd": sums.get("cost", 0.0),
                "baseline_cost_usd": sums.get("baseline", 0.0),
                "saved_usd": sums.get("baseline", 0.0) - sums.get("cost", 0.0),
                "prompt_tokens": tokens.get("prompt", 0), "completion_tokens": tokens.get("completion", 0),
                "by_lane": lanes}

    def traffic(self, w: Window) -> dict[str, Any]:
        """Requests per bucket, one series per lane (tier, or fallback)."""
        x = self.buckets(w)
        index = {b: i for i, b in enumerate(x)}
        lanes: dict[str, list[int]] = {}
        for bucket, lane, n, _ in self._facts("requests", w, by="bucket, value"):
            lanes.setdefault(lane, [0] * len(x))[index[int(bucket)]] += int(n)
        return {"buckets": x, "lanes": lanes}

    def cost(self, w: Window) -> dict[str, Any]:
        """Cost and the all-LLM baseline per bucket, and the saving summed up to each bucket."""
        x = self.buckets(w)
        index = {b: i for i, b in enumerate(x)}
        series = {"cost": [0.0] * len(x), "baseline": [0.0] * len(x)}
        for kind, bucket, _, total in self._facts(("cost", "baseline"), w, by="kind, bucket"):
            series[kind][index[int(bucket)]] += float(total)
        saved, running = [], 0.0
        for cost, baseline in zip(series["cost"], series["baseline"], strict=True):
            running += baseline - cost
            saved.append(running)
        return {"buckets": x, "cost_usd": series["cost"], "baseline_cost_usd": series["baseline"],
                "cumulative_saved_usd": saved}

    def latency(self, w: Window, kind: str = "latency") -> dict[str, dict[str, Any]]:
        """Per tier: how many, and the 50th/90th/99th percentile as the bound of the bucket each falls in
        (ms; null past the last finite bound). `kind` is "latency" (whole request) or "first_token"."""
        counts: dict[str, dict[float, int]] = defaultdict(dict)
        for tier, bound, n, _ in self._facts(kind, w, by="tier, value"):
            counts[tier][math.inf if bound == "inf" else float(bound)] = int(n)
        out = {}
        for tier, per_bound in counts.items():
            total = sum(per_bound.values())
            out[tier] = {"n": total, **{f"p{p}": _percentile(per_bound, total, p) for p in PERCENTILES}}
        return out

    def scores(self, w: Window) -> dict[str, dict[str, int]]:
        """The router's scores as a histogram, per tier it routed to: {routed tier: {bucket start: n}}."""
        out: dict[str, dict[str, int]] = defaultdict(dict)
        for value, n, _ in self._facts("score", w):
            routed, _, bucket = str(value).rpartition(":")
            out[routed or "(none)"][bucket] = int(n)
        return dict(out)

    def top(self, kind: str, w: Window, limit: int = 10) -> list[dict[str, Any]]:
        """The most frequent values of a fact (intent, escalation, sentiment, pii, error, fallback, tools,
        factcheck), most first."""
        ranked = sorted(self._facts(kind, w), key=lambda r: (-int(r[1]), str(r[0])))
        return [{"value": value, "n": int(n)} for value, n, _ in ranked[:limit]]

    def options(self) -> dict[str, list[str]]:
        """Every tier, profile, key and status the log has seen: the filters' choices."""
        rows = self.log.read("SELECT DISTINCT tier, profile, key_id, status FROM request_rollup "
                             "WHERE span = 86400 AND kind = 'requests'")
        return {name: sorted({r[i] or "(none)" for r in rows}) for i, name in enumerate(FILTERS)}

    def recent(self, w: Window, limit: int = 50) -> list[dict[str, Any]]:
        """The latest requests in the window, newest first."""
        where, params = w.where("ts", rows=True)
        return [dict(r) for r in self.log.read(
            f"SELECT {', '.join(RECENT_COLUMNS)} FROM requests WHERE {where} ORDER BY ts DESC LIMIT ?",
            (*params, limit))]

    def trace(self, request_id: str) -> dict[str, Any] | None:
        """One request's row, its JSON columns read (signals, calls, checks, redactions, plan steps), and the
        requests that shadowed it."""
        row = self.log.get(request_id)
        if row is None:
            return None
        row = with_json_read(row)
        row["shadows"] = [dict(r) for r in self.log.read(
            "SELECT request_id, tier, model, status, cost_usd, latency_ms FROM requests WHERE shadow_of = ?",
            (request_id,))]
        return row


def with_json_read(row: dict[str, Any]) -> dict[str, Any]:
    """A request row with its JSON columns (signals, calls, checks, redactions, plan steps) as objects."""
    for column in JSON_COLUMNS:
        if row.get(column):
            row[column] = json.loads(row[column])
    return row


def _percentile(per_bound: dict[float, int], total: int, p: int) -> float | None:
    wanted, seen = p / 100 * total, 0
    for bound in LATENCY_BOUNDS_MS:
        seen += per_bound.get(bound, 0)
        if seen >= wanted:
            return None if bound == math.inf else bound
    return None
