"""What a failed remote call says: worth another try, a sign of a sick upstream, or neither.

Retries, the circuit breaker and failover read the same two answers, so they never disagree
about whether, say, a 400 is the upstream's fault (it is not: the request would fail anywhere).
"""

from __future__ import annotations

from hybridlm.models.base import BackendError

TOO_MANY_REQUESTS = 429


def _request_refused(err: BackendError) -> bool:
    """A 4xx other than 429: the upstream understood the request and said no to it."""
    return err.kind == "upstream" and err.status is not None and 400 <= err.status < 500 \
        and err.status != TOO_MANY_REQUESTS


def is_transient(err: BackendError) -> bool:
    """Worth another try at the same upstream: it could not be reached, or answered 429 or 5xx."""
    if err.kind == "unavailable":
        return True
    return err.kind == "upstream" and err.status is not None and (err.status == TOO_MANY_REQUESTS
                                                                 or err.status >= 500)


def is_upstream_fault(err: BackendError) -> bool:
    """Counts against the upstream's health (the breaker counts it, failover moves on to the next one).

    A full local queue, a request no model could take and a refused request say nothing about it.
    """
    return err.kind not in ("busy", "invalid_request") and not _request_refused(err)
