"""The dashboard's roll-ups and queries against the rows they sum, the back-fill of an older log, and the
export."""

import csv
import io
import json
import sqlite3
import time
from contextlib import closing
from pathlib import Path

import pytest

from hybridlm.log_export import parse_since, rows_since, write_export
from hybridlm.log_queries import LogQueries, Window
from hybridlm.log_rollups import Fact, facts, latency_bucket, score_bucket, span_for
from hybridlm.request_log import MIGRATIONS, RequestLog
from hybridlm.sqlite_db import statements
from hybridlm.types import Decision, Trace, Usage

NOW = 1_796_300_000.0


def trace(tier: str | None, started: float, cost: float = 0.0, status: str = "ok", latency: float = 100.0,
          **fields: object) -> Trace:
    t = Trace(tier=tier, model=tier, usage=Usage(10, 5), cost_usd=cost, baseline_cost_usd=0.003, status=status,
              profile=fields.pop("profile", None), key_id=fields.pop("key_id", None))  # type: ignore[arg-type]
    t.started = started
    t.decision = fields.pop("decision") if "decision" in fields else Decision(tier or "slm", 0.42, 0.5, "why",
                                                                               "heuristic")  # type: ignore[assignment]
    for name, value in fields.items():
        setattr(t, name, value)
    t.finish = lambda: None  # type: ignore[method-assign]  # keep the latency given
    t.latency_ms = latency
    return t


def test_a_row_counts_for_its_lane_latency_and_what_the_skills_found() -> None:
    row = {"ts": NOW, "tier": "slm", "status": "ok", "latency_ms": 120.0, "cost_usd": 0.0, "baseline_cost_usd": 0.002,
           "prompt_tokens": 10, "completion_tokens": 4, "fallback": "llm_unavailable", "score": 0.73,
           "routed_tier": "llm", "tool_calls": 2, "served_locally": 1, "redactions": json.dumps({"PERSON": 2}),
           "signals": json.dumps({"labels": {"intent": "refund", "sentiment": "negative",
                                             "escalation": "negative_sentiment"}, "forced": False}),
           "grounding": json.dumps({"claims": ["supported", "contradicted"], "rounds": 1, "removed": 1})}
    found = set(facts(row))
    assert {Fact("requests", "fallback", 1, 120.0), Fact("latency", "250"), Fact("fallback", "llm_unavailable"),
            Fact("score", "llm:0.70"), Fact("intent", "refund"), Fact("sentiment", "negative"),
            Fact("escalation", "negative_sentiment"), Fact("pii", "PERSON", 2), Fact("tools", "local", 2),
            Fact("factcheck", "claims", 2), Fact("factcheck", "flagged", 1), Fact("factcheck", "corrections", 1)} <= found
    forced = {**row, "signals": json.dumps({"forced": True}), "fallback": None, "status": "error",
              "error_code": "upstream_error", "served_locally": 0}
    kinds = {(f.kind, f.value) for f in facts(forced)}
    assert not any(kind == "score" for kind, _ in kinds)  # a tier asked for by name was not routed
    assert ("error", "upstream_error") in kinds and ("tools", "escalated") in kinds and ("requests", "slm") in kinds


def test_buckets_and_spans() -> None:
    assert (latency_bucket(9.9), latency_bucket(10), latency_bucket(10.1), latency_bucket(1e9)) == ("10", "10", "25", "inf")
    assert (score_bucket(0.0), score_bucket(0.049), score_bucket(0.5), score_bucket(0.999)) == ("0.00", "0.00", "0.50", "0.95")
    assert (span_for(3600), span_for(86400), span_for(30 * 86400)) == (60, 3600, 86400)


