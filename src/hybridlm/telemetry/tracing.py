"""OpenTelemetry traces of each request's stages, sent over OTLP/HTTP when `telemetry` names an endpoint.

One trace per recorded request: the root `hybridlm.request`, and under it `decide` (with an `analyse` for
each reader of the request: the router, the support desk's skills, retrieval, the tool router), a
`call <tier>` for each call a tier makes, `check` for a draft's verification or a grounded answer's
fact-check (the calls they make nest under it), and `record` (the log row, ended once it is
committed). Attributes carry the request id, the decision (its reason as the log keeps it, which may
quote the words a router's feature matched) and what each call used and cost; never the prompt or
answer, error messages or paths.

Without an endpoint the tracer is opentelemetry-api's no-op one: the SDK is never imported, no
exporter thread runs and the `otel` extra need not be installed. Each deployment has its own
TracerProvider (never the global one), so several apps in one process keep their spans apart.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from concurrent.futures import Future
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING

from opentelemetry import trace as otel
from opentelemetry.context import Context
from opentelemetry.trace import INVALID_SPAN, Link, NoOpTracer, Span, Status, StatusCode, Tracer
from opentelemetry.util.types import AttributeValue

from hybridlm import __version__
from hybridlm.config import TelemetryConfig
from hybridlm.extras import require
from hybridlm.failures import APIError
from hybridlm.models.base import BackendError

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

    from hybridlm.ledger import Spend
    from hybridlm.types import Decision, Trace

REQUEST, DECIDE, ANALYSE, CHECK, RECORD = "hybridlm.request", "decide", "analyse", "check", "record"

Attributes = Mapping[str, AttributeValue | None]


class Tracing:
    """One deployment's tracer, and the root span of each request between its start and its record."""

    def __init__(self, provider: TracerProvider | None = None) -> None:
        self._provider = provider
        self.tracer: Tracer = provider.get_tracer("hybridlm", __version__) if provider else NoOpTracer()
        self._roots: dict[str, Span] = {}  # request id -> its root span, until the request is recorded

    @classmethod
    def from_config(cls, config: TelemetryConfig) -> Tracing:
        """The no-op tracer without an endpoint; else a batching OTLP/HTTP exporter. An endpoint without the
        otel extra raises MissingExtra, so the gateway says what to install before it serves."""
        endpoint = config.endpoint()
        if endpoint is None:
            return cls()
        sdk, export = require("opentelemetry.sdk.trace"), require("opentelemetry.sdk.trace.export")
        resources = require("opentelemetry.sdk.resources")
        otlp = require("opentelemetry.exporter.otlp.proto.http.trace_exporter")
        resource = resources.Resource.create({"service.name": config.service_name, "service.version": __version__})
        provider = sdk.TracerProvider(resource=resource)
        # The exporter adds any OTEL_EXPORTER_OTLP_(TRACES_)HEADERS itself, under the configured ones.
        exporter = otlp.OTLPSpanExporter(endpoint=endpoint, headers=config.headers or None)
        provider.add_span_processor(export.BatchSpanProcessor(exporter))
        return cls(provider)

    @property
    def enabled(self) -> bool:
        return self._provider is not None

    @contextmanager
    def request(self, trace: Trace) -> Iterator[None]:
        """The request's root span, current inside the block so that its stages nest under it. It ends when the
        request is recorded (`recorded`), for a stream after the block. A request begun inside another's trace
        (a shadow of a served one) has a trace of its own, linked to that one."""
        if not self.enabled:
            yield
            return
        self._roots[trace.request_id] = root = self._root(trace, otel.get_current_span())
        with otel.use_span(root, record_exception=False, set_status_on_exception=False):
            yield

    def _root(self, trace: Trace, within: Span = INVALID_SPAN) -> Span:
        around = within.get_span_context()
        return self.tracer.start_span(REQUEST, context=Context(), links=[Link(around)] if around.is_valid else None,
                                      attributes={"hybridlm.request_id": trace.request_id},
                                      start_time=int(trace.started * 1e9))

    @contextmanager
    def span(self, name: str, attributes: Attributes | None = None) -> Iterator[Span]:
        """A stage of the current request, current inside the block; a failure marks it with its kind alone."""
        if not self.enabled:
            yield INVALID_SPAN
            return
        with self.tracer.start_as_current_span(name, attributes=present(attributes or {}), record_exception=False,
                                               set_status_on_exception=False) as span:
            try:
                yield span
            except BaseException as err:
                failed(span, err)
                raise

    def analyse(self, analyser: str) -> AbstractContextManager[Span]:
        """One reader of the request (a router, skills, retrieval, a rule) at work while the plan is made."""
        return self.span(ANALYSE, {"hybridlm.analyser": analyser})

    def start(self, name: str, attributes: Attributes | None = None) -> Span:
        """A stage that outlives the block it starts in (a streamed call): never made current, ended by the
        caller."""
        return self.tracer.start_span(name, attributes=present(attributes or {})) if self.enabled else INVALID_SPAN

    def recorded(self, trace: Trace, endpoint: str, written: Future[None]) -> None:
        """The `record` span, ended once the row is committed, then the root span with how the request ended.
        A request refused before the pipeline (no root yet) gets its root now, dated from its arrival."""
        if not self.enabled:
            return
        root = self._roots.pop(trace.request_id, None) or self._root(trace)
        record = self.tracer.start_span(RECORD, context=otel.set_span_in_context(root),
                                        attributes={"hybridlm.endpoint": endpoint})
        outcome = outcome_attributes(trace, endpoint)
        status = Status(StatusCode.ERROR, trace.error_code or trace.status) if trace.status != "ok" else None

        def committed(done: Future[None]) -> None:
            if done.cancelled() or done.exception() is not None:
                record.set_status(Status(StatusCode.ERROR, "not committed"))
            record.end()
            root.set_attributes(outcome)
            if status is not None:
                root.set_status(status)
            root.end()

        written.add_done_callback(committed)

    def shutdown(self) -> None:
        """Send what is still queued and stop the exporter's thread (blocks up to the exporter's timeout)."""
        if self._provider is not None:
            self._provider.shutdown()


