"""`hybridlm demo assistant` as a user runs it: offline, on the default local model, with a report and a log."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from hybridlm.demo.assistant import load_assistant_data
from tests.integration.commands import hybridlm, last_json

REQUESTS = 6


def test_demo_assistant_offline_answers_the_first_requests_with_calls(tmp_path: Path) -> None:
    out = tmp_path / "assistant-demo"
    result = last_json(hybridlm("demo", "assistant", "--limit", str(REQUESTS), "--json", "--out", str(out),
                                timeout=300))

    assert result["requests"] == REQUESTS and result["llm"] is None
    assert result["decided_locally"] + result["escalated"] == REQUESTS
    assert result["escalated_fell_back"] == result["escalated"]  # no LLM: every escalation is answered here
    assert result["requests_call"] + result["requests_words"] + result["requests_cloud"] == REQUESTS
    assert result["errors"] == 0
    assert 0 < result["latency_p50_ms"] <= result["latency_p90_ms"]

    expected = load_assistant_data().requests[:REQUESTS]
    rows = result["rows"]
    assert [row["text"] for row in rows] == [r.text for r in expected]
    for row in rows:
        route = row["route"]
        assert route["tier"] == "slm" and route["router"] == "tools" and route["reason"].startswith("tools:")
        assert route["request_id"].startswith("chatcmpl-") and route["latency_ms"] > 0
        assert row["escalated"] == (route["fallback"] == "llm_unavailable")
    right_calls = [row for row in rows if row["right"] and row["calls"] and row["tier"] == "slm"]
    assert right_calls, rows
    assert right_calls[0]["calls"][0]["name"] in {r.expect.call for r in expected}
    assert sum(row["right"] for row in rows) / REQUESTS == pytest.approx(result["accuracy"], abs=1e-4)

    report = (out / "report.md").read_text(encoding="utf-8")
    assert "| total | value |" in report and expected[0].text in report
    with closing(sqlite3.connect(out / "requests.db")) as db:
        assert db.execute("SELECT COUNT(*) FROM requests").fetchone()[0] == REQUESTS
