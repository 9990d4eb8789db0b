import sqlite3
import threading
from collections.abc import Sequence
from contextlib import closing
from pathlib import Path

import numpy as np
import pytest

from hybridlm.models.encoder import EmbeddingCache
from hybridlm.rag.store import KnowledgeStore
from hybridlm.skills.flows import FlowStore
from hybridlm.sqlite_db import (
    DatabaseFileError,
    Schema,
    applied_migrations,
    connect,
    statements,
    transaction,
)

NOTES = Schema("notes file", [
    ("001_notes", "CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL)"),
    ("002_tags", """
        CREATE TABLE tags (note INTEGER NOT NULL REFERENCES notes(id), tag TEXT NOT NULL);
        CREATE INDEX tags_note ON tags(note);
    """),
], legacy_table="notes")


def test_a_connection_has_the_settings_every_file_shares(tmp_path: Path) -> None:
    with closing(connect(tmp_path / "notes.db", NOTES, busy_timeout_s=2.5)) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
        assert db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert db.execute("PRAGMA busy_timeout").fetchone()[0] == 2500
        with pytest.raises(sqlite3.IntegrityError):
            db.execute("INSERT INTO tags VALUES (42, 'no such note')")


def test_migrations_are_applied_once_in_order_and_recorded_by_name(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    first = Schema(NOTES.what, NOTES.migrations[:1])
    with closing(connect(path, first)) as db:
        db.execute("INSERT INTO notes (text) VALUES ('kept')")
        assert applied_migrations(db) == ["001_notes"]
    for _ in range(2):
        with closing(connect(path, NOTES)) as db:
            assert applied_migrations(db) == ["001_notes", "002_tags"]
            assert [r[0] for r in db.execute("SELECT text FROM notes")] == ["kept"]


def test_a_failing_migration_leaves_the_file_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    connect(path, Schema(NOTES.what, NOTES.migrations[:1])).close()
    broken = Schema(NOTES.what, [*NOTES.migrations[:1], ("002_tags", "CREATE TABLE tags (x); CREATE TABLE nonsense (")])
    with pytest.raises(sqlite3.OperationalError):
        connect(path, broken)
    with closing(sqlite3.connect(path)) as db:
        assert applied_migrations(db) == ["001_notes"]
        assert db.execute("SELECT name FROM sqlite_master WHERE name = 'tags'").fetchone() is None


def test_a_file_from_a_newer_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    connect(path, NOTES).close()
    with closing(sqlite3.connect(path)) as db, db:
        db.execute("INSERT INTO _migrations VALUES ('003_from_the_future', 0)")
    with pytest.raises(DatabaseFileError, match="newer hybridlm.*003_from_the_future"):
        connect(path, NOTES)


def test_a_file_that_is_not_a_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_text("name,text\nnot,sqlite\n" * 200)
    with pytest.raises(DatabaseFileError, match=f"{path} is not a notes file"):
        connect(path, NOTES)


def test_another_programs_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    with closing(sqlite3.connect(path)) as db:
        db.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY)")
    with pytest.raises(DatabaseFileError, match="not a notes file"):
        connect(path, NOTES)


def test_a_file_from_before_migrations_is_taken_as_the_first_one(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    with closing(sqlite3.connect(path)) as db, db:
        db.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL)")
        db.execute("INSERT INTO notes (text) VALUES ('old')")
    with closing(connect(path, NOTES)) as db:
        assert applied_migrations(db) == ["001_notes", "002_tags"]
        assert [r[0] for r in db.execute("SELECT text FROM notes")] == ["old"]


