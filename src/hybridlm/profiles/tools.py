"""Requests that offer tools: straight to the LLM when the small model is unlikely to make the call
(many tools, several steps, no fitting tool); else the small model drafts and a verifier checks its call."""

from __future__ import annotations

import asyncio

from hybridlm.deployment import Deployment
from hybridlm.plans import Call, Draft, Plan, Sample
from hybridlm.request import Request
from hybridlm.routing.base import Score
from hybridlm.routing.tools import TOOLS
from hybridlm.targets import Target
from hybridlm.types import Completion, Decision


class ToolsProfile:
    def __init__(self, deployment: Deployment) -> None:
        self.deployment = deployment

    def cheap(self, request: Request, target: Target) -> bool:
        return False  # the fit of each function is an embedding

    def plan(self, request: Request, target: Target) -> Plan:
        tools = request.params.tools
        assert tools is not None
        d, router = self.deployment, self.deployment.tool_router
        with d.tracing.analyse(TOOLS):
            score, threshold = router.before(request.messages, tools), router.threshold
        if score.value >= threshold:
            reason = f"tools: score {score.value:.2f} >= threshold {threshold:.2f}: {score.explain()}"
            decision = Decision(d.remote_tier or d.local_tier, score.value, threshold, reason, TOOLS,
                                score.contributions)
            return Call(decision, wants_llm=True)
        reason = (f"tools: score {score.value:.2f} < threshold {threshold:.2f} ({score.explain()}): the small model "
                  "answers first; a verifier checks its call")
        decision = Decision(d.local_tier, score.value, threshold, reason, TOOLS, score.contributions, draft=True)

        async def check(draft: Completion, _: Sample) -> Score:
            return await asyncio.to_thread(router.verify, request.messages, tools, draft)

        return Draft(decision, check, router.verify_threshold, "tools")
