"""Context shrinking: small models choose what the LLM reads. Long context (documents, history, tool
results) is cut into sentences, each scored against the question (MiniLM cosine plus the rare
question words it shares), and the best kept under a token budget, in their original order and
with their positions shown, so the LLM reads less and still sees where each excerpt came from.

Pure CPU and deterministic; the shrinker keeps no state between calls beyond its encoder (which
locks itself), so worker threads may share one.
"""

from __future__ import annotations

import math
import textwrap
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from itertools import groupby, pairwise
from typing import TYPE_CHECKING

import numpy as np

from hybridlm.factcheck.text import content_words, sentences, stem
from hybridlm.models.base import estimate_prompt_tokens, estimate_tokens
from hybridlm.routing.base import message_text
from hybridlm.types import Message

if TYPE_CHECKING:
    from hybridlm.models.encoder import Encoder

GAP = "[...]"
MAX_UNIT_TOKENS = 48  # longer sentences are wrapped: one run-on sentence must not take a small budget whole
# Measured on HaluEval (benchmarks/context_shrinking.py): the mix keeps answers at least as often as either
# score alone, and a share of the better neighbour's score a little more often (context comes along).
LEXICAL_WEIGHT = 0.5
NEIGHBOUR_WEIGHT = 0.3
KEEP_WHOLE_TOKENS = 32  # messages this short are kept as they are: cutting them saves little and loses the thread
KEPT_ROLES = frozenset({"system", "developer"})


@dataclass(frozen=True)
class Excerpt:
    """One sentence (or piece of a long one) of a source, at its position there, with its score."""

    source: str
    index: int
    text: str
    score: float


@dataclass(frozen=True)
class Shrunk:
    """What was kept of the sources, in their order, and the estimated tokens before and after."""

    excerpts: tuple[Excerpt, ...]
    original_tokens: int
    kept_tokens: int

    @property
    def saved_tokens(self) -> int:
        return self.original_tokens - self.kept_tokens

    def render(self) -> str:
        """Each source under its name, excerpts as `[position] text`, `[...]` where something was left out."""
        return "\n\n".join(render_source(name, list(group))
                           for name, group in groupby(self.excerpts, key=lambda e: e.source))


def render_source(name: str, excerpts: Sequence[Excerpt]) -> str:
    """One source's excerpts (in order) under its name; a source with none is its name and a gap."""
    lines = [f"{name}:"]
    following = 0
    for excerpt in excerpts:
        if excerpt.index > following:
            lines.append(GAP)
        lines.append(f"[{excerpt.index}] {excerpt.text}")
        following = excerpt.index + 1
    if not excerpts:
        lines.append(GAP)
    return "\n".join(lines)


def units_of(sources: Sequence[tuple[str, str]], max_unit_tokens: int = MAX_UNIT_TOKENS) -> list[Excerpt]:
    """The sentences of each source (unscored), any longer than `max_unit_tokens` wrapped at spaces."""
    width = max_unit_tokens * 4  # estimate_tokens counts about four characters a token
    units = []
    for name, text in sources:
        pieces = [piece for sentence in sentences(text) for piece in textwrap.wrap(sentence, width)]
        units.extend(Excerpt(name, index, piece, 0.0) for index, piece in enumerate(pieces))
    return units


def term_overlap(query: str, texts: Sequence[str]) -> np.ndarray:
    """The share of the query's content words (stemmed) each text contains, each word weighted by its
    rarity among the texts (IDF), so a shared name or number counts more than a common word."""
    terms = [{stem(w) for w in content_words(text)} for text in texts]
    frequency = Counter(term for unit in terms for term in unit)
    weights = {term: math.log(1 + len(texts) / frequency[term])
               for term in {stem(w) for w in content_words(query)} if frequency[term]}
    total = sum(weights.values())
    if not total:
        return np.zeros(len(texts), dtype=np.float32)
    return np.array([sum(w for term, w in weights.items() if term in unit) / total for unit in terms],
                    dtype=np.float32)


def keep_best(units: Sequence[Excerpt], scores: Sequence[float], budget_tokens: int,
              original_tokens: int) -> Shrunk:
    """The best-scored units whose rendering (names, positions and gaps included) fits the budget, best
    first (ties to the earlier unit), returned in their original order. A text repeated (a document
    pasted twice, boilerplate) is kept once, where it scores best."""
    order = sorted(range(len(units)), key=lambda i: (-scores[i], i))
    kept: list[int] = []
    texts: set[str] = set()
    for i in order:
        trial = sorted([*kept, i])
        if units[i].text not in texts and estimate_tokens(_rendered(units, trial)) <= budget_tokens:
            kept = trial
            texts.add(units[i].text)
    excerpts = tuple(replace(units[i], score=float(scores[i])) for i in kept)
    shrunk = Shrunk(excerpts, original_tokens, 0)
    return replace(shrunk, kept_tokens=estimate_tokens(shrunk.render()))


