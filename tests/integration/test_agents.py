"""Tasks end to end: a planner over real HTTP (a scripted upstream where the plan must be known, SmolLM2 on
llama.cpp's server where a real model's plan is under test), the bundled SmolLM2 as the local tier, the
gateway with the official openai client, and the SQLite request log."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from pydantic import BaseModel, Field

from hybridlm.agents.workers import WORKERS, StepContext, WorkerFailed, worker
from hybridlm.api import HybridLM
from hybridlm.config import parse_config
from hybridlm.models.base import GenerationParams
from hybridlm.pipeline import RequestFailed
from tests.integration.commands import hybridlm
from tests.integration.servers import (
    Gateway,
    RecordingUpstream,
    Upstream,
    free_port,
    hybrid_config,
    start_gateway,
    start_scripted_upstream,
    stop,
)

REPORTS = {
    "emea.md": "EMEA quarterly report. The team moved to the fourth floor in July. Revenue fell 12% to $4.1M in "
               "Q3. The coffee machine was replaced. Two interns joined the sales desk.",
    "apac.md": "APAC quarterly report. The Singapore office hosted the summer party. Revenue rose 9% to $5.3M in "
               "Q3. The parking rules changed. Badge readers were upgraded.",
}
SALES = "Summarise the shift in our Q3 sales between the regions"
SALES_PLAN = {"steps": [
    {"id": "s1", "worker": "excerpt", "inputs": {"text": "@emea.md", "question": "Q3 revenue", "budget_tokens": 16}},
    {"id": "s2", "worker": "excerpt", "inputs": {"text": "@apac.md", "question": "Q3 revenue", "budget_tokens": 16}},
    {"id": "s3", "worker": "calculate", "inputs": {"expression": "5.3 - 4.1"}},
]}
SALES_ANSWER = "APAC overtook EMEA in Q3: +9% to $5.3M against -12% to $4.1M."
REPLAN = "Which region grew"
BROKEN_PLAN = {"steps": [{"id": "a", "worker": "crystal_ball", "inputs": {}},
                         {"id": "b", "worker": "calculate", "inputs": {"expression": "$c.value"}},
                         {"id": "c", "worker": "calculate", "inputs": {"expression": "$b.value"}}]}
FIXED_PLAN = {"steps": [{"id": "s1", "worker": "calculate", "inputs": {"expression": "5.3 - 4.1"}}]}
ESCALATE = "Count the complaints"
TIMEOUT = "Wait for the slow worker"
BUDGET = "Count, then count again"
KEEP = "Count, doubting everywhere"


def _plan(task: str, plan: dict[str, Any] | list[dict[str, Any]], answer: str) -> list[dict[str, Any]]:
    """Rules of the scripted upstream for one task: its plan(s), its answer."""
    plans = plan if isinstance(plan, list) else [plan]
    return [{"when": f"Task: {task}\n\nDocuments", "answers": [json.dumps(p) for p in plans]},
            {"when": f"Task: {task}\n\nResults", "answers": [answer]}]


SCRIPT = [
    *_plan(SALES, SALES_PLAN, SALES_ANSWER),
    *_plan(REPLAN, [BROKEN_PLAN, FIXED_PLAN], "APAC grew."),
    *_plan(ESCALATE, {"steps": [{"id": "s1", "worker": "test_count", "inputs": {"text": "@emea.md"}},
                                {"id": "s2", "worker": "test_unsure", "inputs": {"text": "@apac.md"}}]}, "Counted."),
    *_plan(TIMEOUT, {"steps": [{"id": "s1", "worker": "test_sleep", "inputs": {"seconds": 30}},
                               {"id": "s2", "worker": "calculate", "inputs": {"expression": "$s1.value"}},
                               {"id": "s3", "worker": "calculate", "inputs": {"expression": "1 + 1"}}]}, "Done."),
    *_plan(KEEP, {"steps": [{"id": "s1", "worker": "test_unsure_everywhere", "inputs": {"text": "@emea.md"}}]},
           "Kept."),
    *_plan(BUDGET, {"steps": [{"id": "s1", "worker": "test_count", "inputs": {"text": "@emea.md"}},
                              {"id": "s2", "worker": "test_count", "inputs": {"text": "$s1.count"}}]}, "Counted."),
    {"when": "Count the complaints", "answers": ['{"count": 3, "confidence": 0.9}']},  # the escalated steps
]


class TextIn(BaseModel):
    text: str


class Count(BaseModel):
    count: int = Field(ge=0)
    confidence: float = 1.0


class SleepIn(BaseModel):
    seconds: float


class Slept(BaseModel):
    value: float


READ_BY_LLM: list[str] = []  # the texts the test workers were given on the LLM tier


async def _count_on_llm(inputs: TextIn, context: StepContext) -> Count:
    READ_BY_LLM.append(inputs.text)
    answer = await context.call([{"role": "user", "content": "Count the complaints"}], GenerationParams(max_tokens=20))
    return Count.model_validate_json(answer.text)


@pytest.fixture(scope="module")
def test_workers() -> Iterator[None]:
    """Workers whose failures are known: invalid output and low confidence on the device, a worker that hangs."""

    @worker("test_count", input=TextIn, output=Count, kind="model", description="counts; invalid on the device")
    async def count(inputs: TextIn, context: StepContext) -> Count:
        if context.on_device:
            return Count.model_construct(count=-1)  # fails the output's validation
        return await _count_on_llm(inputs, context)

    @worker("test_unsure", input=TextIn, output=Count, kind="model", description="counts; unsure on the device")
    async def unsure(inputs: TextIn, context: StepContext) -> Count:
        if context.on_device:
            return Count(count=1, confidence=0.1)
        return await _count_on_llm(inputs, context)

    @worker("test_unsure_everywhere", input=TextIn, output=Count, kind="model",
            description="counts; unsure on the device, fails on the LLM")
    async def unsure_everywhere(inputs: TextIn, context: StepContext) -> Count:
        if context.on_device:
            return Count(count=1, confidence=0.1)
        await _count_on_llm(inputs, context)
        raise WorkerFailed("no better on the LLM")

    @worker("test_sleep", input=SleepIn, output=Slept, description="sleeps")
    async def sleep(inputs: SleepIn, context: StepContext) -> Slept:
        await asyncio.sleep(inputs.seconds)
        raise WorkerFailed("woke up")

    yield
    for name in ("test_count", "test_unsure", "test_unsure_everywhere", "test_sleep"):
        WORKERS.pop(name)


@pytest.fixture(scope="module")
def planner(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RecordingUpstream]:
    server = start_scripted_upstream(tmp_path_factory.mktemp("planner"), SCRIPT)
    yield server
    stop(server.proc)


def _config(planner: Upstream, **agents: Any) -> dict[str, Any]:
    config = hybrid_config(planner.base_url)
    config["agents"] = {"local_planning": False, **agents}
    config["server"]["store_text"] = True
    return config


def _asked(upstream: RecordingUpstream, text: str) -> list[str]:
    """The user turns of every request the upstream got whose first user turn has `text`."""
    bodies = [[m["content"] for m in b["messages"] if m["role"] == "user"] for b in upstream.recorded()]
    return [turns[-1] for turns in bodies if text in turns[0]]


def _steps(trace_steps: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {s["id"]: s for s in trace_steps}


@pytest.fixture(scope="module")
def agent_gateway(planner: Upstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    gw = start_gateway(tmp_path_factory.mktemp("agent-gateway"), _config(planner))
    yield gw
    stop(gw.proc)


def test_a_task_over_http_is_planned_done_locally_and_answered_from_the_results(
        agent_gateway: Gateway, planner: RecordingUpstream) -> None:
    client = openai.OpenAI(base_url=agent_gateway.base_url, api_key="unused", max_retries=0)
    documents = [{"name": name, "text": text} for name, text in REPORTS.items()]
    response = client.chat.completions.with_raw_response.create(
        model="hybrid/agent", messages=[{"role": "user", "content": SALES}], extra_body={"documents": documents})
    completion = response.parse()
    assert completion.choices[0].message.content == SALES_ANSWER
    meta = response.http_response.json()["hybridlm"]
    steps = _steps(meta["steps"])
    assert list(steps) == ["plan-1", "s1", "s2", "s3", "answer"]
    assert all(steps[s]["status"] == "ok" and steps[s]["tier"] == "slm" for s in ("s1", "s2", "s3"))
    assert steps["s3"]["output"] == {"value": 1.2}
    assert steps["plan-1"]["tier"] == steps["answer"]["tier"] == "llm"
    assert "3 of 3 steps done locally" in meta["reason"]

    # the LLM read the revenue sentences the workers picked, not the reports
    read = _asked(planner, f"Task: {SALES}\n\nResults")[-1]
    assert "Revenue fell 12% to $4.1M" in read and "Revenue rose 9% to $5.3M" in read
    assert "coffee machine" not in read and "summer party" not in read

    row = agent_gateway.row(meta["request_id"])
    assert row["profile"] == "agent" and row["tier"] == "llm"
    assert [s["id"] for s in json.loads(row["steps"])] == list(steps)
    assert row["cost_usd"] == pytest.approx(steps["plan-1"]["cost_usd"] + steps["answer"]["cost_usd"])
    assert row["prompt_tokens"] == sum(s["prompt_tokens"] for s in steps.values())

    shown = hybridlm("trace", meta["request_id"], "--json", data_dir=agent_gateway.data_dir)
    assert shown.returncode == 0, shown.stderr
    traced = json.loads(shown.stdout.strip().splitlines()[-1])
    assert [s["id"] for s in traced["steps"]] == list(steps) and traced["tier"] == "llm"
    tree = hybridlm("trace", meta["request_id"], data_dir=agent_gateway.data_dir)
    assert tree.returncode == 0 and "excerpt" in tree.stdout and "answer" in tree.stdout


def test_bad_documents_are_refused_in_openai_shape(agent_gateway: Gateway) -> None:
    client = openai.OpenAI(base_url=agent_gateway.base_url, api_key="unused", max_retries=0)
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(model="hybrid/agent", messages=[{"role": "user", "content": SALES}],
                                       extra_body={"documents": [{"name": "a.md"}]})
    assert refused.value.body["param"] == "documents"  # type: ignore[index]


def test_an_invalid_plan_goes_back_to_the_planner_with_its_problems(planner: RecordingUpstream) -> None:
    with HybridLM(parse_config(_config(planner))) as hybrid:
        result = hybrid.run(REPLAN)
    steps = _steps(result.trace.steps)
    assert steps["plan-1"]["status"] == "invalid" and steps["plan-2"]["status"] == "ok"
    assert "'crystal_ball', which does not exist" in steps["plan-1"]["error"]
    assert "cycle" in steps["plan-1"]["error"]
    told = _asked(planner, f"Task: {REPLAN}\n\nDocuments")[-1]
    assert told.startswith("That plan cannot run") and "crystal_ball" in told
    assert result.text == "APAC grew."


def test_invalid_or_unsure_local_output_is_done_again_by_the_llm_on_narrowed_texts(planner: Upstream,
                                                                                    test_workers: None) -> None:
    READ_BY_LLM.clear()
    with HybridLM(parse_config(_config(planner, escalation_tokens=24))) as hybrid:
        result = hybrid.run(ESCALATE, documents=REPORTS)
    steps = _steps(result.trace.steps)
    invalid, unsure = steps["s1"], steps["s2"]
    assert invalid["status"] == unsure["status"] == "ok"
    assert invalid["escalated"] and invalid["tier"] == "llm" and invalid["output"]["count"] == 3
    assert invalid["attempts"] == 2  # once on the device (greedy, a retry would write it again), once on the LLM
    assert "not valid" in invalid["note"]
    assert unsure["escalated"] and "confidence 0.10 < 0.50" in unsure["note"] and unsure["attempts"] == 2
    assert invalid["cost_usd"] > 0 and unsure["cost_usd"] > 0
    # the LLM read each report narrowed to its best sentences, with their positions, not the whole of it
    assert len(READ_BY_LLM) == 2
    for read in READ_BY_LLM:
        kept = [line.split("] ", 1)[1] for line in read.splitlines() if line.startswith("[") and line != "[...]"]
        report = next(r for r in REPORTS.values() if kept and kept[0] in r)
        assert kept and all(sentence in report for sentence in kept) and len(read) < len(report)
    assert "tokens less of its texts" in invalid["note"] and "tokens less of its texts" in unsure["note"]
    assert result.trace.cost_usd == pytest.approx(sum(s["cost_usd"] for s in steps.values()))


def test_an_unsure_local_output_stands_when_the_llm_does_no_better(planner: Upstream, test_workers: None) -> None:
    with HybridLM(parse_config(_config(planner))) as hybrid:
        result = hybrid.run(KEEP, documents={"emea.md": REPORTS["emea.md"]})
    step = _steps(result.trace.steps)["s1"]
    assert step["status"] == "ok" and step["output"]["count"] == 1 and step["tier"] == "slm"
    assert not step["escalated"] and "the LLM failed (no better on the LLM), the local output is kept" in step["note"]
    assert step["cost_usd"] > 0  # the LLM's try is paid for all the same
    assert result.text == "Kept."


def test_a_step_that_times_out_fails_and_its_dependants_are_skipped(planner: RecordingUpstream,
                                                                   test_workers: None) -> None:
    with HybridLM(parse_config(_config(planner, step_timeout_s=0.3, step_retries=1))) as hybrid:
        result = hybrid.run(TIMEOUT)
    steps = _steps(result.trace.steps)
    assert steps["s1"]["status"] == "failed" and steps["s1"]["attempts"] == 2
    assert steps["s1"]["error"] == "timed out after 0.3 s"
    assert steps["s2"]["status"] == "skipped" and "needs s1" in steps["s2"]["note"]
    assert steps["s3"]["status"] == "ok"
    assert "not done (timed out after 0.3 s)" in _asked(planner, f"Task: {TIMEOUT}\n\nResults")[-1]
    assert result.text == "Done."


def test_a_task_budget_spent_midway_stops_new_steps_and_the_local_tier_answers(planner: Upstream,
                                                                              test_workers: None) -> None:
    # at the test prices the plan costs $0.000275; s1, escalated to the LLM, takes the task to $0.00044
    with HybridLM(parse_config(_config(planner, budget_usd=0.0004))) as hybrid:
        result = hybrid.run(BUDGET, documents={"emea.md": REPORTS["emea.md"]})
    steps = _steps(result.trace.steps)
    assert steps["plan-1"]["cost_usd"] < 0.0004
    assert steps["s1"]["status"] == "ok" and steps["s1"]["tier"] == "llm"
    assert steps["s2"]["status"] == "skipped" and "budget of $0.0004 is spent" in steps["s2"]["note"]
    assert steps["answer"]["tier"] == "slm" and result.trace.tier == "slm"
    assert result.trace.fallback == "task_budget"


def test_a_real_models_malformed_plan_is_caught_and_planned_again(upstream: Upstream) -> None:
    """SmolLM2 on llama.cpp's server as the planner: what it writes is checked, and sent back when wrong."""
    config = hybrid_config(upstream.base_url)
    config["agents"] = {"local_planning": False, "max_replans": 1, "max_steps": 2}
    with HybridLM(parse_config(config)) as hybrid:
        try:
            trace = hybrid.run(SALES, documents=REPORTS, max_tokens=16).trace
        except RequestFailed as failed:
            assert failed.error.status == 502 and failed.error.code == "plan_invalid"
            trace = failed.trace
        row = hybrid.pipeline.log.get(trace.request_id)
    plans = [s for s in trace.steps if s["kind"] == "plan"]
    assert plans[0]["status"] == "invalid" and plans[0]["error"]
    assert plans[1]["tier"] == "llm" and plans[1]["attempts"] == 2  # planned again, told what was wrong
    assert row is not None and json.loads(row["steps"])[0]["error"] == plans[0]["error"]


