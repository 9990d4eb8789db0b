"""The default profile (`hybrid`, `hybrid/<name>`, a named tier): the router's score decides the tier;
a cascade router lets the local tier draft first and judges the draft."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Protocol, runtime_checkable

from hybridlm.deployment import Deployment
from hybridlm.plans import Call, CheckDraft, Draft, Plan, Sample
from hybridlm.profiles.base import routed_decision, wants_llm
from hybridlm.request import Request
from hybridlm.routing.base import Score
from hybridlm.routing.selfcheck import SAMPLE_TEMPERATURE
from hybridlm.targets import Target
from hybridlm.types import Completion, Decision, Message

CASCADE_REASON = "cascade: the small model drafts first; a verifier reads the draft and may escalate"


@runtime_checkable
class DraftVerifier(Protocol):
    """A router that judges the small model's draft instead of the bare prompt (a cascade)."""

    wants_logprobs: bool  # the draft must carry its token log-probabilities
    resamples: int  # extra answers of the small model the verifier compares with the draft

    def verify(self, messages: list[Message], draft: Completion, samples: list[str]) -> Score: ...


class RoutedProfile:
    def __init__(self, deployment: Deployment) -> None:
        self.deployment = deployment
        self._checked: tuple[object, bool] = (None, False)  # (router, is it a cascade): a protocol check is slow

    def _cascade(self) -> DraftVerifier | None:
        router = self.deployment.router
        if self._checked[0] is not router:
            self._checked = (router, isinstance(router, DraftVerifier))
        return router if self._checked[1] else None  # type: ignore[return-value]

    def cheap(self, request: Request, target: Target) -> bool:
        return bool(getattr(self.deployment.router, "cheap", False))

    def plan(self, request: Request, target: Target) -> Plan:
        router = self._cascade()
        if router is not None and not target.forced_tier:
            decision = Decision(self.deployment.local_tier, None, target.threshold, CASCADE_REASON, router.name,
                                draft=True)
            return Draft(decision, self._check(router, request), target.threshold, "cascade", router.wants_logprobs)
        decision = routed_decision(self.deployment, request, target)
        return Call(decision, wants_llm=wants_llm(decision))

    @staticmethod
    def _check(router: DraftVerifier, request: Request) -> CheckDraft:
        async def check(draft: Completion, sample: Sample) -> Score:
            """More answers of the small model at a higher temperature (paid for), then the verifier."""
            samples = []
            for i in range(router.resamples):
                params = replace(request.params, temperature=SAMPLE_TEMPERATURE, seed=i + 1, logprobs=False)
                samples.append((await sample(params)).text)
            return await asyncio.to_thread(router.verify, request.messages, draft, samples)

        return check
