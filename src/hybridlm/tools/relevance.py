"""Does any offered function fit the request? A sentence-embedding match, before any model runs.

A small model offered tools calls one almost whatever is asked (asked for the capital of France
with an alarm tool on offer, it sets an alarm). The cosine between the request and each
function's name and description, in MiniLM's space, tells a fitting function from an unrelated
one well (measured in docs/BENCHMARKS.md), in a
few milliseconds, and the function embeddings are cached.

MiniLM needs the `support` extra. Without it no fit is judged (`ready()` is False and `missing`
says what to install): calls are still made under the grammar and checked by the verifier, but
the functions keep their order, the small model never declines for want of a fitting function,
and the tool router never escalates for it.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np

from hybridlm.errors import MissingExtra
from hybridlm.models.encoder import Encoder, load_encoder
from hybridlm.routing.base import last_user_text
from hybridlm.tools.protocol import Function
from hybridlm.types import Message

SEPARATORS = re.compile(r"[._\-]+|(?<=[a-z])(?=[A-Z])")
CACHED_FUNCTIONS = 4096
MAX_CHARS = 2000


def foreign_share(text: str) -> float:
    """The share of letters outside ASCII: MiniLM reads English, and cannot judge a fit in other scripts."""
    letters = [c for c in text if c.isalpha()]
    return sum(1 for c in letters if not c.isascii()) / len(letters) if letters else 0.0


def function_text(function: Function) -> str:
    """`get_weather.forecast` -> `get weather forecast: <description>`."""
    return f"{SEPARATORS.sub(' ', function.name).strip()}: {function.description}"[:MAX_CHARS]


class ToolRelevance:
    """Cosine similarity of the last user message to each offered function, in [-1, 1]."""

    def __init__(self, encoder: Encoder | None = None) -> None:
        self._encoder = encoder
        self.missing: MissingExtra | None = None  # why no fit can be judged on this install
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def ready(self) -> bool:
        """Load the encoder on first use; False, with `missing` set, when its extra is not installed."""
        if self._encoder is None and self.missing is None:
            try:
                self._encoder = load_encoder("minilm")
            except MissingExtra as err:
                self.missing = err
        return self._encoder is not None

    def describe(self) -> str:
        """For /healthz: 'on', 'off: <what to install>', or 'not loaded yet' before the first use."""
        if self.missing is not None:
            return f"off: {self.missing}"
        return "on" if self._encoder is not None else "not loaded yet"

    @property
    def encoder(self) -> Encoder:
        if not self.ready():
            assert self.missing is not None
            raise self.missing
        assert self._encoder is not None
        return self._encoder

    def _function_vectors(self, texts: list[str]) -> np.ndarray:
        with self._lock:
            missing = [t for t in dict.fromkeys(texts) if t not in self._cache]
            if missing:
                for text, vector in zip(missing, self.encoder.encode(missing)):
                    self._cache[text] = vector
                while len(self._cache) > CACHED_FUNCTIONS:
                    self._cache.popitem(last=False)
            for text in texts:
                self._cache.move_to_end(text)
            return np.stack([self._cache[t] for t in texts])

    def scores(self, messages: list[Message], functions: Sequence[Function]) -> list[float]:
        request = last_user_text(messages)[-MAX_CHARS:]
        if not request.strip() or not functions:
            return [0.0 for _ in functions]
        query = self.encoder.encode([request])[0]
        vectors = self._function_vectors([function_text(f) for f in functions])
        return [float(v) for v in vectors @ query]

    def can_judge(self, messages: list[Message]) -> bool:
        """Is the encoder here, and the request in a script it reads (mostly ASCII letters)?"""
        return self.ready() and foreign_share(last_user_text(messages)) < 0.3

    def best(self, messages: list[Message], functions: Sequence[Function]) -> float:
        scores = self.scores(messages, functions)
        return max(scores) if scores else 0.0
