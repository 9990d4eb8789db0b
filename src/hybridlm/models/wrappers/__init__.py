"""Backends around backends: each adds one concern (retries, a circuit breaker, failover, fallback, budget)."""
