"""The spend book: days and months in a fixed zone across DST, reservations, release however a call ends,
and the budget wrapper and executor over scripted tiers."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from hybridlm.config import parse_config
from hybridlm.executor import BUDGET_EXHAUSTED
from hybridlm.models.base import BackendError, GenerationParams
from hybridlm.pipeline import Pipeline, RequestFailed
from hybridlm.request import Caller, Request
from hybridlm.request_log import RequestLog
from hybridlm.routing import HeuristicRouter
from hybridlm.spend import Budget, Hold, Refusal, SpendBook, periods
from hybridlm.types import Message
from tests.fakes import ScriptedBackend

NY = ZoneInfo("America/New_York")
LLM: tuple = ("tier", "llm")


class Clock:
    def __init__(self, when: dt.datetime) -> None:
        self.now = when.timestamp()

    def __call__(self) -> float:
        return self.now


def at(*args: int) -> float:
    return dt.datetime(*args, tzinfo=NY).timestamp()


# periods
def test_days_around_dst_are_23_and_25_hours_and_months_are_calendar_months() -> None:
    spring = periods(at(2024, 3, 10, 12), NY)  # clocks go forward at 02:00
    assert spring.day_start == at(2024, 3, 10) and spring.day_end - spring.day_start == 23 * 3600
    autumn = periods(at(2024, 11, 3, 12), NY)  # clocks go back at 02:00
    assert autumn.day_end - autumn.day_start == 25 * 3600
    assert (autumn.month_start, autumn.month_end) == (at(2024, 11, 1), at(2024, 12, 1))
    december = periods(at(2024, 12, 31, 23, 59), NY)
    assert (december.day_end, december.month_end) == (at(2025, 1, 1), at(2025, 1, 1))
    assert periods(at(2024, 3, 10) - 1, NY).day_start == at(2024, 3, 9)  # one second before midnight


def test_spend_rolls_over_at_local_midnight_and_at_the_month(tmp_path: Path) -> None:
    clock = Clock(dt.datetime(2024, 3, 31, 23, 0, tzinfo=NY))  # DST began this month
    book = SpendBook(NY, clock)
    book.add("llm", "k1", clock.now, 1.0)
    book.add("llm", None, at(2024, 3, 30, 12), 2.0)  # yesterday, recorded late: the month only
    assert book.spent(LLM, "day") == 1.0 and book.spent(LLM, "month") == 3.0
    assert book.spent(("key", "k1"), "day") == 1.0
    clock.now = at(2024, 3, 31, 23, 59, 59)
    assert book.spent(LLM, "day") == 1.0  # 04:00 UTC: still the 31st in New York
    clock.now = at(2024, 4, 1, 0, 0, 1)
    assert book.spent(LLM, "day") == 0.0 and book.spent(LLM, "month") == 0.0
    book.add("llm", "k1", at(2024, 3, 31, 23, 59), 5.0)  # started last month, recorded now: counts for neither
    book.add("llm", "k1", clock.now, 0.5)
    assert book.spent(LLM, "month") == 0.5 and book.spent(("key", "k1"), "day") == 0.5
    clock.now = at(2024, 4, 2, 9)
    assert (book.spent(LLM, "day"), book.spent(LLM, "month")) == (0.0, 0.5)


# reservations
def test_reservations_count_with_spend_until_released() -> None:
    clock = Clock(dt.datetime(2024, 6, 15, 12, tzinfo=NY))
    book = SpendBook(NY, clock)
    daily = (Budget(LLM, "day", 1.0),)
    book.add("llm", None, clock.now, 0.5)
    first = book.reserve(daily, 0.3)
    assert isinstance(first, Hold) and book.reserved(LLM) == pytest.approx(0.3)
    refused = book.reserve(daily, 0.3)  # 0.5 spent + 0.3 held + 0.3 > 1.0
    assert isinstance(refused, Refusal)
    assert (refused.spent_usd, refused.reserved_usd, refused.estimate_usd) == (0.5, pytest.approx(0.3), 0.3)
    assert "tier 'llm' daily budget $1.000000: spent $0.500000 today + $0.300000 held" in refused.reason
    assert refused.retry_after_s == pytest.approx(12 * 3600)
    book.release(first)
    book.release(first)  # twice: given back once
    assert book.reserved(LLM) == 0.0
    assert isinstance(book.reserve(daily, 0.3), Hold)
    book.add("llm", None, clock.now, 0.5)  # the budget reached: nothing more, even a free call
    assert book.check(daily) is not None and book.check(daily).spent_usd == 1.0


def test_a_call_must_fit_every_budget_it_counts_against() -> None:
    clock = Clock(dt.datetime(2024, 6, 15, 12, tzinfo=NY))
    book = SpendBook(NY, clock)
    budgets = (Budget(LLM, "day", 10.0), Budget(LLM, "month", 100.0),
               Budget(("key", "k1"), "month", 1.0, "key 'k1' (ci)"))
    book.add("llm", "k1", at(2024, 6, 2), 0.9)
    refused = book.reserve(budgets, 0.2)
    assert isinstance(refused, Refusal) and "key 'k1' (ci) monthly budget $1.000000" in refused.reason
    assert refused.retry_after_s == pytest.approx(at(2024, 7, 1) - clock.now)
    held = book.reserve(budgets, 0.05)
    assert isinstance(held, Hold) and book.reserved(("key", "k1")) == book.reserved(LLM) == 0.05


def test_threads_reserving_at_once_never_overshoot() -> None:
    book = SpendBook(NY)
    daily = (Budget(LLM, "day", 1.0),)
    held: list[Hold] = []
    go = threading.Barrier(16)

    def grab() -> None:
        go.wait()
        for _ in range(1000):
            got = book.reserve(daily, 0.001)
            if isinstance(got, Hold):
                held.append(got)

    threads = [threading.Thread(target=grab) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(held) == 1000  # exactly what fits: 1.0 / 0.001
    releasers = [threading.Thread(target=lambda part=held[i::8]: [book.release(h) for h in part]) for i in range(8)]
    for t in releasers:
        t.start()
    for t in releasers:
        t.join()
    assert book.reserved(LLM) == 0.0


# the wrapper and the executor, over scripted tiers
class Gate(ScriptedBackend):
    """Holds every call until released, so calls overlap; may fail or be cancelled meanwhile."""

    def __init__(self, model_name: str) -> None:
        super().__init__(model_name)
        self.open = asyncio.Event()
        self.waiting = 0

    async def complete(self, messages: list[Message], params: GenerationParams):  # type: ignore[no-untyped-def]
        self.waiting += 1
        await self.open.wait()
        return await super().complete(messages, params)

    async def stream(self, messages: list[Message], params: GenerationParams):  # type: ignore[no-untyped-def]
        self.waiting += 1
        await self.open.wait()
        async for chunk in super().stream(messages, params):
            yield chunk


PARAMS = GenerationParams(max_tokens=10)
PROMPT = [{"role": "user", "content": "x" * 400}]  # 100 tokens by the estimate, as the scripted tier reports
# at $1 in / $4 out per million: 100 in + 10 out = $0.00014 at most; the scripted answer ("big says hi") $0.000112
ESTIMATE = 0.00014


def make(tmp_path: Path, when: str = "refuse", **llm: object) -> tuple[Pipeline, ScriptedBackend, Gate]:
    config = parse_config({"tiers": {"slm": {"backend": "local"},
                                     "llm": {"backend": "openai", "base_url": "http://127.0.0.1:9/v1", "model": "big",
                                             "price": {"input": 1.0, "output": 4.0}, **llm}},
                           "budgets": {"when_exhausted": when}})
    slm, gate = ScriptedBackend("small"), Gate("big")
    return Pipeline(config, {"slm": slm, "llm": gate}, HeuristicRouter(), RequestLog(tmp_path / "log.db")), slm, gate


def test_concurrent_forced_calls_stop_at_what_the_budget_fits(tmp_path: Path) -> None:
    pipeline, _, gate = make(tmp_path, budget_usd_per_day=ESTIMATE * 5.5)

    async def burst() -> list[object]:
        tasks = [asyncio.create_task(pipeline.run(Request(PROMPT, "llm", PARAMS))) for _ in range(10)]
        while gate.waiting < 5:
            await asyncio.sleep(0.001)
        await asyncio.sleep(0.01)
        assert pipeline.spend.reserved(LLM) == pytest.approx(5 * ESTIMATE)
        gate.open.set()
        return await asyncio.gather(*tasks, return_exceptions=True)

    results = asyncio.run(burst())
    refused = [r for r in results if isinstance(r, RequestFailed)]
    assert len(refused) == 5 and gate.waiting == 5
    assert {(r.error.status, r.error.code) for r in refused} == {(429, "budget_exhausted")}
    assert pipeline.spend.reserved(LLM) == 0.0
    assert pipeline.spend.spent(LLM, "day") == pytest.approx(5 * 0.000112)
    assert sorted(r["http_status"] for r in pipeline.log.recent(100)) == [200] * 5 + [429] * 5


def test_a_failed_or_cancelled_call_gives_its_reservation_back(tmp_path: Path) -> None:
    pipeline, _, gate = make(tmp_path, budget_usd_per_month=1.0)
    gate.enqueue(BackendError("timeout", "too slow"))

    async def scenario() -> None:
        failing = asyncio.create_task(pipeline.run(Request(PROMPT, "llm", PARAMS)))
        leaving = asyncio.create_task(pipeline.run(Request(PROMPT, "llm", PARAMS)))
        while gate.waiting < 2:
            await asyncio.sleep(0.001)
        assert pipeline.spend.reserved(LLM) == pytest.approx(2 * ESTIMATE)
        leaving.cancel()
        gate.open.set()
        with pytest.raises(RequestFailed, match="too slow"):
            await failing
        with pytest.raises(asyncio.CancelledError):
            await leaving

    asyncio.run(scenario())
    assert pipeline.spend.reserved(LLM) == 0.0 and pipeline.spend.spent(LLM, "month") == 0.0


def test_a_stream_holds_its_reservation_until_it_closes(tmp_path: Path) -> None:
    pipeline, _, gate = make(tmp_path, budget_usd_per_day=1.0)
    gate.open.set()

    async def scenario() -> None:
        stream = await pipeline.run_stream(Request(PROMPT, "llm", PARAMS))
        assert pipeline.spend.reserved(LLM) == pytest.approx(ESTIMATE)  # the first chunk is out, the rest to come
        await stream.chunks.aclose()  # type: ignore[attr-defined]  # the reader stops early

    asyncio.run(scenario())
    assert pipeline.spend.reserved(LLM) == 0.0
    [row] = pipeline.log.recent()
    assert row["http_status"] == 499 and pipeline.spend.spent(LLM, "day") == pytest.approx(row["cost_usd"])


def test_degrade_sends_forced_and_routed_calls_to_the_local_tier_marked(tmp_path: Path) -> None:
    pipeline, slm, gate = make(tmp_path, "degrade", budget_usd_per_day=0.0)
    gate.open.set()
    for model in ("llm", "hybrid"):
        answer = asyncio.run(pipeline.run(Request(
            [{"role": "user", "content": "Analyze and compare these two plans step by step in detail."}], model,
            PARAMS)))
        assert (answer.trace.tier, answer.trace.fallback) == ("slm", BUDGET_EXHAUSTED)
        assert "over budget: tier 'llm' daily budget $0.000000" in (answer.trace.fallback_reason or "")
    assert gate.history == [] and len(slm.history) == 2


def test_a_keys_budget_counts_its_requests_on_every_paid_tier(tmp_path: Path) -> None:
    pipeline, slm, gate = make(tmp_path, "refuse")
    gate.open.set()
    caller = Caller("k1", "ci", budget_usd_per_day=ESTIMATE * 2.5)
    other = Caller("k2", "web", budget_usd_per_day=ESTIMATE * 2.5)

    def ask(who: Caller, model: str = "llm") -> object:
        try:
            return asyncio.run(pipeline.run(Request(PROMPT, model, PARAMS, caller=who))).trace
        except RequestFailed as failed:
            return failed

    served = [ask(caller) for _ in range(2)]
    refused = ask(caller)
    assert all(t.key_id == "k1" for t in served)
    assert isinstance(refused, RequestFailed) and refused.error.status == 429
    assert "key 'k1' (ci) daily budget" in refused.error.message and "retry-after" in refused.error.headers
    assert ask(caller, "slm").tier == "slm"  # the free tier is not the key's budget's business
    assert ask(other).tier == "llm"  # another key's budget is its own
    assert pipeline.spend.spent(("key", "k1"), "day") == pytest.approx(2 * 0.000112)
    assert pipeline.log.get(refused.trace.request_id)["key_id"] == "k1"
