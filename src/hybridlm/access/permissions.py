"""What a key may ask for: the tiers it may force and the routing profiles it may use.

Checked once the request's `model` has resolved, so a refusal is recorded like any other. A key
limited to the local tier that asks to be routed is not refused here: keeping it local is policy,
decided where routing is.
"""

from __future__ import annotations

from hybridlm.failures import APIError
from hybridlm.request import Caller
from hybridlm.targets import HYBRID, Target


def profile_name(target: Target) -> str:
    """The name a key's `profiles` list uses: `hybrid` for plain routing, else the profile (`cheap`
    for `hybrid/cheap`, `rag`, `summarize` for /v1/summarize)."""
    return target.profile or HYBRID


def check_allowed(caller: Caller | None, target: Target) -> None:
    """Raise 403 when the key may not use the target; a request without a key is not limited here."""
    if caller is None:
        return
    if target.forced_tier is not None:
        if caller.tiers is not None and target.forced_tier not in caller.tiers:
            raise APIError(403, f"This API key may not use the tier '{target.forced_tier}' (allowed: "
                                f"{', '.join(caller.tiers) or 'none'})", code="tier_not_allowed", param="model")
        return
    name = profile_name(target)
    if caller.profiles is not None and name not in caller.profiles:
        raise APIError(403, f"This API key may not use the profile '{name}' (allowed: "
                            f"{', '.join(caller.profiles) or 'none'})", code="model_not_allowed", param="model")
