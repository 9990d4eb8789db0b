"""Prometheus metrics: what each recorded request did, read from its trace, and the state of the tiers'
upstreams (retries, circuit breakers) and local models (queue depth).

Every request passes `Pipeline.record` exactly once, so `observe` there sees each trace once. The state
lives on the backends; it is copied into gauges and counters whenever a request is recorded and right
before a scrape, so a process's values are as of its last request and the scraping process's are current.

Two modes, as prometheus-client has them:

- in-process (the default): each `GatewayMetrics` has its own `CollectorRegistry`, so two gateways built
  in one process (tests, say) never share or clash, and none touches the global default registry.
- multiprocess (`PROMETHEUS_MULTIPROC_DIR` set before the process starts): every process writes its
  values to files in that folder and a scrape merges them all (`MultiProcessCollector`). A metric object
  there caches its value and writes it back whole, so two objects for one metric in a process would
  overwrite each other's counts: the process keeps one set (`process_metric_set`) shared by every
  gateway in it. Gauges say how processes combine: a circuit's worst state over the live processes, the
  local queues' depth summed over them (each process runs its own copy of the model). A gateway that
  stops takes its process's gauges out (`close`); its counts stay. Empty the folder before the processes
  start: the files of a process killed outright stay too.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from hybridlm.models.base import ChatBackend
from hybridlm.models.local_worker import LocalWorker
from hybridlm.models.wrappers.base import BackendWrapper
from hybridlm.models.wrappers.breaker import CircuitBreaker, State
from hybridlm.models.wrappers.failover import FailoverBackend
from hybridlm.models.wrappers.retry import RetryingBackend
from hybridlm.types import Trace

MULTIPROC_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
# Seconds: from a cached local answer to a long remote generation.
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0)
CIRCUIT_STATES: dict[State, int] = {"closed": 0, "half_open": 1, "open": 2}
ROUTE = ("tier", "model", "profile")  # where a request went; "" where it never got that far
UPSTREAM = ("tier", "upstream")


def multiprocess_dir() -> Path | None:
    """The folder multiprocess mode keeps its files in, or None in in-process mode."""
    value = os.environ.get(MULTIPROC_DIR_ENV)
    return Path(value) if value else None


class MetricSet:
    """The metric objects, registered on `registry` (None: on none, as multiprocess mode has it)."""

    def __init__(self, registry: CollectorRegistry | None) -> None:
        self.requests = Counter("hybridlm_requests", "Requests recorded: served, refused, failed and shadow",
                                [*ROUTE, "status", "code"], registry=registry)
        self.latency = Histogram("hybridlm_request_latency_seconds", "From a request's arrival to its end",
                                 [*ROUTE, "status"], buckets=LATENCY_BUCKETS, registry=registry)
        self.first_token = Histogram("hybridlm_time_to_first_token_seconds",
                                     "Streamed requests: from arrival to the first chunk the client could be sent",
                                     ROUTE, buckets=LATENCY_BUCKETS, registry=registry)
        self.upstream_latency = Histogram("hybridlm_upstream_call_latency_seconds", "Each call a tier made",
                                          ("tier", "model"), buckets=LATENCY_BUCKETS, registry=registry)
        self.tokens = Counter("hybridlm_tokens", "Tokens of the answering tier, as the request log counts them",
                              [*ROUTE, "direction"], registry=registry)
        self.cost = Counter("hybridlm_cost_usd", "What requests cost, every call counted", ROUTE, registry=registry)
        self.baseline_cost = Counter("hybridlm_baseline_cost_usd",
                                     "What the same requests would have cost had the LLM tier answered them all",
                                     ROUTE, registry=registry)
        # A gauge: a request can cost more than its baseline (a priced local tier, a task), and a counter
        # may not go down.
        self.savings = Gauge("hybridlm_savings_usd", "Baseline cost minus cost, summed over requests", ROUTE,
                             registry=registry, multiprocess_mode="sum")
        self.fallbacks = Counter("hybridlm_fallbacks", "Requests another tier answered, by why",
                                 ("kind", "tier", "profile"), registry=registry)
        self.retries = Counter("hybridlm_upstream_retries", "Tries beyond the first at an upstream", UPSTREAM,
                               registry=registry)
        self.circuit_state = Gauge("hybridlm_circuit_state", "An upstream's circuit: 0 closed, 1 half-open, 2 open",
                                   UPSTREAM, registry=registry, multiprocess_mode="livemax")
        self.queue_depth = Gauge("hybridlm_local_queue_depth", "Requests waiting for a local model",
                                 ("tier", "model"), registry=registry, multiprocess_mode="livesum")


@cache
def process_metric_set() -> MetricSet:
    """Multiprocess mode's one set per process (see the module's docstring)."""
    return MetricSet(registry=None)


@dataclass
class WatchedUpstream:
    """One upstream of a tier, and the retries already counted of it."""

    tier: str
    breaker: CircuitBreaker
    retrying: RetryingBackend | None
    retries_counted: int = 0


@dataclass(frozen=True)
class WatchedQueue:
    """A local model's queue; the model's name is read when sampled (a model that cannot be had is replaced
    when it loads)."""

    tier: str
    backend: ChatBackend
    worker: LocalWorker


def _layers(backend: ChatBackend) -> Iterator[ChatBackend]:
    """Every layer of a tier's stack of wrappers, through each member of a failover."""
    yield backend
    if isinstance(backend, FailoverBackend):
        for member in backend.members:
            yield from _layers(member)
    elif isinstance(backend, BackendWrapper):
        yield from _layers(backend.inner)


