"""Ticket summaries: the LLM writes them, with the facts local skills extracted attached; with no
LLM reachable the SLM writes them, marked as a fallback."""

from __future__ import annotations

import orjson

from hybridlm.failures import APIError
from hybridlm.models.base import GenerationParams
from hybridlm.pipeline import RequestFailed
from hybridlm.profiles.summary import SUMMARY
from hybridlm.request import Caller, Request
from hybridlm.server.results import JSONResult, PipelineService, error_result, parse_json_body
from hybridlm.server.summarize.protocol import SummarizeRequest
from hybridlm.skills.facts import extract_facts
from hybridlm.types import Message

ENDPOINT = "/v1/summarize"
INSTRUCTION = ("Summarize this customer-support conversation for a ticket: the customer's problem, what was done, "
               "what is still open. Keep every amount, date and reference exactly. Facts found by local models: {facts}")


class SummarizeService(PipelineService):
    endpoint = ENDPOINT

    async def handle(self, raw: bytes, caller: Caller | None) -> JSONResult:
        try:
            body = parse_json_body(raw, SummarizeRequest)
        except APIError as err:
            return self.reject(err, caller)
        conversation: list[Message] = [m.model_dump(exclude_none=True) for m in body.messages]
        facts = extract_facts(conversation)
        transcript = "\n".join(f"{m['role']}: {m.get('content') or ''}" for m in conversation)
        messages: list[Message] = [{"role": "system", "content": INSTRUCTION.format(facts=orjson.dumps(facts).decode())},
                                   {"role": "user", "content": transcript}]
        request = Request(messages, SUMMARY, GenerationParams(max_tokens=body.max_tokens), ENDPOINT, profile=SUMMARY,
                          caller=caller)
        try:
            answer = await self.pipeline.run(request)
        except RequestFailed as failed:
            return error_result(failed.error, failed.trace.request_id)
        trace = answer.trace
        return JSONResult(200, {"object": "summary", "id": trace.request_id, "summary": answer.completion.text,
                                "facts": facts, "hybridlm": trace.metadata()}, {"x-hybridlm-request-id": trace.request_id})
