"""Turn a file into text: Markdown and plain text as they are, HTML without its tags, PDF page by page.
Every failure is a `DocumentError` that names the file, so a batch can report it and go on."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

from hybridlm.errors import HybridLMError
from hybridlm.extras import require

MAX_BYTES = 20_000_000
TEXT_SUFFIXES = {".md", ".markdown", ".txt", ".rst"}
HTML_SUFFIXES = {".html", ".htm"}
SKIPPED_TAGS = {"script", "style", "nav", "footer", "head"}
SUFFIXES = TEXT_SUFFIXES | HTML_SUFFIXES | {".pdf"}


class DocumentError(HybridLMError):
    """A file that cannot be ingested, and why."""


class _TextOfHTML(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in SKIPPED_TAGS:
            self._skip += 1
        elif tag in {"h1", "h2", "h3", "h4"}:
            self.parts.append("\n\n" + "#" * int(tag[1]) + " ")
        elif tag in {"p", "li", "br", "div", "tr"}:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in SKIPPED_TAGS and self._skip:
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def _pdf_text(path: Path) -> str:
    pypdf = require("pypdf")
    try:
        reader = pypdf.PdfReader(str(path))
        return "\n\n".join(page.extract_text() or "" for page in reader.pages)
    except (pypdf.errors.PdfReadError, ValueError, KeyError, OSError) as err:
        raise DocumentError(f"{path}: unreadable or corrupt PDF ({type(err).__name__}: {err})") from None


def read_text(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise DocumentError(f"{path}: unsupported file type '{suffix or '(none)'}'; "
                            f"ingest reads {', '.join(sorted(SUFFIXES))}")
    size = path.stat().st_size
    if size == 0:
        raise DocumentError(f"{path}: empty file")
    if size > MAX_BYTES:
        raise DocumentError(f"{path}: {size:,} bytes is over the {MAX_BYTES:,}-byte limit for one file")
    if suffix == ".pdf":
        text = _pdf_text(path)
    else:
        raw = path.read_bytes()
        if b"\x00" in raw[:8192]:
            raise DocumentError(f"{path}: looks binary, not text")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise DocumentError(f"{path}: not UTF-8 text") from None
        if suffix in HTML_SUFFIXES:
            parser = _TextOfHTML()
            parser.feed(text)
            text = "".join(parser.parts)
    if not text.strip():
        raise DocumentError(f"{path}: no text in it")
    return text
