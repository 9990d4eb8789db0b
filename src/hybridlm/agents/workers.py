"""Workers: what one step of a task plan can ask for. Each declares its input and its output as pydantic
models, so a plan is checked before it runs and every output is validated after it.

A worker is registered by name in `WORKERS`: the built-in ones by their modules (`model_workers`,
`skill_workers`, `tool_workers`), a user's with the `@worker` decorator or through the `hybridlm.workers`
entry point group (each entry point names a `Worker`, or a module whose import registers some).
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel

from hybridlm.errors import HybridLMError
from hybridlm.models.base import GenerationParams
from hybridlm.types import Completion, Message

if TYPE_CHECKING:
    from hybridlm.deployment import Deployment

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "hybridlm.workers"
WorkerKind = Literal["model", "skill", "tool"]
"""`model`: the local model does it (and the LLM, when its output fails or it is unsure); `skill`: one of the
project's small models (encoders, classifiers); `tool`: plain code."""

CallTier = Callable[[list[Message], GenerationParams], Awaitable[Completion]]


class WorkerFailed(HybridLMError):
    """A worker could not produce a valid output; the message says why (for the trace and for a retry)."""


@dataclass(frozen=True)
class StepContext:
    """What a worker may use: the deployment, the tier its step runs on, and calls to that tier, counted on the
    step's ledger (priced, redacted before a remote tier, within budgets)."""

    deployment: Deployment
    tier: str
    on_device: bool
    call: CallTier


Run = Callable[[Any, StepContext], Awaitable[BaseModel]]


@dataclass(frozen=True)
class Worker:
    name: str
    description: str
    input: type[BaseModel]
    output: type[BaseModel]
    run: Run
    kind: WorkerKind = "tool"
    available: Callable[[Deployment], bool] = field(default=lambda _: True)

    def signature(self) -> str:
        """One line for the planner: `extract(text: str, fields: list[str]) -> {values}: what it does`."""
        schema = self.input.model_json_schema()
        required = set(schema.get("required", []))
        params = ", ".join(f"{name}: {_type_name(spec)}{'' if name in required else ' = ' + json.dumps(spec.get('default'))}"
                           for name, spec in schema.get("properties", {}).items())
        outputs = ", ".join(self.output.model_json_schema().get("properties", {}))
        return f"{self.name}({params}) -> {{{outputs}}}: {self.description}"


def _type_name(spec: dict[str, Any]) -> str:
    if "anyOf" in spec:
        return " | ".join(_type_name(s) for s in spec["anyOf"])
    kind = spec.get("type", "any")
    if kind == "array":
        return f"list[{_type_name(spec.get('items', {}))}]"
    return {"string": "str", "integer": "int", "number": "float", "boolean": "bool", "object": "dict"}.get(kind, kind)


WORKERS: dict[str, Worker] = {}


def register(worker_: Worker) -> Worker:
    if worker_.name in WORKERS and WORKERS[worker_.name] is not worker_:
        raise ValueError(f"a worker named '{worker_.name}' is already registered")
    WORKERS[worker_.name] = worker_
    return worker_


def worker(name: str, *, input: type[BaseModel], output: type[BaseModel], kind: WorkerKind = "tool",
           description: str | None = None,
           available: Callable[[Deployment], bool] | None = None) -> Callable[[Callable[..., Any]], Worker]:
    """Register a function `(inputs, context) -> output` as a worker. A plain (not async) function is CPU work:
    it runs in the worker pool, off the event loop. The description defaults to the docstring's first line."""

    def register_function(function: Callable[..., Any]) -> Worker:
        if inspect.iscoroutinefunction(function):
            run: Run = function
        else:
            async def run(inputs: Any, context: StepContext) -> BaseModel:
                return await asyncio.to_thread(function, inputs, context)
        text = description or (inspect.getdoc(function) or name).splitlines()[0]
        return register(Worker(name, text, input, output, run, kind, available or (lambda _: True)))

    return register_function


_loaded = False


def load_workers() -> dict[str, Worker]:
    """Every registered worker: the built-in ones, and those installed packages declare as entry points."""
    global _loaded
    from hybridlm.agents import model_workers, skill_workers, tool_workers  # noqa: F401  (they register)

    if not _loaded:
        _loaded = True
        for point in entry_points(group=ENTRY_POINT_GROUP):
            try:
                loaded = point.load()
            except Exception as err:  # a broken plugin must not take the built-in workers down with it
                log.error("worker entry point %s could not be loaded: %s", point.name, type(err).__name__)
                continue
            if isinstance(loaded, Worker):
                register(loaded)
    return WORKERS


def available_workers(deployment: Deployment) -> dict[str, Worker]:
    """The workers this deployment can run (a skill whose extra or data is missing is left out)."""
    return {name: w for name, w in load_workers().items() if w.available(deployment)}
