import asyncio
import logging
import sqlite3
import threading
from contextlib import closing
from pathlib import Path

import pytest

from hybridlm.sqlite_db import Schema, connect
from hybridlm.sqlite_writer import GroupWriter, WriterClosed

NOTES = Schema("notes file", [("001_notes", "CREATE TABLE notes (text TEXT NOT NULL)")])
INSERT = "INSERT INTO notes VALUES (?)"


def count(path: Path) -> int:
    with closing(sqlite3.connect(path)) as db:
        return int(db.execute("SELECT COUNT(*) FROM notes").fetchone()[0])


def hold_writes(path: Path) -> sqlite3.Connection:
    """Another connection with the write lock (released by a timer thread, hence any thread)."""
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    return other


def test_what_is_queued_meanwhile_commits_in_one_transaction(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    db = connect(path, NOTES)
    began: list[str] = []
    db.set_trace_callback(lambda sql: began.append(sql) if sql.startswith("BEGIN") else None)
    writer = GroupWriter(db, 1000, "notes writer")
    other = hold_writes(path)
    futures = [writer.submit(INSERT, (f"note {i}",)) for i in range(200)]
    other.execute("COMMIT")
    writer.flush()
    assert all(f.done() and f.exception() is None for f in futures)
    assert count(path) == 200
    assert len(began) <= 3  # the first note alone (the writer woke for it), the rest together
    writer.close()
    other.close()


def test_a_busy_database_is_tried_again(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    writer = GroupWriter(connect(path, NOTES, busy_timeout_s=0.05), 10, "notes writer")
    other = hold_writes(path)
    done = writer.submit(INSERT, ("after a wait",))
    threading.Timer(0.15, other.execute, ("COMMIT",)).start()
    assert done.result(timeout=10) is None
    assert count(path) == 1
    writer.close()
    other.close()


def test_a_write_that_fails_reaches_its_future_and_the_log_without_its_text(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    writer = GroupWriter(connect(tmp_path / "notes.db", NOTES), 10, "notes writer")
    with caplog.at_level(logging.ERROR, logger="hybridlm.sqlite_writer"):
        failed = writer.submit("INSERT INTO missing VALUES (?)", ("a private prompt",))
        with pytest.raises(sqlite3.OperationalError, match="no such table"):
            failed.result(timeout=10)
    assert "1 writes not committed" in caplog.text and "private" not in caplog.text
    assert writer.submit(INSERT, ("next",)).result(timeout=10) is None  # the writer goes on
    writer.close()


def test_close_commits_the_queue_then_refuses_writes(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    writer = GroupWriter(connect(path, NOTES), 100, "notes writer")
    other = hold_writes(path)
    for i in range(30):
        writer.submit(INSERT, (str(i),))
    threading.Timer(0.1, other.execute, ("COMMIT",)).start()
    writer.close()
    assert count(path) == 30
    with pytest.raises(WriterClosed):
        writer.submit(INSERT, ("late",))
    other.close()


def test_a_cancelled_wait_keeps_its_write(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    writer = GroupWriter(connect(path, NOTES), 1, "notes writer")
    other = sqlite3.connect(path, isolation_level=None)

    async def scenario() -> None:
        other.execute("BEGIN IMMEDIATE")
        waits = [asyncio.create_task(writer.asubmit(INSERT, (str(i),))) for i in range(5)]
        await asyncio.sleep(0.1)
        for wait in waits:
            wait.cancel()
        await asyncio.sleep(0.05)
        other.execute("COMMIT")
        for _ in range(500):
            if count(path) == 5:
                return
            await asyncio.sleep(0.01)

    asyncio.run(scenario())
    assert count(path) == 5
    writer.close()
    other.close()


def test_with_checkpoints_on_no_commit_checkpoints_and_a_thread_of_its_own_does(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    db = connect(path, NOTES)
    writer = GroupWriter(db, 1000, "notes writer", checkpoint_every_s=0.05)
    assert db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
    empty = path.stat().st_size
    for i in range(50):
        writer.submit(INSERT, ("x" * 3000 + str(i),))
    writer.flush()
    for _ in range(200):  # the checkpointer's rounds copy the log's pages into the file: at most about 10 s
        if path.stat().st_size > empty + 100_000:
            break
        threading.Event().wait(0.05)
    assert path.stat().st_size > empty + 100_000
    writer.close()
    assert count(path) == 50
