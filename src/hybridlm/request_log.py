"""The request log: one SQLite row per request (failed and rejected ones too), and the sums.

Schema changes go through named, append-only migrations (`sqlite_db`). Rows are written by one
thread in groups (`sqlite_writer`), so recording never waits for the disk; the spend of the day
and month per tier and key is kept in memory (`spend_book`), since every paid call's budget check
asks for it.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
import sqlite3
import threading
import time
import weakref
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from hybridlm.log_rollups import KEPT_S, SPANS_S, UPSERT, summed, upsert_rows, upserts
from hybridlm.spend import SpendBook, zone
from hybridlm.sqlite_db import Schema, connect, transaction
from hybridlm.sqlite_writer import GroupWriter, Statement
from hybridlm.types import Trace

LOG_FILE_NAME = "requests.db"
MAX_QUEUED_ROWS = 10_000

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
    (
        "004_keys_redactions",
        """
        ALTER TABLE requests ADD COLUMN key_id TEXT;
        ALTER TABLE requests ADD COLUMN redactions TEXT;
        CREATE INDEX requests_key_ts ON requests(key_id, ts);
        """,
    ),
    (
        "005_steps",
        """
        ALTER TABLE requests ADD COLUMN steps TEXT;
        """,
    ),
    (
        "006_observability",
        """
        ALTER TABLE requests ADD COLUMN signals TEXT;
        ALTER TABLE requests ADD COLUMN calls TEXT;
        ALTER TABLE requests ADD COLUMN first_token_ms REAL;
        ALTER TABLE requests ADD COLUMN tool_calls INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE requests ADD COLUMN served_locally INTEGER;
        CREATE INDEX requests_profile_ts ON requests(profile, ts);
        CREATE INDEX requests_status_ts ON requests(status, ts);
        -- partial: with ANALYZE's statistics, an index of NULLs is passed over for a scan of the table
        DROP INDEX requests_shadow_of;
        CREATE INDEX requests_shadow_of ON requests(shadow_of) WHERE shadow_of IS NOT NULL;
        CREATE TABLE request_rollup (
            span INTEGER NOT NULL,
            bucket INTEGER NOT NULL,
            tier TEXT NOT NULL,
            profile TEXT NOT NULL,
            key_id TEXT NOT NULL,
            status TEXT NOT NULL,
            kind TEXT NOT NULL,
            value TEXT NOT NULL,
            n INTEGER NOT NULL,
            total REAL NOT NULL,
            PRIMARY KEY (span, kind, bucket, tier, profile, key_id, status, value)
        ) WITHOUT ROWID;
        CREATE TABLE rollup_backfill (pending INTEGER NOT NULL);
        INSERT INTO rollup_backfill SELECT 1 WHERE EXISTS (SELECT 1 FROM requests);
        """,
    ),
]

COLUMNS = (
    "request_id", "ts", "endpoint", "requested_model", "profile", "stream", "tier", "model", "router",
    "score", "threshold", "reason", "routed_tier", "prompt_tokens", "completion_tokens", "cost_usd",
    "baseline_cost_usd", "latency_ms", "status", "http_status", "fallback", "fallback_reason", "error",
    "error_code", "prompt_preview", "prompt", "answer", "shadow_of", "grounding",
    "key_id", "redactions", "steps", "signals", "calls", "first_token_ms", "tool_calls", "served_locally",
)
SCHEMA = Schema("request log", MIGRATIONS)
INSERT_REQUEST = f"INSERT OR REPLACE INTO requests ({', '.join(COLUMNS)}) VALUES ({', '.join('?' for _ in COLUMNS)})"
# numpy's numbers (a learned router's features) are written as json.dumps would write their float and int bases
JSON_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY
CHECKPOINT_EVERY_S = 1.0  # every request waits for its row's commit: no commit may pay for a checkpoint
INSERT_FEEDBACK = "INSERT INTO feedback (request_id, ts, score, comment) VALUES (?, ?, ?, ?)"


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
class PeriodSpend:
    """What one tier or one API key spent today, this month and in all (None: rows without a key)."""

    name: str | None
    requests: int
    today_usd: float
    month_usd: float
    all_time_usd: float


def _json_values(trace: Trace) -> dict[str, Any]:
    """The JSON columns' values as objects (None where there is nothing to store)."""
    d = trace.decision
    return {
        "grounding": trace.grounding.summary() if trace.grounding is not None else None,
        "redactions": trace.redactions or None,
        "steps": trace.steps or None,
        "signals": {"features": d.features, "labels": d.labels, "forced": d.forced} if d else None,
        "calls": trace.calls or None,
    }


def _json_text(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value, option=JSON_OPTIONS).decode()


