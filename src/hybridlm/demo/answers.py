"""The support demo's real answers: a sample of the queries goes through the gateway's own pipeline.

FAQ and flow replies come without a model call, routine queries are answered by the embedded SLM,
and escalations are sent to the configured LLM tier (with no LLM configured the SLM answers them
and the fallback is marked, so nothing leaves the machine). Every request is written to a request
log of its own, with its cost, as the gateway would.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from hybridlm.config import Config
from hybridlm.models.base import GenerationParams
from hybridlm.pipeline import Pipeline, RequestFailed
from hybridlm.request import Request
from hybridlm.skills.support import SupportPolicy
from hybridlm.targets import HYBRID, SUPPORT
from hybridlm.request_log import RequestLog

ANSWER_MAX_TOKENS = 96
MODEL = f"{HYBRID}/{SUPPORT}"


@dataclass(frozen=True)
class Transcript:
    query: str
    true_intent: str
    tier: str | None  # who answered: faq, flow, slm, llm
    routed_tier: str | None
    reason: str
    answer: str
    latency_ms: float
    cost_usd: float
    fallback: str | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


async def _answer_all(pipeline: Pipeline, queries: Sequence[tuple[str, str]],
                      step: Callable[[], None] | None) -> list[Transcript]:
    params = GenerationParams(max_tokens=ANSWER_MAX_TOKENS, temperature=0.2)
    out = []
    try:
        for number, (text, label) in enumerate(queries):
            messages = [{"role": "user", "content": text}]
            conversation = f"demo-answer-{number}"
            try:
                served = await pipeline.run(Request(messages, MODEL, params, "demo", conversation))
                trace, answer = served.trace, served.completion.text
            except RequestFailed as failed:
                trace, answer = failed.trace, f"(no answer: {failed.error.message})"
            if pipeline.support.flows:
                pipeline.support.flows.store.clear(conversation)  # each query is its own conversation here
            decision = trace.decision
            out.append(Transcript(text, label, trace.tier, decision.tier if decision else None,
                                  decision.reason if decision else "", answer.strip(), round(trace.latency_ms, 1),
                                  round(trace.cost_usd, 8), trace.fallback))
            if step:
                step()
    finally:
        for backend in pipeline.backends.values():
            await backend.aclose()
    return out


def answer_queries(config: Config, policy: SupportPolicy, queries: Sequence[tuple[str, str]], log_path: Path,
                   step: Callable[[], None] | None = None) -> list[Transcript]:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = RequestLog(log_path)
    try:
        return asyncio.run(_answer_all(Pipeline.from_config(config, log, support=policy), queries, step))
    finally:
        log.close()
