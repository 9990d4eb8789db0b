"""Redaction before a remote tier, local-only policies, retention and masked configuration, through the
one way in (`pipeline.run`) with scripted tiers and the real personal-data detector."""

from __future__ import annotations

import asyncio
import json
import re
import time
from pathlib import Path
from typing import Any

import pytest

from hybridlm.cli.gateway import masked
from hybridlm.config import parse_config
from hybridlm.models.base import GenerationParams
from hybridlm.pipeline import Pipeline, RequestFailed
from hybridlm.request import Caller, Request
from hybridlm.request_log import RequestLog
from hybridlm.routing import HeuristicRouter
from hybridlm.types import Trace
from tests.fakes import ScriptedBackend

PARAMS = GenerationParams(max_tokens=16)
PERSONAL = ("Analyze step by step in detail why the card 4111 1111 1111 1111 of Maria Gonzalez "
            "(maria.gonzalez@example.com, SSN 123-45-6789) was declined and compare the options.")
ORIGINALS = ("4111 1111 1111 1111", "Maria Gonzalez", "maria.gonzalez@example.com", "123-45-6789")


def make(tmp_path: Path, **config: Any) -> tuple[Pipeline, ScriptedBackend, ScriptedBackend]:
    tiers = {"slm": {"backend": "local"}, "llm": {"backend": "openai", "base_url": "http://127.0.0.1:9/v1"}}
    cfg = parse_config({"tiers": tiers, **config})
    slm, llm = ScriptedBackend("small"), ScriptedBackend("big")
    return Pipeline(cfg, {"slm": slm, "llm": llm}, HeuristicRouter(), RequestLog(tmp_path / "log.db")), slm, llm


def ask(pipeline: Pipeline, text: str, model: str = "hybrid", caller: Caller | None = None) -> Any:
    return asyncio.run(pipeline.run(Request([{"role": "user", "content": text}], model, PARAMS, caller=caller)))


def sent_text(backend: ScriptedBackend) -> str:
    return json.dumps(backend.history)


def placeholders_in(text: str) -> list[str]:
    return re.findall(r"<[A-Z_]+_\d+>", text)


def test_personal_data_never_reaches_the_remote_tier_and_comes_back_in_the_answer(tmp_path: Path) -> None:
    pipeline, _, llm = make(tmp_path)
    outgoing: list[str] = []

    async def echo(messages: list[dict], params: GenerationParams) -> Any:
        outgoing.append(messages[-1]["content"])
        from hybridlm.types import Completion, Usage

        return Completion(f"Dear {' and '.join(placeholders_in(messages[-1]['content']))}", "big", Usage(10, 5))

    llm.complete = echo  # type: ignore[method-assign]
    answer = ask(pipeline, PERSONAL, model="llm")
    assert not any(value in outgoing[0] for value in ORIGINALS)
    assert len(placeholders_in(outgoing[0])) >= 4
    assert all(value in answer.completion.text for value in ORIGINALS)  # every placeholder restored
    assert "<" not in answer.completion.text
    row = pipeline.log.get(answer.trace.request_id)
    counts = json.loads(row["redactions"])
    assert counts["CREDIT_CARD"] == 1 and counts["EMAIL_ADDRESS"] == 1 and counts["US_SSN"] == 1
    assert not any(value in json.dumps(row) for value in ORIGINALS)  # store_text is off: nothing kept


def test_a_streamed_answer_gets_placeholders_back_even_split_across_chunks(tmp_path: Path) -> None:
    pipeline, _, llm = make(tmp_path)

    async def stream(messages: list[dict], params: GenerationParams) -> Any:
        from hybridlm.types import Chunk, Usage

        text = "Hello " + " ".join(placeholders_in(messages[-1]["content"])) + "!"
        for i in range(0, len(text), 3):  # three characters a chunk: every placeholder is cut
            yield Chunk(text=text[i:i + 3])
        yield Chunk(finish_reason="stop", usage=Usage(10, 5))

    llm.stream = stream  # type: ignore[method-assign]

    async def read() -> str:
        answer = await pipeline.run_stream(Request([{"role": "user", "content": PERSONAL}], "llm", PARAMS))
        return "".join([chunk.text async for chunk in answer.chunks])

    text = asyncio.run(read())
    assert text.startswith("Hello ") and text.endswith("!")
    assert all(value in text for value in ORIGINALS) and "<" not in text


def test_the_local_tier_sees_the_original_text(tmp_path: Path) -> None:
    pipeline, slm, _ = make(tmp_path)
    ask(pipeline, "My name is Maria Gonzalez. What are your opening hours?", model="slm")
    assert "Maria Gonzalez" in sent_text(slm)


def test_a_request_served_here_keeps_no_personal_data_in_its_preview(tmp_path: Path) -> None:
    """The local tier reads the original, but the log's preview shows placeholders (store_text is off)."""
    pipeline, slm, _ = make(tmp_path)
    answer = ask(pipeline, PERSONAL, model="slm")
    preview = pipeline.log.get(answer.trace.request_id)["prompt_preview"]
    assert "maria.gonzalez@example.com" in sent_text(slm)
    assert not any(value in preview for value in ORIGINALS)
    assert "<EMAIL_ADDRESS_3>" in preview and preview.startswith("Analyze step by step")
    assert not answer.trace.redactions  # nothing was sent off the machine, so nothing counts as redacted
    kept = make(tmp_path / "kept", server={"store_text": True})[0]
    assert "maria.gonzalez@example.com" in kept.log.get(ask(kept, PERSONAL, model="slm").trace.request_id)["prompt_preview"]


