"""The one thread that runs a local model, behind a bounded queue.

A llama.cpp context answers one request at a time. Its calls run on a thread of their own (never
the event loop's default pool, which the rest of the gateway needs), and only `max_queue` requests
may wait for it: the next one is refused at once with the time the queue should take to drain, so
a router can send it elsewhere instead of letting it wait.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

from hybridlm.models.base import BackendError

T = TypeVar("T")


class LocalWorker:
    def __init__(self, name: str, max_queue: int) -> None:
        self.name = name
        self.max_queue = max_queue
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"hybridlm-{name}")
        self._lock = threading.Lock()
        self._admitted = 0  # running + waiting
        self._durations: deque[float] = deque(maxlen=32)

    @property
    def waiting(self) -> int:
        return max(0, self._admitted - 1)

    @property
    def busy(self) -> bool:
        return self._admitted > 0

    def retry_after(self) -> float:
        """Seconds until the queue has room, from the recent calls' durations (at least one)."""
        typical = sorted(self._durations)[len(self._durations) // 2] if self._durations else 2.0
        return max(1.0, typical * max(1, self._admitted - self.max_queue))

    def submit(self, work: Callable[[], T]) -> Future[T]:
        """Queue `work`, or refuse with kind 'busy' when `max_queue` requests already wait."""
        with self._lock:
            if self._admitted > self.max_queue:
                raise BackendError("busy", f"the local model '{self.name}' is busy: {self.waiting} requests are "
                                   "waiting for it", 503, retry_after=self.retry_after())
            self._admitted += 1
        future = self._executor.submit(self._timed, work)
        future.add_done_callback(self._release)
        return future

    def _timed(self, work: Callable[[], T]) -> T:
        started = time.perf_counter()
        try:
            return work()
        finally:
            self._durations.append(time.perf_counter() - started)

    def _release(self, _: Future[T]) -> None:
        with self._lock:
            self._admitted -= 1

    def shutdown(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
