"""Ticket summaries (`/v1/summarize`): the LLM writes them; with none reachable, the local tier does, marked."""

from __future__ import annotations

from hybridlm.deployment import Deployment
from hybridlm.plans import Call, Plan
from hybridlm.request import Request
from hybridlm.targets import Target
from hybridlm.types import Decision

SUMMARY = "summarize"


class SummaryProfile:
    def __init__(self, deployment: Deployment) -> None:
        self.deployment = deployment

    def cheap(self, request: Request, target: Target) -> bool:
        return True

    def plan(self, request: Request, target: Target) -> Plan:
        d = self.deployment
        decision = Decision(d.remote_tier or d.local_tier, None, None,
                            "summary: tickets are written by the LLM, with local facts", SUMMARY)
        return Call(decision, wants_llm=True)
