"""The one way in: every outcome recorded once, plans as values, wrappers slotting in, the loop kept free,
and the app-wide error boundary. Scripted tiers; the same paths run against real servers in tests/integration."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from hybridlm.config import parse_config
from hybridlm.models.base import BackendError, ChatBackend, GenerationParams
from hybridlm.models.wrappers import registry as wrappers
from hybridlm.models.wrappers.base import BackendWrapper
from hybridlm.pipeline import Pipeline, RequestFailed
from hybridlm.plans import Call, Canned
from hybridlm.profiles import registry as profiles
from hybridlm.request import Caller, Request
from hybridlm.routing import HeuristicRouter
from hybridlm.server.app import build_app
from hybridlm.request_log import RequestLog
from hybridlm.types import Chunk, Decision, Message
from tests.fakes import ScriptedBackend

SIMPLE = [{"role": "user", "content": "What are your opening hours?"}]
COMPLEX = [{"role": "user", "content": "Analyze and compare these two plans step by step in detail."}]
PARAMS = GenerationParams(max_tokens=16)


def make(tmp_path: Path, **tier: object) -> tuple[Pipeline, ScriptedBackend, ScriptedBackend]:
    config = parse_config({"tiers": {"slm": {"backend": "local"},
                                     "llm": {"backend": "openai", "base_url": "http://127.0.0.1:9/v1", "model": "big",
                                             **tier}},
                           "server": {"store_text": True}})  # the broken stream's half answer is checked
    slm, llm = ScriptedBackend("small"), ScriptedBackend("big")
    return Pipeline(config, {"slm": slm, "llm": llm}, HeuristicRouter(), RequestLog(tmp_path / "log.db")), slm, llm


def rows(pipeline: Pipeline) -> list[dict]:
    return pipeline.log.recent(100)


def test_each_outcome_is_recorded_exactly_once(tmp_path: Path) -> None:
    pipeline, slm, llm = make(tmp_path)
    llm.enqueue(BackendError("unavailable", "down"), RuntimeError("secret detail at /srv/app/x.py"))
    asyncio.run(pipeline.run(Request(SIMPLE, "hybrid", PARAMS)))  # served
    with pytest.raises(RequestFailed) as unknown:
        asyncio.run(pipeline.run(Request(SIMPLE, "gpt-9", PARAMS)))
    with pytest.raises(RequestFailed) as upstream:
        asyncio.run(pipeline.run(Request(SIMPLE, "llm", PARAMS)))
    with pytest.raises(RequestFailed) as defect:
        asyncio.run(pipeline.run(Request(SIMPLE, "llm", PARAMS)))
    assert (unknown.value.error.status, unknown.value.error.code) == (404, "model_not_found")
    assert (upstream.value.error.status, upstream.value.error.code) == (503, "upstream_unavailable")
    assert (defect.value.error.status, defect.value.error.code) == (500, "internal_error")
    assert "secret" not in defect.value.error.message and "/srv" not in defect.value.error.message
    logged = rows(pipeline)
    assert sorted(r["http_status"] for r in logged) == [200, 404, 500, 503]
    assert len({r["request_id"] for r in logged}) == 4
    assert not any("secret" in (r["error"] or "") for r in logged)


def test_a_client_that_leaves_is_recorded_once_as_disconnected(tmp_path: Path) -> None:
    pipeline, _, _ = make(tmp_path)
    started = asyncio.Event()

    class Slow(BackendWrapper):
        async def complete(self, messages: list[Message], params: GenerationParams):  # type: ignore[no-untyped-def]
            started.set()
            await asyncio.sleep(30)

    pipeline.backends["llm"] = Slow(pipeline.backends["llm"])

    async def leave() -> None:
        task = asyncio.create_task(pipeline.run(Request(SIMPLE, "llm", PARAMS)))
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(leave())
    [row] = rows(pipeline)
    assert (row["http_status"], row["error_code"]) == (499, "client_disconnected")


def test_a_stream_dropped_unread_is_still_closed_and_recorded(tmp_path: Path) -> None:
    pipeline, _, llm = make(tmp_path)
    llm.enqueue("one two three")

    async def drop() -> None:
        stream = await pipeline.run_stream(Request(COMPLEX, "llm", PARAMS))
        del stream  # e.g. the client left before the response started
        gc.collect()
        await asyncio.sleep(0.05)  # the loop closes the abandoned relay

    asyncio.run(drop())
    [row] = rows(pipeline)
    assert (row["http_status"], row["error_code"]) == (499, "client_disconnected")


class BreaksMidStream:
    """Sends one chunk, then fails: the answer is broken and must say so."""

    model_name = "big"

    async def complete(self, messages: list[Message], params: GenerationParams):  # type: ignore[no-untyped-def]
        raise AssertionError("not used")

    async def stream(self, messages: list[Message], params: GenerationParams) -> AsyncIterator[Chunk]:
        yield Chunk(text="half an ")
        raise BackendError("upstream", "upstream stream error")

    async def aclose(self) -> None:
        return None


def test_a_stream_that_breaks_after_its_first_chunk_fails_and_is_recorded_once(tmp_path: Path) -> None:
    pipeline, _, _ = make(tmp_path)
    pipeline.backends["llm"] = BreaksMidStream()

    async def consume() -> tuple[list[str], RequestFailed]:
        stream = await pipeline.run_stream(Request(COMPLEX, "llm", PARAMS))
        seen = []
        with pytest.raises(RequestFailed) as failed:
            async for chunk in stream.chunks:
                seen.append(chunk.text)
        return seen, failed.value

    seen, failed = asyncio.run(consume())
    assert seen == ["half an "] and failed.error.code == "upstream_error"
    [row] = rows(pipeline)
    assert row["status"] == "error" and row["http_status"] == 502 and row["answer"] == "half an "


def test_profiles_return_frozen_plans(tmp_path: Path) -> None:
    pipeline, _, _ = make(tmp_path)
    routed = pipeline.profiles[profiles.ROUTED]
    plan = routed.plan(Request(SIMPLE, "hybrid"), pipeline.resolve("hybrid"))
    assert isinstance(plan, Call) and plan.decision.tier == "slm" and not plan.wants_llm
    plan = routed.plan(Request(COMPLEX, "hybrid"), pipeline.resolve("hybrid"))
    assert isinstance(plan, Call) and plan.decision.tier == "llm" and plan.wants_llm
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.wants_llm = False  # type: ignore[misc]


def test_a_new_profile_is_one_class_and_one_registry_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A planning step that blocks (as an encoder does) runs off the event loop: the loop keeps ticking."""
    release = threading.Event()

    class Canned42:
        def __init__(self, deployment: object) -> None:
            pass

        def cheap(self, request: Request, target: object) -> bool:
            return False

        def plan(self, request: Request, target: object) -> Canned:
            release.wait(5)  # CPU-bound work stands in here
            return Canned(Decision("faq", None, None, "always 42", "canned42"), "42")

    monkeypatch.setitem(profiles.PROFILES, "canned42", Canned42)
    pipeline, slm, llm = make(tmp_path)

    async def run_while_ticking() -> tuple[str, int]:
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                if ticks == 5:
                    release.set()  # only a free loop gets here
                await asyncio.sleep(0.01)

        ticker = asyncio.create_task(tick())
        answer = await pipeline.run(Request(SIMPLE, "x", PARAMS, profile="canned42"))
        ticker.cancel()
        return answer.completion.text, ticks

    text, ticks = asyncio.run(run_while_ticking())
    assert text == "42" and ticks >= 5
    assert slm.history == llm.history == []
    assert rows(pipeline)[0]["tier"] == "faq"


