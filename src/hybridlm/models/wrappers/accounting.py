"""Accounting: every call a tier makes for a request goes on the request's ledger, at the tier's price, with
how long it took (and, streamed, how long its first token took), and is a `call <tier>` span of its trace."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from hybridlm.config import Price
from hybridlm.ledger import Ledger, Spend
from hybridlm.models.base import ChatBackend, GenerationParams, estimate_prompt_tokens
from hybridlm.models.wrappers.base import BackendWrapper
from hybridlm.telemetry.tracing import Tracing, failed, spend_attributes
from hybridlm.types import Chunk, Completion, Message, Usage

if TYPE_CHECKING:
    from opentelemetry.trace import Span


class Accounted(BackendWrapper):
    def __init__(self, inner: ChatBackend, tier: str, price: Price, ledger: Ledger, tracing: Tracing) -> None:
        super().__init__(inner)
        self.tier, self.price, self.ledger, self.tracing = tier, price, ledger, tracing

    @property
    def _span_name(self) -> str:
        return f"call {self.tier}"

    def _spend(self, span: Span, model: str, usage: Usage, started: float, first_token: float | None = None) -> None:
        cost = self.price.cost(usage.prompt_tokens, usage.completion_tokens)
        ended = time.perf_counter()
        spend = Spend(self.tier, model, usage, cost, (ended - started) * 1000.0,
                      None if first_token is None else (first_token - started) * 1000.0)
        self.ledger.add(spend)
        span.set_attributes(spend_attributes(spend))

    async def complete(self, messages: list[Message], params: GenerationParams) -> Completion:
        self.ledger.tier = self.tier
        with self.tracing.span(self._span_name, {"hybridlm.tier": self.tier, "hybridlm.stream": False}) as span:
            started = time.perf_counter()
            result = await self.inner.complete(messages, params)
            self._spend(span, result.model, result.usage, started)
        return result

    async def stream(self, messages: list[Message], params: GenerationParams) -> AsyncIterator[Chunk]:
        """What the tier used is booked at the end, from the usage it reports or, failing that, an estimate."""
        self.ledger.tier = self.tier
        usage: Usage | None = None
        written = 0
        started = time.perf_counter()
        first_token: float | None = None
        # Not made current: the stream is read on in other contexts (the client's), where it could not be undone.
        span = self.tracing.start(self._span_name, {"hybridlm.tier": self.tier, "hybridlm.stream": True})
        try:
            async for chunk in self.inner.stream(messages, params):
                first_token = first_token or time.perf_counter()
                usage = chunk.usage or usage
                written += bool(chunk.text)
                yield chunk
        except Exception as err:  # not GeneratorExit: a reader that stops early is no failure of the call
            failed(span, err)
            raise
        finally:
            if first_token is not None:
                self._spend(span, self.inner.model_name, usage or Usage(estimate_prompt_tokens(messages), written),
                            started, first_token)
            span.end()