def test_processes_opening_a_new_file_at_once_migrate_it_once(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    start = threading.Barrier(4)
    errors: list[sqlite3.Error | DatabaseFileError] = []

    def open_it() -> None:
        start.wait()
        try:
            connect(path, NOTES).close()
        except (sqlite3.Error, DatabaseFileError) as err:  # reported below, on the test's thread
            errors.append(err)

    threads = [threading.Thread(target=open_it) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with closing(sqlite3.connect(path)) as db:
        assert applied_migrations(db) == ["001_notes", "002_tags"]


def test_a_transaction_commits_or_rolls_back_as_a_whole(tmp_path: Path) -> None:
    with closing(connect(tmp_path / "notes.db", NOTES)) as db:
        with pytest.raises(sqlite3.IntegrityError), transaction(db):
            db.execute("INSERT INTO notes (text) VALUES ('half')")
            db.execute("INSERT INTO notes (text) VALUES (NULL)")
        with transaction(db):
            db.execute("INSERT INTO notes (text) VALUES ('whole')")
        assert [r[0] for r in db.execute("SELECT text FROM notes")] == ["whole"]


def test_scripts_split_where_statements_end_not_at_every_semicolon() -> None:
    script = """
        CREATE TABLE t (x TEXT DEFAULT 'a;b', y TEXT);
        CREATE TRIGGER t_mark AFTER INSERT ON t BEGIN UPDATE t SET y = 'c;d'; END;
        -- a comment; with a semicolon
        INSERT INTO t DEFAULT VALUES
    """
    with closing(sqlite3.connect(":memory:")) as db:
        for statement in statements(script):
            db.execute(statement)
        assert db.execute("SELECT x, y FROM t").fetchall() == [("a;b", "c;d")]


# The files each store wrote before they recorded migrations must open with their data.

def test_an_old_knowledge_store_opens_with_its_documents(tmp_path: Path) -> None:
    path = tmp_path / "knowledge.db"
    with closing(sqlite3.connect(path, isolation_level=None)) as db:
        db.executescript("""
            CREATE TABLE IF NOT EXISTS documents (id INTEGER PRIMARY KEY, path TEXT UNIQUE NOT NULL,
                                                  sha256 TEXT NOT NULL, ingested REAL NOT NULL);
            CREATE TABLE IF NOT EXISTS chunks (id INTEGER PRIMARY KEY, document INTEGER NOT NULL REFERENCES documents(id),
                                               position INTEGER NOT NULL, heading TEXT, text TEXT NOT NULL,
                                               vector BLOB NOT NULL);
            CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5(text, heading);
            INSERT INTO documents VALUES (1, '/docs/faq.md', 'abc', 0);
            INSERT INTO chunks VALUES (1, 1, 0, 'Cards', 'Cards arrive in 5 days.', x'00000000');
        """)
    store = KnowledgeStore(path)
    assert store.documents() == [("/docs/faq.md", 1)]
    assert store.delete(Path("/docs/faq.md"))
    store.close()


def test_an_old_flow_state_store_opens_with_its_conversations(tmp_path: Path) -> None:
    path = tmp_path / "flows.db"
    with closing(sqlite3.connect(path)) as db, db:
        db.execute("CREATE TABLE IF NOT EXISTS flow_state (conversation TEXT PRIMARY KEY, flow TEXT, "
                   "step TEXT, slots TEXT, updated REAL)")
        db.execute("INSERT INTO flow_state VALUES ('c1', 'card_not_arrived', 'reorder', '{\"days\": 7}', 0)")
    assert FlowStore(path).get("c1") == ("card_not_arrived", "reorder", {"days": 7})


class CountingEncoder:
    name = "counting"

    def __init__(self) -> None:
        self.texts: list[str] = []

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        self.texts += texts
        return np.ones((len(texts), 2), dtype=np.float32)


def test_an_old_embedding_cache_opens_with_its_vectors(tmp_path: Path) -> None:
    path = tmp_path / "embeddings.db"
    encoder = CountingEncoder()
    with closing(sqlite3.connect(path)) as db, db:
        db.execute("CREATE TABLE IF NOT EXISTS vectors (key TEXT PRIMARY KEY, dim INTEGER, vec BLOB)")
        key = EmbeddingCache._key(encoder.name, "cached")
        db.execute("INSERT INTO vectors VALUES (?, 2, ?)", (key, np.array([0.6, 0.8], dtype=np.float32).tobytes()))
    cache = EmbeddingCache(path)
    vectors = cache.encode(encoder, ["cached", "new"])
    assert encoder.texts == ["new"]
    assert vectors.tolist() == [[pytest.approx(0.6), pytest.approx(0.8)], [1.0, 1.0]]
    cache.close()
