"""The request log: one SQLite row per request (failed and rejected ones too), and the sums.

Schema changes go through named, append-only migrations recorded in `_migrations`.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hybridlm.types import Trace

LOG_FILE_NAME = "requests.db"

MIGRATIONS: list[tuple[str, str]] = [
    (
        "001_requests",
        """
        CREATE TABLE requests (
            id INTEGER PRIMARY KEY,
            request_id TEXT NOT NULL UNIQUE,
            ts REAL NOT NULL,
            endpoint TEXT NOT NULL,
            requested_model TEXT,
            profile TEXT,
            stream INTEGER NOT NULL DEFAULT 0,
            tier TEXT,
            model TEXT,
            router TEXT,
            score REAL,
            threshold REAL,
            reason TEXT,
            routed_tier TEXT,
            prompt_tokens INTEGER NOT NULL DEFAULT 0,
            completion_tokens INTEGER NOT NULL DEFAULT 0,
            cost_usd REAL NOT NULL DEFAULT 0,
            baseline_cost_usd REAL NOT NULL DEFAULT 0,
            latency_ms REAL NOT NULL DEFAULT 0,
            status TEXT NOT NULL,
            http_status INTEGER NOT NULL,
            fallback TEXT,
            fallback_reason TEXT,
            error TEXT,
            error_code TEXT,
            prompt_preview TEXT
        );
        CREATE INDEX requests_ts ON requests(ts);
        CREATE INDEX requests_tier_ts ON requests(tier, ts);
        """,
    ),
    (
        "002_texts_shadow_feedback",
        """
        ALTER TABLE requests ADD COLUMN prompt TEXT;
        ALTER TABLE requests ADD COLUMN answer TEXT;
        ALTER TABLE requests ADD COLUMN shadow_of TEXT;
        CREATE INDEX requests_shadow_of ON requests(shadow_of);
        CREATE TABLE feedback (
            id INTEGER PRIMARY KEY,
            request_id TEXT NOT NULL,
            ts REAL NOT NULL,
            score REAL NOT NULL,
            comment TEXT
        );
        CREATE INDEX feedback_request ON feedback(request_id);
        """,
    ),
    (
        "003_grounding",
        """
        ALTER TABLE requests ADD COLUMN grounding TEXT;
        """,
    ),
]

COLUMNS = (
    "request_id", "ts", "endpoint", "requested_model", "profile", "stream", "tier", "model", "router",
    "score", "threshold", "reason", "routed_tier", "prompt_tokens", "completion_tokens", "cost_usd",
    "baseline_cost_usd", "latency_ms", "status", "http_status", "fallback", "fallback_reason", "error",
    "error_code", "prompt_preview", "prompt", "answer", "shadow_of", "grounding",
)


def default_log_path(data_dir: Path) -> Path:
    return data_dir / LOG_FILE_NAME


@dataclass(frozen=True)
class TierTotals:
    tier: str
    requests: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float


@dataclass(frozen=True)
class Totals:
    requests: int
    errors: int
    fallbacks: int
    cost_usd: float
    baseline_cost_usd: float
    by_tier: list[TierTotals]

    @property
    def saved_usd(self) -> float:
        return self.baseline_cost_usd - self.cost_usd


@dataclass(frozen=True)
class GroundingTotals:
    """What the fact-check did to grounded answers (hybrid/rag) in a period."""

    answers: int
    claims: int
    flagged: int  # claims still flagged after the last round
    rounds: int
    removed: int


def _row_values(trace: Trace, endpoint: str) -> tuple[Any, ...]:
    d = trace.decision
    return (
        trace.request_id, trace.started, endpoint, trace.requested_model, trace.profile, int(trace.stream),
        trace.tier, trace.model, d.router if d else None, d.score if d else None, d.threshold if d else None,
        d.reason if d else None, d.tier if d else None, trace.usage.prompt_tokens, trace.usage.completion_tokens,
        trace.cost_usd, trace.baseline_cost_usd, trace.latency_ms, trace.status, trace.http_status,
        trace.fallback, trace.fallback_reason, trace.error, trace.error_code, trace.prompt_preview,
        trace.prompt_text, trace.answer_text, trace.shadow_of,
        json.dumps(trace.grounding.summary()) if trace.grounding is not None else None,
    )


class RequestLog:
    """A SQLite file shared by the gateway and the CLI; safe to write from several threads."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._migrate()

    def _migrate(self) -> None:
        with self._lock:
            self._db.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied REAL NOT NULL)")
            done = {r[0] for r in self._db.execute("SELECT name FROM _migrations")}
            for name, sql in MIGRATIONS:
                if name in done:
                    continue
                self._db.execute("BEGIN")
                try:
                    for statement in filter(str.strip, sql.split(";")):
                        self._db.execute(statement)
                    self._db.execute("INSERT INTO _migrations VALUES (?, ?)", (name, time.time()))
                    self._db.execute("COMMIT")
                except sqlite3.Error:
                    self._db.execute("ROLLBACK")
                    raise

    def record(self, trace: Trace, endpoint: str = "/v1/chat/completions") -> None:
        placeholders = ", ".join("?" for _ in COLUMNS)
        with self._lock:
            self._db.execute(
                f"INSERT OR REPLACE INTO requests ({', '.join(COLUMNS)}) VALUES ({placeholders})",
                _row_values(trace, endpoint),
            )

    def recent(self, limit: int = 20) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM requests ORDER BY ts DESC, id DESC LIMIT ?", (limit,)).fetchall()
        return [dict(r) for r in rows]

    def get(self, request_id: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM requests WHERE request_id = ?", (request_id,)).fetchone()
        return dict(row) if row else None

    def add_feedback(self, request_id: str, score: float, comment: str | None = None) -> None:
        with self._lock:
            self._db.execute("INSERT INTO feedback (request_id, ts, score, comment) VALUES (?, ?, ?, ?)",
                             (request_id, time.time(), score, comment))

    def labelled_pairs(self) -> list[dict[str, Any]]:
        """Answers to the same prompt from two tiers (served + shadow), each with its mean feedback score."""
        query = """
            WITH rated AS (
                SELECT r.request_id, r.tier, r.prompt, r.cost_usd, r.shadow_of, AVG(f.score) AS score
                FROM requests r JOIN feedback f ON f.request_id = r.request_id
                WHERE r.status = 'ok' AND r.prompt IS NOT NULL
                GROUP BY r.request_id
            )
            SELECT served.prompt, served.tier AS served_tier, served.score AS served_score,
                   served.cost_usd AS served_cost, shadow.tier AS shadow_tier, shadow.score AS shadow_score,
                   shadow.cost_usd AS shadow_cost
            FROM rated served JOIN rated shadow ON shadow.shadow_of = served.request_id
            WHERE served.tier != shadow.tier
        """
        with self._lock:
            return [dict(r) for r in self._db.execute(query)]

    def spend_since(self, tier: str, since_ts: float) -> float:
        with self._lock:
            row = self._db.execute(
                "SELECT COALESCE(SUM(cost_usd), 0) FROM requests WHERE tier = ? AND ts >= ?", (tier, since_ts)
            ).fetchone()
        return float(row[0])

    def totals(self, since_ts: float = 0.0) -> Totals:
        with self._lock:
            head = self._db.execute(
                """SELECT COUNT(*), SUM(status = 'error'), SUM(fallback IS NOT NULL),
                          COALESCE(SUM(cost_usd), 0), COALESCE(SUM(baseline_cost_usd), 0)
                   FROM requests WHERE ts >= ?""",
                (since_ts,),
            ).fetchone()
            tiers = self._db.execute(
                """SELECT COALESCE(tier, '(none)'), COUNT(*), SUM(prompt_tokens), SUM(completion_tokens), SUM(cost_usd)
                   FROM requests WHERE ts >= ? GROUP BY 1 ORDER BY 2 DESC""",
                (since_ts,),
            ).fetchall()
        return Totals(
            requests=int(head[0]), errors=int(head[1] or 0), fallbacks=int(head[2] or 0),
            cost_usd=float(head[3]), baseline_cost_usd=float(head[4]),
            by_tier=[TierTotals(t[0], int(t[1]), int(t[2] or 0), int(t[3] or 0), float(t[4] or 0)) for t in tiers],
        )

    def grounding_totals(self, since_ts: float = 0.0) -> GroundingTotals:
        with self._lock:
            rows = [json.loads(r[0]) for r in self._db.execute(
                "SELECT grounding FROM requests WHERE ts >= ? AND grounding IS NOT NULL", (since_ts,))]
        labels = [label for r in rows for label in (r.get("claims") or [])]
        return GroundingTotals(len(rows), len(labels), sum(label != "supported" for label in labels),
                               sum(r.get("rounds", 0) for r in rows), sum(r.get("removed", 0) for r in rows))

    def close(self) -> None:
        with self._lock:
            self._db.close()