def _row_values(trace: Trace, endpoint: str, json_values: dict[str, Any]) -> tuple[Any, ...]:
    d, text = trace.decision, {column: _json_text(value) for column, value in json_values.items()}
    return (
        trace.request_id, trace.started, endpoint, trace.requested_model, trace.profile, int(trace.stream),
        trace.tier, trace.model, d.router if d else None, d.score if d else None, d.threshold if d else None,
        d.reason if d else None, d.tier if d else None, trace.usage.prompt_tokens, trace.usage.completion_tokens,
        trace.cost_usd, trace.baseline_cost_usd, trace.latency_ms, trace.status, trace.http_status,
        trace.fallback, trace.fallback_reason, trace.error, trace.error_code, trace.prompt_preview,
        trace.prompt_text, trace.answer_text, trace.shadow_of, text["grounding"],
        trace.key_id, text["redactions"], text["steps"], text["signals"],
        text["calls"], trace.first_token_ms, trace.tool_calls,
        None if trace.served_locally is None else int(trace.served_locally),
    )


def local_midnight(ts: float) -> float:
    """The start of the machine's local day `ts` falls in (budgets count in `budgets.timezone`: `spend.periods`)."""
    return dt.datetime.fromtimestamp(ts).replace(hour=0, minute=0, second=0, microsecond=0).timestamp()


