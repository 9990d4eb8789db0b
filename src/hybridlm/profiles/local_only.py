"""Local-only policies: rules that keep a request on the local tier whatever the router says. A
request whose data must not leave the machine (personal data of a listed type, a sensitive intent,
a matching pattern, a key of a tenant with such rules, a key not allowed the remote tier) is
answered locally, and the decision's reason names the rule. A request that names the remote tier
itself is refused instead (403 `local_only`): the client asked for what the rule forbids.

It wraps every profile, so the profiles themselves know nothing of it.
"""

from __future__ import annotations

import re
from dataclasses import replace
from functools import cached_property

from hybridlm.config import LocalOnlyRules
from hybridlm.deployment import Deployment
from hybridlm.failures import APIError
from hybridlm.plans import Call, Canned, Draft, Orchestrated, Plan
from hybridlm.profiles.base import Profile
from hybridlm.request import Request
from hybridlm.routing.base import message_text
from hybridlm.targets import Target


class LocalOnly:
    def __init__(self, inner: Profile, deployment: Deployment) -> None:
        self.inner, self.d = inner, deployment

    @cached_property
    def _patterns(self) -> dict[str | None, list[re.Pattern[str]]]:
        """Compiled once: the global rules' patterns under None, each tenant's under its name."""
        policies = self.d.config.policies
        rules = {None: policies.local_only, **policies.tenants}
        return {name: [re.compile(p) for p in r.patterns] for name, r in rules.items()}

    def _rules(self, request: Request) -> list[tuple[str, LocalOnlyRules]]:
        policies = self.d.config.policies
        found = [("policy", policies.local_only)]
        tenant = request.caller.tenant if request.caller else None
        if tenant is not None and tenant in policies.tenants:
            found.append((f"tenant '{tenant}'", policies.tenants[tenant]))
        return [(name, r) for name, r in found if r.pii or r.intents or r.patterns]

    def cheap(self, request: Request, target: Target) -> bool:
        """Personal-data detection is CPU-bound: with such a rule, planning runs in the worker pool."""
        return self.inner.cheap(request, target) and not any(r.pii for _, r in self._rules(request))

    def plan(self, request: Request, target: Target) -> Plan:
        plan = self.inner.plan(request, target)
        remote = self.d.remote_tier
        if remote is None or isinstance(plan, Canned) or (isinstance(plan, Call) and plan.decision.tier != remote):
            return plan  # nothing would leave the machine (a draft may still escalate, so it is checked)
        rule = self._matched(request, plan)
        if rule is None:
            return plan
        if plan.decision.forced:
            raise APIError(403, f"this request must stay on this machine ({rule}); it cannot go to tier '{remote}'",
                           type="permission_error", code="local_only", param="model")
        decision = replace(plan.decision, tier=self.d.local_tier, draft=False,
                           reason=f"local-only: {rule} (the router said: {plan.decision.reason})")
        if isinstance(plan, Draft):
            return Call(decision)  # the draft is the answer: there is nowhere to escalate to
        if isinstance(plan, Orchestrated):
            return replace(plan, decision=decision, local_only=True)  # planned, done and answered here
        return replace(plan, decision=decision, wants_llm=False)

    def _matched(self, request: Request, plan: Plan) -> str | None:
        """The first rule that keeps the request here, named, or None."""
        caller = request.caller
        if caller is not None and caller.tiers is not None and self.d.remote_tier not in caller.tiers:
            return f"key '{caller.name}' may not use tier '{self.d.remote_tier}'"
        texts = [*(message_text(m) for m in request.messages), *(text for _, text in request.documents)]
        for name, rules in self._rules(request):
            intent = plan.decision.labels.get("intent")
            if intent is not None and intent in rules.intents:
                return f"{name}: intent '{intent}' is sensitive"
            tenant = None if name == "policy" else (caller.tenant if caller else None)
            for pattern in self._patterns[tenant]:
                if any(pattern.search(t) for t in texts):
                    return f"{name}: pattern '{pattern.pattern}' matched"
            if rules.pii:
                present = {f.entity for t in texts for f in self.d.pii_detector.detect(t)} & set(rules.pii)
                if present:
                    return f"{name}: personal data of type {', '.join(sorted(present))}"
        return None