def _rendered(units: Sequence[Excerpt], kept: list[int]) -> str:
    return Shrunk(tuple(units[i] for i in kept), 0, 0).render()


def _plain_text(message: Message) -> str | None:
    """A message's text when its content is text alone (a string or text parts), else None: images
    and the like are never cut."""
    content = message.get("content")
    if isinstance(content, list) and not all(isinstance(p, dict) and p.get("type") == "text" for p in content):
        return None
    return message_text(message) if isinstance(content, str | list) else None


class ContextShrinker:
    """Chooses what an LLM reads of long context. `lexical_weight` mixes the word-overlap score into
    MiniLM's cosine (0: cosine alone, 1: overlap alone); `neighbour_weight` adds that share of the
    better neighbour's score to each sentence, so context around a hit can come along."""

    def __init__(self, encoder: Encoder | None = None, *, lexical_weight: float = LEXICAL_WEIGHT,
                 neighbour_weight: float = NEIGHBOUR_WEIGHT, max_unit_tokens: int = MAX_UNIT_TOKENS) -> None:
        self._encoder = encoder
        self._loading = threading.Lock()
        self.lexical_weight, self.neighbour_weight = lexical_weight, neighbour_weight
        self.max_unit_tokens = max_unit_tokens

    @property
    def encoder(self) -> Encoder:
        """MiniLM, loaded on first use (once, whichever thread asks first)."""
        with self._loading:
            if self._encoder is None:
                from hybridlm.models.encoder import load_encoder

                self._encoder = load_encoder("minilm")
            return self._encoder

    def scores(self, query: str, units: Sequence[Excerpt]) -> np.ndarray:
        """How well each unit answers the query: cosine and word overlap mixed, neighbours' share added."""
        if not units:
            return np.zeros(0, dtype=np.float32)
        texts = [u.text for u in units]
        vectors = self.encoder.encode([query, *texts])
        cosine = vectors[1:] @ vectors[0]
        own = (1 - self.lexical_weight) * cosine + self.lexical_weight * term_overlap(query, texts)
        if not self.neighbour_weight:
            return own
        same_source = np.array([a.source == b.source for a, b in pairwise(units)])
        before = np.concatenate([[0.0], np.where(same_source, own[:-1], 0.0)])
        after = np.concatenate([np.where(same_source, own[1:], 0.0), [0.0]])
        return own + self.neighbour_weight * np.maximum(before, after)

    def select(self, query: str, sources: Sequence[tuple[str, str]], budget_tokens: int) -> Shrunk:
        """The sentences of (name, text) sources that best answer `query`, rendered within `budget_tokens`."""
        units = units_of(sources, self.max_unit_tokens)
        original = sum(estimate_tokens(text) for _, text in sources)
        return keep_best(units, self.scores(query, units).tolist(), budget_tokens, original)

    def shrink_messages(self, messages: list[Message], budget_tokens: int,
                        min_tokens: int) -> tuple[list[Message], Shrunk | None]:
        """Messages over `min_tokens` with their long earlier content (documents, history, tool results)
        replaced by its best sentences for the last user message, within `budget_tokens` in all. The last
        user message, system prompts and short messages are kept whole; (messages, None) when nothing is cut."""
        if estimate_prompt_tokens(messages) <= min_tokens:
            return messages, None
        users = [i for i, m in enumerate(messages) if m.get("role") == "user"]
        if not users:
            return messages, None
        query_at = users[-1]
        long = {i: text for i, m in enumerate(messages)
                if i != query_at and m.get("role") not in KEPT_ROLES
                and (text := _plain_text(m)) is not None and estimate_tokens(text) > KEEP_WHOLE_TOKENS}
        names = {i: f"{messages[i].get('role')} message {i}" for i in long}
        if sum(estimate_tokens(text) for text in long.values()) <= budget_tokens:
            return messages, None
        shrunk = self.select(message_text(messages[query_at]), [(names[i], long[i]) for i in long], budget_tokens)
        kept = {name: list(group) for name, group in groupby(shrunk.excerpts, key=lambda e: e.source)}
        out = [{**m, "content": render_source(names[i], kept.get(names[i], []))} if i in long else m
               for i, m in enumerate(messages)]
        return out, shrunk


@lru_cache(maxsize=1)
def shared_shrinker() -> ContextShrinker:
    """One shrinker per process (its encoder loaded once), for the workers and the agents' final prompt."""
    return ContextShrinker()