def test_a_preview_that_cannot_be_checked_is_withheld(tmp_path: Path) -> None:
    pipeline, _, _ = make(tmp_path)

    def broken(text: str) -> list:
        raise RuntimeError("detector crashed")

    pipeline.pii_detector.detect = broken  # type: ignore[method-assign]
    answer = ask(pipeline, PERSONAL, model="slm")
    assert pipeline.log.get(answer.trace.request_id)["prompt_preview"] == ""
    with pytest.raises(RequestFailed) as refused:  # refused before planning: withheld without a check
        ask(pipeline, PERSONAL, model="no-such-model")
    assert pipeline.log.get(refused.value.trace.request_id)["prompt_preview"] == ""


def test_redaction_can_be_turned_off_per_tier(tmp_path: Path) -> None:
    pipeline, _, llm = make(tmp_path, privacy={"redact": True})
    pipeline.config.tiers["llm"].redact = False
    ask(pipeline, PERSONAL, model="llm")
    assert "maria.gonzalez@example.com" in sent_text(llm)


def test_when_detection_fails_nothing_leaves_and_the_local_tier_answers(tmp_path: Path) -> None:
    pipeline, slm, llm = make(tmp_path)

    def broken(text: str) -> list:
        raise RuntimeError("detector crashed")

    pipeline.pii_detector.detect = broken  # type: ignore[method-assign]
    answer = ask(pipeline, PERSONAL)  # routed to the LLM by its length and words
    assert answer.trace.decision.tier == "llm" and answer.trace.tier == "slm"
    assert answer.trace.fallback == "llm_unavailable" and "could not be checked" in answer.trace.fallback_reason
    assert llm.history == []
    with pytest.raises(RequestFailed) as forced:
        ask(pipeline, PERSONAL, model="llm")
    assert (forced.value.error.status, forced.value.error.code) == (503, "redaction_failed")
    assert llm.history == []


LOCAL_ONLY = {"policies": {"local_only": {"pii": ["US_SSN"], "patterns": [r"(?i)\bdiagnos"]},
                           "tenants": {"clinic": {"pii": ["PERSON"]}}}}


def test_local_only_rules_keep_a_request_here_and_say_which_rule(tmp_path: Path) -> None:
    pipeline, _, llm = make(tmp_path, **LOCAL_ONLY)
    answer = ask(pipeline, PERSONAL)
    assert answer.trace.tier == "slm" and llm.history == []
    assert answer.trace.decision.reason.startswith("local-only: policy: personal data of type US_SSN")
    pattern = ask(pipeline, "Analyze in detail and compare step by step what my diagnosis means for my plans.")
    assert pattern.trace.tier == "slm" and "pattern" in pattern.trace.decision.reason
    plain = ask(pipeline, "Analyze in detail and compare step by step the two pricing plans for a big team.")
    assert plain.trace.tier == "llm"


def test_a_forced_remote_request_that_must_stay_local_is_refused(tmp_path: Path) -> None:
    pipeline, _, llm = make(tmp_path, **LOCAL_ONLY)
    with pytest.raises(RequestFailed) as refused:
        ask(pipeline, PERSONAL, model="llm")
    assert (refused.value.error.status, refused.value.error.code) == (403, "local_only")
    assert llm.history == []
    [row] = pipeline.log.recent(5)
    assert (row["http_status"], row["error_code"]) == (403, "local_only")


def test_tenant_rules_and_key_tiers_apply_to_their_keys_only(tmp_path: Path) -> None:
    pipeline, _, _ = make(tmp_path, **LOCAL_ONLY)
    text = "Analyze step by step and compare in detail the offer Peter Johnson sent us last week."
    assert ask(pipeline, text).trace.tier == "llm"
    clinic = Caller("k1", "front desk", tenant="clinic")
    kept = ask(pipeline, text, caller=clinic)
    assert kept.trace.tier == "slm" and "tenant 'clinic': personal data of type PERSON" in kept.trace.decision.reason
    local_key = Caller("k2", "kiosk", tiers=("slm",))
    assert "may not use tier 'llm'" in ask(pipeline, text, caller=local_key).trace.decision.reason


def test_purge_deletes_only_rows_older_than_the_retention(tmp_path: Path) -> None:
    log = RequestLog(tmp_path / "log.db")
    old, new = Trace(requested_model="old"), Trace(requested_model="new")
    old.started = time.time() - 10 * 86400
    log.record(old).result()
    log.record(new).result()
    assert log.purge(time.time() - 5 * 86400) == 1
    assert [r["requested_model"] for r in log.recent()] == ["new"]


def test_printed_configuration_masks_header_values() -> None:
    cfg = parse_config({"tiers": {"slm": {"backend": "local"},
                                  "llm": {"backend": "openai", "base_url": "http://127.0.0.1:9/v1",
                                          "headers": {"x-api-key": "sk-secret"},
                                          "upstreams": [{"base_url": "http://127.0.0.1:8/v1",
                                                         "headers": {"authorization": "Bearer sk-other"}}]}}})
    printed = json.dumps(masked(cfg.model_dump(mode="json")))
    assert "sk-secret" not in printed and "sk-other" not in printed and '"x-api-key": "***"' in printed
