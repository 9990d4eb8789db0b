"""`hybridlm demo assistant`: a voice assistant's requests answered with function calls, offline by default.

The bundled assistant (data/assistant.yaml) offers nine functions, from alarms to trip planning,
and about thirty requests as people say them. Each goes through the gateway's own pipeline
(`model: hybrid`, the functions as `tools`, `tool_choice: auto`): the tool router sends planning
and several-step requests to the LLM and lets the local model draft the rest, a verifier keeping
the draft or escalating it. With no LLM configured every escalation is answered locally and
marked as a fallback, so nothing leaves the machine. Each outcome is judged against what the
request expects: one call with the right arguments, an answer in words, or a trip to the LLM.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import yaml

from hybridlm.api import HybridLM
from hybridlm.config import Config
from hybridlm.demo.support import demo_file
from hybridlm.errors import HybridLMError
from hybridlm.executor import LLM_UNAVAILABLE
from hybridlm.models.base import GenerationParams
from hybridlm.pipeline import Pipeline, RequestFailed
from hybridlm.request_log import RequestLog
from hybridlm.tools.protocol import parse_tools
from hybridlm.types import ToolCall, Trace

Kind = Literal["call", "words", "cloud"]
KINDS: tuple[Kind, ...] = ("call", "words", "cloud")
DATA_FILE = "assistant.yaml"
MODEL = "hybrid"
MAX_TOKENS = 128  # a spoken reply is short; a longer one is cut, and the verifier escalates it
TIME = re.compile(r"^(\d{1,2}):(\d{2})$")
NUMBER = re.compile(r"^-?\d+(?:\.\d+)?$")
PUNCTUATION = re.compile(r"[^\w\s:]")


class AssistantDataError(HybridLMError):
    """The assistant's data file cannot be used; the message names the entry."""


@dataclass(frozen=True)
class Expectation:
    """What a right outcome is; `arguments` maps a name to its value, or to a list of accepted values."""

    kind: Kind
    call: str | None = None
    arguments: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AssistantRequest:
    text: str
    expect: Expectation


@dataclass(frozen=True)
class AssistantData:
    tools: list[dict[str, Any]]  # OpenAI function definitions, sent as they are
    requests: list[AssistantRequest]


def _expectation(number: int, raw: Any) -> Expectation:
    if raw in ("words", "cloud"):
        return Expectation(raw)
    if isinstance(raw, dict) and isinstance(raw.get("call"), str):
        arguments = raw.get("arguments") or {}
        if isinstance(arguments, dict):
            return Expectation("call", raw["call"], arguments)
    raise AssistantDataError(f"requests[{number}].expect must be 'words', 'cloud' or {{call: NAME, arguments: {{...}}}}, "
                             f"not {raw!r}")


def load_assistant_data(path: Path | None = None) -> AssistantData:
    """The tools and requests of the data file, checked: every expected call names an offered function."""
    path = path or demo_file(DATA_FILE)
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not isinstance(data.get("tools"), list) or not isinstance(data.get("requests"), list):
        raise AssistantDataError(f"{path}: needs a 'tools' list and a 'requests' list")
    tools = parse_tools(data["tools"], "auto")
    assert tools is not None
    requests = []
    for number, raw in enumerate(data["requests"]):
        if not isinstance(raw, dict) or not isinstance(raw.get("text"), str):
            raise AssistantDataError(f"{path}: requests[{number}] needs a 'text'")
        expect = _expectation(number, raw.get("expect"))
        if expect.call is not None and tools.function(expect.call) is None:
            raise AssistantDataError(f"{path}: requests[{number}] expects a call of '{expect.call}', which 'tools' "
                                     "does not offer")
        requests.append(AssistantRequest(raw["text"], expect))
    return AssistantData(data["tools"], requests)