def test_a_local_only_rule_keeps_every_part_of_a_task_on_the_machine(planner: RecordingUpstream) -> None:
    config = _config(planner)
    config["policies"] = {"local_only": {"patterns": ["CONFIDENTIAL"]}}
    before = len(planner.recorded())
    documents = {**REPORTS, "memo.md": "CONFIDENTIAL: the EMEA team is being restructured."}
    with HybridLM(parse_config(config)) as hybrid:
        try:
            trace = hybrid.run(SALES, documents=documents).trace
        except RequestFailed as failed:  # the small local planner may not manage it: that is allowed, leaking is not
            trace = failed.trace
    assert len(planner.recorded()) == before
    assert trace.decision is not None and "local-only: policy: pattern 'CONFIDENTIAL' matched" in trace.decision.reason
    assert all(s["tier"] in (None, "slm") for s in trace.steps)


def test_run_prints_the_answer_and_how_to_trace_it(planner: Upstream, tmp_path: Path) -> None:
    config_file = tmp_path / "hybridlm.yaml"
    config_file.write_text(json.dumps(_config(planner)))
    files = []
    for name, text in REPORTS.items():
        (tmp_path / name).write_text(text)
        files += ["--files", str(tmp_path / name)]
    shown = hybridlm("run", SALES, *files, "--config", str(config_file), "--json", data_dir=tmp_path / "data")
    assert shown.returncode == 0, shown.stderr
    out = json.loads(shown.stdout.strip().splitlines()[-1])
    assert out["answer"] == SALES_ANSWER
    assert [s["id"] for s in out["hybridlm"]["steps"]] == ["plan-1", "s1", "s2", "s3", "answer"]
    missing = hybridlm("run", SALES, "--files", str(tmp_path / "nope.md"), "--config", str(config_file),
                       data_dir=tmp_path / "data")
    assert missing.returncode == 1 and "nope.md" in missing.stderr and "Traceback" not in missing.stderr


def test_with_the_llm_unreachable_a_task_is_planned_done_and_answered_here() -> None:
    config = hybrid_config(f"http://127.0.0.1:{free_port()}/v1")  # nothing listens there
    config["agents"] = {"local_planning": False, "max_replans": 0}
    with HybridLM(parse_config(config)) as hybrid:
        try:
            result = hybrid.run("What is 5.3 minus 4.1?")
        except RequestFailed as failed:  # the small local planner may not manage a valid plan; it must have tried
            assert failed.error.code == "plan_invalid"
            trace = failed.trace
        else:
            trace = result.trace
            assert trace.tier == "slm" and _steps(trace.steps)["answer"]["tier"] == "slm"
    plans = [s for s in trace.steps if s["kind"] == "plan"]
    assert plans[0]["tier"] == "llm" and plans[0]["status"] == "failed" and "cannot reach" in plans[0]["error"]
    assert plans[1]["tier"] == "slm"
    assert trace.fallback == "llm_unavailable"
