"""Fact-checks on any (context, answer) pair, by the local detector: no model is called, the
request is logged like every other."""

from __future__ import annotations

import asyncio

from hybridlm.request import Caller, Request
from hybridlm.server.factcheck.protocol import FactCheckRequest
from hybridlm.server.results import JSONResult, PipelineService, parse_json_body
from hybridlm.types import Decision

ENDPOINT = "/v1/factcheck"


class FactCheckService(PipelineService):
    endpoint = ENDPOINT

    async def handle(self, raw: bytes, caller: Caller | None) -> JSONResult:
        request = parse_json_body(raw, FactCheckRequest)
        pipeline = self.pipeline
        pipeline.rate_limits.admit(caller, 0)  # a key's requests per minute count here too; no model tokens are used
        asked = Request([{"role": "user", "content": request.answer}], "factcheck", caller=caller)
        trace = pipeline.start_trace(asked, stream=False)
        report = await asyncio.to_thread(pipeline.fact_checker.check, request.passages, request.answer)
        flagged = len(report.flagged)
        trace.decision = Decision("factcheck", report.score, pipeline.fact_checker.threshold,
                                  f"fact-check: {len(report.claims)} claim(s), {flagged} flagged", "factcheck")
        await pipeline.private_preview(trace, asked.messages, None)
        pipeline.record(trace, ENDPOINT)
        return JSONResult(200, {"object": "factcheck", "id": trace.request_id, **report.as_dict(),
                                "hybridlm": trace.metadata()}, {"x-hybridlm-request-id": trace.request_id})
