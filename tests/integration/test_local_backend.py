"""The local backend in-process, on the smallest real model: prompt states kept between requests, and a
configured model that cannot be had replaced by the shipped one, with the reason."""

from __future__ import annotations

import asyncio
from pathlib import Path

from hybridlm.models.base import BackendContext, GenerationParams
from hybridlm.models.catalogue import SMALLEST_LOCAL_MODEL
from hybridlm.models.local_gguf import LocalGGUFBackend, LocalOptions
from hybridlm.models.manager import ModelManager, models_dir

BRIEFS = ["You are the support assistant of Northwind Bank. " * 30, "You are a travel agent for Contoso Air. " * 30]
PARAMS = GenerationParams(max_tokens=4, temperature=0.0)


def ask(backend: LocalGGUFBackend, brief: str, question: str) -> None:
    messages = [{"role": "system", "content": brief}, {"role": "user", "content": question}]
    asyncio.run(backend.complete(messages, PARAMS))


def test_alternating_system_prompts_are_restored_from_the_prompt_cache(tmp_path: Path) -> None:
    backend = LocalGGUFBackend(LocalOptions(model=SMALLEST_LOCAL_MODEL), BackendContext(tmp_path))
    cache = backend.load().cache
    ask(backend, BRIEFS[0], "Opening hours?")
    ask(backend, BRIEFS[1], "Cheapest flight?")  # evicts the first brief from the live context
    assert cache.hits == 0
    ask(backend, BRIEFS[0], "Card fees abroad?")  # the first brief's state comes back from the cache
    assert cache.hits == 1
    assert cache.reused_tokens > 200  # the brief is about 250 tokens and was not evaluated again
    assert 0 < cache.size <= backend.options.prompt_cache_mb * 1024 * 1024
    asyncio.run(backend.aclose())


def test_a_configured_model_that_cannot_be_had_gives_way_to_the_shipped_one(tmp_path: Path) -> None:
    backend = LocalGGUFBackend(LocalOptions(model="qwen2.5-coder-1.5b"), BackendContext(tmp_path))
    # a manager that sees no installed part packages: as on a machine where they were never pulled
    backend._manager = ModelManager(models_dir(tmp_path), search_path=[tmp_path / "no-packages"])
    backend.load()
    described = backend.describe()
    assert described["model"] == SMALLEST_LOCAL_MODEL and described["loaded"]
    assert "qwen2.5-coder-1.5b is not available" in described["note"]
    assert "hybridlm models pull qwen2.5-coder-1.5b" in described["note"]
    reply = asyncio.run(backend.complete([{"role": "user", "content": "Hi"}], PARAMS))
    assert reply.model == SMALLEST_LOCAL_MODEL
    asyncio.run(backend.aclose())