def test_the_queries_equal_the_rows_for_any_window_and_filter(tmp_path: Path) -> None:
    log = RequestLog(tmp_path / "log.db")
    recorded = [
        trace("slm", NOW - 30, latency=40.0), trace("slm", NOW - 90, key_id="k1", latency=300.0),
        trace("llm", NOW - 4000, cost=0.002, key_id="k1", latency=900.0, first_token_ms=200.0),
        trace("slm", NOW - 5000, fallback="llm_unavailable", profile="support"),
        trace(None, NOW - 10, status="error", error_code="model_not_found", decision=None),
        trace("llm", NOW - 3 * 86400, cost=0.004),
    ]
    for t in recorded:
        log.record(t)
    q = LogQueries(log)
    hour = Window.last("1h", now=NOW)
    assert hour.since == (NOW - 3600) // 60 * 60
    assert q.totals(hour)["requests"] == 3 and q.totals(hour)["by_lane"] == {"slm": 2, "refused": 1}
    day = Window.last("24h", now=NOW)
    totals = q.totals(day)
    assert (totals["requests"], totals["errors"], totals["fallbacks"]) == (5, 1, 1)
    assert totals["cost_usd"] == pytest.approx(0.002) and totals["saved_usd"] == pytest.approx(5 * 0.003 - 0.002)
    assert q.totals(Window.last("7d", now=NOW))["cost_usd"] == pytest.approx(0.006)
    keyed = Window.last("24h", now=NOW, key_id="k1")
    assert q.totals(keyed)["by_lane"] == {"slm": 1, "llm": 1}
    assert [r["tier"] for r in q.recent(keyed)] == ["slm", "llm"]
    assert q.totals(Window.last("24h", now=NOW, profile="support"))["by_lane"] == {"fallback": 1}
    keyless = Window.last("24h", now=NOW, key_id="(none)")  # no key: NULL in a row, '' in a roll-up
    assert q.totals(keyless)["requests"] == len(q.recent(keyless)) == 3
    assert q.totals(Window.last("24h", now=NOW, status="error"))["requests"] == 1
    latency = q.latency(day)
    assert latency["slm"] == {"n": 3, "p50": 100.0, "p90": 250.0 * 2, "p99": 500.0}
    assert q.latency(day, "first_token") == {"llm": {"n": 1, "p50": 250.0, "p90": 250.0, "p99": 250.0}}
    assert q.scores(day) == {"slm": {"0.40": 3}, "llm": {"0.40": 1}}  # the error, undecided, has no score
    traffic = q.traffic(day)
    assert sum(traffic["lanes"]["slm"]) == 2 and len(traffic["buckets"]) == 25
    cost = q.cost(day)
    assert cost["cumulative_saved_usd"][-1] == pytest.approx(totals["saved_usd"])
    assert q.top("error", day) == [{"value": "model_not_found", "n": 1}]
    assert q.options()["key_id"] == ["(none)", "k1"]
    one = q.trace(recorded[2].request_id)
    assert one is not None and one["signals"]["forced"] is False and one["first_token_ms"] == 200.0
    assert q.trace("chatcmpl-nope") is None
    log.close()


def test_a_log_from_before_rollups_gets_them_once(tmp_path: Path) -> None:
    path, now = tmp_path / "old.db", time.time()  # the back-fill keeps minute buckets for recent rows only
    with closing(sqlite3.connect(path, isolation_level=None)) as db:
        db.execute("CREATE TABLE _migrations (name TEXT PRIMARY KEY, applied REAL NOT NULL)")
        for name, script in MIGRATIONS[:-1]:
            for statement in statements(script):
                db.execute(statement)
            db.execute("INSERT INTO _migrations VALUES (?, 0)", (name,))
        for i, tier in enumerate(("slm", "llm", "slm")):
            db.execute("INSERT INTO requests (request_id, ts, endpoint, tier, status, http_status, latency_ms, cost_usd) "
                       "VALUES (?, ?, '/v1/chat/completions', ?, 'ok', 200, 50, ?)", (f"r{i}", now - 60 * i, tier, 0.001 * i))
        db.execute("INSERT INTO requests (request_id, ts, endpoint, tier, status, http_status) "
                   "VALUES ('old', ?, '/v1/chat/completions', 'slm', 'ok', 200)", (now - 20 * 86400,))
    for _ in range(2):  # opened twice: summed once
        log = RequestLog(path)
        q = LogQueries(log)
        hour, month = q.totals(Window.last("1h", now=now)), q.totals(Window.last("30d", now=now))
        fine = log.read("SELECT COUNT(*) FROM request_rollup WHERE span = 60 AND bucket < ?", (now - 86400,))[0][0]
        log.close()
        assert hour["by_lane"] == {"slm": 2, "llm": 1} and hour["cost_usd"] == pytest.approx(0.003)
        assert month["by_lane"] == {"slm": 3, "llm": 1} and fine == 0  # the old row: in day buckets alone


def test_the_export_streams_every_column(tmp_path: Path) -> None:
    log = RequestLog(tmp_path / "log.db")
    log.record(trace("slm", NOW - 60, redactions={"EMAIL_ADDRESS": 1}))
    log.record(trace("llm", NOW, cost=0.002))
    log.close()
    jsonl = io.StringIO()
    assert write_export(rows_since(tmp_path / "log.db", 0), "jsonl", jsonl) == 2
    first, second = (json.loads(line) for line in jsonl.getvalue().splitlines())
    assert first["tier"] == "slm" and first["redactions"] == {"EMAIL_ADDRESS": 1} and "id" not in first
    assert second["cost_usd"] == 0.002
    table = io.StringIO()
    assert write_export(rows_since(tmp_path / "log.db", NOW - 1), "csv", table) == 1
    rows = list(csv.DictReader(io.StringIO(table.getvalue())))
    assert len(rows) == 1 and rows[0]["tier"] == "llm" and "signals" in rows[0]


def test_since_reads_relative_times_and_dates() -> None:
    assert parse_since("30m", now=NOW) == NOW - 1800 and parse_since("7d", now=NOW) == NOW - 7 * 86400
    assert parse_since("2026-12-01T00:00+00:00") == 1_796_083_200
    with pytest.raises(ValueError, match="--since 'yesterday'"):
        parse_since("yesterday")