def present(attributes: Attributes) -> dict[str, AttributeValue]:
    """OpenTelemetry takes no None: an unknown value is left out."""
    return {k: v for k, v in attributes.items() if v is not None}


def failed(span: Span, err: BaseException) -> None:
    """An error status naming what went wrong by kind (a backend's failure kind, an API error's code, else the
    exception's type), never by its message, which may quote an upstream or a path."""
    if isinstance(err, BackendError):
        kind = err.kind
    elif isinstance(err, APIError):
        kind = err.code or err.type
    else:
        kind = type(err).__name__
    span.set_status(Status(StatusCode.ERROR, kind))


def decision_attributes(profile: str | None, decision: Decision) -> dict[str, AttributeValue]:
    return present({"hybridlm.profile": profile, "hybridlm.router": decision.router, "hybridlm.score": decision.score,
            "hybridlm.threshold": decision.threshold, "hybridlm.routed_tier": decision.tier,
            "hybridlm.reason": decision.reason, "hybridlm.forced": decision.forced, "hybridlm.draft": decision.draft})


def spend_attributes(spend: Spend) -> dict[str, AttributeValue]:
    return present({"hybridlm.model": spend.model, "hybridlm.prompt_tokens": spend.usage.prompt_tokens,
            "hybridlm.completion_tokens": spend.usage.completion_tokens, "hybridlm.cost_usd": spend.cost_usd,
            "hybridlm.latency_ms": spend.latency_ms, "hybridlm.first_token_ms": spend.first_token_ms})


def outcome_attributes(trace: Trace, endpoint: str) -> dict[str, AttributeValue]:
    return present({"hybridlm.endpoint": endpoint, "hybridlm.requested_model": trace.requested_model,
            "hybridlm.profile": trace.profile, "hybridlm.tier": trace.tier, "hybridlm.model": trace.model,
            "hybridlm.status": trace.status, "http.response.status_code": trace.http_status,
            "hybridlm.error_code": trace.error_code, "hybridlm.cost_usd": trace.cost_usd,
            "hybridlm.prompt_tokens": trace.usage.prompt_tokens,
            "hybridlm.completion_tokens": trace.usage.completion_tokens, "hybridlm.fallback": trace.fallback,
            "hybridlm.stream": trace.stream, "hybridlm.first_token_ms": trace.first_token_ms,
            "hybridlm.shadow_of": trace.shadow_of})
