"""The CLI as a newcomer runs it: offline, on the embedded defaults, no API key."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from tests.integration.commands import hybridlm, last_json


def test_chat_answers_offline_from_the_embedded_slm_and_explains_the_route() -> None:
    proc = hybridlm("chat", "What are your opening hours?", "--max-tokens", "16")
    assert proc.returncode == 0, proc.stderr
    assert "qwen2.5-coder-0.5b" in proc.stdout
    assert "threshold 0.50" in proc.stdout.replace("\n", " ")
    assert "routine_question" in proc.stdout


def test_chat_json_then_logs_and_stats_see_it(isolated_env: Path) -> None:
    proc = hybridlm("chat", "Write a poem about a lost parcel", "--max-tokens", "8", "--json")
    assert proc.returncode == 0, proc.stderr
    result = last_json(proc)
    meta = result["hybridlm"]
    assert result["answer"]
    assert (meta["tier"], meta["routed_tier"], meta["fallback"]) == ("slm", "slm", "llm_unavailable")

    logs = last_json(hybridlm("logs", "--json"))
    assert [r["request_id"] for r in logs] == [meta["request_id"]]
    assert logs[0]["fallback_reason"].startswith("no LLM tier is configured")

    stats = last_json(hybridlm("stats", "--json"))
    assert stats["requests"] == 1 and stats["fallbacks"] == 1
    assert stats["by_tier"][0]["tier"] == "slm"
    assert (isolated_env / "requests.db").is_file()

    exported = hybridlm("logs", "--export", "jsonl", "--since", "1h")
    assert exported.returncode == 0 and "exported 1 requests" in exported.stderr
    row = json.loads(exported.stdout)
    assert row["request_id"] == meta["request_id"] and row["signals"]["labels"] == {}
    table = isolated_env / "log.csv"
    assert hybridlm("logs", "--export", "csv", "--out", str(table)).returncode == 0
    with table.open(newline="") as file:
        assert next(csv.DictReader(file))["fallback"] == "llm_unavailable"
    assert hybridlm("logs", "--export", "csv", "--since", "2099-01-01").stdout == ""
    wrong = hybridlm("logs", "--export", "xml")
    assert wrong.returncode == 2 and "csv or jsonl" in wrong.stderr


def test_route_explains_without_calling_a_model() -> None:
    proc = hybridlm("route", "--json", "Analyze and compare three pricing strategies step by step.")
    assert proc.returncode == 0, proc.stderr
    decision = last_json(proc)
    assert decision["score"] >= decision["threshold"]
    assert decision["features"]["analytical"] > 0
    assert decision["model"] is None  # nothing answered


def test_unknown_model_and_bad_config_are_clear_errors(tmp_path: Path) -> None:
    unknown = hybridlm("route", "hi", "--model", "hybrid/nope")
    assert unknown.returncode == 1 and "unknown profile 'nope'" in unknown.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("tiers: {slm: {backend: warp}}")
    proc = hybridlm("chat", "hi", "--config", str(bad))
    assert proc.returncode == 2
    assert "unknown backend 'warp'" in proc.stderr and "Traceback" not in proc.stderr


def test_help_lists_every_command() -> None:
    out = hybridlm("--help").stdout
    for command in ("chat", "route", "explain", "serve", "logs", "stats", "config"):
        assert command in out
