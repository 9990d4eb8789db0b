"""Carries out a task: plan it, run the plan's steps (independent ones at the same time), and have the LLM
write the answer from their results.

Each step runs with a timeout and retries (a model step's invalid output is not asked for again of the same
tier: greedy, it would be written again); a model step whose output fails validation on the local tier, or
that is less sure than `agents.min_confidence`, is done again by the LLM, which reads its long texts narrowed
to what the step asks (`agents.escalation_tokens`). A failed step's dependants are
skipped and the answer is told what is missing. Every call goes through the executor's stacks (priced,
redacted before a remote tier, within the tiers' and the key's budgets); the task's own budget stops new
steps once spent, and the local tier then writes the answer from what was done.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import replace
from graphlib import TopologicalSorter
from importlib.util import find_spec
from typing import TYPE_CHECKING

from pydantic import BaseModel, ValidationError

from hybridlm.agents.planner import Ask, Planner
from hybridlm.agents.step_record import Observer, StepRecord
from hybridlm.agents.task_plan import Step, TaskPlan, resolve_inputs
from hybridlm.agents.workers import CallTier, StepContext, Worker, WorkerFailed, available_workers
from hybridlm.errors import HybridLMError
from hybridlm.executor import BUDGET_EXHAUSTED, LLM_UNAVAILABLE, Executor
from hybridlm.failures import from_backend
from hybridlm.ledger import Ledger
from hybridlm.models.base import BackendError, GenerationParams, estimate_tokens
from hybridlm.models.wrappers.budget import OVER_BUDGET
from hybridlm.plans import Orchestrated
from hybridlm.privacy.placeholders import Redaction
from hybridlm.request import Request
from hybridlm.types import Completion, Decision, Message, Usage

if TYPE_CHECKING:
    from hybridlm.shrinking import Shrunk


log = logging.getLogger(__name__)

TASK_BUDGET = "task_budget"
ANSWER_INSTRUCTIONS = ("You answer a task from the results of steps that workers did on its documents. Use only "
                       "these results; keep every figure and name exactly as they give it; say what is missing if "
                       "a step was not done. Answer directly, without describing the steps.")


class TaskRunner:
    def __init__(self, executor: Executor) -> None:
        self.executor = executor
        self.d = executor.d
        self.config = executor.d.config.agents

    async def run(self, plan: Orchestrated, request: Request, ledger: Ledger) -> tuple[Completion, Decision]:
        documents = dict(plan.documents)
        workers = await asyncio.to_thread(available_workers, self.d)
        if ledger.redaction is None and any(self.d.redacts(t) for t in self.d.backends):
            ledger.redaction = Redaction()  # one set of placeholders for all the task's calls
        local, remote = self.d.local_tier, None if plan.local_only else self.d.remote_tier
        observe = request.observer or (lambda _: None)
        planners = [(t, self.d.runs_here(t)) for t in self._planning_tiers(plan, local, remote)]
        planner = Planner(self.config, workers, self._asking(request, ledger))
        task_plan = await planner.plan(plan.task, documents, planners, ledger.steps, observe)
        outputs = await self._run_steps(plan.task, task_plan, workers, documents, request, ledger, local, remote,
                                        observe)
        answer = await self._answer(plan, task_plan, outputs, request, ledger, local, remote, observe)
        ledger.baseline = Usage(estimate_tokens(plan.task + "".join(documents.values())), answer.usage.completion_tokens)
        return answer, self._decision(plan, ledger)

    def _planning_tiers(self, plan: Orchestrated, local: str, remote: str | None) -> list[str]:
        """The LLM plans, with the local model behind it (the LLM failing, or out of budget); a task the router
        scored below its threshold is the local model's to plan alone. Behind them all, the reading plan."""
        simple = plan.decision.score is not None and plan.decision.score < (plan.decision.threshold or 0.0)
        if remote is None or (simple and self.config.local_planning):
            return [local]
        return [remote, local]

    def _asking(self, request: Request, ledger: Ledger) -> Ask:
        """A planning call; a remote planner's failure is noted as a fallback (the next planner tries), a spent
        budget that refuses ends the task (429)."""
        async def ask(tier: str, messages: list[Message], params: GenerationParams, part: Ledger) -> Completion:
            part.redaction = ledger.redaction
            try:
                return await self.executor.paid(tier, part, request.caller).complete(messages, params)
            except BackendError as err:
                if err.kind == OVER_BUDGET and self.d.config.budgets.when_exhausted == "refuse":
                    raise from_backend(err) from None
                if tier != self.d.local_tier:
                    kind = BUDGET_EXHAUSTED if err.kind == OVER_BUDGET else LLM_UNAVAILABLE
                    ledger.note_fallback(kind, f"{err.message}; the local model plans")
                raise
            finally:
                ledger.spends.extend(part.spends)

        return ask

    # the steps
    async def _run_steps(self, task: str, task_plan: TaskPlan, workers: Mapping[str, Worker],
                         documents: Mapping[str, str], request: Request, ledger: Ledger, local: str,
                         remote: str | None, observe: Observer) -> dict[str, BaseModel]:
        dependencies = task_plan.dependencies()
        steps = {s.id: s for s in task_plan.steps}
        records = {s.id: StepRecord(s.id, "step", s.worker, sorted(dependencies[s.id])) for s in task_plan.steps}
        ledger.steps.extend(records[i] for i in task_plan.order())
        outputs: dict[str, BaseModel] = {}
        sorter = TopologicalSorter(dependencies)
        sorter.prepare()
        gate = asyncio.Semaphore(self.config.concurrency)
        running: dict[asyncio.Task[BaseModel | None], str] = {}

        async def step_task(step: Step, record: StepRecord) -> BaseModel | None:
            async with gate:
                return await self._step(task, step, workers[step.worker], record, documents, outputs, request,
                                        ledger, local, remote, observe)

        try:
            while sorter.is_active():
                for step_id in sorter.get_ready():
                    record = records[step_id]
                    unmet = [d for d in dependencies[step_id] if d not in outputs]
                    why = (f"needs {', '.join(unmet)}, which did not finish" if unmet else self._budget_spent(ledger))
                    if why is not None:
                        record.status, record.note = "skipped", why
                        observe(record)
                        sorter.done(step_id)
                        continue
                    running[asyncio.create_task(step_task(steps[step_id], record))] = step_id
                if not running:
                    continue
                done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                for finished in done:
                    step_id = running.pop(finished)
                    if (output := finished.result()) is not None:
                        outputs[step_id] = output
                    sorter.done(step_id)
        finally:
            for unfinished in running:
                unfinished.cancel()
        return outputs

    async def _step(self, task: str, step: Step, worker: Worker, record: StepRecord, documents: Mapping[str, str],
                    outputs: Mapping[str, BaseModel], request: Request, ledger: Ledger, local: str,
                    remote: str | None, observe: Observer) -> BaseModel | None:
        """The step's output, or None when it failed (said in its record)."""
        record.started = time.time()
        record.tier = local
        observe(record)
        part = Ledger(redaction=ledger.redaction)
        try:
            inputs = worker.input.model_validate(resolve_inputs(step, outputs, documents))
        except ValidationError as err:
            problem = err.errors()[0]
            where = ".".join(str(p) for p in problem["loc"])
            return self._failed(record, part, ledger, observe, f"its inputs are not valid: {where}: {problem['msg']}")
        record.inputs = inputs.model_dump(mode="json")
        tiers = [local, remote] if worker.kind == "model" and remote is not None else [local]
        kept: BaseModel | None = None  # a local output the LLM was asked to improve on
        problem = ""
        for tier in tiers:
            if tier != local and (spent := self._budget_spent(ledger, part)) is not None:
                record.note = f"{record.note}; not escalated: {spent}" if record.note else spent
                break
            if tier != local:
                inputs, saved = await asyncio.to_thread(self._narrowed, task, inputs)
                if saved:
                    record.note = f"{record.note}, reading {saved} tokens less of its texts"
            context = StepContext(self.d, tier, self.d.runs_here(tier), self._calling(tier, part, request))
            for _ in range(1 + self.config.step_retries):
                record.attempts += 1
                try:
                    async with asyncio.timeout(self.config.step_timeout_s):
                        produced = await worker.run(inputs, context)
                    output = worker.output.model_validate(produced.model_dump())
                except TimeoutError:
                    problem = f"timed out after {self.config.step_timeout_s:g} s"
                    continue
                except (ValidationError, WorkerFailed) as err:
                    problem = (f"its output is not valid: {err.errors()[0]['msg']}" if isinstance(err, ValidationError)
                               else str(err))
                    if worker.kind == "model":
                        break
                    continue
                except BackendError as err:
                    problem = err.message
                    if err.kind in (OVER_BUDGET, "invalid_request"):
                        break
                    continue
                except HybridLMError as err:  # meant for a person (a missing extra, say): said as it is
                    problem = str(err)
                    break
                except Exception as err:  # a worker's defect fails its step, not the task; no inside detail
                    log.warning("worker %s failed in step %s: %s", worker.name, step.id, type(err).__name__)
                    log.debug("worker failure", exc_info=err)
                    problem = f"the worker failed ({type(err).__name__})"
                    continue
                confidence = getattr(output, "confidence", None)
                if tier == local and tier != tiers[-1] and confidence is not None \
                        and confidence < self.config.min_confidence:
                    kept, problem = output, f"confidence {confidence:.2f} < {self.config.min_confidence:.2f}"
                    break
                return self._succeeded(record, part, ledger, observe, output, escalated=tier != local)
            if tier != tiers[-1]:
                record.escalated = True
                record.note = f"{problem} on {tier}: done again by {tiers[-1]}"
        if kept is not None:  # the LLM could not do better: the local output stands, the local tier answered
            failed = f"the LLM failed ({problem}), " if part.tier not in (None, local) else ""
            record.note = f"{record.note}; {failed}the local output is kept"
            part.tier = local
            return self._succeeded(record, part, ledger, observe, kept, escalated=False)
        return self._failed(record, part, ledger, observe, problem)

    def _narrowed(self, task: str, inputs: BaseModel) -> tuple[BaseModel, int]:
        """A step's inputs as the LLM reads them when it does the step again, and the tokens that saves: each text
        over `agents.escalation_tokens` cut to its sentences that bear on what the step asks (its other inputs: the
        fields, question, labels or focus) and on the task. As they are without the encoders."""
        values = inputs.model_dump()
        budget = self.config.escalation_tokens
        long = [name for name, value in values.items() if isinstance(value, str) and estimate_tokens(value) > budget]
        asks = [value if isinstance(value, str) else " ".join(map(str, value))
                for name, value in values.items() if name not in long and isinstance(value, str | list)]
        query = " ".join([*asks, task])
        narrowed = {name: shrunk for name in long
                    if (shrunk := _narrowed_text(query, name, values[name], budget)) is not None}
        return (inputs.model_copy(update={name: shrunk.render() for name, shrunk in narrowed.items()}),
                sum(shrunk.saved_tokens for shrunk in narrowed.values()))

    def _calling(self, tier: str, part: Ledger, request: Request) -> CallTier:
        async def call(messages: list[Message], params: GenerationParams) -> Completion:
            return await self.executor.paid(tier, part, request.caller).complete(messages, params)

        return call

    @staticmethod
    def _succeeded(record: StepRecord, part: Ledger, ledger: Ledger, observe: Observer, output: BaseModel,
                   escalated: bool) -> BaseModel:
        record.status, record.output, record.escalated = "ok", output.model_dump(mode="json"), escalated
        TaskRunner._settle(record, part, ledger, observe)
        return output

    @staticmethod
    def _failed(record: StepRecord, part: Ledger, ledger: Ledger, observe: Observer, error: str) -> None:
        record.status, record.error = "failed", error
        TaskRunner._settle(record, part, ledger, observe)
        return None

    @staticmethod
    def _settle(record: StepRecord, part: Ledger, ledger: Ledger, observe: Observer) -> None:
        record.settle(part)
        ledger.spends.extend(part.spends)
        observe(record)

    def _budget_spent(self, ledger: Ledger, *more: Ledger) -> str | None:
        """Why the task may not spend more (its own budget is used up), or None."""
        spends = [s for x in (ledger, *more) for s in x.spends]
        cost = sum(s.cost_usd for s in spends)
        tokens = sum(s.usage.total_tokens for s in spends)
        if self.config.budget_usd is not None and cost >= self.config.budget_usd:
            return f"the task's budget of ${self.config.budget_usd:g} is spent (${cost:.6f})"
        if self.config.budget_tokens is not None and tokens >= self.config.budget_tokens:
            return f"the task's budget of {self.config.budget_tokens} tokens is spent ({tokens})"
        return None

    # the answer
    async def _answer(self, plan: Orchestrated, task_plan: TaskPlan, outputs: Mapping[str, BaseModel],
                      request: Request, ledger: Ledger, local: str, remote: str | None,
                      observe: Observer) -> Completion:
        record = StepRecord("answer", "answer", depends_on=[s.id for s in task_plan.steps])
        ledger.steps.append(record)
        tier = remote or local
        if remote is not None and (spent := self._budget_spent(ledger)) is not None:
            tier = local
            ledger.note_fallback(TASK_BUDGET, f"{spent}: the local tier answers from the steps done")
        observe(record)
        results = await asyncio.to_thread(self._results, plan.task, task_plan, outputs, ledger.steps)
        record.inputs = {"results": results}
        messages = [{"role": "system", "content": ANSWER_INSTRUCTIONS},
                    {"role": "user", "content": f"Task: {plan.task}\n\nResults of the steps:\n{results}"}]
        part = Ledger(redaction=ledger.redaction)
        try:
            answer = await self.executor.routed(tier, part, caller=request.caller).complete(messages, request.params)
        except BaseException:
            self._failed(record, part, ledger, observe, "the answer could not be written")
            ledger.tier = part.tier
            raise
        if part.fallback:
            ledger.note_fallback(part.fallback, part.fallback_reason or "")
        ledger.tier = part.tier
        record.output = {"answer": answer.text}
        record.status = "ok"
        self._settle(record, part, ledger, observe)
        return answer

    def _results(self, task: str, task_plan: TaskPlan, outputs: Mapping[str, BaseModel],
                 records: list[StepRecord]) -> str:
        """What the steps found, one line each, in the plan's order, narrowed to what bears on the task when
        longer than `agents.shrink_tokens`."""
        by_id = {r.id: r for r in records if r.kind == "step"}
        lines = []
        for step in task_plan.steps:
            inputs = ", ".join(f"{name}={_brief(value)}" for name, value in step.inputs.items())
            lines.append(f"[{step.id}] {step.worker}({inputs})")
            if step.id in outputs:
                lines += [f"{name}: {_plain(value)}" for name, value in outputs[step.id].model_dump(mode="json").items()]
            else:
                record = by_id[step.id]
                lines.append(f"not done ({record.error or record.note})")
        text = "\n".join(lines)
        shrunk = _narrowed_text(task, "results", text, self.config.shrink_tokens)
        return text if shrunk is None else shrunk.render()

    def _decision(self, plan: Orchestrated, ledger: Ledger) -> Decision:
        steps = [r for r in ledger.steps if r.kind == "step"]
        done_here = sum(1 for r in steps if r.status == "ok" and r.tier == self.d.local_tier)
        plans = [r for r in ledger.steps if r.kind == "plan"]
        planned_by = next((r.tier for r in plans if r.status == "ok"), None)
        reason = (f"agent: planned by {planned_by} in {len(plans)} attempt{'s' * (len(plans) != 1)}; "
                  f"{done_here} of {len(steps)} steps done locally; answer by {ledger.tier}; {plan.decision.reason}")
        return replace(plan.decision, tier=ledger.tier or plan.decision.tier, reason=reason)


def _narrowed_text(query: str, name: str, text: str, budget_tokens: int) -> Shrunk | None:
    """`text` (named `name`) cut to its sentences that best answer `query`, within `budget_tokens`; None when it
    fits already, or when the encoders that choose the sentences are not installed."""
    if estimate_tokens(text) <= budget_tokens or find_spec("sentence_transformers") is None:
        return None
    from hybridlm.shrinking import shared_shrinker

    return shared_shrinker().select(query, [(name, text)], budget_tokens)


BRIEF_CHARS = 40


def _brief(value: object) -> str:
    """An input as the final prompt shows it: a reference or a short value as it is, a long text cut."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= BRIEF_CHARS else text[:BRIEF_CHARS] + "..."


def _plain(value: object) -> str:
    """An output field as the final prompt shows it: texts as they are (not JSON-escaped), the rest as JSON."""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
