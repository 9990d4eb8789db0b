"""The dashboard's queries against a request log of a million rows (default), each timed, each plan read.

The log is filled with synthetic requests spread over 30 days (tiers, profiles, keys, statuses, intents,
sentiment, personal data, fact-checks and tool calls in realistic shares): rows written as the request
log writes them, roll-ups summed from those rows the way `RequestLog` back-fills an older log (the same
sums its writer adds one request at a time, `tests/unit/test_log_rollups.py`). The record path itself is
timed too: requests per second through `RequestLog.record`, rows and roll-ups in one transaction.

Then every query the dashboard's API makes (`hybridlm.log_queries`) is run for each window (1h, 24h, 7d,
30d) without and with filters: the median and worst of 5 runs, and whether SQLite's plan reads a table
without an index (a full scan). Target: every query under 200 ms at a million rows.

Run: python benchmarks/dashboard_queries.py [--rows 1000000] [--json]
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE.parent / "src")]

from benchmarks.machine import print_table  # noqa: E402
from hybridlm.log_queries import FILTERS, LogQueries, Window  # noqa: E402
from hybridlm.log_rollups import UPSERT, summed  # noqa: E402
from hybridlm.request_log import COLUMNS, INSERT_REQUEST, RequestLog  # noqa: E402
from hybridlm.server.dashboard.api_router import FACT_KINDS  # noqa: E402
from hybridlm.types import Decision, Trace, Usage  # noqa: E402

DAYS = 30
BATCH = 20_000
RUNS = 5
TARGET_MS = 200.0
LANES = [("faq", 0.20), ("flow", 0.05), ("slm", 0.45), ("llm", 0.25), ("fallback", 0.03), ("refused", 0.02)]
PROFILES = ["", "support", "rag", "agent"]
KEYS = ["", "key-ops", "key-web", "key-app", "key-batch"]
INTENTS = ["card_arrival", "refund", "change_pin", "lost_card", "exchange_rate", "top_up", "balance", "fees"]
SENTIMENT = ["negative", "neutral", "positive"]
ESCALATIONS = ["negative_sentiment", "out_of_scope", "low_intent_confidence", "heuristic", "forced"]
PII = ["PERSON", "EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "IBAN_CODE"]
ERRORS = ["model_not_found", "invalid_api_key", "rate_limited", "upstream_error"]


def synthetic_rows(n: int, now: float, seed: int = 0) -> Iterator[dict[str, Any]]:
    rng = random.Random(seed)
    lanes, weights = zip(*LANES, strict=True)
    for i in range(n):
        lane = rng.choices(lanes, weights)[0]
        tier = {"fallback": "slm", "refused": None}.get(lane, lane)
        remote = tier == "llm"
        prompt, completion = rng.randint(10, 400), rng.randint(5, 300)
        refused = lane == "refused"
        failed = refused or rng.random() < 0.01
        labels = {"intent": rng.choice(INTENTS), "sentiment": rng.choice(SENTIMENT)}
        if remote:
            labels["escalation"] = rng.choice(ESCALATIONS)
        yield {
            "request_id": f"chatcmpl-{i:024d}", "ts": now - rng.random() * DAYS * 86400, "endpoint": "/v1/chat/completions",
            "requested_model": "hybrid", "profile": rng.choice(PROFILES) or None, "stream": int(rng.random() < 0.3),
            "tier": tier, "model": tier, "router": "heuristic", "score": None if refused else rng.random(),
            "threshold": 0.5, "reason": "synthetic", "routed_tier": tier, "prompt_tokens": prompt,
            "completion_tokens": completion, "cost_usd": (prompt * 2.5 + completion * 10) / 1e6 if remote else 0.0,
            "baseline_cost_usd": (prompt * 2.5 + completion * 10) / 1e6, "latency_ms": rng.lognormvariate(5, 1.2),
            "status": "error" if failed else "ok", "http_status": 500 if failed else 200,
            "fallback": "llm_unavailable" if lane == "fallback" else None, "fallback_reason": None, "error": None,
            "error_code": rng.choice(ERRORS) if failed else None, "prompt_preview": "synthetic request",
            "prompt": None, "answer": None, "shadow_of": None,
            "grounding": json.dumps({"claims": ["supported", "contradicted"], "rounds": 1, "removed": 0})
            if rng.random() < 0.03 else None,
            "key_id": rng.choice(KEYS) or None,
            "redactions": json.dumps({rng.choice(PII): 1}) if remote and rng.random() < 0.2 else None, "steps": None,
            "signals": json.dumps({"features": {}, "labels": labels, "forced": False}), "calls": None,
            "first_token_ms": rng.lognormvariate(4, 1) if rng.random() < 0.3 else None,
            "tool_calls": 1 if rng.random() < 0.05 else 0, "served_locally": None if tier is None else int(not remote),
        }


def fill(path: Path, n: int, now: float) -> float:
    """Write `n` rows and their roll-ups in batches; seconds taken."""
    RequestLog(path).close()  # the schema
    started = time.perf_counter()
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA synchronous=OFF")
    rows = synthetic_rows(n, now)
    while batch := [row for _, row in zip(range(BATCH), rows)]:
        db.execute("BEGIN")
        db.executemany(INSERT_REQUEST, [tuple(row[c] for c in COLUMNS) for row in batch])
        db.executemany(UPSERT, summed(batch, now))
        db.execute("COMMIT")
    db.close()
    log = RequestLog(path)
    log.compact_rollups(now)  # what the gateway's hourly purge leaves
    log.read("ANALYZE")
    log.close()
    return time.perf_counter() - started


def record_rate(path: Path, n: int = 5000) -> float:
    """Requests per second through the real record path (a row and its roll-ups per request)."""
    log = RequestLog(path)
    traces = []
    for i in range(n):
        t = Trace(tier="slm" if i % 3 else "llm", model="m", usage=Usage(50, 20), cost_usd=0.0001, profile="support",
                  key_id="key-ops", redactions={"PERSON": 1} if i % 5 == 0 else {})
        t.decision = Decision(t.tier or "slm", 0.4, 0.5, "why", "heuristic",
                              labels={"intent": "refund", "sentiment": "neutral"})
        traces.append(t)
    started = time.perf_counter()
    for t in traces:
        log.record(t)
    log.flush()
    rate = n / (time.perf_counter() - started)
    log.close()
    return rate


def timed(call: Callable[[], Any]) -> tuple[float, float]:
    times = []
    for _ in range(RUNS):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), max(times)


def queries(q: LogQueries, w: Window) -> dict[str, Callable[[], Any]]:
    return {"totals": lambda: q.totals(w), "traffic": lambda: q.traffic(w), "cost": lambda: q.cost(w),
            "latency": lambda: q.latency(w), "first token": lambda: q.latency(w, "first_token"),
            "scores": lambda: q.scores(w), **{f"top {k}": (lambda k=k: q.top(k, w)) for k in FACT_KINDS},
            "recent requests": lambda: q.recent(w, 50)}


class PlanWatch:
    """Every statement the queries run, so each one's plan can be read afterwards."""

    def __init__(self, log: RequestLog) -> None:
        self.log, self.seen = log, set()
        self._read = log.read

        def read(sql: str, params: tuple[Any, ...] = ()) -> Any:
            self.seen.add((sql, params))
            return self._read(sql, params)

        log.read = read  # type: ignore[method-assign]

    def scans(self) -> list[str]:
        """The plans' steps that read a table without an index, each with the query's table."""
        found = set()
        for sql, params in self.seen:
            for step in self._read("EXPLAIN QUERY PLAN " + sql, params):
                detail = str(step[3])
                if detail.startswith("SCAN") and "USING" not in detail:
                    found.add(f"{detail} in: {' '.join(sql.split())[:160]}")
        return sorted(found)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    now = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "requests.db"
        fill_s = fill(path, args.rows, now)
        rate = record_rate(Path(tmp) / "record.db")
        log = RequestLog(path)
        sample = log.read("SELECT request_id FROM requests ORDER BY ts DESC LIMIT 1")[0][0]
        rollup_rows = int(log.read("SELECT COUNT(*) FROM request_rollup")[0][0])
        watch = PlanWatch(log)
        q = LogQueries(log)
        results = []
        for window in ("1h", "24h", "7d", "30d"):
            for filtered in (None, "tier", "key_id", "status"):
                value = {"tier": "llm", "key_id": "key-web", "status": "error"}.get(filtered or "")
                w = Window.last(window, now=now, **({filtered: value} if filtered else {}))
                for name, call in queries(q, w).items():
                    median, worst = timed(call)
                    results.append({"window": window, "filter": f"{filtered}={value}" if filtered else "-",
                                    "query": name, "median_ms": round(median, 2), "max_ms": round(worst, 2)})
        for name, call in {"options": q.options, "one request's trace": lambda: q.trace(sample)}.items():
            median, worst = timed(call)
            results.append({"window": "-", "filter": "-", "query": name, "median_ms": round(median, 2),
                            "max_ms": round(worst, 2)})
        scans = watch.scans()
        log.close()
        size_mb = path.stat().st_size / 1e6
    slowest = max(results, key=lambda r: r["max_ms"])
    overview: dict[str, float] = {}  # one GET /dashboard/api/overview runs every chart's query of a window
    for r in results:
        if r["window"] != "-" and r["query"] != "recent requests":
            key = f"{r['window']} / {r['filter']}"
            overview[key] = round(overview.get(key, 0.0) + r["median_ms"], 1)
    summary = {"rows": args.rows, "rollup_rows": rollup_rows, "db_mb": round(size_mb, 1), "fill_s": round(fill_s, 1),
               "record_per_s": round(rate), "queries": len(results), "slowest": slowest,
               "all_under_target": all(r["max_ms"] < TARGET_MS for r in results), "full_scans": scans,
               "overview_ms": overview,
               "filters": list(FILTERS)}
    if args.json:
        print(json.dumps({"results": results, **summary}))
        return
    worst_per_query: dict[str, dict[str, Any]] = {}
    for r in results:
        if r["max_ms"] > worst_per_query.get(r["query"], {"max_ms": -1})["max_ms"]:
            worst_per_query[r["query"]] = r
    print_table(["query", "worst window / filter", "median ms", "max ms"],
                [[name, f"{r['window']} / {r['filter']}", r["median_ms"], r["max_ms"]] for name, r in worst_per_query.items()],
                note=f"{args.rows:,} rows over {DAYS} days, {rollup_rows:,} roll-up rows, {size_mb:.0f} MB")
    worst_overview = max(overview, key=overview.__getitem__)
    print(f"all of one overview (every chart of a window): at most {overview[worst_overview]:.0f} ms ({worst_overview})")
    print(f"filled in {fill_s:.0f} s; record path: {rate:.0f} requests/s; {len(results)} queries timed; "
          f"all under {TARGET_MS:.0f} ms: {summary['all_under_target']}; full scans: {scans or 'none'}")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
