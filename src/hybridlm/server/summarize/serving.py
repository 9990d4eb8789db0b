"""Ticket summaries: the LLM writes them, with the facts local skills extracted attached; with no
LLM reachable the SLM writes them, marked as a fallback."""

from __future__ import annotations

import orjson

from hybridlm.models.base import BackendError, GenerationParams
from hybridlm.server.errors import APIError, from_backend
from hybridlm.server.results import JSONResult, PipelineService, parse_json_body
from hybridlm.server.summarize.protocol import SummarizeRequest
from hybridlm.skills.facts import extract_facts
from hybridlm.types import Decision, Message

ENDPOINT = "/v1/summarize"
INSTRUCTION = ("Summarize this customer-support conversation for a ticket: the customer's problem, what was done, "
               "what is still open. Keep every amount, date and reference exactly. Facts found by local models: {facts}")


class SummarizeService(PipelineService):
    endpoint = ENDPOINT

    async def handle(self, raw: bytes) -> JSONResult:
        try:
            request = parse_json_body(raw, SummarizeRequest)
        except APIError as err:
            return self.reject(err)
        conversation: list[Message] = [m.model_dump(exclude_none=True) for m in request.messages]
        facts = extract_facts(conversation)
        transcript = "\n".join(f"{m['role']}: {m.get('content') or ''}" for m in conversation)
        messages: list[Message] = [{"role": "system", "content": INSTRUCTION.format(facts=orjson.dumps(facts).decode())},
                                   {"role": "user", "content": transcript}]
        pipeline = self.pipeline
        trace = pipeline.start_trace(conversation, "summarize", stream=False)
        tier = pipeline.remote_tier or pipeline.local_tier
        trace.decision = Decision(tier, None, None, "summary: tickets are written by the LLM, with local facts",
                                  "summarize")
        trace.tier = tier
        if reason := pipeline.remote_unavailable():
            pipeline.mark_fallback(trace, reason)
        try:
            result = await pipeline.complete(messages, GenerationParams(max_tokens=request.max_tokens), trace)
        except BackendError as err:
            return self.reject(from_backend(err), trace)
        pipeline.record(trace, ENDPOINT)
        return JSONResult(200, {"object": "summary", "id": trace.request_id, "summary": result.text, "facts": facts,
                                "hybridlm": trace.metadata()}, {"x-hybridlm-request-id": trace.request_id})
