"""The redaction wrapper: personal data never reaches a remote tier. Every text bound for it (system
prompt, history, tool calls and their results) has each value replaced by a placeholder of the
request's own mapping (`<PERSON_1>`); the answer gets the originals back, streamed ones too.

Fail closed: when detection fails, nothing is sent and the call fails as `redaction_failed`, which
the fallback wrapper answers from the local tier.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from hybridlm.models.base import BackendError, ChatBackend, GenerationParams
from hybridlm.models.wrappers.base import BackendWrapper
from hybridlm.privacy.placeholders import Redaction, StreamRestorer
from hybridlm.types import Chunk, Completion, Message, ToolCallDelta

if TYPE_CHECKING:
    from hybridlm.privacy.detector import PiiDetector

log = logging.getLogger(__name__)
REDACTION_FAILED = "redaction_failed"


def map_texts(messages: list[Message], change: Callable[[str], str]) -> list[Message]:
    """Copies of the messages with `change` applied to every text in them: string or typed-part content, and
    the arguments of the tool calls in the history. Other fields pass through untouched."""
    out = []
    for message in messages:
        copy: dict[str, Any] = dict(message)
        content = message.get("content")
        if isinstance(content, str):
            copy["content"] = change(content)
        elif isinstance(content, list):
            copy["content"] = [{**part, "text": change(part["text"])}
                               if isinstance(part, dict) and isinstance(part.get("text"), str) else part
                               for part in content]
        if isinstance(calls := message.get("tool_calls"), list):
            copy["tool_calls"] = [_call_with(call, change) for call in calls]
        out.append(copy)
    return out


def _call_with(call: Any, change: Callable[[str], str]) -> Any:
    function = call.get("function") if isinstance(call, dict) else None
    if not isinstance(function, dict) or not isinstance(function.get("arguments"), str):
        return call
    return {**call, "function": {**function, "arguments": change(function["arguments"])}}


class Redacting(BackendWrapper):
    def __init__(self, inner: ChatBackend, tier: str, detector: PiiDetector, redaction: Redaction) -> None:
        super().__init__(inner)
        self.tier, self.detector, self.redaction = tier, detector, redaction

    def _redact(self, text: str) -> str:
        return self.redaction.redact(text, self.detector.detect(text)) if text else text

    async def _redacted(self, messages: list[Message]) -> list[Message]:
        """Detection is CPU-bound: it runs in the worker pool."""
        try:
            return await asyncio.to_thread(map_texts, messages, self._redact)
        except Exception as err:  # noqa: BLE001 - any failure to check means nothing may be sent
            log.error("personal-data detection failed (%s): nothing sent to tier '%s'", type(err).__name__, self.tier)
            raise BackendError(REDACTION_FAILED, f"personal data could not be checked, so nothing was sent to "
                                                 f"tier '{self.tier}'") from None

    async def complete(self, messages: list[Message], params: GenerationParams) -> Completion:
        answer = await self.inner.complete(await self._redacted(messages), params)
        restore = self.redaction.restore
        calls = tuple(replace(call, arguments=restore(call.arguments)) for call in answer.tool_calls)
        return replace(answer, text=restore(answer.text), tool_calls=calls)

    async def stream(self, messages: list[Message], params: GenerationParams) -> AsyncIterator[Chunk]:
        """Originals restored as the chunks pass; a placeholder split across chunks is held back until whole."""
        redacted = await self._redacted(messages)
        text = StreamRestorer(self.redaction)
        arguments: dict[int, StreamRestorer] = {}
        async for chunk in self.inner.stream(redacted, params):
            deltas = tuple(replace(d, arguments=arguments.setdefault(d.index, StreamRestorer(self.redaction))
                                   .feed(d.arguments)) for d in chunk.tool_calls)
            restored = text.feed(chunk.text)
            if chunk.finish_reason is not None or chunk.usage is not None:  # the last chunk: nothing held back
                restored += text.flush()
                deltas += tuple(ToolCallDelta(i, arguments=rest) for i, r in arguments.items() if (rest := r.flush()))
            yield replace(chunk, text=restored, tool_calls=deltas)
        if rest := text.flush():
            yield Chunk(text=rest)
