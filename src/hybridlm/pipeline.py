"""One request, end to end: resolve the model name, decide the tier, call it, fall back, account.

The gateway and the CLI both drive this class, so they route, fall back and log identically.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Protocol, TypeVar, runtime_checkable

from hybridlm.config import Config
from hybridlm.factcheck.detector import FactChecker
from hybridlm.models.base import BackendContext, BackendError, ChatBackend, GenerationParams, estimate_prompt_tokens, estimate_tokens
from hybridlm.models.registry import build_backend
from hybridlm.rag.grounded import NO_SOURCE_ANSWER, NO_SOURCE_TIER, GroundedAnswers
from hybridlm.rag.store import STORE_FILE
from hybridlm.routing.base import Router, Score, last_user_text
from hybridlm.routing.registry import build_router
from hybridlm.routing.selfcheck import SAMPLE_TEMPERATURE
from hybridlm.request_log import RequestLog, default_log_path
from hybridlm.skills.faq import KB_FILE
from hybridlm.skills.support import SupportPolicy
from hybridlm.routing.tools import TOOLS, ToolRouter
from hybridlm.tools.relevance import ToolRelevance
from hybridlm.targets import RAG, SUPPORT, Target, model_names, resolve
from hybridlm.tools.protocol import ToolRequest
from hybridlm.types import Chunk, Completion, Decision, Message, ToolCallDelta, Trace, Usage

if TYPE_CHECKING:
    from hybridlm.models.local_gguf import LocalGGUFBackend
    from hybridlm.models.manager import Progress

T = TypeVar("T")
CANNED_TIERS = ("faq", "flow", NO_SOURCE_TIER)  # answers given without any model
LLM_UNAVAILABLE = "llm_unavailable"
LOCAL_BUSY = "local_busy"
NO_LLM = "no LLM tier is configured (set OPENAI_BASE_URL or add an 'llm' tier)"
CASCADE_REASON = "cascade: the small model drafts first; a verifier reads the draft and may escalate"


@runtime_checkable
class DraftVerifier(Protocol):
    """A router that judges the small model's draft instead of the bare prompt (a cascade)."""

    wants_logprobs: bool  # the draft must carry its token log-probabilities
    resamples: int  # extra answers of the small model the verifier compares with the draft

    def verify(self, messages: list[Message], draft: Completion, samples: Sequence[str] = ()) -> Score: ...


