"""Workers that are plain code: arithmetic, changes in percent, days between dates. Exact where a model is
not."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, field_validator

from hybridlm.agents.workers import StepContext, WorkerFailed, worker
from hybridlm.routing.answer_features import safe_arithmetic
from hybridlm.tools.grounding import NUMBER


class ExpressionInput(BaseModel):
    expression: str


class Value(BaseModel):
    value: float


@worker("calculate", input=ExpressionInput, output=Value,
        description="the value of an arithmetic expression (+ - * / and parentheses over numbers)")
def calculate(inputs: ExpressionInput, context: StepContext) -> Value:
    value = safe_arithmetic(inputs.expression)
    if value is None:
        raise WorkerFailed(f"{inputs.expression!r} is not arithmetic over numbers")
    return Value(value=round(value, 6))


class ChangeInput(BaseModel):
    before: float | str
    after: float | str

    @field_validator("before", "after")
    @classmethod
    def _number(cls, value: float | str) -> float:
        """A figure as a model copies it ("$4.1M", "1,250"); a text with several numbers is not one figure."""
        if isinstance(value, float | int):
            return float(value)
        found = NUMBER.findall(value.lower())
        if len(found) != 1:
            raise ValueError(f"{value!r} is not one figure ({len(found)} numbers in it)")
        return float(found[0][0].replace(",", ""))


class Change(BaseModel):
    change: float
    percent: float | None


@worker("percent_change", input=ChangeInput, output=Change,
        description="the change from before to after, and in percent of before")
def percent_change(inputs: ChangeInput, context: StepContext) -> Change:
    before, after = float(inputs.before), float(inputs.after)
    percent = round((after - before) / abs(before) * 100, 2) if before else None
    return Change(change=round(after - before, 6), percent=percent)


class DatesInput(BaseModel):
    start: dt.date
    end: dt.date


class Days(BaseModel):
    days: int


@worker("days_between", input=DatesInput, output=Days, description="the days from start to end (ISO dates)")
def days_between(inputs: DatesInput, context: StepContext) -> Days:
    return Days(days=(inputs.end - inputs.start).days)
