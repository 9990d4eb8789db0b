"""`hybrid/agent`: the request is a task. The last user message says what to do; the documents come with the
request (`documents`: [{"name", "text"}]) or as the earlier user messages. The LLM plans it into worker
steps, local workers do them, the LLM writes the answer (see hybridlm.agents.runner)."""

from __future__ import annotations

from hybridlm.deployment import Deployment
from hybridlm.plans import Orchestrated, Plan
from hybridlm.profiles.base import routed_decision
from hybridlm.request import Request
from hybridlm.routing.base import last_user_text
from hybridlm.targets import AGENT, Target
from hybridlm.types import Decision, text_of


class AgentProfile:
    def __init__(self, deployment: Deployment) -> None:
        self.deployment = deployment

    def cheap(self, request: Request, target: Target) -> bool:
        return False  # the router scores the task

    def plan(self, request: Request, target: Target) -> Plan:
        d = self.deployment
        routed = routed_decision(d, request, target)
        decision = Decision(d.remote_tier or d.local_tier, routed.score, routed.threshold,
                            f"the router: {routed.reason}", AGENT, routed.features)
        return Orchestrated(decision, last_user_text(request.messages), request.documents or _message_documents(request))


def _message_documents(request: Request) -> tuple[tuple[str, str], ...]:
    """The user messages before the last, each as a document."""
    earlier = [m for m in request.messages if m.get("role") == "user"][:-1]
    return tuple((f"message-{i}", text_of(m.get("content"))) for i, m in enumerate(earlier, 1))
