"""The `openai` backend: each upstream behind its own retries and circuit breaker, failover over them.

The breaker sits outside the retries, so it counts calls, not tries, and an open circuit stops
the retrying too. A tier with one `base_url` is the same stack with one member.
"""

from __future__ import annotations

from hybridlm.models.base import BackendContext
from hybridlm.models.openai_http import OpenAIBackend, OpenAIOptions
from hybridlm.models.wrappers.breaker import CircuitBreaker
from hybridlm.models.wrappers.failover import FailoverBackend
from hybridlm.models.wrappers.retry import RetryingBackend


class RemoteTier:
    """The factory registered as `openai`: options in, the whole stack out."""

    Options = OpenAIOptions

    def __call__(self, options: OpenAIOptions, context: BackendContext | None = None) -> FailoverBackend:
        members = []
        for endpoint in options.endpoints():
            client = OpenAIBackend(endpoint, options)
            members.append(CircuitBreaker(RetryingBackend(client, options.retries), options.breaker, client.where))
        return FailoverBackend(members, options.upstream_order)