class RequestLog:
    """A SQLite file shared by the gateway and the CLI; safe to use from several threads.

    `record` queues a row for the writer thread and returns at once; reads first wait for what
    this process queued before them (a commit's time, longer only while the disk is behind), so
    it always reads its own writes. Other processes (the CLI beside a gateway) read the file
    directly: WAL lets them while the writer commits. `close` (or the log being collected, or
    the interpreter exiting) commits what is queued."""

    def __init__(self, path: Path, max_queued: int = MAX_QUEUED_ROWS) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._db = connect(path, SCHEMA)
        self._db.row_factory = sqlite3.Row
        self._backfill_rollups()
        self._writer = GroupWriter(connect(path, SCHEMA), max_queued, f"request log {path}",
                                   checkpoint_every_s=CHECKPOINT_EVERY_S)
        self._stop_writer = weakref.finalize(self, self._writer.close)
        self._books_lock = threading.Lock()
        self._books: dict[str | None, SpendBook] = {}

    def record(self, trace: Trace, endpoint: str = "/v1/chat/completions") -> Future[None]:
        """Queue the trace's row and return a future resolved once it is committed (the row is
        taken now: the trace may change after). With `max_queued` rows waiting for the disk this
        blocks until there is room: back-pressure, never a row dropped."""
        return self._writer.submit_all(self._accept(trace, endpoint))

    async def arecord(self, trace: Trace, endpoint: str = "/v1/chat/completions") -> None:
        """`record` for the event loop: returns once the row is committed; waiting for room or
        for the disk never blocks the loop."""
        await self._writer.asubmit_all(self._accept(trace, endpoint))

    def _accept(self, trace: Trace, endpoint: str) -> tuple[Statement, ...]:
        """The trace's row as it is now and its roll-ups, its cost counted in the spend books."""
        if trace.cost_usd:
            with self._books_lock:
                for book in self._books.values():
                    book.add(trace.tier, trace.key_id, trace.started, trace.cost_usd)
        json_values = _json_values(trace)
        values = _row_values(trace, endpoint, json_values)
        row = {**dict(zip(COLUMNS, values, strict=True)), **json_values}  # the roll-ups read objects, not text
        rollups = list(upserts(row))  # never empty: every request counts for `requests`
        return (INSERT_REQUEST, values), (upsert_rows(len(rollups)), tuple(itertools.chain.from_iterable(rollups)))

    def spend_book(self, timezone: str | None = None) -> SpendBook:
        """The spend of the current day and month in `timezone` (IANA; None: the machine's), per tier and
        key: filled from the file on first ask, then fed each row as it is recorded. One per zone."""
        with self._books_lock:  # rows recorded meanwhile wait, then count once: in the file or fed
            book = self._books.get(timezone)
            if book is None:
                book = SpendBook(zone(timezone))
                p = book.periods
                book.load(tuple(r) for r in self.read(
                    """SELECT tier, key_id, SUM(CASE WHEN ts >= ? THEN cost_usd ELSE 0 END), SUM(cost_usd)
                       FROM requests WHERE ts >= ? AND cost_usd > 0 GROUP BY tier, key_id""",
                    (p.day_start, p.month_start)))
                self._books[timezone] = book
            return book

    def add_feedback(self, request_id: str, score: float, comment: str | None = None) -> Future[None]:
        """Queue a rating of a logged request, like `record`."""
        return self._writer.submit(INSERT_FEEDBACK, (request_id, time.time(), score, comment))

    async def aadd_feedback(self, request_id: str, score: float, comment: str | None = None) -> None:
        """`add_feedback` for the event loop, returning once the rating is committed."""
        await self._writer.asubmit(INSERT_FEEDBACK, (request_id, time.time(), score, comment))

    def purge(self, before_ts: float) -> int:
        """Delete the requests (and their ratings) logged before `before_ts`, through the writer like every
        write; returns how many requests went."""
        count = int(self.read("SELECT COUNT(*) FROM requests WHERE ts < ?", (before_ts,))[0][0])
        if count:
            self._writer.submit("DELETE FROM feedback WHERE request_id IN (SELECT request_id FROM requests "
                                "WHERE ts < ?)", (before_ts,))
            self._writer.submit("DELETE FROM requests WHERE ts < ?", (before_ts,)).result()
        self._drop_rollups({span: math.floor(before_ts - span) + 1 for span in SPANS_S})  # buckets ended by then
        return count

    def compact_rollups(self, now: float) -> None:
        """Drop the minute and hour roll-ups older than any window drawn at them (`log_rollups.KEPT_S`)."""
        self._drop_rollups({span: now - kept_s for span, kept_s in KEPT_S.items()})

    def _drop_rollups(self, before: dict[int, float]) -> None:
        """Delete the roll-up buckets of each size that start before its cutoff, by the primary key's span."""
        self._writer.submit_all(tuple(("DELETE FROM request_rollup WHERE span = ? AND bucket < ?", (span, cutoff))
                                      for span, cutoff in before.items())).result()

    def _backfill_rollups(self) -> None:
        """A log from before roll-ups gets them from its rows, once (the migration marks it); under the write
        lock, so a second process opening it meanwhile finds nothing left to do."""
        if not self._db.execute("SELECT 1 FROM rollup_backfill").fetchone():
            return
        with transaction(self._db):
            if self._db.execute("DELETE FROM rollup_backfill").rowcount:
                rows = (dict(r) for r in self._db.execute("SELECT * FROM requests"))
                self._db.executemany(UPSERT, summed(rows, time.time()))

    def flush(self) -> None:
        """Wait until every row queued so far is committed."""
        self._writer.flush()

    def read(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        """Rows of a query, after what this process queued before it is committed."""
        self.flush()
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    def recent(self, limit: int = 20) -> list[dict[str, Any]]:
        return [dict(r) for r in self.read("SELECT * FROM requests ORDER BY ts DESC, id DESC LIMIT ?", (limit,))]

    def get(self, request_id: str) -> dict[str, Any] | None:
        rows = self.read("SELECT * FROM requests WHERE request_id = ?", (request_id,))
        return dict(rows[0]) if rows else None

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
        return [dict(r) for r in self.read(query)]

    def spend_since(self, tier: str, since_ts: float) -> float:
        """What the tier cost from `since_ts` on, from the file (budgets ask the `spend_book`)."""
        rows = self.read("SELECT COALESCE(SUM(cost_usd), 0) FROM requests WHERE tier = ? AND ts >= ?",
                          (tier, since_ts))
        return float(rows[0][0])

    def totals(self, since_ts: float = 0.0) -> Totals:
        head = self.read(
            """SELECT COUNT(*), SUM(status = 'error'), SUM(fallback IS NOT NULL),
                      COALESCE(SUM(cost_usd), 0), COALESCE(SUM(baseline_cost_usd), 0)
               FROM requests WHERE ts >= ?""",
            (since_ts,),
        )[0]
        tiers = self.read(
            """SELECT COALESCE(tier, '(none)'), COUNT(*), SUM(prompt_tokens), SUM(completion_tokens), SUM(cost_usd)
               FROM requests WHERE ts >= ? GROUP BY 1 ORDER BY 2 DESC""",
            (since_ts,),
        )
        return Totals(
            requests=int(head[0]), errors=int(head[1] or 0), fallbacks=int(head[2] or 0),
            cost_usd=float(head[3]), baseline_cost_usd=float(head[4]),
            by_tier=[TierTotals(t[0], int(t[1]), int(t[2] or 0), int(t[3] or 0), float(t[4] or 0)) for t in tiers],
        )

    def spend_by(self, column: str, day_start: float, month_start: float) -> list[PeriodSpend]:
        """Spend per `tier` or per `key_id` from `day_start`, from `month_start` and in all, most first."""
        if column not in ("tier", "key_id"):
            raise ValueError(f"spend is kept by tier or key_id, not {column!r}")
        rows = self.read(
            f"""SELECT {column}, COUNT(*), COALESCE(SUM(CASE WHEN ts >= ? THEN cost_usd END), 0),
                       COALESCE(SUM(CASE WHEN ts >= ? THEN cost_usd END), 0), COALESCE(SUM(cost_usd), 0)
                FROM requests GROUP BY 1 ORDER BY 5 DESC, 2 DESC""",
            (day_start, month_start),
        )
        return [PeriodSpend(r[0], int(r[1]), float(r[2]), float(r[3]), float(r[4])) for r in rows]

    def close(self) -> None:
        """Commit what is queued, stop the writer and close the file; idempotent."""
        self._stop_writer()
        with self._lock:
            self._db.close()
