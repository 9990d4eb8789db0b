"""The knowledge store: documents, their chunks, vectors and a full-text index in one SQLite file.
Re-ingesting a changed file replaces its chunks; an unchanged one is skipped; files can be deleted."""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hybridlm.models.encoder import load_encoder
from hybridlm.rag.chunking import Chunk, chunk_text
from hybridlm.rag.readers import DocumentError, read_text
from hybridlm.sqlite_db import Schema, connect, transaction

STORE_FILE = "knowledge.db"
ENCODER = "minilm"
RRF_K = 60
SCHEMA = Schema("knowledge store", [
    ("001_documents_chunks_fts", """
        CREATE TABLE documents (id INTEGER PRIMARY KEY, path TEXT UNIQUE NOT NULL, sha256 TEXT NOT NULL,
                                ingested REAL NOT NULL);
        CREATE TABLE chunks (id INTEGER PRIMARY KEY, document INTEGER NOT NULL REFERENCES documents(id),
                             position INTEGER NOT NULL, heading TEXT, text TEXT NOT NULL, vector BLOB NOT NULL);
        CREATE VIRTUAL TABLE chunks_fts USING fts5(text, heading);
    """),
], legacy_table="documents")
WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class Hit:
    chunk_id: int
    path: str
    heading: str
    text: str
    score: float
    dense_rank: int | None
    keyword_rank: int | None


class KnowledgeStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._db = connect(path, SCHEMA)
        self._lock = threading.Lock()
        self._matrix: tuple[np.ndarray, np.ndarray] | None = None
        self._version: int | None = None

    def ingest(self, path: Path) -> int | None:
        """Chunks stored for the file, or None when it is unchanged since the last ingest."""
        outcome = self.ingest_many([path])[str(path)]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def ingest_many(self, paths: Sequence[Path]) -> dict[str, int | None | Exception]:
        """Per file: chunks stored, None if unchanged, or the error that stopped it; embeddings in
        one batch for all files, each file written in its own transaction."""
        outcomes: dict[str, int | None | Exception] = {}
        pending: list[tuple[Path, str, list[Chunk]]] = []
        for path in paths:
            try:
                text = read_text(path)
            except (DocumentError, OSError) as err:
                outcomes[str(path)] = err
                continue
            digest = hashlib.sha256(text.encode()).hexdigest()
            with self._lock:
                row = self._db.execute("SELECT sha256 FROM documents WHERE path = ?",
                                       (str(path.resolve()),)).fetchone()
            if row and row[0] == digest:
                outcomes[str(path)] = None
            else:
                pending.append((path, digest, chunk_text(text)))
        texts = [f"{c.heading}\n{c.text}" for _, _, chunks in pending for c in chunks]
        vectors = load_encoder(ENCODER).encode(texts) if texts else np.zeros((0, 1), dtype=np.float32)
        offset = 0
        for path, digest, chunks in pending:
            self._write(str(path.resolve()), digest, chunks, vectors[offset:offset + len(chunks)])
            offset += len(chunks)
            outcomes[str(path)] = len(chunks)
        return outcomes

    def _write(self, key: str, digest: str, chunks: list[Chunk], vectors: np.ndarray) -> None:
        with self._lock:
            with transaction(self._db):
                self._delete(key)
                doc = self._db.execute("INSERT INTO documents (path, sha256, ingested) VALUES (?, ?, ?)",
                                       (key, digest, time.time())).lastrowid
                for chunk, vector in zip(chunks, vectors, strict=True):
                    cid = self._db.execute(
                        "INSERT INTO chunks (document, position, heading, text, vector) VALUES (?, ?, ?, ?, ?)",
                        (doc, chunk.position, chunk.heading, chunk.text, vector.astype(np.float32).tobytes()),
                    ).lastrowid
                    self._db.execute("INSERT INTO chunks_fts (rowid, text, heading) VALUES (?, ?, ?)",
                                     (cid, chunk.text, chunk.heading))
            self._matrix = None

    def _delete(self, key: str) -> bool:
        row = self._db.execute("SELECT id FROM documents WHERE path = ?", (key,)).fetchone()
        if not row:
            return False
        ids = [r[0] for r in self._db.execute("SELECT id FROM chunks WHERE document = ?", (row[0],))]
        self._db.executemany("DELETE FROM chunks_fts WHERE rowid = ?", [(i,) for i in ids])
        self._db.execute("DELETE FROM chunks WHERE document = ?", (row[0],))
        self._db.execute("DELETE FROM documents WHERE id = ?", (row[0],))
        return True

    def delete(self, path: Path) -> bool:
        with self._lock:
            with transaction(self._db):
                deleted = self._delete(str(path.resolve()))
            self._matrix = None
        return deleted

    def documents(self) -> list[tuple[str, int]]:
        with self._lock:
            return list(self._db.execute(
                "SELECT d.path, COUNT(c.id) FROM documents d LEFT JOIN chunks c ON c.document = d.id "
                "GROUP BY d.id ORDER BY d.path"))

    def _vectors(self) -> tuple[np.ndarray, np.ndarray]:
        """All chunk vectors, re-read when this or another process (`hybridlm ingest` beside a
        running gateway) has changed the store since."""
        version = self._db.execute("PRAGMA data_version").fetchone()[0]
        if version != self._version:
            self._matrix, self._version = None, version
        if self._matrix is None:
            rows = list(self._db.execute("SELECT id, vector FROM chunks ORDER BY id"))
            ids = np.array([r[0] for r in rows], dtype=np.int64)
            matrix = np.stack([np.frombuffer(r[1], dtype=np.float32) for r in rows]) if rows else np.zeros((0, 1))
            self._matrix = (ids, matrix)
        return self._matrix

    def search(self, query: str, k: int = 5, candidates: int = 30) -> list[Hit]:
        """Dense and keyword (BM25) rankings fused by reciprocal rank."""
        vector = load_encoder(ENCODER).encode([query])[0]
        with self._lock:
            ids, matrix = self._vectors()
            terms = " OR ".join(f'"{w}"' for w in WORD.findall(query.lower()))
            keyword = [r[0] for r in self._db.execute(
                "SELECT rowid FROM chunks_fts WHERE chunks_fts MATCH ? ORDER BY rank LIMIT ?",
                (terms, candidates))] if terms else []
        dense = list(ids[np.argsort(-(matrix @ vector))[:candidates]]) if len(ids) else []
        dense_rank = {int(c): r for r, c in enumerate(dense)}
        keyword_rank = {int(c): r for r, c in enumerate(keyword)}
        fused = {c: sum(1.0 / (RRF_K + ranks[c] + 1) for ranks in (dense_rank, keyword_rank) if c in ranks)
                 for c in {*dense_rank, *keyword_rank}}
        best = sorted(fused, key=lambda c: -fused[c])[:k]
        return self._hits(best, fused, dense_rank, keyword_rank)

    def _hits(self, chunk_ids: Sequence[int], fused: dict[int, float], dense_rank: dict[int, int],
              keyword_rank: dict[int, int]) -> list[Hit]:
        if not chunk_ids:
            return []
        marks = ",".join("?" * len(chunk_ids))
        with self._lock:
            rows = {r[0]: r for r in self._db.execute(
                f"SELECT c.id, d.path, c.heading, c.text FROM chunks c JOIN documents d ON d.id = c.document "
                f"WHERE c.id IN ({marks})", list(chunk_ids))}
        return [Hit(c, rows[c][1], rows[c][2] or "", rows[c][3], round(fused[c], 6), dense_rank.get(c),
                    keyword_rank.get(c)) for c in chunk_ids]

    def close(self) -> None:
        with self._lock:
            self._db.close()
