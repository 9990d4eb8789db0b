import asyncio
import datetime as dt
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import pytest

from hybridlm.request_log import MIGRATIONS, RequestLog, local_midnight
from hybridlm.sqlite_db import DatabaseFileError, statements
from hybridlm.types import Decision, Trace, Usage


def trace(tier: str, cost: float, baseline: float, status: str = "ok", fallback: str | None = None,
          started: float | None = None) -> Trace:
    t = Trace(tier=tier, model=f"{tier}-model", usage=Usage(10, 5), cost_usd=cost, baseline_cost_usd=baseline,
              status=status, fallback=fallback)  # type: ignore[arg-type]
    if started is not None:
        t.started = started
    t.decision = Decision(tier, 0.3, 0.5, "why", "heuristic")
    return t


def committed(path: Path, sql: str = "SELECT COUNT(*) FROM requests") -> int:
    """What another process reading the file sees."""
    with closing(sqlite3.connect(path)) as db:
        return int(db.execute(sql).fetchone()[0])


@contextmanager
def writes_held(path: Path) -> Iterator[None]:
    """Another connection holds the write lock: the log's writer waits, its queue fills."""
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        other.execute("COMMIT")
        other.close()


def test_migrations_run_once_and_are_tracked(tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    RequestLog(path).close()
    RequestLog(path).close()
    with closing(sqlite3.connect(path)) as db:
        names = [r[0] for r in db.execute("SELECT name FROM _migrations")]
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
    log.close()


def test_rows_keep_decision_and_error(tmp_path: Path) -> None:
    log = RequestLog(tmp_path / "log.db")
    t = trace("slm", 0.0, 0.0, status="error")
    t.http_status, t.error, t.error_code = 400, "bad json", "invalid_json"
    log.record(t, "/v1/chat/completions")
    row = log.get(t.request_id)
    assert row is not None
    assert (row["http_status"], row["error_code"], row["reason"], row["threshold"]) == (400, "invalid_json", "why", 0.5)
    assert log.recent(1)[0]["request_id"] == t.request_id
    log.close()


def test_the_row_is_the_trace_as_it_was_when_recorded(tmp_path: Path) -> None:
    log = RequestLog(tmp_path / "log.db")
    t = trace("slm", 0.0, 0.0)
    with writes_held(log.path):
        log.record(t)
        t.status, t.tier = "error", "llm"
    assert (log.get(t.request_id) or {})["status"] == "ok"
    log.close()


def test_rows_from_many_threads_are_all_there_once(tmp_path: Path) -> None:
    log = RequestLog(tmp_path / "log.db")
    ids: list[str] = []

    def record_many() -> None:
        for _ in range(250):
            t = trace("slm", 0.0, 0.001)
            log.record(t)
            ids.append(t.request_id)

    threads = [threading.Thread(target=record_many) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    log.flush()
    assert committed(log.path) == committed(log.path, "SELECT COUNT(DISTINCT request_id) FROM requests") == 2000
    assert {r["request_id"] for r in log.recent(5000)} == set(ids)
    log.close()


def test_the_future_resolves_once_the_row_is_committed(tmp_path: Path) -> None:
    log = RequestLog(tmp_path / "log.db")
    with writes_held(log.path):
        done = log.record(trace("slm", 0.0, 0.0))
        time.sleep(0.2)
        assert not done.done() and committed(log.path) == 0
    assert done.result(timeout=10) is None
    assert committed(log.path) == 1
    log.close()


def test_close_commits_what_is_queued(tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    log = RequestLog(path)
    with writes_held(path):
        for _ in range(50):
            log.record(trace("slm", 0.0, 0.0))
        assert committed(path) == 0
    log.close()
    assert committed(path) == 50


def test_a_full_queue_makes_record_wait_and_loses_nothing(tmp_path: Path) -> None:
    log = RequestLog(tmp_path / "log.db", max_queued=3)
    returned: list[str] = []

    def record_all() -> None:
        for _ in range(20):
            t = trace("slm", 0.0, 0.0)
            log.record(t)
            returned.append(t.request_id)

    with writes_held(log.path):
        recorder = threading.Thread(target=record_all)
        recorder.start()
        time.sleep(0.3)
        assert recorder.is_alive(), "record went on with the queue full"
        assert len(returned) <= 2 * 3  # a group taken by the writer, and a full queue behind it
    recorder.join(timeout=10)
    assert not recorder.is_alive()
    assert {r["request_id"] for r in log.recent(100)} == set(returned) and len(returned) == 20
    log.close()


def test_arecord_waits_for_room_without_blocking_the_loop(tmp_path: Path) -> None:
    log = RequestLog(tmp_path / "log.db", max_queued=2)
    holder = sqlite3.connect(log.path, isolation_level=None)

    async def scenario() -> tuple[int, int]:
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        ticker = asyncio.create_task(tick())
        holder.execute("BEGIN IMMEDIATE")
        recording = asyncio.gather(*(log.arecord(trace("slm", 0.0, 0.0)) for _ in range(10)))
        await asyncio.sleep(0.3)
        assert not recording.done()
        ticks_while_full = ticks
        holder.execute("COMMIT")
        await asyncio.wait_for(recording, 10)
        ticker.cancel()
        return ticks_while_full, committed(log.path)

    ticks_while_full, rows = asyncio.run(scenario())
    holder.close()
    assert ticks_while_full >= 10, "the loop was blocked while the queue was full"
    assert rows == 10
    log.close()


def test_the_spend_book_counts_rows_before_they_are_committed(tmp_path: Path) -> None:
    log = RequestLog(tmp_path / "log.db")
    book = log.spend_book()
    with writes_held(log.path):
        log.record(trace("llm", 0.25, 0.25))
        log.record(trace("llm", 0.5, 0.5))
        log.record(trace("slm", 0.0, 0.5))
        started = time.monotonic()
        assert book.spent(("tier", "llm"), "day") == pytest.approx(0.75)
        assert book.spent(("tier", "llm"), "month") == pytest.approx(0.75)
        assert book.spent(("tier", "slm"), "day") == 0.0
        assert time.monotonic() - started < 0.1  # no flush, no query: the writer is still held
    log.close()


def test_the_spend_book_is_filled_from_the_file_per_tier_and_key(tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    log = RequestLog(path)
    midnight = local_midnight(time.time())
    keyed = trace("llm", 0.5, 0.5)
    keyed.key_id = "k1"
    log.record(keyed)
    log.record(trace("llm", 0.25, 0.25))
    log.record(trace("llm", 9.0, 9.0, started=midnight - 40 * 86400))  # over a month ago: neither period
    log.close()
    reopened = RequestLog(path)
    book = reopened.spend_book()
    assert book.spent(("tier", "llm"), "day") == pytest.approx(0.75)
    assert book.spent(("key", "k1"), "day") == pytest.approx(0.5)
    assert book.spent(("key", "k1"), "month") == pytest.approx(0.5)
    by_key = {s.name: s for s in reopened.spend_by("key_id", midnight, midnight)}
    assert by_key["k1"].today_usd == pytest.approx(0.5) and by_key[None].all_time_usd == pytest.approx(9.25)
    reopened.close()


def test_spend_since_matches_the_database_after_records_and_after_reopening(tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    midnight = local_midnight(time.time())
    log = RequestLog(path)
    for i in range(30):
        log.record(trace("llm", 0.001 * (i + 1), 0.001, started=midnight + 60.0 * i))
    log.record(trace("llm", 9.0, 9.0, started=midnight - 60))  # yesterday: not today's spend
    log.record(trace("slm", 0.0, 0.002))

    def in_database(since: float) -> float:
        with closing(sqlite3.connect(path)) as db:
            return float(db.execute("SELECT SUM(cost_usd) FROM requests WHERE tier = 'llm' AND ts >= ?",
                                    (since,)).fetchone()[0])

    log.flush()
    assert in_database(midnight) == pytest.approx(0.465)
    assert log.spend_since("llm", midnight) == pytest.approx(in_database(midnight))
    assert log.spend_since("llm", midnight + 600) == pytest.approx(in_database(midnight + 600))
    assert log.spend_since("llm", 0) == pytest.approx(in_database(0))
    log.close()
    reopened = RequestLog(path)
    assert reopened.spend_since("llm", midnight) == pytest.approx(in_database(midnight))
    reopened.close()


def test_spend_since_is_right_across_midnight(tmp_path: Path) -> None:
    log = RequestLog(tmp_path / "log.db")
    today = local_midnight(time.time())
    tomorrow = dt.datetime.combine(dt.date.fromtimestamp(today) + dt.timedelta(days=1), dt.time()).timestamp()
    log.record(trace("llm", 1.0, 1.0, started=tomorrow - 60))
    log.record(trace("llm", 2.0, 2.0, started=tomorrow + 60))
    assert log.spend_since("llm", today) == 3.0
    assert log.spend_since("llm", tomorrow) == 2.0  # the new day: yesterday's spend no longer counts
    log.record(trace("llm", 4.0, 4.0, started=tomorrow + 120))
    assert log.spend_since("llm", tomorrow) == 6.0
    assert log.spend_since("llm", today) == 7.0  # before the window now: read from the file
    log.close()


def test_feedback_is_kept_beside_its_request(tmp_path: Path) -> None:
    log = RequestLog(tmp_path / "log.db")
    served = trace("slm", 0.0, 0.001)
    served.prompt_text = "the question"
    shadow = trace("llm", 0.001, 0.001)
    shadow.prompt_text, shadow.shadow_of = "the question", served.request_id
    log.record(served)
    log.record(shadow)
    log.add_feedback(served.request_id, 0.2)
    asyncio.run(log.aadd_feedback(shadow.request_id, 0.9, "better"))
    assert log.labelled_pairs() == [{
        "prompt": "the question", "served_tier": "slm", "served_score": 0.2, "served_cost": 0.0,
        "shadow_tier": "llm", "shadow_score": 0.9, "shadow_cost": 0.001,
    }]
    log.close()


def test_a_log_written_before_the_writer_thread_opens_with_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "requests.db"
    with closing(sqlite3.connect(path, isolation_level=None)) as db:  # what earlier versions left on disk
        db.execute("CREATE TABLE _migrations (name TEXT PRIMARY KEY, applied REAL NOT NULL)")
        for name, sql in MIGRATIONS:
            for statement in statements(sql):
                db.execute(statement)
            db.execute("INSERT INTO _migrations VALUES (?, 1.0)", (name,))
        db.execute("INSERT INTO requests (request_id, ts, endpoint, tier, cost_usd, status, http_status) "
                   "VALUES ('chatcmpl-old', ?, '/v1/chat/completions', 'llm', 0.5, 'ok', 200)", (time.time(),))
    log = RequestLog(path)
    assert (log.get("chatcmpl-old") or {})["cost_usd"] == 0.5
    assert log.spend_since("llm", local_midnight(time.time())) == 0.5
    log.record(trace("slm", 0.0, 0.0))
    assert log.totals().requests == 2
    log.close()
    with closing(sqlite3.connect(path)) as db:
        applied = db.execute("SELECT name, applied FROM _migrations").fetchall()
    assert applied == [(name, 1.0) for name, _ in MIGRATIONS]


def test_a_file_that_is_not_a_database_is_refused_clearly(tmp_path: Path) -> None:
    path = tmp_path / "requests.db"
    path.write_bytes(b"this is not a database\n" * 100)
    with pytest.raises(DatabaseFileError, match="not a request log"):
        RequestLog(path)
