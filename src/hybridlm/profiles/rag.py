"""`hybrid/rag`: ground the question in the knowledge store; with relevant sources the routed tier answers
from them and the answer is fact-checked; with none, say the documents do not cover it."""

from __future__ import annotations

from hybridlm.deployment import Deployment
from hybridlm.plans import Canned, Grounded, Plan
from hybridlm.profiles.base import routed_decision, wants_llm
from hybridlm.rag.grounded import NO_SOURCE_ANSWER, NO_SOURCE_TIER
from hybridlm.request import Request
from hybridlm.routing.base import last_user_text
from hybridlm.targets import RAG, Target
from hybridlm.types import Decision


class RagProfile:
    def __init__(self, deployment: Deployment) -> None:
        self.deployment = deployment

    def cheap(self, request: Request, target: Target) -> bool:
        return False  # retrieval and grading

    def plan(self, request: Request, target: Target) -> Plan:
        d = self.deployment
        with d.tracing.analyse(RAG):  # retrieval and grading
            grounding = d.rag.ground(last_user_text(request.messages))
        if not grounding.sources and d.config.rag.when_nothing_relevant != "llm":
            graded = len(grounding.graded)
            found = (f"none of the {graded} retrieved chunks is relevant" if graded
                     else "the knowledge store is empty (add documents with `hybridlm ingest`)")
            decision = Decision(NO_SOURCE_TIER, None, None,
                                f"rag: {found}; answering that the documents do not cover it", RAG)
            return Canned(decision, NO_SOURCE_ANSWER, grounding)
        decision = routed_decision(d, request, target)
        messages = grounding.messages(request.messages) if grounding.sources else None
        return Grounded(decision, messages, wants_llm(decision), grounding=grounding,
                        check=bool(grounding.sources) and d.config.rag.check_answers)
