"""Carries out plans. Each request gets its own stack of wrapped backends: accounting on every tier;
for routed traffic, the budget of the LLM tier and fallback between the tiers; shadow sampling of
what the small model serves. A forced tier is called as it is, with accounting only."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from dataclasses import replace

from hybridlm.deployment import NO_LLM, Deployment
from hybridlm.ledger import Ledger, Spend
from hybridlm.models.base import BackendError, ChatBackend, GenerationParams, estimate_prompt_tokens, estimate_tokens
from hybridlm.models.wrappers.accounting import Accounted
from hybridlm.models.wrappers.budget import Budgeted
from hybridlm.models.wrappers.fallback import Fallback
from hybridlm.models.wrappers.shadow import SendShadow, Shadowed
from hybridlm.privacy.placeholders import Redaction
from hybridlm.privacy.redacting import Redacting
from hybridlm.plans import Call, Canned, Draft, Grounded, Plan
from hybridlm.request import Request
from hybridlm.types import Chunk, Completion, Decision, Message, ToolCallDelta, Usage

LLM_UNAVAILABLE = "llm_unavailable"
LOCAL_BUSY = "local_busy"
NOT_FALLBACKS = ("invalid_request", "busy")  # the request's own fault, or a full local queue: no other tier helps


class Executor:
    def __init__(self, deployment: Deployment) -> None:
        self.d = deployment
        self._sampler = random.Random(0)

    # the stacks
    def paid(self, tier: str, ledger: Ledger) -> ChatBackend:
        return Accounted(self._private(tier, ledger), tier, self.d.config.tiers[tier].price, ledger)

    def _private(self, tier: str, ledger: Ledger) -> ChatBackend:
        """The tier's backend, behind the request's redaction when personal data must not reach it."""
        backend = self.d.backends[tier]
        if not self.d.redacts(tier):
            return backend
        ledger.redaction = ledger.redaction or Redaction()
        return Redacting(backend, tier, self.d.pii_detector, ledger.redaction)

    def _budgeted_remote(self, ledger: Ledger) -> ChatBackend:
        remote = self.d.remote_tier
        assert remote is not None
        return Budgeted(self.paid(remote, ledger), remote, self.d.config.tiers[remote].budget_usd_per_day,
                        self.d.log.spend_since)

    def routed(self, tier: str, ledger: Ledger, shadow: SendShadow | None = None) -> ChatBackend:
        """The decided tier, and the other one when it cannot answer: a failing LLM gives way to the local
        tier (if fallback is on), a full local queue to the LLM (if within budget)."""
        local, remote = self.d.local_tier, self.d.remote_tier
        if remote is None:
            return self.paid(local, ledger)
        if tier == local:
            backend = self.paid(local, ledger)
            if shadow is not None and self.d.config.router.shadow_share > 0:
                backend = Shadowed(backend, self.d.config.router.shadow_share, self._sampler, shadow)
            return Fallback(backend, self._budgeted_remote(ledger), self._leave_busy_local, LOCAL_BUSY, ledger)
        if not self.d.config.router.fallback:
            return self._budgeted_remote(ledger)
        return Fallback(self._budgeted_remote(ledger), self.paid(local, ledger), _leave_failing_remote,
                        LLM_UNAVAILABLE, ledger)

    def _leave_busy_local(self, err: BackendError) -> str | None:
        return err.message if err.kind == "busy" and self.d.remote_unavailable() is None else None

    def _for_call(self, plan: Call, ledger: Ledger, shadow: SendShadow | None) -> ChatBackend:
        if plan.decision.forced:
            return self.paid(plan.decision.tier, ledger)
        if plan.wants_llm and self.d.remote_tier is None:
            ledger.note_fallback(LLM_UNAVAILABLE, NO_LLM)
        return self.routed(plan.decision.tier, ledger, shadow)

    # carrying out
    async def complete(self, plan: Plan, request: Request, ledger: Ledger,
                       shadow: SendShadow | None = None) -> tuple[Completion, Decision]:
        if isinstance(plan, Canned):
            return self._canned(plan, request, ledger), plan.decision
        if isinstance(plan, Draft):
            return await self._draft(plan, request, ledger)
        messages = plan.messages or request.messages
        answer = await self._for_call(plan, ledger, shadow).complete(messages, request.params)
        if isinstance(plan, Grounded) and plan.check:
            answer = await self._checked(plan, request, ledger, answer)
        return answer, plan.decision

    async def stream(self, plan: Plan, request: Request, ledger: Ledger,
                     shadow: SendShadow | None = None) -> tuple[AsyncIterator[Chunk], Decision]:
        """A plain call streams as the tier writes; anything checked first (a draft, a grounded answer) or
        canned is answered whole and replayed as a stream."""
        if isinstance(plan, Call) and not isinstance(plan, Grounded):
            backend = self._for_call(plan, ledger, shadow)
            return backend.stream(plan.messages or request.messages, request.params), plan.decision
        answer, decision = await self.complete(plan, request, ledger, shadow)
        return replay(answer), decision

    def _canned(self, plan: Canned, request: Request, ledger: Ledger) -> Completion:
        usage = Usage(estimate_prompt_tokens(request.messages), estimate_tokens(plan.text))  # what a model would use
        answer = Completion(plan.text, plan.decision.tier, usage)
        ledger.tier = plan.decision.tier
        ledger.add(Spend(plan.decision.tier, plan.decision.tier, answer.usage, 0.0))
        return answer

    async def _draft(self, plan: Draft, request: Request, ledger: Ledger) -> tuple[Completion, Decision]:
        """The local tier drafts; the check keeps the draft or pays for the LLM's answer."""
        local, remote = self.d.local_tier, self.d.remote_tier
        params = replace(request.params, logprobs=True) if plan.logprobs else request.params
        draft = await self.routed(local, ledger).complete(request.messages, params)
        if ledger.tier != local:  # a full local queue sent it to the LLM: nothing to check
            return draft, plan.decision

        async def sample(sample_params: GenerationParams) -> Completion:
            return await self.paid(local, ledger).complete(request.messages, sample_params)

        verdict = await plan.check(draft, sample)
        escalate = verdict.value >= plan.threshold
        reason = (f"{plan.kind}: draft verifier score {verdict.value:.2f} {'>=' if escalate else '<'} threshold "
                  f"{plan.threshold:.2f}: {verdict.explain()}")
        decision = replace(plan.decision, tier=remote if escalate and remote else local, score=verdict.value,
                           threshold=plan.threshold, reason=reason, features=verdict.contributions)
        if not escalate:
            return draft, decision
        if unavailable := self.d.remote_unavailable():
            ledger.note_fallback(LLM_UNAVAILABLE, f"{unavailable}; the draft is kept")
            return draft, decision
        try:
            return await self._budgeted_remote(ledger).complete(request.messages, request.params), decision
        except BackendError as err:
            if not self.d.config.router.fallback or err.kind == "invalid_request":
                raise
            ledger.tier = local
            ledger.note_fallback(LLM_UNAVAILABLE, f"{err.message}; the draft is kept")
            return draft, decision

    async def _checked(self, plan: Grounded, request: Request, ledger: Ledger, answer: Completion) -> Completion:
        """Fact-check a grounded answer; corrections go to the tier that answered, at its price."""
        assert ledger.tier is not None
        backend = self.paid(ledger.tier, ledger)

        async def ask(correction: list[Message]) -> str:
            return (await backend.complete(correction, request.params)).text

        text = await self.d.rag.verify(plan.grounding, request.messages, answer.text, ask)
        return replace(answer, text=text, usage=ledger.served()[1])


def _leave_failing_remote(err: BackendError) -> str | None:
    return None if err.kind in NOT_FALLBACKS else err.message


async def replay(answer: Completion) -> AsyncIterator[Chunk]:
    """A finished answer as a stream."""
    if answer.text:
        yield Chunk(text=answer.text)
    for index, call in enumerate(answer.tool_calls):
        yield Chunk(tool_calls=(ToolCallDelta(index, call.id, call.name, ""),))
        yield Chunk(tool_calls=(ToolCallDelta(index, arguments=call.arguments),))
    yield Chunk(finish_reason=answer.finish_reason, usage=answer.usage)
