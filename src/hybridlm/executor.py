"""Carries out plans. Each request gets its own stack of wrapped backends: accounting on every tier, and
the budgets (the tier's, the caller's key's) on every paid call to a tier that has one, routed or forced;
for routed traffic, fallback between the tiers; shadow sampling of what the small model serves. A spent
budget sends the call to the local tier (marked `budget_exhausted`) or, with `budgets.when_exhausted:
refuse`, fails it (429)."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from dataclasses import replace

from hybridlm.deployment import NO_LLM, Deployment
from hybridlm.ledger import Ledger, Spend
from hybridlm.models.base import BackendError, ChatBackend, GenerationParams, estimate_prompt_tokens, estimate_tokens
from hybridlm.models.wrappers.accounting import Accounted
from hybridlm.models.wrappers.budget import OVER_BUDGET, Budgeted, budgets_for
from hybridlm.models.wrappers.fallback import Fallback
from hybridlm.models.wrappers.shadow import SendShadow, Shadowed
from hybridlm.privacy.placeholders import Redaction
from hybridlm.privacy.redacting import Redacting
from hybridlm.plans import Call, Canned, Draft, Grounded, Orchestrated, Plan
from hybridlm.request import Caller, Request
from hybridlm.telemetry.tracing import CHECK
from hybridlm.types import Chunk, Completion, Decision, Message, ToolCallDelta, Usage

LLM_UNAVAILABLE = "llm_unavailable"
LOCAL_BUSY = "local_busy"
BUDGET_EXHAUSTED = "budget_exhausted"
# the request's own fault, a full local queue, or a spent budget (handled on its own): not an upstream failure
NOT_FALLBACKS = ("invalid_request", "busy", OVER_BUDGET)


class Executor:
    def __init__(self, deployment: Deployment) -> None:
        self.d = deployment
        self._sampler = random.Random(0)

    # the stacks
    def paid(self, tier: str, ledger: Ledger, caller: Caller | None = None) -> ChatBackend:
        """The tier at its price (behind the request's redaction when personal data must not reach it), and
        within its budgets and the caller's, if any apply."""
        backend: ChatBackend = Accounted(self._shrinking(tier, self._private(tier, ledger), ledger), tier,
                                         self.d.config.tiers[tier].price, ledger, self.d.tracing)
        budgets = budgets_for(self.d.config, tier, caller)
        return Budgeted(backend, tier, self.d.config, self.d.spend, budgets) if budgets else backend

    def _private(self, tier: str, ledger: Ledger) -> ChatBackend:
        backend = self.d.backends[tier]
        if not self.d.redacts(tier):
            return backend
        ledger.redaction = ledger.redaction or Redaction()
        return Redacting(backend, tier, self.d.pii_detector, ledger.redaction)

    def _shrinking(self, tier: str, backend: ChatBackend, ledger: Ledger) -> ChatBackend:
        """With `context.shrink`, a remote tier reads the best sentences of long context (before redaction: less
        to redact), the tokens saved noted on the ledger."""
        context = self.d.config.context
        if not context.shrink or self.d.runs_here(tier):
            return backend
        from hybridlm.models.wrappers.shrinking import Shrinking
        from hybridlm.shrinking import shared_shrinker

        return Shrinking(backend, shared_shrinker(), context.budget_tokens, context.min_tokens, ledger.shrunk.append)

    @property
    def _degrades(self) -> bool:
        return self.d.config.budgets.when_exhausted == "degrade"

    def within_budget(self, tier: str, ledger: Ledger, caller: Caller | None) -> ChatBackend:
        """The tier; when a budget stops the call and budgets degrade, the local tier answers instead (marked)."""
        backend = self.paid(tier, ledger, caller)
        local = self.d.local_tier
        if tier == local or not self._degrades or not isinstance(backend, Budgeted):
            return backend
        return Fallback(backend, self.paid(local, ledger, caller), _leave_over_budget, BUDGET_EXHAUSTED, ledger)

    def routed(self, tier: str, ledger: Ledger, shadow: SendShadow | None = None,
               caller: Caller | None = None) -> ChatBackend:
        """The decided tier, and the other one when it cannot answer: a failing LLM gives way to the local
        tier (if fallback is on), a full local queue to the LLM (if within budget)."""
        local, remote = self.d.local_tier, self.d.remote_tier
        if remote is None:
            return self.paid(local, ledger, caller)
        if tier == local:
            backend = self.paid(local, ledger, caller)
            if shadow is not None and self.d.config.router.shadow_share > 0:
                backend = Shadowed(backend, self.d.config.router.shadow_share, self._sampler, shadow)

            def leave_busy_local(err: BackendError) -> str | None:
                return err.message if err.kind == "busy" and self.d.remote_unavailable(caller) is None else None

            return Fallback(backend, self.paid(remote, ledger, caller), leave_busy_local, LOCAL_BUSY, ledger)
        remote_backend = self.within_budget(remote, ledger, caller)
        if not self.d.config.router.fallback:
            return remote_backend
        return Fallback(remote_backend, self.paid(local, ledger, caller), _leave_failing_remote, LLM_UNAVAILABLE,
                        ledger)

    def _for_call(self, plan: Call, ledger: Ledger, shadow: SendShadow | None, caller: Caller | None) -> ChatBackend:
        if plan.decision.forced:
            return self.within_budget(plan.decision.tier, ledger, caller)
        if plan.wants_llm and self.d.remote_tier is None:
            ledger.note_fallback(LLM_UNAVAILABLE, NO_LLM)
        return self.routed(plan.decision.tier, ledger, shadow, caller)

    # carrying out
    async def complete(self, plan: Plan, request: Request, ledger: Ledger,
                       shadow: SendShadow | None = None) -> tuple[Completion, Decision]:
        if isinstance(plan, Canned):
            return self._canned(plan, request, ledger), plan.decision
        if isinstance(plan, Draft):
            return await self._draft(plan, request, ledger)
        if isinstance(plan, Orchestrated):
            from hybridlm.agents.runner import TaskRunner

            return await TaskRunner(self).run(plan, request, ledger)
        messages = plan.messages or request.messages
        answer = await self._for_call(plan, ledger, shadow, request.caller).complete(messages, request.params)
        if isinstance(plan, Grounded) and plan.check:
            answer = await self._checked(plan, request, ledger, answer)
        return answer, plan.decision

    async def stream(self, plan: Plan, request: Request, ledger: Ledger,
                     shadow: SendShadow | None = None) -> tuple[AsyncIterator[Chunk], Decision]:
        """A plain call streams as the tier writes; anything checked first (a draft, a grounded answer) or
        canned is answered whole and replayed as a stream."""
        if isinstance(plan, Call) and not isinstance(plan, Grounded):
            backend = self._for_call(plan, ledger, shadow, request.caller)
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
        caller = request.caller
        draft = await self.routed(local, ledger, caller=caller).complete(request.messages, params)
        if ledger.tier != local:  # a full local queue sent it to the LLM: nothing to check
            return draft, plan.decision

        async def sample(sample_params: GenerationParams) -> Completion:
            return await self.paid(local, ledger, caller).complete(request.messages, sample_params)

        with self.d.tracing.span(CHECK, {"hybridlm.check": plan.kind}) as span:
            verdict = await plan.check(draft, sample)
            escalate = verdict.value >= plan.threshold
            span.set_attributes({"hybridlm.score": verdict.value, "hybridlm.threshold": plan.threshold,
                                 "hybridlm.escalate": escalate})
        reason = (f"{plan.kind}: draft verifier score {verdict.value:.2f} {'>=' if escalate else '<'} threshold "
                  f"{plan.threshold:.2f}: {verdict.explain()}")
        decision = replace(plan.decision, tier=remote if escalate and remote else local, score=verdict.value,
                           threshold=plan.threshold, reason=reason, features=verdict.contributions)
        if not escalate:
            return draft, decision
        if remote is None:
            ledger.note_fallback(LLM_UNAVAILABLE, f"{NO_LLM}; the draft is kept")
            return draft, decision
        try:
            return await self.paid(remote, ledger, caller).complete(request.messages, request.params), decision
        except BackendError as err:
            if err.kind == OVER_BUDGET and self._degrades:
                kind = BUDGET_EXHAUSTED
            elif err.kind in (OVER_BUDGET, "invalid_request") or not self.d.config.router.fallback:
                raise
            else:
                kind = LLM_UNAVAILABLE
            ledger.tier = local
            ledger.note_fallback(kind, f"{err.message}; the draft is kept")
            return draft, decision

    async def _checked(self, plan: Grounded, request: Request, ledger: Ledger, answer: Completion) -> Completion:
        """Fact-check a grounded answer; corrections go to the tier that answered, at its price."""
        assert ledger.tier is not None
        backend = self.paid(ledger.tier, ledger, request.caller)
        latest = answer.text

        async def ask(correction: list[Message]) -> str:
            nonlocal latest
            try:
                latest = (await backend.complete(correction, request.params)).text
            except BackendError as err:  # a spent budget: the answer stays as it is (refuse: the client is told)
                if err.kind != OVER_BUDGET or not self._degrades:
                    raise
                ledger.note_fallback(BUDGET_EXHAUSTED, f"{err.message}; the answer is not corrected")
            return latest

        with self.d.tracing.span(CHECK, {"hybridlm.check": "factcheck"}) as span:
            text = await self.d.rag.verify(plan.grounding, request.messages, answer.text, ask)
            report = plan.grounding.report
            span.set_attributes({"hybridlm.supported": report is not None and report.supported,
                                 "hybridlm.correction_rounds": plan.grounding.rounds,
                                 "hybridlm.removed_claims": len(plan.grounding.removed)})
        return replace(answer, text=text, usage=ledger.served()[1])


def _leave_failing_remote(err: BackendError) -> str | None:
    return None if err.kind in NOT_FALLBACKS else err.message


def _leave_over_budget(err: BackendError) -> str | None:
    return err.message if err.kind == OVER_BUDGET else None


async def replay(answer: Completion) -> AsyncIterator[Chunk]:
    """A finished answer as a stream."""
    if answer.text:
        yield Chunk(text=answer.text)
    for index, call in enumerate(answer.tool_calls):
        yield Chunk(tool_calls=(ToolCallDelta(index, call.id, call.name, ""),))
        yield Chunk(tool_calls=(ToolCallDelta(index, arguments=call.arguments),))
    yield Chunk(finish_reason=answer.finish_reason, usage=answer.usage)
