"""Ticket summaries: the LLM writes them, with the facts local skills extracted attached; with no
LLM reachable the SLM writes them, marked as a fallback."""

from __future__ import annotations

import orjson
from pydantic import ValidationError

from hybridlm.models.base import BackendError, GenerationParams
from hybridlm.pipeline import Pipeline
from hybridlm.server.errors import APIError, from_backend
from hybridlm.server.results import JSONResult, rejected
from hybridlm.server.summarize.protocol import SummarizeRequest
from hybridlm.skills.facts import extract_facts
from hybridlm.types import Decision, Message

ENDPOINT = "/v1/summarize"
INSTRUCTION = ("Summarize this customer-support conversation for a ticket: the customer's problem, what was done, "
               "what is still open. Keep every amount, date and reference exactly. Facts found by local models: {facts}")


class SummarizeService:
    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline

    def reject(self, err: APIError) -> JSONResult:
        return rejected(self.pipeline, err, ENDPOINT)

    def _parse(self, raw: bytes) -> SummarizeRequest:
        try:
            return SummarizeRequest.model_validate(orjson.loads(raw))
        except orjson.JSONDecodeError as err:
            raise APIError(400, f"We could not parse the JSON body of your request: {err}", code="invalid_json") from None
        except ValidationError as err:
            first = err.errors()[0]
            param = ".".join(str(p) for p in first["loc"]) or None
            raise APIError(400, f"Invalid value for '{param}': {first['msg']}", code="invalid_value",
                           param=param) from None

    async def handle(self, raw: bytes) -> JSONResult:
        try:
            request = self._parse(raw)
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
        if pipeline.remote_tier is None:
            pipeline.mark_fallback(trace, "no LLM tier is configured (set OPENAI_BASE_URL or add an 'llm' tier)")
        try:
            result = await pipeline.complete(messages, GenerationParams(max_tokens=request.max_tokens), trace)
        except BackendError as err:
            return rejected(pipeline, from_backend(err), ENDPOINT, trace)
        pipeline.record(trace, ENDPOINT)
        return JSONResult(200, {"object": "summary", "id": trace.request_id, "summary": result.text, "facts": facts,
                                "hybridlm": trace.metadata()}, {"x-hybridlm-request-id": trace.request_id})
