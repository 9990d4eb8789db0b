"""Opening hybridlm's SQLite files: the same settings for each, and its schema brought up to date
by named, append-only migrations recorded in the file itself.

A migration is applied once, in order, in the transaction that records it; a file that records
a migration this version does not know was written by a newer hybridlm and is refused rather
than guessed at.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from hybridlm.errors import HybridLMError

BUSY_TIMEOUT_S = 5.0
MIGRATIONS_TABLE = "_migrations"
NOT_A_DATABASE = (sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_CORRUPT)
BUSY = (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


class DatabaseFileError(HybridLMError):
    """A file that cannot be opened as the database it should be, with what to do about it."""


@dataclass(frozen=True)
class Schema:
    """What one kind of file holds: its migrations, oldest first, each (name, SQL script).

    `legacy_table` is for files made before migrations were recorded: a file that has this table
    and no record is taken to be at the first migration, so its data is kept as it is."""

    what: str  # the file's kind in messages: "request log"
    migrations: Sequence[tuple[str, str]]
    legacy_table: str | None = None


def connect(path: Path, schema: Schema, busy_timeout_s: float = BUSY_TIMEOUT_S) -> sqlite3.Connection:
    """A connection to `path` (created if missing) with its schema up to date.

    Autocommit (explicit `transaction`s), usable from any thread (callers serialise their own
    use), WAL so readers in other processes never block the writer, synchronous=NORMAL (durable
    at checkpoints, never corrupt, much faster commits under WAL), foreign keys enforced."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(str(path), timeout=busy_timeout_s, check_same_thread=False, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA foreign_keys=ON")
        migrate(db, schema, path)
    except sqlite3.DatabaseError as err:
        db.close()
        if _primary_code(err) in NOT_A_DATABASE:
            raise DatabaseFileError(f"{path} is not a {schema.what} (not an SQLite database, or a damaged one); "
                                    "move it away and a new one is made") from None
        raise
    except BaseException:
        db.close()
        raise
    return db


@contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[None]:
    """One write transaction, committed or rolled back as a whole. IMMEDIATE takes the write lock
    at the start, where the busy timeout applies, rather than failing at the first write."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def is_busy(err: Exception) -> bool:
    """Another connection held the lock for longer than the busy timeout: worth another try."""
    return isinstance(err, sqlite3.OperationalError) and _primary_code(err) in BUSY


def applied_migrations(db: sqlite3.Connection) -> list[str]:
    """The migrations the file records, in the order they were applied ([] before the first)."""
    if not _has_table(db, MIGRATIONS_TABLE):
        return []
    return [r[0] for r in db.execute(f"SELECT name FROM {MIGRATIONS_TABLE} ORDER BY rowid")]


def migrate(db: sqlite3.Connection, schema: Schema, path: Path) -> None:
    """Apply the schema's migrations the file lacks, all in one transaction: two processes opening
    a new file at once take turns, and the second finds nothing left to do."""
    names = [name for name, _ in schema.migrations]
    if applied_migrations(db) == names:
        return
    with transaction(db):
        done = applied_migrations(db)
        unknown = [name for name in done if name not in names]
        if unknown:
            raise DatabaseFileError(f"{path} was written by a newer hybridlm (its {schema.what} has migration "
                                    f"'{unknown[0]}', which this version does not know); upgrade hybridlm")
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")} - {MIGRATIONS_TABLE}
        db.execute(f"CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE} (name TEXT PRIMARY KEY, applied REAL NOT NULL)")
        if not done and tables:  # made before migrations were recorded, or not ours at all
            if schema.legacy_table not in tables:
                raise DatabaseFileError(f"{path} is an SQLite database but not a {schema.what}; use another path")
            _record(db, names[0])
            done = names[:1]
        for name, script in schema.migrations:
            if name not in done:
                for statement in statements(script):
                    db.execute(statement)
                _record(db, name)


def statements(script: str) -> Iterator[str]:
    """The statements of a script, split where SQLite says one ends (a ';' in a string or a
    trigger body does not end one). `executescript` would commit the migration's transaction."""
    pending = ""
    for piece in script.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \t\r\n;"):
                yield pending
            pending = ""
    if pending.strip(" \t\r\n;"):
        yield pending  # incomplete: let SQLite say what is wrong with it


def _record(db: sqlite3.Connection, name: str) -> None:
    db.execute(f"INSERT INTO {MIGRATIONS_TABLE} (name, applied) VALUES (?, ?)", (name, time.time()))


def _has_table(db: sqlite3.Connection, name: str) -> bool:
    return db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)).fetchone() is not None


def _primary_code(err: Exception) -> int:
    """SQLite's result code without its extended part; 0 for errors the sqlite3 module raises itself."""
    return int(getattr(err, "sqlite_errorcode", None) or 0) & 0xFF
