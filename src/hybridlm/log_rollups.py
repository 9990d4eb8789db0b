"""Roll-ups of the request log: what the dashboard charts, kept as counts per time bucket so that no
chart ever reads the rows themselves (a million rows sum in milliseconds this way, not seconds).

Each request adds one to a handful of facts (its lane, latency bucket, intent, PII types...) in three
bucket sizes: a minute, an hour and a day (UTC), under its tier, profile, key and status, so every
filter the dashboard offers is a lookup on the roll-up's primary key. The facts are written in the same
transaction as the request's row: the two never disagree.
"""

from __future__ import annotations

import bisect
import json
import math
from collections.abc import Iterable, Iterator, Mapping
from functools import cache
from typing import Any, NamedTuple

SPANS_S = (60, 3600, 86400)
# How long each bucket size is kept: as long as a window drawn at it reaches back (`span_for`), and a day
# more; day buckets go with the rows (the retention period).
KEPT_S = {60: 6 * 3600 + 86400, 3600: 14 * 86400 + 86400}
# Upper bounds of the latency buckets (ms), as a Prometheus histogram's: a percentile is read as the
# bound of the bucket it falls in.
LATENCY_BOUNDS_MS = (10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, math.inf)
SCORE_STEP = 0.05
NONE = ""  # a missing dimension (no key, no profile); NULLs would never match in the primary key

_INSERT = "INSERT INTO request_rollup (span, bucket, tier, profile, key_id, status, kind, value, n, total) VALUES "
_ROW = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
_ADD = """ ON CONFLICT (span, kind, bucket, tier, profile, key_id, status, value)
            DO UPDATE SET n = n + excluded.n, total = total + excluded.total"""
UPSERT = _INSERT + _ROW + _ADD


@cache
def upsert_rows(count: int) -> str:
    """One statement adding `count` roll-up rows (flat parameters): a request's dozen rows in one step into
    SQLite rather than a dozen."""
    return _INSERT + ", ".join([_ROW] * count) + _ADD


class Fact(NamedTuple):
    """One thing a request counts for: `n` of it, and `total` of a quantity (latency, cost, tokens). A tuple:
    every request makes a dozen of them."""

    kind: str
    value: str = NONE
    n: int = 1
    total: float = 0.0


def lane(row: Mapping[str, Any]) -> str:
    """Where the answer came from, as the traffic chart stacks it: a fallback is its own lane, and a request
    refused before any tier was chosen is `refused`."""
    return "fallback" if row.get("fallback") else (row.get("tier") or "refused")


def latency_bucket(ms: float) -> str:
    bound = LATENCY_BOUNDS_MS[bisect.bisect_left(LATENCY_BOUNDS_MS, ms)]
    return "inf" if bound == math.inf else f"{bound:g}"


def score_bucket(score: float) -> str:
    return f"{math.floor(score / SCORE_STEP) * SCORE_STEP:.2f}"


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def facts(row: Mapping[str, Any]) -> Iterator[Fact]:
    """What one request-log row counts for (the row as stored: JSON columns as text)."""
    latency = float(row.get("latency_ms") or 0.0)
    yield Fact("requests", lane(row), 1, latency)
    yield Fact("latency", latency_bucket(latency))
    if row.get("first_token_ms") is not None:
        yield Fact("first_token", latency_bucket(float(row["first_token_ms"])))
    yield Fact("cost", total=float(row.get("cost_usd") or 0.0))
    yield Fact("baseline", total=float(row.get("baseline_cost_usd") or 0.0))
    yield Fact("tokens", "prompt", total=int(row.get("prompt_tokens") or 0))
    yield Fact("tokens", "completion", total=int(row.get("completion_tokens") or 0))
    if row.get("fallback"):
        yield Fact("fallback", str(row["fallback"]))
    if row.get("status") != "ok":
        yield Fact("error", str(row.get("error_code") or row.get("http_status") or "unknown"))
    signals = _json(row.get("signals")) or {}
    if row.get("score") is not None and not signals.get("forced"):  # a tier asked for by name was not routed
        yield Fact("score", f"{row.get('routed_tier') or NONE}:{score_bucket(float(row['score']))}")
    labels = signals.get("labels") or {}
    for kind in ("intent", "sentiment", "escalation"):
        if labels.get(kind):
            yield Fact(kind, str(labels[kind]))
    for entity, count in (_json(row.get("redactions")) or {}).items():
        yield Fact("pii", entity, int(count))
    if tool_calls := int(row.get("tool_calls") or 0):
        yield Fact("tools", "local" if row.get("served_locally") else "escalated", tool_calls)
    grounding = _json(row.get("grounding"))
    if grounding:
        claims = grounding.get("claims") or []
        yield Fact("factcheck", "answers")
        yield Fact("factcheck", "claims", len(claims))
        yield Fact("factcheck", "flagged", sum(label != "supported" for label in claims))
        yield Fact("factcheck", "corrections", int(grounding.get("rounds") or 0))
        yield Fact("factcheck", "removed", int(grounding.get("removed") or 0))


def upserts(row: Mapping[str, Any], now: float | None = None) -> Iterator[tuple[Any, ...]]:
    """The roll-up rows to add for one request-log row, in every bucket size (given `now`, only those still
    kept then: `KEPT_S`)."""
    ts = float(row["ts"])
    where = (row.get("tier") or "(none)", row.get("profile") or NONE, row.get("key_id") or NONE, row["status"])
    found = [f for f in facts(row) if f.n or f.total]
    for span in SPANS_S:
        bucket = int(ts // span) * span
        if now is not None and span in KEPT_S and bucket < now - KEPT_S[span]:
            continue
        for f in found:
            yield (span, bucket, *where, f.kind, f.value, f.n, f.total)


def summed(rows: Iterable[Mapping[str, Any]], now: float | None = None) -> list[tuple[Any, ...]]:
    """The roll-ups of many rows, added up first: what `upserts` of each would leave, in fewer writes (given
    `now`, without the fine buckets no window reads any more, which bounds the memory for an old log)."""
    sums: dict[tuple[Any, ...], list[float]] = {}
    for row in rows:
        for values in upserts(row, now):
            acc = sums.setdefault(values[:8], [0, 0.0])
            acc[0] += values[8]
            acc[1] += values[9]
    return [(*key, int(n), total) for key, (n, total) in sums.items()]


def span_for(window_s: float) -> int:
    """The bucket size a chart of `window_s` seconds is drawn at: about 24 to 1440 points."""
    return 60 if window_s <= 6 * 3600 else 3600 if window_s <= 14 * 86400 else 86400
