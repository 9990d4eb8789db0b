"""A task plan: steps, each naming a worker and its inputs, which may name a document (`@name`) or an earlier
step's output (`$step` or `$step.field`, alone or inside a text). Checked whole before anything runs, so a
planner gets every problem back at once and plans again."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from graphlib import CycleError, TopologicalSorter
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from hybridlm.agents.workers import Worker
from hybridlm.config import validation_problems
from hybridlm.errors import HybridLMError
from hybridlm.tools.grounding import leaves

STEP_ID = r"[A-Za-z_][\w-]*"
WHOLE_REF = re.compile(rf"^\$({STEP_ID})((?:\.\w+)*)$")
INNER_REF = re.compile(rf"\$({STEP_ID})((?:\.\w+)*)")
DOCUMENT_REF = re.compile(r"@([\w][\w.-]*\w)")


class Step(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(pattern=f"^{STEP_ID}$", max_length=40)
    worker: str
    inputs: dict[str, Any] = Field(default_factory=dict)


class TaskPlan(BaseModel):
    model_config = ConfigDict(extra="forbid")
    steps: list[Step] = Field(min_length=1)

    def dependencies(self) -> dict[str, set[str]]:
        ids = {s.id for s in self.steps}
        return {s.id: {ref for ref, _ in _refs(s.inputs) if ref in ids} for s in self.steps}

    def order(self) -> list[str]:
        return list(TopologicalSorter(self.dependencies()).static_order())


class PlanInvalid(HybridLMError):
    """What is wrong with a plan, every problem on its own line: the planner is told all of them."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = list(problems)


READING_WORKER = "excerpt"


def reading_plan(task: str, documents: Sequence[str]) -> TaskPlan:
    """The plan when no planner made one: each document read for what the task asks, the answer written from
    what was found (map, then reduce)."""
    return TaskPlan(steps=[Step(id=f"read{i}", worker=READING_WORKER, inputs={"text": f"@{name}", "question": task})
                           for i, name in enumerate(documents, 1)])


def plan_schema(workers: Mapping[str, Worker]) -> dict[str, Any]:
    """The JSON Schema a planner's answer must follow: each step one of the workers, with that worker's inputs
    (the local model writes it under a grammar made from this, so it cannot name a worker or an input that
    does not exist)."""
    steps = [{"type": "object", "required": ["id", "worker", "inputs"],
              "properties": {"id": {"type": "string"}, "worker": {"const": name},
                             "inputs": _inputs_schema(worker)}} for name, worker in workers.items()]
    return {"type": "object", "required": ["steps"],
            "properties": {"steps": {"type": "array", "minItems": 1, "items": {"anyOf": steps}}}}


def _inputs_schema(worker: Worker) -> dict[str, Any]:
    schema = worker.input.model_json_schema()
    properties = {name: {k: v for k, v in spec.items() if k not in ("title", "default")}
                  for name, spec in schema.get("properties", {}).items()}
    return {"type": "object", "properties": properties, "required": schema.get("required", []),
            "additionalProperties": False}


def _strings(value: Any) -> Iterator[str]:
    return (leaf for leaf in leaves(value) if isinstance(leaf, str))


def _refs(value: Any) -> Iterator[tuple[str, str]]:
    """(step id, field path) for every step output the value names."""
    for text in _strings(value):
        whole = WHOLE_REF.match(text)
        for found in [whole] if whole else INNER_REF.finditer(text):
            yield found.group(1), found.group(2).lstrip(".")


def _documents(value: Any) -> Iterator[str]:
    """The documents the value names as a whole (`"@report.md"`); inside a text, `@name` is only read as a
    document when the task has one of that name (an e-mail address is not a reference)."""
    for text in _strings(value):
        if text.startswith("@") and (found := DOCUMENT_REF.fullmatch(text)):
            yield found.group(1)


def parse_plan(text: str, workers: Mapping[str, Worker], documents: Sequence[str], max_steps: int) -> TaskPlan:
    """The planner's answer as a plan that can run, or PlanInvalid with everything wrong with it."""
    try:
        data = json.loads(text[text.find("{"):text.rfind("}") + 1] if "{" in text else text)
    except json.JSONDecodeError as err:
        raise PlanInvalid([f"the plan is not JSON ({err.msg} at character {err.pos})"]) from None
    try:
        plan = TaskPlan.model_validate(data)
    except ValidationError as err:
        raise PlanInvalid([f"{where}: {message}" for where, message in validation_problems(err)]) from None
    problems = _problems(plan, workers, documents, max_steps)
    if problems:
        raise PlanInvalid(problems)
    return plan


