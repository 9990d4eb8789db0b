"""The key store: API keys in `keys.db` in the data dir, shared by the gateway and `hybridlm keys`.

A secret is shown once, when it is made, and stored only as its SHA-256: the secrets are 32
random bytes, so a fast hash is as good as a slow one and costs nothing per request. Lookups
are answered from memory; the file's `PRAGMA data_version` (one cheap query, no read of any
table) tells when another process (the CLI revoking a key) changed it, and the keys are read
again.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import sqlite3
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from hybridlm.errors import HybridLMError
from hybridlm.request import Caller
from hybridlm.sqlite_db import Schema, connect, transaction

KEYS_FILE_NAME = "keys.db"
SECRET_PREFIX = "hlm-"

MIGRATIONS: list[tuple[str, str]] = [
    (
        "001_keys",
        """
        CREATE TABLE keys (
            key_id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            secret_sha256 TEXT NOT NULL UNIQUE,
            admin INTEGER NOT NULL DEFAULT 0,
            tenant TEXT,
            profiles TEXT,
            tiers TEXT,
            budget_usd_per_day REAL,
            budget_usd_per_month REAL,
            requests_per_minute INTEGER,
            tokens_per_minute INTEGER,
            created REAL NOT NULL,
            revoked REAL
        );
        """,
    ),
]
SCHEMA = Schema("key store", MIGRATIONS)
LIMIT_COLUMNS = ("tenant", "budget_usd_per_day", "budget_usd_per_month", "requests_per_minute", "tokens_per_minute")


class UnknownKey(HybridLMError):
    """A key id the store does not have."""


@dataclass(frozen=True)
class KeyInfo:
    """A key as `list` shows it: everything but the secret and its hash."""

    caller: Caller
    created: float
    revoked: float | None

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self.caller), "created": self.created, "revoked": self.revoked}


def default_keys_path(data_dir: Path) -> Path:
    return data_dir / KEYS_FILE_NAME


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _names(values: Sequence[str] | None) -> str | None:
    return None if values is None else json.dumps(list(values))


def _caller(row: sqlite3.Row) -> Caller:
    profiles, tiers = row["profiles"], row["tiers"]
    return Caller(row["key_id"], row["name"], bool(row["admin"]),
                  profiles=None if profiles is None else tuple(json.loads(profiles)),
                  tiers=None if tiers is None else tuple(json.loads(tiers)),
                  **{column: row[column] for column in LIMIT_COLUMNS})


class KeyStore:
    """Safe to use from several threads; each process holds one connection."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._db = connect(path, SCHEMA)
        self._db.row_factory = sqlite3.Row
        self._version: int | None = None  # the file's data_version when `_by_digest` was read
        self._by_digest: dict[str, Caller] = {}

    def create(self, name: str, admin: bool = False, tenant: str | None = None,
               profiles: Sequence[str] | None = None, tiers: Sequence[str] | None = None,
               budget_usd_per_day: float | None = None, budget_usd_per_month: float | None = None,
               requests_per_minute: int | None = None, tokens_per_minute: int | None = None) -> tuple[str, str]:
        """A new key: (its public id, its secret). The secret is not kept; show it to the person now."""
        key_id = f"key-{secrets.token_hex(6)}"
        secret = SECRET_PREFIX + secrets.token_urlsafe(32)
        with self._lock, transaction(self._db):
            self._db.execute(
                "INSERT INTO keys (key_id, name, secret_sha256, admin, tenant, profiles, tiers, budget_usd_per_day, "
                "budget_usd_per_month, requests_per_minute, tokens_per_minute, created) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (key_id, name, _digest(secret), int(admin), tenant, _names(profiles), _names(tiers),
                 budget_usd_per_day, budget_usd_per_month, requests_per_minute, tokens_per_minute, time.time()))
            self._version = None  # our own writes do not move data_version for this connection
        return key_id, secret

    def list(self) -> list[KeyInfo]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM keys ORDER BY created").fetchall()
        return [KeyInfo(_caller(row), row["created"], row["revoked"]) for row in rows]

    def revoke(self, key_id: str) -> None:
        """From now on the key is refused, by every process using this file (within one lookup)."""
        with self._lock, transaction(self._db):
            done = self._db.execute("UPDATE keys SET revoked = ? WHERE key_id = ? AND revoked IS NULL",
                                    (time.time(), key_id))
            if not done.rowcount and self._db.execute("SELECT 1 FROM keys WHERE key_id = ?", (key_id,)).fetchone() is None:
                raise UnknownKey(f"no key '{key_id}' (see `hybridlm keys list`)")
            self._version = None

    def lookup(self, secret: str) -> Caller | None:
        """The caller a secret belongs to; None for an unknown or revoked one. The dict is keyed by
        digest, so how long a miss takes says nothing about any stored secret."""
        return self._current().get(_digest(secret))

    def active(self) -> bool:
        """Whether any unrevoked key exists: with none, the gateway asks for no key."""
        return bool(self._current())

    def _current(self) -> dict[str, Caller]:
        with self._lock:
            version = self._db.execute("PRAGMA data_version").fetchone()[0]
            if version != self._version:
                rows = self._db.execute("SELECT * FROM keys WHERE revoked IS NULL").fetchall()
                self._by_digest = {row["secret_sha256"]: _caller(row) for row in rows}
                self._version = version
            return self._by_digest

    def close(self) -> None:
        with self._lock:
            self._db.close()
