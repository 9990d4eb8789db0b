"""The spend book: what each tier and each API key has spent today and this calendar month, and what
calls in flight have reserved, in memory, so the budget check every paid call makes costs no query.

Days and months start at midnight in the configured time zone (`budgets.timezone`; None: the
machine's), so a day is 23 or 25 hours long across a DST change. The request log feeds the book
as it records each row (`RequestLog.spend_book`), and fills it from the file when it is opened.

A paid call to a tier with a budget first `reserve`s its worst-case cost: refused if what is spent,
plus what calls in flight hold, plus this estimate would pass a budget. After the call (whatever its
end) `release` gives the hold back and the recorded actual cost counts instead. One lock guards
every change, so a check and its reservation are one step for the event loop and worker threads alike.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Literal
from zoneinfo import ZoneInfo

Period = Literal["day", "month"]
Scope = tuple[Literal["tier", "key"], str]  # ("tier", "llm") or ("key", key_id)
Clock = Callable[[], float]
EPSILON_USD = 1e-9  # sums of float costs are not exact; a billionth of a dollar is no overshoot
PERIOD_WORDS = {"day": "today", "month": "this month"}


def zone(name: str | None) -> ZoneInfo | None:
    """The IANA zone named (None: the machine's local time, DST included)."""
    return ZoneInfo(name) if name else None


@dataclass(frozen=True)
class Periods:
    """The day and the calendar month a moment falls in, as [start, end) timestamps."""

    day_start: float
    day_end: float
    month_start: float
    month_end: float

    def contains(self, ts: float) -> bool:
        return self.day_start <= ts < self.day_end

    def start(self, period: Period) -> float:
        return self.day_start if period == "day" else self.month_start

    def end(self, period: Period) -> float:
        return self.day_end if period == "day" else self.month_end


def _midnight(day: dt.date, tz: ZoneInfo | None) -> float:
    # naive (tz None) is local time: .timestamp() asks the C library, which knows its DST rules
    return dt.datetime(day.year, day.month, day.day, tzinfo=tz).timestamp()


def periods(ts: float, tz: ZoneInfo | None = None) -> Periods:
    day = dt.datetime.fromtimestamp(ts, tz).date()
    first = day.replace(day=1)
    next_month = (first + dt.timedelta(days=32)).replace(day=1)
    return Periods(_midnight(day, tz), _midnight(day + dt.timedelta(days=1), tz), _midnight(first, tz),
                   _midnight(next_month, tz))


@dataclass(frozen=True)
class Budget:
    scope: Scope
    period: Period
    limit_usd: float
    label: str = ""  # how a refusal names the scope, e.g. "key 'k1' (ci)"; default from the scope

    def describe(self) -> str:
        kind, name = self.scope
        return self.label or f"{kind} '{name}'"


@dataclass(frozen=True)
class Refusal:
    """Why a call may not start: the budget it would pass, and by how much."""

    budget: Budget
    spent_usd: float
    reserved_usd: float
    estimate_usd: float
    retry_after_s: float  # until the budget's period starts again

    @property
    def reason(self) -> str:
        b = self.budget
        held = f" + ${self.reserved_usd:.6f} held by calls in flight" if self.reserved_usd else ""
        return (f"over budget: {b.describe()} {'daily' if b.period == 'day' else 'monthly'} budget "
                f"${b.limit_usd:.6f}: spent ${self.spent_usd:.6f} {PERIOD_WORDS[b.period]}{held}, "
                f"this call up to ${self.estimate_usd:.6f}")


@dataclass(eq=False)
class Hold:
    """A reservation; `SpendBook.release` gives it back (once, however often it is called)."""

    scopes: tuple[Scope, ...]
    amount_usd: float
    released: bool = field(default=False)


class SpendBook:
    def __init__(self, tz: ZoneInfo | None = None, clock: Clock = time.time) -> None:
        self.tz, self.clock = tz, clock
        self._lock = threading.Lock()
        self._periods = periods(clock(), tz)
        self._spent: dict[Period, dict[Scope, float]] = {"day": {}, "month": {}}
        self._reserved: dict[Scope, float] = {}

    # settled spend
    def add(self, tier: str | None, key_id: str | None, ts: float, cost_usd: float) -> None:
        """A recorded row's cost: counted for its tier and its key in the day and month it started in."""
        if not cost_usd:
            return
        scopes = _scopes(tier, key_id)
        with self._lock:
            p = self._roll()
            for period in ("day", "month"):
                if ts >= p.start(period):  # a row of an earlier period counts for nothing current
                    sums = self._spent[period]
                    for scope in scopes:
                        sums[scope] = sums.get(scope, 0.0) + cost_usd

    def load(self, rows: Iterable[tuple[str | None, str | None, float, float]]) -> None:
        """Sums from the file: (tier, key_id, spent today, spent this month) per tier and key."""
        with self._lock:
            for tier, key_id, today, month in rows:
                for scope in _scopes(tier, key_id):
                    for period, cost in (("day", today), ("month", month)):
                        if cost:
                            self._spent[period][scope] = self._spent[period].get(scope, 0.0) + cost

    def spent(self, scope: Scope, period: Period) -> float:
        with self._lock:
            self._roll()
            return self._spent[period].get(scope, 0.0)

    def reserved(self, scope: Scope) -> float:
        with self._lock:
            return self._reserved.get(scope, 0.0)

    @property
    def periods(self) -> Periods:
        with self._lock:
            return self._roll()

    # budgets
    def check(self, budgets: Iterable[Budget], estimate_usd: float = 0.0) -> Refusal | None:
        """The first budget that a call of this estimate would pass (or that is already reached), or None."""
        with self._lock:
            return self._refusal(budgets, estimate_usd)

    def reserve(self, budgets: Iterable[Budget], estimate_usd: float) -> Hold | Refusal:
        """Check and hold the estimate against every budget's scope in one step."""
        budgets = tuple(budgets)
        with self._lock:
            if refusal := self._refusal(budgets, estimate_usd):
                return refusal
            hold = Hold(tuple(dict.fromkeys(b.scope for b in budgets)), estimate_usd)
            for scope in hold.scopes:
                self._reserved[scope] = self._reserved.get(scope, 0.0) + estimate_usd
            return hold

    def release(self, hold: Hold) -> None:
        with self._lock:
            if hold.released:
                return
            hold.released = True
            for scope in hold.scopes:
                left = self._reserved.get(scope, 0.0) - hold.amount_usd
                if left > EPSILON_USD:
                    self._reserved[scope] = left
                else:
                    self._reserved.pop(scope, None)

    def _refusal(self, budgets: Iterable[Budget], estimate_usd: float) -> Refusal | None:
        p = self._roll()
        for b in budgets:
            spent = self._spent[b.period].get(b.scope, 0.0)
            held = self._reserved.get(b.scope, 0.0)
            used = spent + held
            if used >= b.limit_usd - EPSILON_USD or used + estimate_usd > b.limit_usd + EPSILON_USD:
                return Refusal(b, spent, held, estimate_usd, max(0.0, p.end(b.period) - self.clock()))
        return None

    def _roll(self) -> Periods:
        """The current periods; a new day (or month) starts its sums at zero. Under the lock."""
        now, p = self.clock(), self._periods
        if p.contains(now):
            return p
        fresh = periods(now, self.tz)
        if fresh.day_start != p.day_start:
            self._spent["day"] = {}
        if fresh.month_start != p.month_start:
            self._spent["month"] = {}
        self._periods = fresh
        return fresh


def _scopes(tier: str | None, key_id: str | None) -> tuple[Scope, ...]:
    scopes: list[Scope] = []
    if tier is not None:
        scopes.append(("tier", tier))
    if key_id is not None:
        scopes.append(("key", key_id))
    return tuple(scopes)
