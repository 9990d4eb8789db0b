"""Task plans checked before they run, references resolved, workers registered and described, step records kept
without text: the logic of hybridlm.agents, no model involved."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

import pytest
from pydantic import BaseModel

from hybridlm.agents.step_record import StepRecord
from hybridlm.agents.task_plan import PlanInvalid, Step, parse_plan, plan_schema, resolve_inputs
from hybridlm.agents.tool_workers import ChangeInput, Days, Value
from hybridlm.agents.workers import WORKERS, load_workers, worker
from hybridlm.tools.grammar import response_grammar
from hybridlm.tools.protocol import ResponseFormat

DOCUMENTS = ["emea.md"]


def problems(plan: dict[str, Any] | str, documents: list[str] = DOCUMENTS) -> list[str]:
    try:
        parse_plan(plan if isinstance(plan, str) else json.dumps(plan), load_workers(), documents, max_steps=4)
    except PlanInvalid as err:
        return err.problems
    return []


def step(id: str, worker_name: str, **inputs: Any) -> dict[str, Any]:
    return {"id": id, "worker": worker_name, "inputs": inputs}


def test_a_valid_plan_runs_in_dependency_order() -> None:
    plan = parse_plan(json.dumps({"steps": [
        step("total", "calculate", expression="$a.value + $b.values.revenue"),
        step("a", "calculate", expression="1 + 2"),
        step("b", "extract", text="@emea.md", fields=["revenue"]),
    ]}), load_workers(), DOCUMENTS, max_steps=4)
    assert plan.dependencies() == {"total": {"a", "b"}, "a": set(), "b": set()}
    assert plan.order()[-1] == "total"


@pytest.mark.parametrize(("plan", "expected"), [
    ("I would start by reading the reports", "not JSON"),
    ({"steps": []}, "at least 1 item"),
    ({"steps": [step("a", "crystal_ball")]}, "'crystal_ball', which does not exist"),
    ({"steps": [step("a", "calculate", expression="$b.value"), step("b", "calculate", expression="$a.value")]},
     "cycle"),
    ({"steps": [step("a", "calculate", expression="$ghost.value")]}, "names the step '$ghost'"),
    ({"steps": [step("a", "calculate", expression="1"), step("b", "calculate", expression="$a.total")]},
     "names 'total' of step 'a', whose worker gives value"),
    ({"steps": [step("a", "extract", text="@q4.md", fields=["revenue"])]}, "the document '@q4.md'"),
    ({"steps": [step("a", "extract", text="@emea.md")]}, "the input 'fields' is missing"),
    ({"steps": [step("a", "extract", text="@emea.md", fields=["x"], mood="calm")]}, "unknown input 'mood'"),
    ({"steps": [step("a", "excerpt", text="@emea.md", question="q", budget_tokens=3)]}, "greater than or equal to 16"),
    ({"steps": [step("a", "calculate", expression="1"), step("a", "calculate", expression="2")]},
     "used more than once"),
    ({"steps": [step(f"s{i}", "calculate", expression="1") for i in range(5)]}, "at most 4 are allowed"),
])
def test_what_is_wrong_with_a_plan_is_said(plan: dict[str, Any] | str, expected: str) -> None:
    found = problems(plan)
    assert any(expected in p for p in found), found


def test_a_plan_that_leaves_a_document_unread_is_sent_back() -> None:
    plan = {"steps": [step("a", "sentiment", text="@emea.md")]}
    assert problems(plan) == []
    assert problems(plan, ["emea.md", "apac.md"]) == [
        "no step reads @apac.md: every document must be read by a step (the answer is written from the steps' "
        "results alone)"]


def test_every_problem_is_said_at_once() -> None:
    found = problems({"steps": [step("a", "crystal_ball"), step("b", "calculate", expression="$c.value"),
                                step("c", "calculate", expression="$b.value")]}, documents=[])
    assert len(found) == 2 and "crystal_ball" in found[0] and "cycle" in found[1]


def test_an_email_address_in_a_text_is_not_a_document_reference() -> None:
    assert problems({"steps": [step("a", "sentiment", text="write to ops@example.com today")]}, documents=[]) == []


class Out(BaseModel):
    value: float
    label: str


def test_references_resolve_to_values_whole_and_to_text_inside_a_text() -> None:
    outputs = {"a": Out(value=1.5, label="up")}
    resolved = resolve_inputs(Step(id="b", worker="x", inputs={
        "whole": "$a.value", "all": "$a", "inside": "went $a.label by $a.value", "doc": "@emea.md",
        "listed": ["$a.label", "@emea.md"], "mail": "ops@example.com"}), outputs, {"emea.md": "EMEA text"})
    assert resolved == {"whole": 1.5, "all": {"value": 1.5, "label": "up"}, "inside": "went up by 1.5",
                        "doc": "EMEA text", "listed": ["up", "EMEA text"], "mail": "ops@example.com"}


def test_the_plan_schema_is_a_grammar_the_local_model_can_follow() -> None:
    schema = plan_schema(load_workers())
    names = [item["properties"]["worker"]["const"] for item in schema["properties"]["steps"]["items"]["anyOf"]]
    assert set(names) == set(load_workers())
    assert response_grammar(ResponseFormat("json_schema", schema, "plan", True, {})) is not None


def test_a_registered_function_is_a_worker_its_cpu_work_off_the_loop() -> None:
    class In(BaseModel):
        n: int

    class Twice(BaseModel):
        n: int

    ran_on: list[str] = []

    @worker("test_twice", input=In, output=Twice)
    def twice(inputs: In, context: Any) -> Twice:
        """Twice the number."""
        ran_on.append(threading.current_thread().name)
        return Twice(n=2 * inputs.n)

    try:
        assert WORKERS["test_twice"] is twice
        assert twice.signature() == "test_twice(n: int) -> {n}: Twice the number."
        assert asyncio.run(twice.run(In(n=4), None)) == Twice(n=8)  # type: ignore[arg-type]
        assert ran_on and ran_on[0] != threading.main_thread().name
        with pytest.raises(ValueError, match="already registered"):
            worker("test_twice", input=In, output=Twice)(lambda inputs, context: Twice(n=0))
    finally:
        WORKERS.pop("test_twice")


def test_tools_compute_exactly() -> None:
    workers = load_workers()
    assert asyncio.run(workers["calculate"].run(workers["calculate"].input(expression="(5.3 - 4.1) * 2"),
                                                None)) == Value(value=2.4)  # type: ignore[arg-type]
    assert asyncio.run(workers["days_between"].run(workers["days_between"].input(
        start="2026-01-30", end="2026-03-01"), None)) == Days(days=30)  # type: ignore[arg-type]
    assert ChangeInput(before="$4.1M", after="5,300").before == 4.1
    with pytest.raises(ValueError, match="not one figure"):
        ChangeInput(before="fell 12% to $4.1M", after=5)


def test_a_step_record_keeps_only_the_shape_of_texts_unless_texts_are_stored() -> None:
    record = StepRecord("s1", "step", "extract", inputs={"text": "Alice Smith, 4 Elm St", "fields": ["name"]},
                        output={"values": {"name": "Alice Smith"}, "confidence": 0.9})
    kept = record.as_dict(keep_text=False)
    assert kept["inputs"] == {"text": "<21 chars>", "fields": ["<4 chars>"]}
    assert kept["output"] == {"values": {"name": "<11 chars>"}, "confidence": 0.9}
    assert "Alice" not in json.dumps(kept)
    assert record.as_dict(keep_text=True)["output"]["values"]["name"] == "Alice Smith"


def test_a_remote_tier_is_told_the_fields_in_words_not_shown_a_schema_to_copy() -> None:
    from hybridlm.agents.model_workers import fields_in_words

    schema = {"type": "object", "properties": {"label": {"enum": ["on track", "at risk"]}, "found": {"type": "boolean"},
                                               "revenue": {"anyOf": [{"type": "string"}, {"type": "null"}]}}}
    assert fields_in_words(schema) == 'label (one of "on track", "at risk"); found (true or false); revenue (text, or null)'
