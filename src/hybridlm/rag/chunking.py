"""Split text into overlapping chunks along its structure: headings first, then paragraphs, then
sentences, so a chunk rarely cuts a thought in half. Each chunk keeps the heading it sits under."""

from __future__ import annotations

import re
from dataclasses import dataclass

HEADING = re.compile(r"^(#{1,6})\s+(.*)$", re.MULTILINE)
SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


@dataclass(frozen=True)
class Chunk:
    text: str
    heading: str
    position: int


def _sections(text: str) -> list[tuple[str, str]]:
    """(heading, body) pairs; text before the first heading has an empty heading."""
    out, last, heading = [], 0, ""
    for match in HEADING.finditer(text):
        out.append((heading, text[last:match.start()]))
        heading, last = match.group(2).strip(), match.end()
    out.append((heading, text[last:]))
    return [(h, b.strip()) for h, b in out if b.strip()]


def _pieces(body: str, size: int) -> list[str]:
    """Paragraphs, with any paragraph longer than `size` cut at sentence ends (or hard, as a last resort)."""
    out: list[str] = []
    for paragraph in (p.strip() for p in re.split(r"\n\s*\n", body)):
        if not paragraph:
            continue
        if len(paragraph) <= size:
            out.append(paragraph)
            continue
        for sentence in SENTENCE_END.split(paragraph):
            out.extend(sentence[i:i + size] for i in range(0, len(sentence), size))
    return out


def chunk_text(text: str, size: int = 800, overlap: int = 150) -> list[Chunk]:
    chunks: list[Chunk] = []
    for heading, body in _sections(text):
        current = ""
        for piece in _pieces(body, size):
            if current and len(current) + len(piece) + 1 > size:
                chunks.append(Chunk(current, heading, len(chunks)))
                current = current[-overlap:].split(" ", 1)[-1] if overlap else ""
            current = f"{current} {piece}".strip() if current else piece
        if current:
            chunks.append(Chunk(current, heading, len(chunks)))
    return chunks