def normalise(value: Any) -> Any:
    """Light normalisation for comparing arguments: '6:45' -> '06:45', '10' and 10.0 -> 10.0, case and punctuation."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return float(value)
    if not isinstance(value, str):
        return value
    text = value.strip()
    if time := TIME.match(text):
        return f"{int(time[1]):02d}:{time[2]}"
    if NUMBER.match(text):
        return float(text)
    return " ".join(PUNCTUATION.sub("", text.lower()).split())


def argument_matches(actual: Any, expected: Any) -> bool:
    accepted = expected if isinstance(expected, list) else [expected]
    return any(normalise(actual) == normalise(value) for value in accepted)


def judge(expect: Expectation, calls: Sequence[ToolCall], escalated: bool) -> bool:
    """Right or not: one call of the expected function with matching named arguments, no call, or escalated."""
    if expect.kind == "cloud":
        return escalated
    if expect.kind == "words":
        return not calls
    if len(calls) != 1 or calls[0].name != expect.call:
        return False
    try:
        arguments = json.loads(calls[0].arguments or "{}")
    except ValueError:
        return False
    return isinstance(arguments, dict) and all(
        name in arguments and argument_matches(arguments[name], value) for name, value in expect.arguments.items())


@dataclass(frozen=True)
class Outcome:
    """One request: what came back, its route (who decided, who answered, why), and whether it was right."""

    text: str
    expect: Kind
    answer: str
    calls: tuple[ToolCall, ...]
    route: Mapping[str, Any]  # the `hybridlm` object of the response; empty when the request failed
    escalation: str | None  # why it went to the LLM, in a few words; None when decided locally
    right: bool
    error: str | None = None

    @property
    def escalated(self) -> bool:
        return self.escalation is not None

    @property
    def tier(self) -> str | None:
        """The tier that answered."""
        return self.route.get("tier")

    @property
    def fallback(self) -> str | None:
        return self.route.get("fallback")

    @property
    def latency_ms(self) -> float:
        return float(self.route.get("latency_ms") or 0.0)

    def shown(self) -> str:
        """'set_alarm(time=06:45)', 'words', or 'to LLM' (with what the local model did when it fell back)."""
        if self.error:
            return f"error: {self.error}"
        made = "; ".join(call_text(c) for c in self.calls) or "words"
        if not self.escalated:
            return made
        return f"to LLM (fell back: {made})" if self.fallback else "to LLM"

    def as_dict(self) -> dict[str, Any]:
        return {"text": self.text, "expect": self.expect, "outcome": self.shown(), "right": self.right,
                "answer": self.answer, "calls": [c.as_openai()["function"] for c in self.calls],
                "routed_tier": self.route.get("routed_tier"), "tier": self.tier, "fallback": self.fallback,
                "reason": self.route.get("reason"), "escalated": self.escalated, "escalation": self.escalation,
                "latency_ms": self.latency_ms, "error": self.error, "route": dict(self.route)}


def call_text(call: ToolCall) -> str:
    try:
        arguments = json.loads(call.arguments or "{}")
    except ValueError:
        return f"{call.name}({call.arguments})"
    if not isinstance(arguments, dict):
        return f"{call.name}({call.arguments})"
    return f"{call.name}(" + ", ".join(f"{k}={v}" for k, v in arguments.items()) + ")"


def escalation(trace: Trace, remote: str | None) -> str | None:
    """Why the tool router sent the request to the LLM ('straight: several_steps', 'verifier: doubt'), or None."""
    decision = trace.decision
    if decision is None or not (trace.fallback == LLM_UNAVAILABLE or (remote and decision.tier == remote)):
        return None
    positive = sorted(((v, k) for k, v in decision.features.items() if v > 0), reverse=True)
    if decision.draft:
        return f"verifier: {positive[0][1]}" if positive else "verifier"
    return "straight: " + ("+".join(sorted(k for _, k in positive)) or decision.router)


@dataclass
class AssistantResult:
    outcomes: list[Outcome] = field(default_factory=list)
    remote: str | None = None  # the LLM tier, if one is configured
    max_local_tools: int = 0
    warm_up_ms: float = 0.0  # loading the models and reading the functions once, before the first request

    def summary(self) -> dict[str, Any]:
        rows = self.outcomes
        local = [o for o in rows if not o.escalated]
        escalated = [o for o in rows if o.escalated]
        answered_here = [o for o in rows if o.expect != "cloud" and o.tier is not None and o.tier != self.remote]
        latency = np.array([o.latency_ms for o in rows]) if rows else np.zeros(1)
        out: dict[str, Any] = {
            "requests": len(rows),
            "llm": self.remote,
            "decided_locally": len(local),
            "escalated": len(escalated),
            "escalated_fell_back": sum(o.fallback is not None for o in escalated),
            "share_local": _share(len(local), len(rows)),
            "share_escalated": _share(len(escalated), len(rows)),
            "local_accuracy": _accuracy(local),
            "local_answers_accuracy": _accuracy(answered_here),  # call / words answered by the local model
            "accuracy": _accuracy(rows),
        }
        for kind in KINDS:
            of_kind = [o for o in rows if o.expect == kind]
            out[f"requests_{kind}"] = len(of_kind)
            out[f"accuracy_{kind}"] = _accuracy(of_kind)
        return out | {
            "latency_p50_ms": round(float(np.percentile(latency, 50)), 1),
            "latency_p90_ms": round(float(np.percentile(latency, 90)), 1),
            "escalation_reasons": dict(Counter(o.escalation for o in escalated if o.escalation).most_common()),
            "errors": sum(o.error is not None for o in rows),
            "max_local_tools": self.max_local_tools,
            "warm_up_ms": self.warm_up_ms,
        }


def _share(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


def _accuracy(rows: Sequence[Outcome]) -> float | None:
    return round(sum(o.right for o in rows) / len(rows), 4) if rows else None


def room_for_tools(config: Config, functions: int) -> Config:
    """Let the small model draft with every function on offer, unless the config sets `max_local_tools` itself."""
    tools = config.router.tools
    if "max_local_tools" in tools.model_fields_set or tools.max_local_tools >= functions:
        return config
    router = config.router.model_copy(update={"tools": tools.model_copy(update={"max_local_tools": functions})})
    return config.model_copy(update={"router": router})


def _answer(hybrid: HybridLM, tools: list[dict[str, Any]], request: AssistantRequest, remote: str | None) -> Outcome:
    expect = request.expect
    try:
        result = hybrid.chat(request.text, model=MODEL, tools=tools, tool_choice="auto", max_tokens=MAX_TOKENS)
    except RequestFailed as failed:
        return Outcome(request.text, expect.kind, "", (), {}, None, False, failed.error.message)
    why = escalation(result.trace, remote)
    return Outcome(request.text, expect.kind, result.text.strip(), result.tool_calls, result.route, why,
                   judge(expect, result.tool_calls, why is not None))


def _read_functions(pipeline: Pipeline, tools: list[dict[str, Any]]) -> None:
    """The local model reads the functions once, as a running assistant has, so latencies are those of later turns."""
    params = GenerationParams(max_tokens=1, tools=parse_tools(tools, "required"))
    asyncio.run(pipeline.backends[pipeline.local_tier].complete([{"role": "user", "content": "hello"}], params))


def run_assistant(config: Config, limit: int | None, log_path: Path, progress: Callable[[str], None],
                  step: Callable[[], None] | None = None) -> AssistantResult:
    """Every request (or the first `limit`) through the pipeline, logged to `log_path`."""
    data = load_assistant_data()
    requests = data.requests[:limit] if limit else data.requests
    config = room_for_tools(config, len(data.tools))
    result = AssistantResult(remote=config.remote_tier, max_local_tools=config.router.tools.max_local_tools)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    pipeline = Pipeline.from_config(config, RequestLog(log_path))
    with HybridLM(config, pipeline=pipeline) as hybrid:
        progress("loading the local model")
        started = time.perf_counter()
        pipeline.warm_up()
        _read_functions(pipeline, data.tools)
        result.warm_up_ms = round((time.perf_counter() - started) * 1000, 1)
        progress("assistant requests")
        for request in requests:
            result.outcomes.append(_answer(hybrid, data.tools, request, config.remote_tier))
            if step:
                step()
    return result


def write_assistant_report(result: AssistantResult, folder: Path) -> Path:
    """report.md: the totals, then one row per request."""
    folder.mkdir(parents=True, exist_ok=True)
    summary = result.summary()
    llm = (f"LLM tier '{result.remote}': escalations are sent to it" if result.remote else
           "no LLM tier configured: everything is answered locally, escalations are marked as fallbacks")
    intro = (f"{summary['requests']} requests through `model: hybrid` with the assistant's functions as tools; "
             f"{llm}. The small model may draft with up to {result.max_local_tools} functions on offer.")
    lines = ["# Assistant demo", "", intro, "",
             "| total | value |", "|---|---|",
             *(f"| {k} | {_cell(v)} |" for k, v in summary.items()), "",
             "| # | request | expects | outcome | answered by | right | ms | router |", "|---|---|---|---|---|---|---|---|"]
    for number, o in enumerate(result.outcomes, 1):
        answered = f"{o.tier} ({o.fallback})" if o.fallback else str(o.tier)
        outcome = o.shown() + (f": {o.answer[:120]}" if o.answer and not o.calls else "")
        lines.append(f"| {number} | {_cell(o.text)} | {o.expect} | {_cell(outcome)} | {answered} | "
                     f"{'yes' if o.right else 'no'} | {o.latency_ms:.0f} | {_cell(o.route.get('reason', ''))} |")
    path = folder / "report.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _cell(value: object) -> str:
    text = json.dumps(value) if isinstance(value, dict) else str(value)
    return " ".join(text.replace("|", "\\|").split())