class Pipeline:
    def __init__(self, config: Config, backends: dict[str, ChatBackend], router: Router, log: RequestLog,
                 support: SupportPolicy | None = None, tool_router: ToolRouter | None = None) -> None:
        self.config = config
        self.backends = backends
        self.router = router
        self.log = log
        self._sampler = random.Random(0)
        self._shadows: set[asyncio.Task[None]] = set()
        self._support = support  # None: built from the config's support section on first use
        self._rag: GroundedAnswers | None = None
        self._fact_checker: FactChecker | None = None
        self.tool_router = tool_router or ToolRouter(config.router.tools)

    @classmethod
    def from_config(cls, config: Config, log: RequestLog | None = None,
                    support: SupportPolicy | None = None) -> Pipeline:
        relevance = ToolRelevance()
        context = BackendContext(config.resolved_data_dir(), relevance)
        backends = {name: build_backend(t.backend, t.options, context) for name, t in config.tiers.items()}
        router = build_router(config.router)
        log = log or RequestLog(default_log_path(config.resolved_data_dir()))
        return cls(config, backends, router, log, support, ToolRouter(config.router.tools, relevance))

    def local_backends(self) -> list[LocalGGUFBackend]:
        from hybridlm.models.local_gguf import LocalGGUFBackend

        return [b for b in self.backends.values() if isinstance(b, LocalGGUFBackend)]

    def warm_up(self, progress: Progress | None = None) -> None:
        """Load what loads lazily (the local models, joined on first use; the routers' encoders) before
        traffic arrives."""
        for backend in self.local_backends():
            backend.load(progress)
        self.tool_router.relevance.encoder.encode(["warm up"])
        self.router.score([{"role": "user", "content": "warm up"}])
        support = self.config.support
        data_dir = self.config.resolved_data_dir()
        if support.intent_model or support.kb_files or (data_dir / KB_FILE).exists():
            self.support.decide([{"role": "user", "content": "warm up"}])
        if (data_dir / STORE_FILE).exists():
            self.rag.ground("warm up")

    @property
    def cascades(self) -> bool:
        return isinstance(self.router, DraftVerifier)

    @property
    def local_tier(self) -> str:
        return self.config.router.local_tier

    @property
    def remote_tier(self) -> str | None:
        return self.config.remote_tier

    def model_names(self) -> list[str]:
        return model_names(self.config, self.backends)

    @property
    def support(self) -> SupportPolicy:
        """Built on first use: it loads the intent model and embeds the knowledge base."""
        if self._support is None:
            from hybridlm.skills.build import support_policy

            self._support = support_policy(self.config)
        return self._support

    @property
    def fact_checker(self) -> FactChecker:
        """Loaded on first use; shared by grounded answers and /v1/factcheck (which needs no knowledge store)."""
        if self._fact_checker is None:
            self._fact_checker = FactChecker.load(self.config.rag.factcheck_model, self.config.rag.nli_model)
        return self._fact_checker

    @property
    def rag(self) -> GroundedAnswers:
        """Built on first use: it opens the knowledge store and loads the grader."""
        if self._rag is None:
            self._rag = GroundedAnswers.from_config(self.config, self.fact_checker)
        return self._rag

    def resolve(self, model: str) -> Target:
        return resolve(model, self.config, self.backends)

    def decide(self, messages: list[Message], target: Target) -> Decision:
        if self.cascades and not target.forced_tier:
            return Decision(self.local_tier, None, target.threshold, CASCADE_REASON, self.router.name, draft=True)
        score = self.router.score(messages)
        explained = score.explain()
        if target.forced_tier:
            return Decision(target.forced_tier, score.value, target.threshold,
                            f"forced: the request named tier '{target.forced_tier}'", self.router.name,
                            score.contributions, forced=True)
        wants_remote = score.value >= target.threshold
        tier = self.remote_tier if wants_remote and self.remote_tier else self.local_tier
        verdict = ">=" if wants_remote else "<"
        reason = f"score {score.value:.2f} {verdict} threshold {target.threshold:.2f}: {explained}"
        return Decision(tier, score.value, target.threshold, reason, self.router.name, score.contributions)

    def start_trace(self, messages: list[Message], requested_model: str | None, stream: bool) -> Trace:
        text = last_user_text(messages)
        return Trace(requested_model=requested_model, stream=stream, prompt_preview=text[:200],
                     prompt_text=text if self.config.server.store_text else None)

    def plan(self, messages: list[Message], model: str, trace: Trace, conversation: str | None = None,
             tools: ToolRequest | None = None) -> None:
        """Resolve the model name and decide the tier; records both on the trace."""
        target = self.resolve(model)
        trace.profile = target.profile
        if target.profile == SUPPORT:
            self._plan_support(messages, trace, conversation)
            return
        if target.profile == RAG and not self._plan_rag(messages, trace):
            return
        routes_tools = tools is not None and tools.choice != "none" and not target.forced_tier
        trace.decision = self._decide_tools(messages, tools) if routes_tools and tools else self.decide(messages, target)
        trace.tier = trace.decision.tier
        if trace.decision.forced:
            return
        wanted_remote = trace.decision.tier == self.remote_tier or (
            trace.decision.score is not None and trace.decision.score >= (trace.decision.threshold or 0.0)
            and not trace.decision.draft)
        if wanted_remote and (reason := self.remote_unavailable()):
            self.mark_fallback(trace, reason)

    def _decide_tools(self, messages: list[Message], tools: ToolRequest) -> Decision:
        """Can the small model make this call? Reasons to go straight to the LLM, else it drafts and is checked."""
        score = self.tool_router.before(messages, tools)
        threshold = self.tool_router.threshold
        if score.value >= threshold:
            reason = f"tools: score {score.value:.2f} >= threshold {threshold:.2f}: {score.explain()}"
            return Decision(self.remote_tier or self.local_tier, score.value, threshold, reason, TOOLS,
                            score.contributions)
        reason = (f"tools: score {score.value:.2f} < threshold {threshold:.2f} ({score.explain()}): the small model "
                  "answers first; a verifier checks its call")
        return Decision(self.local_tier, score.value, threshold, reason, TOOLS, score.contributions, draft=True)

    def _plan_support(self, messages: list[Message], trace: Trace, conversation: str | None) -> None:
        decision = self.support.decide(messages, conversation)
        numbers = {k: float(v) for k, v in decision.signals.items() if isinstance(v, int | float)}
        tier = {"slm": self.local_tier, "llm": self.remote_tier or self.local_tier}.get(decision.action,
                                                                                       decision.action)
        trace.decision = Decision(tier, None, None, f"support: {decision.reason}", SUPPORT, numbers)
        trace.tier = tier
        trace.canned_answer = decision.reply
        if decision.action == "llm":
            trace.system_note = self.support.note_for_llm(decision)
            if reason := self.remote_unavailable():
                self.mark_fallback(trace, reason)
        elif decision.action == "slm":
            trace.system_note = self.support.note_for_slm(decision)

    def _plan_rag(self, messages: list[Message], trace: Trace) -> bool:
        """Ground the question; False when it is settled already (nothing relevant: say so)."""
        trace.grounding = self.rag.ground(last_user_text(messages))
        if trace.grounding.sources or self.config.rag.when_nothing_relevant == "llm":
            return True
        graded = len(trace.grounding.graded)
        found = (f"none of the {graded} retrieved chunks is relevant" if graded
                 else "the knowledge store is empty (add documents with `hybridlm ingest`)")
        trace.decision = Decision(NO_SOURCE_TIER, None, None,
                                  f"rag: {found}; answering that the documents do not cover it", RAG)
        trace.tier = NO_SOURCE_TIER
        trace.canned_answer = NO_SOURCE_ANSWER
        return False

    def remote_unavailable(self) -> str | None:
        """Why routed traffic cannot go to the LLM tier now (none configured, or over today's budget), or None."""
        remote = self.remote_tier
        return NO_LLM if remote is None else self._over_budget(remote)

    def _over_budget(self, tier: str) -> str | None:
        budget = self.config.tiers[tier].budget_usd_per_day
        if budget is None:
            return None
        midnight = dt.datetime.now().replace(hour=0, minute=0, second=0, microsecond=0).timestamp()
        spent = self.log.spend_since(tier, midnight)
        return f"over budget: tier '{tier}' spent ${spent:.4f} of ${budget:.4f} today" if spent >= budget else None

    def mark_fallback(self, trace: Trace, reason: str) -> None:
        trace.fallback = LLM_UNAVAILABLE
        trace.fallback_reason = reason
        trace.tier = self.local_tier

    def _may_fall_back(self, trace: Trace, err: BackendError) -> bool:
        return (
            self.config.router.fallback
            and trace.tier != self.local_tier
            and trace.decision is not None
            and not trace.decision.forced
            and err.kind not in ("invalid_request", "busy")
        )

    def _may_leave_busy_local(self, trace: Trace, err: BackendError) -> bool:
        """A routed request the local model has no room for goes to the remote tier, when there is one."""
        return (err.kind == "busy" and trace.tier == self.local_tier and trace.decision is not None
                and not trace.decision.forced and trace.fallback is None and self.remote_unavailable() is None)

    async def _call_with_failover(self, trace: Trace, call: Callable[[str], Awaitable[T]]) -> T:
        """Call the trace's tier; a failing remote tier gives way to the local one, a full local one to the remote."""
        assert trace.tier is not None
        try:
            return await call(trace.tier)
        except BackendError as err:
            if self._may_leave_busy_local(trace, err):
                trace.fallback, trace.fallback_reason = LOCAL_BUSY, err.message
                trace.tier = self.remote_tier
            elif self._may_fall_back(trace, err):
                self.mark_fallback(trace, err.message)
            else:
                raise
        return await call(trace.tier)

    def _account(self, trace: Trace, model: str, usage: Usage) -> None:
        assert trace.tier is not None
        trace.model = model
        trace.usage = usage
        tier = self.config.tiers.get(trace.tier)  # None for a knowledge-base answer: free
        trace.cost_usd = tier.price.cost(usage.prompt_tokens, usage.completion_tokens) if tier else 0.0
        reference = self.remote_tier
        trace.baseline_cost_usd = (
            self.config.tiers[reference].price.cost(usage.prompt_tokens, usage.completion_tokens) if reference else 0.0
        )

    def _for_tier(self, trace: Trace, messages: list[Message]) -> list[Message]:
        """Grounded answers get their sources; support answers get the local skills' brief, as a system note."""
        if trace.grounding is not None and trace.grounding.sources:
            return trace.grounding.messages(messages)
        if trace.system_note:
            return [{"role": "system", "content": trace.system_note}, *messages]
        return messages

    def _drafting(self, trace: Trace) -> bool:
        """Is this call a local draft, to be verified before anyone sees it?"""
        return trace.decision is not None and trace.decision.draft and trace.tier == self.local_tier

    def _canned(self, trace: Trace, messages: list[Message]) -> Completion:
        text = trace.canned_answer or ""
        usage = Usage(estimate_prompt_tokens(messages), estimate_tokens(text))  # what a model would have used
        return Completion(text=text, model=str(trace.tier), usage=usage)

    async def complete(self, messages: list[Message], params: GenerationParams, trace: Trace) -> Completion:
        assert trace.tier is not None, "plan() first"
        if trace.tier in CANNED_TIERS:
            result = self._canned(trace, messages)
            self._account(trace, result.model, result.usage)
            self._keep_answer(trace, result.text)
            return result
        drafting = self._drafting(trace)
        wants_logprobs = (drafting and trace.decision is not None and trace.decision.router != TOOLS
                          and isinstance(self.router, DraftVerifier) and self.router.wants_logprobs)

        async def call(tier: str) -> Completion:
            tier_params = replace(params, logprobs=True) if wants_logprobs and tier == self.local_tier else params
            return await self.backends[tier].complete(self._for_tier(trace, messages), tier_params)

        result = await self._call_with_failover(trace, call)
        self._account(trace, result.model, result.usage)
        if self._drafting(trace):  # not when a full local queue sent the draft to the remote tier
            result = await self._verify_draft(messages, params, trace, result)
        if trace.grounding is not None and trace.grounding.sources and self.config.rag.check_answers:
            result = await self._verify_grounded(messages, params, trace, result)
        self._keep_answer(trace, result.text)
        return result

    async def _verify_grounded(self, messages: list[Message], params: GenerationParams, trace: Trace,
                               answer: Completion) -> Completion:
        """Fact-check a grounded answer; corrections go to the tier that answered, at its price."""
        assert trace.grounding is not None and trace.tier is not None
        backend, spent = self.backends[trace.tier], [answer.usage]

        async def ask(correction: list[Message]) -> str:
            fixed = await backend.complete(correction, params)
            spent.append(fixed.usage)
            return fixed.text

        text = await self.rag.verify(trace.grounding, messages, answer.text, ask)
        usage = sum(spent, Usage())
        self._account(trace, answer.model, usage)
        return replace(answer, text=text, usage=usage)

    def _keep_answer(self, trace: Trace, text: str) -> None:
        if self.config.server.store_text:
            trace.answer_text = text

    async def _resample(self, messages: list[Message], params: GenerationParams, trace: Trace,
                        draft: Completion) -> list[str]:
        """More answers of the small model at a higher temperature, for a self-consistency check; paid for."""
        assert isinstance(self.router, DraftVerifier)
        spent, texts = [draft.usage], []
        for i in range(self.router.resamples):
            params_i = replace(params, temperature=SAMPLE_TEMPERATURE, seed=i + 1, logprobs=False)
            sample = await self.backends[self.local_tier].complete(self._for_tier(trace, messages), params_i)
            spent.append(sample.usage)
            texts.append(sample.text)
        if texts:
            self._account(trace, draft.model, sum(spent, Usage()))
        return texts

    async def _verify_draft(self, messages: list[Message], params: GenerationParams, trace: Trace,
                            draft: Completion) -> Completion:
        """Cascade: keep the small model's draft, or pay for the large model when the verifier doubts it."""
        assert trace.decision is not None
        if trace.decision.router == TOOLS:
            assert params.tools is not None
            verdict, threshold, kind = self.tool_router.verify(messages, params.tools, draft), \
                self.tool_router.verify_threshold, "tools"
        else:
            assert isinstance(self.router, DraftVerifier)
            samples = await self._resample(messages, params, trace, draft)
            verdict, threshold, kind = self.router.verify(messages, draft, samples), trace.decision.threshold or 0.0, \
                "cascade"
        escalate = verdict.value >= threshold
        reason = (f"{kind}: draft verifier score {verdict.value:.2f} {'>=' if escalate else '<'} threshold "
                  f"{threshold:.2f}: {verdict.explain()}")
        remote = self.remote_tier
        trace.decision = replace(trace.decision, tier=remote if escalate and remote else self.local_tier,
                                 score=verdict.value, threshold=threshold, reason=reason,
                                 features=verdict.contributions)
        if not escalate:
            return draft
        if over := self.remote_unavailable():
            self.mark_fallback(trace, f"{over}; the draft is kept")
            return draft
        assert remote is not None
        draft_cost = trace.cost_usd
        trace.tier = remote
        try:
            final = await self.backends[remote].complete(messages, params)
        except BackendError as err:
            if not self.config.router.fallback or err.kind == "invalid_request":
                raise
            self.mark_fallback(trace, f"{err.message}; the draft is kept")
            return draft
        self._account(trace, final.model, final.usage)
        trace.cost_usd += draft_cost
        return final

    async def stream(self, messages: list[Message], params: GenerationParams, trace: Trace) -> AsyncIterator[Chunk]:
        """Opens the stream (falling back if the tier cannot start) and returns the rest of it.

        The first chunk is awaited here, so by the time the caller sends headers the tier
        that answers is known.
        """
        assert trace.tier is not None, "plan() first"
        checked_first = trace.grounding is not None or self._drafting(trace)
        if trace.tier in CANNED_TIERS or checked_first:  # the whole answer is needed before any of it is sent
            return self._replay(await self.complete(messages, params, trace))
        chunks, first = await self._call_with_failover(
            trace, lambda tier: self._open(tier, self._for_tier(trace, messages), params))
        self._account(trace, self.backends[trace.tier].model_name, Usage())
        return self._relay(chunks, first, messages, trace)

    async def _open(self, tier: str, messages: list[Message], params: GenerationParams
                    ) -> tuple[AsyncIterator[Chunk], Chunk | None]:
        chunks = self.backends[tier].stream(messages, params)
        try:
            first = await anext(chunks)
        except StopAsyncIteration:
            first = None
        return chunks, first

    async def _relay(self, chunks: AsyncIterator[Chunk], first: Chunk | None, messages: list[Message],
                     trace: Trace) -> AsyncIterator[Chunk]:
        usage: Usage | None = None
        pieces: list[str] = []
        pending = [first] if first is not None else []
        try:
            for chunk in pending:
                pieces.append(chunk.text)
                usage = chunk.usage or usage
                yield chunk
            async for chunk in chunks:
                pieces.append(chunk.text)
                usage = chunk.usage or usage
                yield chunk
        finally:
            if usage is None:
                usage = Usage(estimate_prompt_tokens(messages), sum(1 for p in pieces if p))
            self._account(trace, trace.model or "", usage)
            self._keep_answer(trace, "".join(pieces))

    @staticmethod
    async def _replay(result: Completion) -> AsyncIterator[Chunk]:
        """A finished answer as a stream (a cascade decides only once the draft is complete)."""
        if result.text:
            yield Chunk(text=result.text)
        for index, call in enumerate(result.tool_calls):
            yield Chunk(tool_calls=(ToolCallDelta(index, call.id, call.name, ""),))
            yield Chunk(tool_calls=(ToolCallDelta(index, arguments=call.arguments),))
        yield Chunk(finish_reason=result.finish_reason, usage=result.usage)

    def record(self, trace: Trace, endpoint: str = "/v1/chat/completions") -> None:
        trace.finish()
        self.log.record(trace, endpoint)

    def maybe_shadow(self, messages: list[Message], params: GenerationParams, trace: Trace) -> None:
        """Send a sample of what the SLM served to the LLM too, in the background, to collect labels."""
        remote, decision = self.remote_tier, trace.decision
        if (decision is None or decision.forced or trace.status != "ok" or trace.fallback
                or trace.tier != self.local_tier or self._sampler.random() >= self.config.router.shadow_share
                or self.remote_unavailable()):
            return
        assert remote is not None  # remote_unavailable() said there is one
        task = asyncio.create_task(self._shadow(remote, messages, params, trace))
        self._shadows.add(task)
        task.add_done_callback(self._shadows.discard)

    async def _shadow(self, tier: str, messages: list[Message], params: GenerationParams, served: Trace) -> None:
        shadow = Trace(requested_model=tier, prompt_preview=served.prompt_preview, prompt_text=served.prompt_text,
                       shadow_of=served.request_id, tier=tier)
        shadow.decision = Decision(tier, None, None, f"shadow of {served.request_id}: sampled to collect outcome labels",
                                   "shadow", forced=True)
        try:
            result = await self.backends[tier].complete(messages, params)
        except BackendError as err:
            shadow.status, shadow.http_status, shadow.error = "error", 502, err.message
        else:
            self._account(shadow, result.model, result.usage)
            self._keep_answer(shadow, result.text)
        self.record(shadow, "shadow")

    async def aclose(self) -> None:
        if self._shadows:
            await asyncio.wait(self._shadows, timeout=30)
        for backend in self.backends.values():
            await backend.aclose()
        if self._rag is not None:
            self._rag.close()
        self.log.close()
