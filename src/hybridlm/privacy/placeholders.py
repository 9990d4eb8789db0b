"""One request's placeholders: personal data out before a remote model sees the text, back in its answer.

A `Redaction` lives as long as one request. Each distinct value gets one placeholder, numbered
in the order first seen (`<PERSON_1>`, `<EMAIL_ADDRESS_2>`, ...), and keeps it across all of the
request's messages, so the model can tell two people apart and refer back to either. The mapping
from placeholders to values is the personal data itself: it is never logged, and neither repr()
nor any message shows it; `counts()` is what the log may have.

`StreamRestorer` restores a streamed answer chunk by chunk: a placeholder may arrive split
("<PER" + "SON_1> said"), so a trailing fragment that could still become one is held back.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from typing import Protocol

_PLACEHOLDER = re.compile(r"<[A-Z][A-Z_]*_\d+>")


class Span(Protocol):
    """What redact() needs of a finding (a `detector.Finding` is one)."""

    @property
    def entity(self) -> str: ...
    @property
    def start(self) -> int: ...
    @property
    def end(self) -> int: ...


class Redaction:
    """The placeholders of one request: redact() its messages, restore() the answer."""

    __slots__ = ("_by_value", "_by_placeholder", "_types")

    def __init__(self) -> None:
        self._by_value: dict[str, str] = {}
        self._by_placeholder: dict[str, str] = {}
        self._types: Counter[str] = Counter()

    def __repr__(self) -> str:
        counts = ", ".join(f"{entity}={n}" for entity, n in sorted(self._types.items()))
        return f"Redaction({counts})"

    def __bool__(self) -> bool:
        return bool(self._by_value)

    def redact(self, text: str, findings: Iterable[Span]) -> str:
        """`text` with each finding's value replaced by its placeholder (findings that overlap an earlier one are skipped)."""
        pieces: list[str] = []
        at = 0
        for f in sorted(findings, key=lambda f: (f.start, f.end)):
            if f.start < at or f.end <= f.start:
                continue
            pieces += [text[at:f.start], self._placeholder(f.entity, text[f.start:f.end])]
            at = f.end
        pieces.append(text[at:])
        return "".join(pieces)

    def restore(self, text: str) -> str:
        """`text` with every placeholder of this request replaced by its value; other text is left as it is."""
        if not self._by_placeholder:
            return text
        return _PLACEHOLDER.sub(lambda m: self._by_placeholder.get(m.group(0), m.group(0)), text)

    def mask(self, text: str) -> str:
        """`text` with every value this request has redacted replaced by its placeholder (longest first), with no
        new detection: for what the request log keeps of a prompt."""
        for value in sorted(self._by_value, key=len, reverse=True):
            text = text.replace(value, self._by_value[value])
        return text

    def counts(self) -> dict[str, int]:
        """Distinct values replaced, by type: for the request log (never the values)."""
        return dict(self._types)

    def _placeholder(self, entity: str, value: str) -> str:
        placeholder = self._by_value.get(value)
        if placeholder is None:
            placeholder = f"<{entity}_{len(self._by_value) + 1}>"
            self._by_value[value] = placeholder
            self._by_placeholder[placeholder] = value
            self._types[entity] += 1
        return placeholder

    def _could_become_placeholder(self, fragment: str) -> bool:
        return any(p.startswith(fragment) and p != fragment for p in self._by_placeholder)


class StreamRestorer:
    """Restores a streamed answer: feed() each chunk, send what it returns, and flush() at the end."""

    __slots__ = ("_redaction", "_pending")

    def __init__(self, redaction: Redaction) -> None:
        self._redaction = redaction
        self._pending = ""

    def __repr__(self) -> str:
        return f"StreamRestorer(holding {len(self._pending)} chars)"

    def feed(self, piece: str) -> str:
        """What can be sent now: all of it restored, but a trailing fragment that may be the start of a placeholder."""
        text = self._pending + piece
        cut = text.rfind("<")  # placeholders hold no '<': only the last one can start an unfinished placeholder
        if cut == -1 or not self._redaction._could_become_placeholder(text[cut:]):
            cut = len(text)
        self._pending = text[cut:]
        return self._redaction.restore(text[:cut])

    def flush(self) -> str:
        """The rest, at the end of the stream (a fragment that never became a placeholder is sent as it is)."""
        text, self._pending = self._pending, ""
        return self._redaction.restore(text)
