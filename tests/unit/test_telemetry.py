import sqlite3
from pathlib import Path

from hybridlm.telemetry import MIGRATIONS, RequestLog
from hybridlm.types import Decision, Trace, Usage


def trace(tier: str, cost: float, baseline: float, status: str = "ok", fallback: str | None = None) -> Trace:
    t = Trace(tier=tier, model=f"{tier}-model", usage=Usage(10, 5), cost_usd=cost, baseline_cost_usd=baseline,
              status=status, fallback=fallback)  # type: ignore[arg-type]
    t.decision = Decision(tier, 0.3, 0.5, "why", "heuristic")
    return t


def test_migrations_run_once_and_are_tracked(tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    RequestLog(path).close()
    RequestLog(path).close()
    names = [r[0] for r in sqlite3.connect(path).execute("SELECT name FROM _migrations")]
    assert names == [name for name, _ in MIGRATIONS]


def test_totals_and_savings(tmp_path: Path) -> None:
    log = RequestLog(tmp_path / "log.db")
    log.record(trace("slm", 0.0, 0.002))
    log.record(trace("slm", 0.0, 0.002, fallback="llm_unavailable"))
    log.record(trace("llm", 0.002, 0.002))
    log.record(trace("slm", 0.0, 0.0, status="error"))
    totals = log.totals()
    assert totals.requests == 4
    assert totals.errors == 1
    assert totals.fallbacks == 1
    assert totals.cost_usd == 0.002
    assert round(totals.saved_usd, 6) == 0.004
    assert {t.tier: t.requests for t in totals.by_tier} == {"slm": 3, "llm": 1}
    assert log.spend_since("llm", 0) == 0.002


def test_rows_keep_decision_and_error(tmp_path: Path) -> None:
    log = RequestLog(tmp_path / "log.db")
    t = trace("slm", 0.0, 0.0, status="error")
    t.http_status, t.error, t.error_code = 400, "bad json", "invalid_json"
    log.record(t, "/v1/chat/completions")
    row = log.get(t.request_id)
    assert row is not None
    assert (row["http_status"], row["error_code"], row["reason"], row["threshold"]) == (400, "invalid_json", "why", 0.5)
    assert log.recent(1)[0]["request_id"] == t.request_id
