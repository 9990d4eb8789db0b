"""The local model's worker and queue, with real threads: one job at a time, a bounded wait, refusals at once."""

from __future__ import annotations

import threading

import pytest

from hybridlm.models.base import BackendError
from hybridlm.models.local_worker import LocalWorker


def test_jobs_run_one_at_a_time_and_the_queue_refuses_beyond_max() -> None:
    worker = LocalWorker("test", max_queue=1)
    release = threading.Event()
    running = []

    def job(n: int) -> int:
        running.append(n)
        release.wait(10)
        return n

    first = worker.submit(lambda: job(1))
    second = worker.submit(lambda: job(2))  # waits
    assert worker.busy and worker.waiting == 1
    with pytest.raises(BackendError) as refused:
        worker.submit(lambda: job(3))
    assert refused.value.kind == "busy" and refused.value.retry_after is not None and refused.value.retry_after >= 1
    release.set()
    assert (first.result(10), second.result(10)) == (1, 2)
    assert running == [1, 2]  # never two at once, in order
    worker.shutdown()
    assert not worker.busy


def test_a_cancelled_waiting_job_frees_its_place() -> None:
    worker = LocalWorker("test", max_queue=1)
    release = threading.Event()
    first = worker.submit(lambda: release.wait(10))
    waiting = worker.submit(lambda: "never")
    assert waiting.cancel()
    third = worker.submit(lambda: "ran")  # the cancelled job's place is free again
    release.set()
    assert first.result(10) is True and third.result(10) == "ran"
    worker.shutdown()
