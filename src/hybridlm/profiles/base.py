"""The interface of a profile, and the routing decision the routed profiles share."""

from __future__ import annotations

from typing import Protocol

from hybridlm.deployment import Deployment
from hybridlm.plans import Plan
from hybridlm.request import Request
from hybridlm.targets import Target
from hybridlm.types import Decision


class Profile(Protocol):
    def plan(self, request: Request, target: Target) -> Plan:
        """Decide what the request needs. May be CPU-bound (encoders, skills): the pipeline runs it off the
        event loop unless `cheap` says it is not worth the hop."""
        ...

    def cheap(self, request: Request, target: Target) -> bool: ...


def routed_decision(deployment: Deployment, request: Request, target: Target) -> Decision:
    """The router's score against the threshold, or the tier the request named (its score still shown)."""
    router = deployment.router
    with deployment.tracing.analyse(router.name):
        score = router.score(request.messages)
    if target.forced_tier:
        return Decision(target.forced_tier, score.value, target.threshold,
                        f"forced: the request named tier '{target.forced_tier}'", router.name, score.contributions,
                        forced=True)
    wants_remote = score.value >= target.threshold
    remote = deployment.remote_tier
    tier = remote if wants_remote and remote else deployment.local_tier
    verdict = ">=" if wants_remote else "<"
    reason = f"score {score.value:.2f} {verdict} threshold {target.threshold:.2f}: {score.explain()}"
    return Decision(tier, score.value, target.threshold, reason, router.name, score.contributions)


def wants_llm(decision: Decision) -> bool:
    return not decision.forced and decision.score is not None and decision.score >= (decision.threshold or 0.0)
