"""The embedded SLM: a GGUF model run in-process by llama.cpp, offline.

By default it is `qwen2.5-coder-0.5b` from the model catalogue, joined from its PyPI parts and
verified the first time it is used; `model` names another catalogued model and `model_path` any
GGUF file. If the configured model cannot be had (its parts are not installed), the smallest
catalogued model, shipped with the package, serves instead and `note` says why, so the gateway
still starts.

It answers in free text, in JSON held to a schema (`response_format`) or with function calls held
to the offered functions (`tools`), whole or streamed. Every call runs on the model's own worker
thread behind a bounded queue (`max_queue`); a full queue is refused at once (kind `busy`), and a
call whose caller has gone (a cancelled task, a closed stream) stops at the next token.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from hybridlm.models.base import BackendContext, BackendError, GenerationParams
from hybridlm.models.catalogue import CATALOGUE, DEFAULT_LOCAL_MODEL, SMALLEST_LOCAL_MODEL
from hybridlm.models.chat_prompt import ChatPrompt
from hybridlm.models.llama_runtime import PromptCache, load_llama
from hybridlm.models.local_generation import Answer, LocalModel, call_start_tokens
from hybridlm.models.local_worker import LocalWorker
from hybridlm.models.manager import ModelError, ModelManager, Progress, check_gguf_header, models_dir
from hybridlm.tools.relevance import ToolRelevance
from hybridlm.types import Chunk, Completion, Message

MB = 1024 * 1024


class LocalOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: str | None = Field(None, description=f"A catalogued model (`hybridlm models list`); default "
                                                f"{DEFAULT_LOCAL_MODEL}.")
    model_path: Path | None = Field(None, description="Any GGUF file, instead of a catalogued model.")
    name: str | None = Field(None, description="The model name reported in responses; default: the model's.")
    n_ctx: int = Field(8192, gt=0, description="Context window, in tokens (at most the model's own).")
    n_threads: int | None = Field(None, gt=0, description="CPU threads; default: llama.cpp's choice.")
    seed: int = 0
    repeat_penalty: float | None = Field(None, gt=0, description="Free-text penalty; default: the model's own.")
    max_queue: int = Field(8, ge=0, description="Requests that may wait for the model; beyond them a routed "
                                                "request goes to the remote tier, and others are refused.")
    prompt_cache_mb: int = Field(256, ge=0, description="Memory for saved prompt states (repeated system prompts).")
    call_threshold: float = Field(0.5, ge=0.0, le=1.0, description="With tool_choice auto: the model's "
                                  "probability of starting a call above which it calls.")
    tool_fit_floor: float | None = Field(0.3, ge=-1.0, le=1.0, description="With tool_choice auto: when no "
                                         "offered function fits the request better than this (cosine), answer in "
                                         "words without the tools; null turns the check off.")
    ask_for_missing: bool = Field(True, description="With tool_choice auto: do not make a call whose required "
                                  "value the conversation does not contain; ask for it instead.")

    @model_validator(mode="after")
    def _one_source(self) -> LocalOptions:
        if self.model is not None and self.model_path is not None:
            raise ValueError("give 'model' (a catalogued model) or 'model_path' (a GGUF file), not both")
        if self.model is not None and self.model not in CATALOGUE:
            raise ValueError(f"unknown model '{self.model}'; catalogued: {', '.join(sorted(CATALOGUE))}")
        return self


class LocalGGUFBackend:
    """In-process llama.cpp; the model loads once, at start-up (`load()`) or on first use."""

    Options = LocalOptions
    on_device = True  # what it reads never leaves the machine: nothing to redact

    def __init__(self, options: LocalOptions, context: BackendContext) -> None:
        self.options = options
        self.path = options.model_path.expanduser() if options.model_path else None
        if self.path is not None and not self.path.is_file():
            raise BackendError("unavailable", f"model_path {self.path} is not a file")
        self.catalogued = None if self.path else (options.model or DEFAULT_LOCAL_MODEL)
        self.model_name = options.name or self.catalogued or (self.path.stem if self.path else "")
        self.note: str | None = None  # why another model serves than the one configured
        self._relevance = context.tool_relevance or ToolRelevance()
        self._manager = ModelManager(models_dir(context.data_dir))
        self._model: LocalModel | None = None
        self._load_lock = threading.Lock()
        self.worker = LocalWorker(self.model_name, options.max_queue)

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def needs_join(self) -> bool:
        """Will the first load join the model from its parts (worth a progress bar)?"""
        if self.catalogued is None or self._model is not None:
            return False
        status = self._manager.status(self.catalogued)
        return status.entry.split and not status.joined and status.parts_installed == len(status.parts)

    def _file(self, progress: Progress | None) -> tuple[Path, str]:
        """The GGUF to open and the catalogue name serving, falling back to the shipped model."""
        if self.path is not None:
            check_gguf_header(self.path)
            return self.path, self.path.stem
        assert self.catalogued is not None
        try:
            return self._manager.locate(self.catalogued, progress), self.catalogued
        except ModelError as err:
            if self.catalogued == SMALLEST_LOCAL_MODEL:
                raise BackendError("unavailable", str(err)) from None
            self.note = f"{self.catalogued} is not available ({err}); serving {SMALLEST_LOCAL_MODEL} instead"
            return self._manager.locate(SMALLEST_LOCAL_MODEL), SMALLEST_LOCAL_MODEL

    def load(self, progress: Progress | None = None) -> LocalModel:
        with self._load_lock:
            if self._model is None:
                try:
                    path, serving = self._file(progress)
                except ModelError as err:
                    raise BackendError("unavailable", str(err)) from None
                entry = CATALOGUE.get(serving)
                n_ctx = min(self.options.n_ctx, entry.context_length) if entry else self.options.n_ctx
                try:
                    llama = load_llama(path, n_ctx, self.options.n_threads, self.options.seed)
                except (ValueError, RuntimeError, OSError) as err:
                    raise BackendError("unavailable", f"cannot load the GGUF model {path.name}: {err}") from None
                if not self.options.name and serving != self.catalogued:
                    self.model_name = serving
                penalty = self.options.repeat_penalty or (entry.repeat_penalty if entry else 1.0)
                self._model = LocalModel(llama, self.model_name, ChatPrompt.for_model(llama),
                                         PromptCache(self.options.prompt_cache_mb * MB), call_start_tokens(llama),
                                         penalty, self.options.call_threshold, self._relevance,
                                         self.options.tool_fit_floor, self.options.ask_for_missing)
            return self._model

    def _answer(self, messages: list[Message], params: GenerationParams, stopped: Callable[[], bool]) -> Answer:
        return Answer(self.load(), messages, params, stopped)

    async def complete(self, messages: list[Message], params: GenerationParams) -> Completion:
        cancelled = threading.Event()

        def run() -> Completion:
            answer = self._answer(messages, params, cancelled.is_set)
            for _ in answer.chunks():
                pass
            return answer.completion()

        future = self.worker.submit(run)
        try:
            return await asyncio.wrap_future(future)
        except asyncio.CancelledError:  # the caller has gone: stop generating at the next token
            cancelled.set()
            future.cancel()
            raise

    async def stream(self, messages: list[Message], params: GenerationParams) -> AsyncIterator[Chunk]:
        """Chunks as the worker thread produces them; closing the stream stops the generation."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Chunk | BaseException | None] = asyncio.Queue()
        cancelled = threading.Event()

        def produce() -> None:
            try:
                for chunk in self._answer(messages, params, cancelled.is_set).chunks():
                    loop.call_soon_threadsafe(queue.put_nowait, chunk)
            except BaseException as err:  # handed to the consumer, which re-raises it
                loop.call_soon_threadsafe(queue.put_nowait, err)
            else:
                loop.call_soon_threadsafe(queue.put_nowait, None)

        future = self.worker.submit(produce)
        try:
            while True:
                item = await queue.get()
                if item is None:
                    break
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            cancelled.set()
            future.cancel()

    def describe(self) -> dict[str, Any]:
        """What /healthz shows of this tier: the model serving, why if it is not the one configured, the queue,
        and whether offered functions are matched to the request (not without the encoder's extra)."""
        return {"model": self.model_name, "loaded": self.loaded, "note": self.note,
                "queue": {"running": self.worker.busy, "waiting": self.worker.waiting, "max": self.options.max_queue},
                "tool_fit": self._relevance.describe()}

    async def aclose(self) -> None:
        await asyncio.to_thread(self.worker.shutdown)
        self._model = None
