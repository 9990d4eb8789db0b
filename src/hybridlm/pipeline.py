"""The one way a request goes through hybridlm: `await pipeline.run(request)` or
`await pipeline.run_stream(request)`, from every endpoint, the CLI, the Python API and the demos.

A profile turns the request into a plan (off the event loop when planning is CPU-bound), the
executor carries it out, and the trace is filled once from the plan's decision and the request's
ledger. Every outcome (served, refused, failed upstream, client gone, our own defect) is recorded
exactly once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from concurrent.futures import Future
from dataclasses import dataclass, replace
from functools import cached_property

from hybridlm.access.permissions import check_allowed
from hybridlm.access.rate_limits import RateLimits, estimated_tokens
from hybridlm.executor import BUDGET_EXHAUSTED, LLM_UNAVAILABLE, Executor
from hybridlm.deployment import NO_LLM, Deployment
from hybridlm.errors import HybridLMError, MissingExtra
from hybridlm.ledger import Ledger
from hybridlm.models.base import BackendError, GenerationParams
from hybridlm.models.deadline import deadline_scope
from hybridlm.models.wrappers.shadow import SendShadow
from hybridlm.models.wrappers.streams import OpenedStream, open_stream
from hybridlm.plans import Call, Canned, Grounded, Plan
from hybridlm.privacy.placeholders import Redaction
from hybridlm.profiles.base import Profile
from hybridlm.profiles.registry import PROFILES, ROUTED, build_profile
from hybridlm.request import Request
from hybridlm.routing.base import last_user_text
from hybridlm.routing.tools import TOOLS
from hybridlm.failures import APIError, from_backend, mark_failed
from hybridlm.targets import BUILT_IN_PROFILES, Target, UnknownModel
from hybridlm.telemetry.metrics import GatewayMetrics
from hybridlm.telemetry.tracing import DECIDE, decision_attributes
from hybridlm.types import Chunk, Completion, Decision, Message, Trace

log = logging.getLogger(__name__)
PREVIEW_CHARS = 200  # of the last user message, kept in the log


class RequestFailed(HybridLMError):
    """A request that was not served; its trace is already recorded. `error` is what the client is told."""

    def __init__(self, error: APIError, trace: Trace) -> None:
        super().__init__(error.message)
        self.error, self.trace = error, trace


@dataclass(frozen=True)
class Answer:
    completion: Completion
    trace: Trace


@dataclass(frozen=True)
class StreamAnswer:
    """The tier that answers is known (its first chunk has arrived); the trace is recorded when `chunks` ends."""

    trace: Trace
    chunks: AsyncIterator[Chunk]


class Pipeline(Deployment):
    """The deployment, with the one way in."""

    @cached_property
    def executor(self) -> Executor:
        return Executor(self)

    @cached_property
    def profiles(self) -> dict[str, Profile]:
        return {name: build_profile(name, self) for name in PROFILES}

    @cached_property
    def rate_limits(self) -> RateLimits:
        return RateLimits()

    @cached_property
    def metrics(self) -> GatewayMetrics:
        return GatewayMetrics(self.backends)

    @cached_property
    def _shadows(self) -> set[asyncio.Task[None]]:
        return set()

    # planning
    def _profile(self, request: Request, target: Target) -> Profile:
        if request.profile is not None:
            return self.profiles[request.profile]
        if target.profile in BUILT_IN_PROFILES:
            return self.profiles[str(target.profile)]
        tools = request.params.tools
        if tools is not None and tools.choice != "none" and not target.forced_tier:
            return self.profiles[TOOLS]
        return self.profiles[ROUTED]

    async def plan(self, request: Request, trace: Trace) -> Plan:
        with self.tracing.span(DECIDE) as span:
            try:
                target = self.resolve(request.model) if request.profile is None else Target(None, request.profile, 0.0)
            except UnknownModel as err:
                raise APIError(404, str(err), code="model_not_found", param="model") from None
            check_allowed(request.caller, target)
            trace.profile = target.profile
            profile = self._profile(request, target)
            if profile.cheap(request, target):
                plan = profile.plan(request, target)
            else:  # the worker thread runs in a copy of this context: its spans nest under this one
                plan = await asyncio.to_thread(profile.plan, request, target)
            span.set_attributes(decision_attributes(target.profile, plan.decision))
            return plan

    async def explain(self, request: Request) -> Trace:
        """The decision alone, with any fallback it would meet now; no model is called, nothing is recorded."""
        trace = self.start_trace(request, stream=False)
        plan = await self.plan(request, trace)
        trace.decision = plan.decision
        trace.tier = plan.decision.tier
        if isinstance(plan, Call) and plan.wants_llm and (reason := self.remote_unavailable(request.caller)):
            kind = LLM_UNAVAILABLE if reason == NO_LLM else BUDGET_EXHAUSTED
            trace.fallback, trace.fallback_reason, trace.tier = kind, reason, self.local_tier
        return trace

    # running
    def start_trace(self, request: Request, stream: bool) -> Trace:
        text = last_user_text(request.messages)
        return Trace(requested_model=request.model, stream=stream, prompt_preview=text[:PREVIEW_CHARS],
                     prompt_text=text if self.config.server.store_text else None,
                     key_id=request.caller.key_id if request.caller else None)

    async def private_preview(self, trace: Trace, messages: list[Message], ledger: Ledger | None,
                              check: bool = True) -> None:
        """Without `server.store_text` the log's preview of a prompt shows placeholders for its personal data. A
        request whose redaction replaced values has its preview masked with them (`_settle`); any other is checked
        here, in the worker pool (the detector remembers a text the redaction already checked), or with `check`
        off simply withheld. The preview is withheld while the check runs, so a check that fails or is cut short
        leaves none (fail closed)."""
        if not self.masks_previews or not trace.prompt_preview or (ledger is not None and ledger.redaction):
            return
        text, trace.prompt_preview = last_user_text(messages), ""
        if not check:
            return
        try:
            findings = await asyncio.to_thread(self.pii_detector.detect, text)
        except Exception as err:  # noqa: BLE001 - whatever broke, the preview stays withheld
            log.warning("a prompt preview was withheld: the personal-data check failed (%s)", type(err).__name__)
            return
        trace.prompt_preview = Redaction().redact(text, findings)[:PREVIEW_CHARS]

    async def run(self, request: Request) -> Answer:
        """Serve the request whole; raises RequestFailed (already recorded) when it cannot be served."""
        trace, ledger, decision = self.start_trace(request, stream=False), Ledger(), None
        plan: Plan | None = None
        with self.tracing.request(trace):
            try:
                with deadline_scope(self.config.server.deadline_s):
                    ledger.held_tokens = self.rate_limits.admit(request.caller, estimated_tokens(request))
                    plan = await self.plan(request, trace)
                    decision = plan.decision
                    answer, decision = await self.executor.complete(plan, request, ledger, self._shadow_sender(trace))
            except BaseException as err:
                raise await self._failed(err, request, trace, plan, decision, ledger) from None
            self._settle(trace, plan, decision, ledger, answer.text)
            trace.tool_calls = len(answer.tool_calls)
            await self.private_preview(trace, request.messages, ledger)
            # committed before the answer is sent
            await asyncio.wrap_future(self.record(trace, request.endpoint, ledger))
        return Answer(answer, trace)

    async def run_stream(self, request: Request) -> StreamAnswer:
        """Open the stream: planned, the tier chosen and its first chunk awaited (falling back if it cannot
        start), so the caller knows who answers before it sends anything. The request's deadline bounds all
        of that; the rest of the stream is bounded by the tier's own timeouts."""
        trace, ledger, decision = self.start_trace(request, stream=True), Ledger(), None
        plan: Plan | None = None
        with self.tracing.request(trace):  # the root span ends when the relay records the stream
            try:
                with deadline_scope(self.config.server.deadline_s):
                    ledger.held_tokens = self.rate_limits.admit(request.caller, estimated_tokens(request))
                    plan = await self.plan(request, trace)
                    decision = plan.decision
                    chunks, decision = await self.executor.stream(plan, request, ledger, self._shadow_sender(trace))
                    opened = await open_stream(chunks)
            except BaseException as err:
                raise await self._failed(err, request, trace, plan, decision, ledger) from None
        trace.first_token_ms = (time.time() - trace.started) * 1000.0
        self._settle(trace, plan, decision, ledger, "")
        relay = self._relay(opened, request, trace, plan, decision, ledger)
        # Started here, the relay is closed and recorded even if the caller drops the stream unread
        # (asyncio closes an abandoned async generator once it has begun).
        head = await anext(relay, None)
        return StreamAnswer(trace, _prepend(head, relay))

    async def _relay(self, opened: OpenedStream, request: Request, trace: Trace, plan: Plan, decision: Decision,
                     ledger: Ledger) -> AsyncIterator[Chunk]:
        """The rest of the stream; recorded once it ends, fails (RequestFailed) or the client leaves."""
        pieces: list[str] = []
        failure: APIError | None = None
        try:
            if opened.first is not None:
                pieces.append(opened.first.text)
                trace.tool_calls += sum(delta.id is not None for delta in opened.first.tool_calls)
                yield opened.first
            async for chunk in opened.rest:
                pieces.append(chunk.text)
                trace.tool_calls += sum(delta.id is not None for delta in chunk.tool_calls)
                yield chunk
        except BackendError as err:  # after the first chunk: the answer is broken, and says so
            failure = from_backend(err, decision.forced)
        except (asyncio.CancelledError, GeneratorExit):
            trace.status, trace.http_status = "error", 499
            trace.error, trace.error_code = "client disconnected mid-stream", "client_disconnected"
            raise
        finally:
            await opened.rest.aclose()  # type: ignore[attr-defined]
            self._settle(trace, plan, decision, ledger, "".join(pieces))
            if failure is not None:
                mark_failed(trace, failure)
            try:
                await self.private_preview(trace, request.messages, ledger)
            finally:  # queued even for a client that has gone (its preview withheld if the check was cut short)
                written = self.record(trace, request.endpoint, ledger)
        await asyncio.wrap_future(written)  # committed before the caller sends the last event
        if failure is not None:
            raise RequestFailed(failure, trace)

    def _settle(self, trace: Trace, plan: Plan | None, decision: Decision | None, ledger: Ledger, text: str) -> None:
        """Fill the trace from what was decided and what the backends did."""
        trace.decision = decision if decision is None else self._with_escalation(decision)
        trace.tier = ledger.tier or (decision.tier if decision else None)
        trace.served_locally = None if trace.tier is None else self.runs_here(trace.tier)
        trace.model, trace.usage = ledger.served()
        trace.cost_usd = ledger.cost_usd
        trace.calls = [spend.as_dict() for spend in ledger.spends]
        remote = self.remote_tier
        price = self.config.tiers[remote].price if remote else None
        baseline = ledger.baseline or trace.usage
        trace.baseline_cost_usd = price.cost(baseline.prompt_tokens, baseline.completion_tokens) if price else 0.0
        trace.steps = [r.as_dict(self.config.server.store_text) for r in ledger.steps]
        if ledger.shrunk:
            trace.context_tokens = {"original_tokens": sum(s.original_tokens for s in ledger.shrunk),
                                    "kept_tokens": sum(s.kept_tokens for s in ledger.shrunk)}
        trace.fallback, trace.fallback_reason = ledger.fallback, ledger.fallback_reason
        if ledger.redaction is not None:
            trace.redactions = ledger.redaction.counts()
            if not self.config.server.store_text:
                trace.prompt_preview = ledger.redaction.mask(trace.prompt_preview)
        if isinstance(plan, Canned | Grounded):
            trace.grounding = plan.grounding
        if self.config.server.store_text:
            trace.answer_text = text

    def _with_escalation(self, decision: Decision) -> Decision:
        """A decision sending the request off the machine names why in its labels (the dashboard counts them):
        the profile's own reason, else the router that chose it, or `forced` for a tier asked for by name."""
        if self.runs_here(decision.tier) or "escalation" in decision.labels:
            return decision
        why = "forced" if decision.forced else decision.router
        return replace(decision, labels={**decision.labels, "escalation": why})

    async def _failed(self, err: BaseException, request: Request, trace: Trace, plan: Plan | None,
                      decision: Decision | None, ledger: Ledger) -> BaseException:
        """Record a request that was not served; what to raise in its place."""
        self._settle(trace, plan, decision, ledger, "")
        try:  # refused before it was planned (a bad model name, a rate limit): a flood of those costs no checks
            await self.private_preview(trace, request.messages, ledger, check=plan is not None)
        except asyncio.CancelledError:  # cancelled again while checking: the preview stays withheld
            pass
        forced = decision is not None and decision.forced
        if isinstance(err, asyncio.CancelledError):  # the client went away before the answer was ready
            trace.status, trace.http_status = "error", 499
            trace.error, trace.error_code = "client disconnected before the answer", "client_disconnected"
            self.record(trace, request.endpoint, ledger)
            return err
        if isinstance(err, APIError):
            failure = err
        elif isinstance(err, BackendError):
            failure = from_backend(err, forced)
        elif isinstance(err, MissingExtra):  # this install cannot do what the request asks: say what to add
            failure = APIError(501, str(err), "server_error", "feature_not_installed")
        elif isinstance(err, Exception):  # a defect of ours: tell nothing of the inside, keep the record
            log.error("unhandled %s in %s", type(err).__name__, trace.request_id)
            log.debug("unhandled error", exc_info=err)
            failure = APIError(500, f"internal error (request {trace.request_id})", "server_error", "internal_error")
        else:
            self.record(trace, request.endpoint, ledger)
            return err
        mark_failed(trace, failure)
        await asyncio.wrap_future(self.record(trace, request.endpoint, ledger))
        return RequestFailed(failure, trace)

    def record(self, trace: Trace, endpoint: str, ledger: Ledger | None = None) -> Future[None]:
        """Queue the request's row (its tokens counted against its key's rate limit in place of the estimate the
        ledger held, the request in the metrics); the future is done once it is committed."""
        trace.finish()
        self.rate_limits.settle(trace.key_id, trace.usage.total_tokens, ledger.held_tokens if ledger else 0)
        self.metrics.observe(trace)
        written = self.log.record(trace, endpoint)
        self.tracing.recorded(trace, endpoint, written)  # the request's spans end once the row is committed
        return written

    # shadow sampling
    def _shadow_sender(self, served: Trace) -> SendShadow:
        def send(messages: list[Message], params: GenerationParams) -> None:
            remote = self.remote_tier
            if remote is None or self.remote_unavailable():
                return
            task = asyncio.create_task(self._shadow(remote, messages, params, served))
            self._shadows.add(task)
            task.add_done_callback(self._shadows.discard)

        return send

    async def _shadow(self, tier: str, messages: list[Message], params: GenerationParams, served: Trace) -> None:
        shadow = Trace(requested_model=tier, prompt_preview=served.prompt_preview, prompt_text=served.prompt_text,
                       shadow_of=served.request_id)
        decision = Decision(tier, None, None, f"shadow of {served.request_id}: sampled to collect outcome labels",
                            "shadow", forced=True)
        ledger = Ledger()
        with self.tracing.request(shadow):  # a trace of its own, linked to the served request's
            try:
                answer = await self.executor.paid(tier, ledger).complete(messages, params)
            except BackendError as err:
                self._settle(shadow, None, decision, ledger, "")
                shadow.status, shadow.http_status, shadow.error = "error", 502, err.message
            else:
                self._settle(shadow, None, decision, ledger, answer.text)
            await asyncio.wrap_future(self.record(shadow, "shadow"))

    async def aclose(self) -> None:
        if self._shadows:
            await asyncio.wait(self._shadows, timeout=30)
        await super().aclose()


async def _prepend(head: Chunk | None, rest: AsyncIterator[Chunk]) -> AsyncIterator[Chunk]:
    try:
        if head is not None:
            yield head
        async for chunk in rest:
            yield chunk
    finally:
        await rest.aclose()  # type: ignore[attr-defined]
