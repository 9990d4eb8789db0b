"""One thread that owns a SQLite connection and commits queued writes in groups.

Callers never wait for the disk: they queue a statement and get a future the thread resolves
once it is committed. Whatever is queued when the thread wakes goes in one transaction, so a
burst costs one commit, not one per row. The queue is bounded: a caller that outruns the disk
waits for room instead of growing memory without end.

With `checkpoint_every_s`, no commit copies the write-ahead log back into the database file:
SQLite's automatic checkpoint runs inside the commit that fills the log, and every request waiting
on that commit waits for it too (a 5-row group commit: p99 5.4 ms with it, 0.44 ms without, measured
here). A thread of its own checkpoints instead, on a connection of its own, in PASSIVE mode (it
never waits for, nor holds up, the writer or any reader).
"""

from __future__ import annotations

import asyncio
import logging
import queue
import sqlite3
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from hybridlm.sqlite_db import is_busy, transaction

log = logging.getLogger(__name__)

COMMIT_ATTEMPTS = 3
RETRY_PAUSE_S = 0.2


Statement = tuple[str, tuple[Any, ...]]


@dataclass(frozen=True)
class _Write:
    """Statements that commit together or not at all (a request's row and its roll-ups)."""

    statements: tuple[Statement, ...]
    done: Future[None] = field(default_factory=Future)


@dataclass(frozen=True)
class _Barrier:
    """A place in the queue: resolved once everything queued before it is committed."""

    done: Future[None] = field(default_factory=Future)


_STOP = object()


class WriterClosed(RuntimeError):
    """A write queued after `close()`: nothing would commit it."""


class _Checkpointer:
    """Every `every_s` seconds, a PASSIVE checkpoint of the database file at `path` (see the module's docstring)."""

    def __init__(self, path: str, every_s: float, name: str) -> None:
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._every_s = every_s
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"{name} checkpoints", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stopping.wait(self._every_s):
            try:
                self._db.execute("PRAGMA wal_checkpoint(PASSIVE)")
            except sqlite3.Error as err:  # the next round tries again; the log only grows meanwhile
                log.warning("checkpoint failed: %s", type(err).__name__)
        self._db.close()

    def close(self) -> None:
        self._stopping.set()
        self._thread.join()


class GroupWriter:
    """The writer thread of one connection; the connection is its alone from here on."""

    def __init__(self, db: sqlite3.Connection, max_queued: int, name: str,
                 checkpoint_every_s: float | None = None) -> None:
        self._db = db
        self._name = name
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max_queued)
        self._closed = False
        self._checkpoints: _Checkpointer | None = None
        file = db.execute("PRAGMA database_list").fetchone()[2]  # '' for an in-memory database
        if checkpoint_every_s is not None and file:
            db.execute("PRAGMA wal_autocheckpoint=0")
            self._checkpoints = _Checkpointer(file, checkpoint_every_s, name)
        self._waiting_for_room = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"{name} waiting")
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, sql: str, params: tuple[Any, ...], block: bool = True) -> Future[None]:
        """Queue one statement. With the queue full, wait for room (block) or raise queue.Full."""
        return self.submit_all(((sql, params),), block)

    def submit_all(self, statements: tuple[Statement, ...], block: bool = True) -> Future[None]:
        """Queue statements that commit in the same transaction, as one place in the queue."""
        if self._closed:
            raise WriterClosed(f"{self._name} is closed")
        write = _Write(statements)
        self._queue.put(write, block=block)
        return write.done

    async def asubmit(self, sql: str, params: tuple[Any, ...]) -> None:
        await self.asubmit_all(((sql, params),))

    async def asubmit_all(self, statements: tuple[Statement, ...]) -> None:
        """Queue statements and wait until they are committed, without blocking the event loop.
        With the queue full, the wait for room is on one thread of the writer's, in arrival order,
        rather than on threads of the loop's default executor that other work needs."""
        try:
            done = self.submit_all(statements, block=False)
        except queue.Full:  # shielded: a caller cancelled while it waits must not take its write back
            waiting = asyncio.get_running_loop().run_in_executor(self._waiting_for_room, self.submit_all, statements)
            done = await asyncio.shield(waiting)
        await asyncio.wrap_future(done)

    def flush(self) -> None:
        """Wait until everything queued before this call is committed (or has failed)."""
        if self._closed:
            return
        barrier = _Barrier()
        self._queue.put(barrier)
        barrier.done.result()

    def close(self) -> None:
        """Commit what is queued, then stop the thread and close the connection; idempotent."""
        if self._closed:
            return
        self._waiting_for_room.shutdown()  # the writes waiting for room are queued first
        self._closed = True
        self._queue.put(_STOP)
        self._thread.join()
        if self._checkpoints is not None:  # the last connection to close checkpoints what is left
            self._checkpoints.close()

    def _run(self) -> None:
        stopping = False
        while not stopping:
            group = [self._queue.get()]
            while True:
                try:
                    group.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            stopping = any(item is _STOP for item in group)
            self._commit([item for item in group if isinstance(item, _Write)])
            for item in group:
                if isinstance(item, _Barrier):
                    item.done.set_result(None)
        self._db.close()

    def _commit(self, writes: list[_Write]) -> None:
        """All the writes in one transaction, tried again while another process holds the lock;
        on failure each future gets the error, and the log says how many were lost (not what)."""
        if not writes:
            return
        # A future its caller cancelled still has its write committed; it just is not told.
        told = [write.done for write in writes if write.done.set_running_or_notify_cancel()]
        for attempt in range(1, COMMIT_ATTEMPTS + 1):
            try:
                with transaction(self._db):
                    for write in writes:
                        for sql, params in write.statements:
                            self._db.execute(sql, params)
            except Exception as err:  # whatever it is, the futures waiting on these writes get it
                if is_busy(err) and attempt < COMMIT_ATTEMPTS:
                    time.sleep(RETRY_PAUSE_S * attempt)
                    continue
                log.error("%s: %d writes not committed after %d attempts: %s", self._name, len(writes), attempt, err)
                for done in told:
                    done.set_exception(err)
                return
            for done in told:
                done.set_result(None)
            return
