"""What a configuration builds: the tiers' backends, the routers, the request log, and the skills
that load lazily (the support desk's models, the knowledge store, the fact-checker).

Profiles read it to plan; the executor reads it to call tiers. `warm_up` loads everything lazy,
so the gateway does it at start-up and never inside a request.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Self

from hybridlm.config import Config
from hybridlm.models.base import BackendContext, ChatBackend
from hybridlm.models.registry import build_backend, on_device
from hybridlm.models.wrappers.budget import budgets_for, over_budget
from hybridlm.models.wrappers.registry import wrap
from hybridlm.routing.base import Router
from hybridlm.routing.registry import build_router
from hybridlm.routing.tools import ToolRouter
from hybridlm.targets import Target, model_names, resolve
from hybridlm.telemetry.tracing import Tracing
from hybridlm.request import Caller
from hybridlm.request_log import RequestLog, default_log_path
from hybridlm.tools.relevance import ToolRelevance

if TYPE_CHECKING:
    from hybridlm.factcheck.detector import FactChecker
    from hybridlm.models.local_gguf import LocalGGUFBackend
    from hybridlm.models.manager import Progress
    from hybridlm.privacy.detector import PiiDetector
    from hybridlm.rag.grounded import GroundedAnswers
    from hybridlm.skills.support import SupportPolicy

NO_LLM = "no LLM tier is configured (set OPENAI_BASE_URL or add an 'llm' tier)"


class Deployment:
    def __init__(self, config: Config, backends: dict[str, ChatBackend], router: Router, log: RequestLog,
                 support: SupportPolicy | None = None, tool_router: ToolRouter | None = None) -> None:
        self.config = config
        self.backends = backends
        self.router = router
        self.log = log
        self.spend = log.spend_book(config.budgets.timezone)  # today's and this month's, per tier and key
        self._support = support  # None: built from the config's support section on first use
        self._rag: GroundedAnswers | None = None
        self._fact_checker: FactChecker | None = None
        self._pii: PiiDetector | None = None
        self.tool_router = tool_router or ToolRouter(config.router.tools)
        self.tracing = Tracing.from_config(config.telemetry)  # an endpoint without its extra fails here
        self.warmed = False

    @classmethod
    def from_config(cls, config: Config, log: RequestLog | None = None, support: SupportPolicy | None = None) -> Self:
        relevance = ToolRelevance()
        context = BackendContext(config.resolved_data_dir(), relevance)
        backends = {name: wrap(build_backend(t.backend, t.options, context), name, t.wrappers)
                    for name, t in config.tiers.items()}
        router = build_router(config.router)
        log = log or RequestLog(default_log_path(config.resolved_data_dir()))
        return cls(config, backends, router, log, support, ToolRouter(config.router.tools, relevance))

    @property
    def local_tier(self) -> str:
        return self.config.router.local_tier

    @property
    def remote_tier(self) -> str | None:
        return self.config.remote_tier

    def model_names(self) -> list[str]:
        return model_names(self.config, self.backends)

    def resolve(self, model: str) -> Target:
        return resolve(model, self.config, self.backends)

    def local_backends(self) -> list[LocalGGUFBackend]:
        from hybridlm.models.local_gguf import LocalGGUFBackend

        return [b for b in self.backends.values() if isinstance(b, LocalGGUFBackend)]

    def remote_unavailable(self, caller: Caller | None = None) -> str | None:
        """Why traffic cannot go to the LLM tier now (none configured, or a budget of the tier's or the caller's
        key's reached, counting calls in flight), or None. Nothing is reserved."""
        remote = self.remote_tier
        if remote is None:
            return NO_LLM
        return over_budget(self.spend, budgets_for(self.config, remote, caller))

    def runs_here(self, tier: str) -> bool:
        """The tier answers on this machine: an on-device model, or a canned answer (FAQ, flow step)."""
        configured = self.config.tiers.get(tier)
        return configured is None or on_device(configured.backend)

    def redacts(self, tier: str) -> bool:
        """Whether personal data is replaced before it reaches the tier: by default, for every tier off the machine."""
        own = self.config.tiers[tier].redact
        return own if own is not None else self.config.privacy.redact and not self.runs_here(tier)

    @property
    def masks_previews(self) -> bool:
        """Whether the log's prompt previews show placeholders for personal data (`privacy.redact` on, full texts
        not kept)."""
        return self.config.privacy.redact and not self.config.server.store_text

    @property
    def pii_detector(self) -> PiiDetector:
        """Built on first use (or by warm_up): it loads the spaCy pipeline and the recognisers."""
        if self._pii is None:
            from hybridlm.privacy.detector import PiiDetector

            self._pii = PiiDetector.from_config(self.config.privacy)
        return self._pii

    @property
    def support(self) -> SupportPolicy:
        """Built on first use (or by warm_up): it loads the intent model and embeds the knowledge base."""
        if self._support is None:
            from hybridlm.skills.build import support_policy

            self._support = support_policy(self.config)
        return self._support

    @property
    def fact_checker(self) -> FactChecker:
        """Shared by grounded answers and /v1/factcheck (which needs no knowledge store)."""
        if self._fact_checker is None:
            from hybridlm.factcheck.detector import FactChecker

            self._fact_checker = FactChecker.load(self.config.rag.factcheck_model, self.config.rag.nli_model)
        return self._fact_checker

    @property
    def rag(self) -> GroundedAnswers:
        """Built on first use (or by warm_up): it opens the knowledge store and loads the grader."""
        if self._rag is None:
            from hybridlm.rag.grounded import GroundedAnswers

            self._rag = GroundedAnswers.from_config(self.config, self.fact_checker)
        return self._rag

    def warm_up(self, progress: Progress | None = None) -> None:
        """Load what loads lazily (the local models, joined on first use; the routers' encoders; the support
        desk's and the knowledge store's models when they have data) before traffic arrives; once."""
        if self.warmed:
            return
        from hybridlm.rag.store import STORE_FILE
        from hybridlm.skills.faq import KB_FILE

        for backend in self.local_backends():
            backend.load(progress)
        if self.tool_router.relevance.ready():  # False on an install without the support extra
            self.tool_router.relevance.encoder.encode(["warm up"])
        self.router.score([{"role": "user", "content": "warm up"}])
        if self.masks_previews or any(self.redacts(tier) for tier in self.backends):
            self.pii_detector.warm_up()
        if self.config.context.shrink:
            from hybridlm.shrinking import shared_shrinker

            shared_shrinker().select("warm up", [("warm up", "warm up")], 16)
        support = self.config.support
        data_dir = self.config.resolved_data_dir()
        if support.intent_model or support.kb_files or support.flow_files or (data_dir / KB_FILE).exists():
            self.support.analyse([{"role": "user", "content": "warm up"}])
        if (data_dir / STORE_FILE).exists():
            self.rag.ground("warm up")
        self.warmed = True

    def purge_expired(self) -> int:
        """Delete the request log's rows older than the retention period, and the fine roll-ups no chart reads
        any more; how many rows went."""
        days = self.config.server.retention_days
        self.log.compact_rollups(time.time())
        return 0 if days is None else self.log.purge(time.time() - days * 86400)

    async def aclose(self) -> None:
        for backend in self.backends.values():
            await backend.aclose()
        if self._rag is not None:
            self._rag.close()
        self.log.close()
        await asyncio.to_thread(self.tracing.shutdown)  # last: the log's final rows end their spans
