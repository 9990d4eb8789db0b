"""llama.cpp in-process: loading a GGUF safely, a token loop that can be stopped, and a prompt cache.

The high-level `create_chat_completion` of llama-cpp-python cannot switch between free text and a
grammar mid-answer, stop on a flag, or keep several prompts' states; this module drives
`Llama.generate` directly so the local backend can do all three.
"""

from __future__ import annotations

import codecs
import contextlib
import ctypes
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

_LOAD_LOCK = threading.Lock()


@lru_cache(maxsize=1)
def cpu_has_amx() -> bool:
    """Intel AMX, on which llama.cpp's AMX weight buffers crash batched prompt evaluation."""
    try:
        flags = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return " amx_int8" in flags


@contextlib.contextmanager
def without_extra_buffers() -> Iterator[None]:
    """Load with `use_extra_bufts = false`, which llama-cpp-python has no argument for.

    On CPUs with AMX, a native build puts weights in AMX buffers, and decoding more than one
    token at once then segfaults (ggml-org/llama.cpp#20824). Plain CPU buffers are as fast here.
    """
    import llama_cpp.llama_cpp as low_level

    original = low_level.llama_model_default_params

    def params() -> Any:
        value = original()
        value.use_extra_bufts = False
        return value

    low_level.llama_model_default_params = params
    try:
        yield
    finally:
        low_level.llama_model_default_params = original


def load_llama(path: Path, n_ctx: int, n_threads: int | None, seed: int) -> Any:
    """A `Llama` for the file, with the AMX work-around applied where it is needed."""
    from llama_cpp import Llama

    kwargs: dict[str, Any] = {"n_ctx": n_ctx, "seed": seed, "verbose": False}
    if n_threads:
        kwargs["n_threads"] = kwargs["n_threads_batch"] = n_threads
    with _LOAD_LOCK, (without_extra_buffers() if cpu_has_amx() else contextlib.nullcontext()):
        return Llama(model_path=str(path), **kwargs)


def log_softmax_at(llama: Any) -> np.ndarray:
    """The model's own log-probabilities for the next token (before penalties and grammar)."""
    import llama_cpp

    logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llama.ctx, -1), shape=(llama.n_vocab(),))
    top = float(logits.max())
    return logits - (top + float(np.log(np.exp(logits - top).sum())))


@dataclass(frozen=True)
class Sampling:
    temperature: float
    top_p: float = 0.95
    repeat_penalty: float = 1.0
    seed: int | None = None


@dataclass(frozen=True)
class Step:
    """One produced token: its text (may be empty mid-character) and, if asked, its log-probability."""

    token: int
    text: str
    logprob: float | None


def is_end(llama: Any, token: int) -> bool:
    import llama_cpp

    return bool(llama_cpp.llama_vocab_is_eog(llama._model.vocab, token))


def generate(llama: Any, prompt: Sequence[int], sampling: Sampling, max_tokens: int, *,
             grammar: str | None = None, stopped: Callable[[], bool] = lambda: False,
             logprobs: bool = False) -> Iterator[Step]:
    """Tokens after `prompt` until the end token, `max_tokens`, or `stopped()` turns true.

    llama.cpp keeps the evaluated prefix, so a later call whose prompt starts the same way only
    evaluates the rest.
    """
    from llama_cpp.llama_grammar import LlamaGrammar

    if sampling.seed is not None:
        llama.set_seed(sampling.seed)
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    produced: list[int] = []
    tokens = llama.generate(
        list(prompt), temp=sampling.temperature, top_p=sampling.top_p, top_k=40 if sampling.temperature > 0 else 1,
        min_p=0.05, repeat_penalty=sampling.repeat_penalty,
        grammar=LlamaGrammar.from_string(grammar) if grammar else None,
    )
    try:
        for token in tokens:
            if stopped() or is_end(llama, token):
                return
            logprob = float(log_softmax_at(llama)[token]) if logprobs else None
            text = decoder.decode(llama.detokenize([token], prev_tokens=produced or None, special=True))
            produced.append(token)
            yield Step(token, text, logprob)
            if len(produced) >= max_tokens:
                return
    finally:
        tokens.close()


class PromptCache:
    """Saved llama.cpp states of recent prompts, so a repeated system prompt is not evaluated again.

    One context serves every request; consecutive requests that share a prefix reuse it anyway.
    This keeps a few more (a support brief, a tool list...) for when requests alternate. Only the
    sequence's KV cells are saved (about 12 KB a token for a 0.5B model), never the logits.
    """

    def __init__(self, capacity_bytes: int, min_tokens: int = 64) -> None:
        self.capacity = capacity_bytes
        self.min_tokens = min_tokens
        self._states: OrderedDict[tuple[int, ...], bytes] = OrderedDict()
        self.hits = 0
        self.reused_tokens = 0

    @property
    def size(self) -> int:
        return sum(len(state) for state in self._states.values())

    @staticmethod
    def _shared(a: Sequence[int], b: Sequence[int]) -> int:
        n = 0
        for x, y in zip(a, b):
            if x != y:
                break
            n += 1
        return n

    def restore(self, llama: Any, prompt: Sequence[int]) -> int:
        """Load the saved state sharing the longest prefix with `prompt`, if it beats the live one."""
        import llama_cpp

        live = self._shared(llama._input_ids.tolist(), prompt)
        best_key, best = None, live
        for key in self._states:
            shared = self._shared(key, prompt)
            if shared > best:
                best_key, best = key, shared
        if best_key is None or best - live < self.min_tokens:
            self.reused_tokens += live
            return live
        state = self._states.pop(best_key)
        self._states[best_key] = state  # most recently used
        buffer = (ctypes.c_uint8 * len(state)).from_buffer_copy(state)
        llama._ctx.kv_cache_seq_rm(-1, 0, -1)
        if llama_cpp.llama_state_seq_set_data(llama.ctx, buffer, len(state), 0) != len(state):
            llama.reset()
            return 0
        llama.input_ids[: len(best_key)] = best_key
        llama.n_tokens = len(best_key)
        llama._requires_eval = True
        self.hits += 1
        self.reused_tokens += best
        return best

    def remember(self, llama: Any) -> None:
        """Save what the context holds now (prompt and answer), evicting the oldest beyond capacity."""
        import llama_cpp

        key = tuple(llama._input_ids.tolist())
        if len(key) < self.min_tokens:
            return
        size = llama_cpp.llama_state_seq_get_size(llama.ctx, 0)
        if size > self.capacity:
            return
        buffer = (ctypes.c_uint8 * size)()
        written = llama_cpp.llama_state_seq_get_data(llama.ctx, buffer, size, 0)
        self._states.pop(key, None)
        for other in [k for k in self._states if self._shared(k, key) == len(k)]:
            del self._states[other]  # a prefix of this state: this one serves it as well
        self._states[key] = bytes(buffer)[:written]
        while self.size > self.capacity:
            self._states.popitem(last=False)