def test_a_registered_wrapper_slots_around_a_tier(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """How a new concern (e.g. redaction) joins: a BackendWrapper subclass, one registry line, a tier's list."""

    class MasksDigits(BackendWrapper):
        async def complete(self, messages: list[Message], params: GenerationParams):  # type: ignore[no-untyped-def]
            masked = [{**m, "content": "".join("#" if c.isdigit() else c for c in m["content"])} for m in messages]
            return await self.inner.complete(masked, params)

    def mask_digits(backend: ChatBackend, tier: str) -> ChatBackend:
        return MasksDigits(backend)

    monkeypatch.setitem(wrappers.WRAPPERS, "mask_digits", mask_digits)
    slm = ScriptedBackend("small")
    wrapped = wrappers.wrap(slm, "slm", ["mask_digits"])
    config = parse_config({"tiers": {"slm": {"backend": "local", "wrappers": ["mask_digits"]}}})
    pipeline = Pipeline(config, {"slm": wrapped}, HeuristicRouter(), RequestLog(tmp_path / "log.db"))
    asyncio.run(pipeline.run(Request([{"role": "user", "content": "card 4242 lost"}], "slm", PARAMS)))
    assert slm.history == [[{"role": "user", "content": "card #### lost"}]]
    with pytest.raises(Exception, match="unknown wrapper 'nope'"):
        wrappers.wrap(slm, "slm", ["nope"])


def test_the_error_boundary_answers_in_openai_shape_and_records(tmp_path: Path) -> None:
    pipeline, _, _ = make(tmp_path)
    app = build_app(pipeline.config, pipeline)

    async def broken(raw: bytes, caller: Caller | None) -> None:
        raise RuntimeError("secret detail at /srv/app/x.py")

    app.state.feedback.handle = broken

    async def calls() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            return [await client.post("/v1/feedback", json={}), await client.get("/v1/nothing"),
                    await client.get("/v1/chat/completions")]

    defect, missing, wrong_method = asyncio.run(calls())
    assert defect.status_code == 500 and defect.json()["error"]["code"] == "internal_error"
    assert "secret" not in defect.text and "/srv" not in defect.text
    assert defect.headers["x-hybridlm-request-id"] in defect.json()["error"]["message"]
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "not_found")
    assert (wrong_method.status_code, wrong_method.json()["error"]["code"]) == (405, "method_not_allowed")
    logged = {r["endpoint"]: r["http_status"] for r in rows(pipeline)}
    assert logged == {"/v1/feedback": 500, "/v1/nothing": 404, "/v1/chat/completions": 405}