def _upstreams(backends: Mapping[str, ChatBackend]) -> Iterator[WatchedUpstream]:
    for tier, backend in backends.items():
        for layer in _layers(backend):
            if isinstance(layer, CircuitBreaker):
                retrying = next((r for r in _layers(layer.inner) if isinstance(r, RetryingBackend)), None)
                yield WatchedUpstream(tier, layer, retrying)


def _queues(backends: Mapping[str, ChatBackend]) -> Iterator[WatchedQueue]:
    """The layers that run on a local worker (found by it, so llama.cpp need not be imported to look)."""
    for tier, backend in backends.items():
        for layer in _layers(backend):
            worker = getattr(layer, "worker", None)
            if isinstance(worker, LocalWorker):
                yield WatchedQueue(tier, layer, worker)


class GatewayMetrics:
    """One deployment's metrics: observes each recorded trace, samples its backends, renders a scrape."""

    def __init__(self, backends: Mapping[str, ChatBackend]) -> None:
        self._folder = multiprocess_dir()
        self._registry: CollectorRegistry | None = None
        if self._folder is None:
            self._registry = CollectorRegistry()
            self.metric_set = MetricSet(self._registry)
        else:
            self._folder.mkdir(parents=True, exist_ok=True)  # every process writes there from its first request
            self.metric_set = process_metric_set()
        self._upstreams = list(_upstreams(backends))
        self._queues = list(_queues(backends))
        self._sampling = threading.Lock()  # records and scrapes may come from several threads
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}

    def _child(self, metric: MetricWrapperBase, *values: str) -> Any:
        """`metric.labels(*values)`, looked up once per label set (prometheus-client checks the values and takes
        a lock on every call; the label sets are as few as the routes, statuses and upstreams)."""
        key = (id(metric), values)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*values)
        return child

    def observe(self, trace: Trace) -> None:
        """Count one finished request (its trace complete), then sample the backends' state."""
        metrics, child = self.metric_set, self._child
        route = (trace.tier or "", trace.model or "", trace.profile or "")
        child(metrics.requests, *route, trace.status, str(trace.http_status)).inc()
        child(metrics.latency, *route, trace.status).observe(trace.latency_ms / 1000.0)
        if trace.first_token_ms is not None:
            child(metrics.first_token, *route).observe(trace.first_token_ms / 1000.0)
        for call in trace.calls:
            child(metrics.upstream_latency, call["tier"], call["model"]).observe(call["latency_ms"] / 1000.0)
        child(metrics.tokens, *route, "prompt").inc(trace.usage.prompt_tokens)
        child(metrics.tokens, *route, "completion").inc(trace.usage.completion_tokens)
        child(metrics.cost, *route).inc(trace.cost_usd)
        child(metrics.baseline_cost, *route).inc(trace.baseline_cost_usd)
        child(metrics.savings, *route).inc(trace.baseline_cost_usd - trace.cost_usd)
        if trace.fallback is not None:
            child(metrics.fallbacks, trace.fallback, route[0], route[2]).inc()
        self.sample()

    def sample(self) -> None:
        """Copy the upstreams' retries and circuit states and the local queues' depths into the metrics."""
        metrics, child = self.metric_set, self._child
        with self._sampling:
            for upstream in self._upstreams:
                labels = (upstream.tier, upstream.breaker.name)
                child(metrics.circuit_state, *labels).set(CIRCUIT_STATES[upstream.breaker.state])
                tries = upstream.retrying.retries if upstream.retrying is not None else 0
                retries = child(metrics.retries, *labels)  # shown from the first request on, at 0
                if tries != upstream.retries_counted:
                    retries.inc(tries - upstream.retries_counted)
                    upstream.retries_counted = tries
            for queue in self._queues:
                child(metrics.queue_depth, queue.tier, queue.backend.model_name).set(queue.worker.waiting)

    def exposition(self) -> bytes:
        """The scrape, in Prometheus' text format: this deployment's registry, or every process's files."""
        self.sample()
        registry = self._registry
        if registry is None:
            registry = CollectorRegistry()  # a fresh one per scrape, as prometheus-client advises
            MultiProcessCollector(registry)
        return generate_latest(registry)

    def close(self) -> None:
        """Multiprocess mode: this process's circuit states and queue depths leave the merged scrape."""
        if self._folder is not None:
            mark_process_dead(os.getpid(), str(self._folder))