def _problems(plan: TaskPlan, workers: Mapping[str, Worker], documents: Sequence[str], max_steps: int) -> list[str]:
    problems: list[str] = []
    if len(plan.steps) > max_steps:
        problems.append(f"the plan has {len(plan.steps)} steps; at most {max_steps} are allowed")
    ids = [s.id for s in plan.steps]
    if twice := sorted({i for i in ids if ids.count(i) > 1}):
        problems.append(f"step ids {twice} are used more than once")
    by_id = {s.id: s for s in plan.steps}
    for step in plan.steps:
        worker = workers.get(step.worker)
        if worker is None:
            problems.append(f"step '{step.id}' names the worker '{step.worker}', which does not exist "
                            f"(workers: {', '.join(sorted(workers))})")
            continue
        problems.extend(_input_problems(step, worker, workers, by_id, documents))
    read = {d for s in plan.steps for d in _documents(s.inputs)}
    if unread := [d for d in documents if d not in read]:
        problems.append(f"no step reads {', '.join('@' + d for d in unread)}: every document must be read by a step "
                        "(the answer is written from the steps' results alone)")
    if not twice:
        try:
            plan.order()
        except CycleError as err:
            cycle = " -> ".join(err.args[1])
            problems.append(f"the steps {cycle} depend on each other in a cycle")
    return problems


def _input_problems(step: Step, worker: Worker, workers: Mapping[str, Worker], by_id: Mapping[str, Step],
                    documents: Sequence[str]) -> Iterator[str]:
    fields = worker.input.model_fields
    where = f"step '{step.id}' ({worker.name})"
    for name in step.inputs:
        if name not in fields:
            yield f"{where}: unknown input '{name}' (inputs: {', '.join(fields)})"
    for name, spec in fields.items():
        if spec.is_required() and name not in step.inputs:
            yield f"{where}: the input '{name}' is missing"
    for name, value in step.inputs.items():
        if name not in fields:
            continue
        refs = list(_refs(value))
        for ref, path in refs:
            source = by_id.get(ref)
            if source is None:
                yield f"{where}: input '{name}' names the step '${ref}', which the plan does not have"
            elif ref == step.id:
                yield f"{where}: input '{name}' names the step's own output"
            elif path and source.worker in workers:
                outputs = workers[source.worker].output.model_fields
                if path.split(".")[0] not in outputs:
                    yield (f"{where}: input '{name}' names '{path.split('.')[0]}' of step '{ref}', whose worker "
                           f"gives {', '.join(outputs)}")
        for document in _documents(value):
            if document not in documents:
                yield f"{where}: input '{name}' names the document '@{document}', which the task does not have"
        if refs or any(f"@{d}" in text for d in documents for text in _strings(value)):
            continue  # the value is known once the step runs; its type is checked then
        try:
            TypeAdapter(Annotated[fields[name].annotation, fields[name]]).validate_python(value)
        except ValidationError as err:
            yield f"{where}: input '{name}': {err.errors()[0]['msg']}"


def resolve_inputs(step: Step, outputs: Mapping[str, BaseModel], documents: Mapping[str, str]) -> dict[str, Any]:
    """The step's inputs with every reference replaced by what it names: a whole-value reference by the value
    itself, one inside a text by its text."""
    return {name: _resolve(value, outputs, documents) for name, value in step.inputs.items()}


def _resolve(value: Any, outputs: Mapping[str, BaseModel], documents: Mapping[str, str]) -> Any:
    if isinstance(value, list):
        return [_resolve(v, outputs, documents) for v in value]
    if isinstance(value, dict):
        return {k: _resolve(v, outputs, documents) for k, v in value.items()}
    if not isinstance(value, str):
        return value
    if whole := WHOLE_REF.match(value):
        return _lookup(outputs[whole.group(1)], whole.group(2))
    if (name := value[1:] if value.startswith("@") else None) in documents:
        return documents[str(name)]

    def text_of(found: re.Match[str]) -> str:
        named = _lookup(outputs[found.group(1)], found.group(2)) if found.group(1) in outputs else found.group(0)
        return named if isinstance(named, str) else json.dumps(named)

    def document_of(found: re.Match[str]) -> str:
        return documents.get(found.group(1), found.group(0))

    return DOCUMENT_REF.sub(document_of, INNER_REF.sub(text_of, value))


def _lookup(output: BaseModel, path: str) -> Any:
    value: Any = output.model_dump()
    for part in path.lstrip(".").split(".") if path else []:
        value = value.get(part) if isinstance(value, dict) else None
    return value
