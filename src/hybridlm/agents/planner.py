"""The planner: a model turns a task into a plan of worker steps. It sees the workers' signatures and the
documents' names and first lines, never the documents themselves (the workers read those). An invalid plan
goes back with everything wrong with it, a bounded number of times; a planner that cannot make a valid plan
gives way to the next, and when none does, each document is read for what the task asks (`reading_plan`)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping, Sequence

from hybridlm.agents.step_record import Observer, StepRecord
from hybridlm.agents.task_plan import READING_WORKER, PlanInvalid, TaskPlan, parse_plan, plan_schema, reading_plan
from hybridlm.agents.workers import Worker
from hybridlm.config import AgentsConfig
from hybridlm.failures import APIError
from hybridlm.ledger import Ledger
from hybridlm.models.base import BackendError, GenerationParams
from hybridlm.tools.protocol import ResponseFormat
from hybridlm.types import Completion, Message

PLAN_TOKENS_PER_STEP = 60  # a step of a plan in JSON, its inputs included; the longest plan allowed fits
INSTRUCTIONS = """You plan a task for a team of workers. Break the task into steps; each step calls one worker.
An input may name a document as "@name" or an earlier step's output as "$id" or "$id.field".
Steps that do not depend on each other run at the same time. Every step's result goes to a writer who answers
the task afterwards, so no step writes the final answer. The writer sees only the steps' outputs: a label or
a score keeps none of a document's figures, so give each document the task needs a step that keeps what the
task asks of it (for example one excerpt or extract step per document) rather than passing whole documents on.

Workers:
{workers}

Reply with one JSON object only, in this form:
{example}"""

Ask = Callable[[str, list[Message], GenerationParams, Ledger], Awaitable[Completion]]


def planning_prompt(task: str, documents: Mapping[str, str], workers: Mapping[str, Worker]) -> list[Message]:
    catalogue = "\n".join(f"- {w.signature()}" for w in workers.values())
    listed = "\n".join(f"- @{name} ({len(text.split())} words): {_first_line(text)}" for name, text in documents.items())
    user = f"Task: {task}\n\nDocuments:\n{listed or '(none)'}"
    system = INSTRUCTIONS.format(workers=catalogue, example=_example(documents))
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def _example(documents: Mapping[str, str]) -> str:
    """The form of a plan, shown on this task's own documents: one step reading each of them."""
    names = list(documents) or ["report.md"]
    steps = [{"id": f"s{i}", "worker": "excerpt", "inputs": {"text": f"@{name}", "question": "..."}}
             for i, name in enumerate(names, 1)]
    return json.dumps({"steps": steps})


def _first_line(text: str) -> str:
    line = next((line.strip(" #*") for line in text.splitlines() if line.strip()), "")
    return json.dumps(line[:80])


class Planner:
    def __init__(self, config: AgentsConfig, workers: Mapping[str, Worker], ask: Ask) -> None:
        self.config, self.workers, self.ask = config, workers, ask

    async def plan(self, task: str, documents: Mapping[str, str], tiers: Sequence[tuple[str, bool]],
                   records: list[StepRecord], observe: Observer) -> TaskPlan:
        """A valid plan from the first of `tiers` (name, on the device) that makes one; every attempt is
        recorded. APIError (502 `plan_invalid`) when none does."""
        problems: list[str] = []
        for tier, on_device in tiers:
            messages = planning_prompt(task, documents, self.workers)
            for attempt in range(1 + self.config.max_replans):
                record = StepRecord(f"plan-{len(records) + 1}", "plan", tier=tier, attempts=attempt + 1)
                records.append(record)
                observe(record)
                ledger = Ledger()
                try:
                    written = await self.ask(tier, messages, self._params(on_device), ledger)
                    plan = parse_plan(written.text, self.workers, list(documents), self.config.max_steps)
                    record.status, record.output = "ok", plan.model_dump()
                    return plan
                except PlanInvalid as err:
                    problems = err.problems
                    record.status, record.error = "invalid", str(err)
                    if any(m["content"] == written.text for m in messages if m["role"] == "assistant"):
                        record.note = "the same plan again: this planner gives way"
                        break
                    messages = [*messages, {"role": "assistant", "content": written.text},
                                {"role": "user", "content": "That plan cannot run:\n- " + "\n- ".join(problems)
                                 + "\nWrite the whole plan again, fixed."}]
                except BackendError as err:
                    problems = [err.message]
                    record.status, record.error = "failed", err.message
                    break  # this tier cannot plan now: the next one may
                finally:
                    record.settle(ledger)
                    observe(record)
        if documents and READING_WORKER in self.workers:
            record = StepRecord(f"plan-{len(records) + 1}", "plan", status="ok", tier=tiers[-1][0],
                                note="no planner made a valid plan: each document is read for what the task asks")
            plan = reading_plan(task, list(documents))
            record.output = plan.model_dump()
            records.append(record)
            observe(record)
            return plan
        raise APIError(502, f"no valid plan for the task after {len(records)} attempts: " + "; ".join(problems),
                       "upstream_error", "plan_invalid")

    def _params(self, on_device: bool) -> GenerationParams:
        """The local model writes under the plan's grammar; a remote one is asked for a JSON object (not every
        OpenAI-compatible server takes a schema)."""
        if on_device:
            schema = plan_schema(self.workers)
            raw = {"type": "json_schema", "json_schema": {"name": "plan", "schema": schema}}
            response_format = ResponseFormat("json_schema", schema, "plan", True, raw)
        else:
            response_format = ResponseFormat("json_object", raw={"type": "json_object"})
        return GenerationParams(max_tokens=PLAN_TOKENS_PER_STEP * (self.config.max_steps + 1), temperature=0.0,
                                response_format=response_format)
