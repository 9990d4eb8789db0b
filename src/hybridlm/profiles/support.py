"""`hybrid/support`: the support desk's skills read the message; a FAQ or flow step answers without a model,
routine intents go to the briefed SLM, the rest to the LLM with what the skills found."""

from __future__ import annotations

from hybridlm.deployment import Deployment
from hybridlm.plans import Call, Canned, Plan
from hybridlm.request import Request
from hybridlm.targets import SUPPORT, Target
from hybridlm.types import Decision


class SupportProfile:
    def __init__(self, deployment: Deployment) -> None:
        self.deployment = deployment

    def cheap(self, request: Request, target: Target) -> bool:
        return False  # intent model and FAQ embeddings

    def plan(self, request: Request, target: Target) -> Plan:
        d = self.deployment
        policy = d.support
        with d.tracing.analyse(SUPPORT):  # the skills' signals and flows, and the policy's rules on them
            decision = policy.decide(request.messages, request.conversation)
        numbers = {k: float(v) for k, v in decision.signals.items() if isinstance(v, int | float)}
        labels = {k: v for k, v in decision.signals.items() if isinstance(v, str)}
        tier = {"slm": d.local_tier, "llm": d.remote_tier or d.local_tier}.get(decision.action, decision.action)
        routed = Decision(tier, None, None, f"support: {decision.reason}", SUPPORT, numbers, labels=labels)
        if decision.reply is not None:
            return Canned(routed, decision.reply)
        if decision.action == "llm":
            note = policy.note_for_llm(decision)
            return Call(routed, [{"role": "system", "content": note}, *request.messages], wants_llm=True)
        return Call(routed, [{"role": "system", "content": policy.note_for_slm(decision)}, *request.messages])
