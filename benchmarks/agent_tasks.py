"""Planner plus local workers against sending everything to the LLM, on the bundled multi-document tasks.

For each task of src/hybridlm/agents/data/tasks.yaml, twice through the same pipeline:
- agent: `HybridLM.run` (the LLM, or the local model when the router scores the task simple, plans; local
  workers read the documents; the LLM writes the answer from their results);
- all to the LLM: the task and every document in one request to the LLM tier.
The LLM is llama.cpp's server hosting a catalogued model (Qwen2.5-Coder-1.5B by default) on loopback,
priced as gpt-4o-mini ($0.15 / $0.60 per million tokens); the local tier is Qwen2.5-Coder-0.5B.

Reported per mode: LLM tokens (prompt and completion, the calls to the LLM tier only), cost, latency, the
share of each task's expected facts found in its answer; for the agent, the share of steps done locally and
who planned. Run: python benchmarks/agent_tasks.py [--limit N] [--traces FILE] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE.parent / "src")]

from benchmarks.machine import print_table  # noqa: E402
from hybridlm.api import HybridLM  # noqa: E402
from hybridlm.config import parse_config  # noqa: E402
from tests.integration.servers import start_llama_server, stop  # noqa: E402

TASKS = HERE.parent / "src" / "hybridlm" / "agents" / "data" / "tasks.yaml"
PRICE = {"input": 0.15, "output": 0.60}
ANSWER_TOKENS = 250
DIRECT_SYSTEM = "Answer the task from the documents. Keep every figure and name exactly as they give it."


@dataclass
class Outcome:
    llm_prompt: int
    llm_completion: int
    cost_usd: float
    latency_s: float
    facts: float
    steps: int = 0
    local_steps: int = 0
    planned_by: str = ""


def facts_found(answer: str, facts: list[list[str]]) -> float:
    text = answer.lower()
    return sum(any(spelling.lower() in text for spelling in fact) for fact in facts) / len(facts)


def llm_tokens(calls: list[dict[str, Any]]) -> tuple[int, int]:
    """Tokens of the calls made to the LLM tier (a step escalated to it also made calls on the device)."""
    remote = [c for c in calls if c["tier"] == "llm"]
    return sum(c["prompt_tokens"] for c in remote), sum(c["completion_tokens"] for c in remote)


def run_agent(hybrid: HybridLM, task: dict[str, Any], traces: Path | None) -> Outcome:
    documents = {d["name"]: d["text"] for d in task["documents"]}
    started = time.perf_counter()
    result = hybrid.run(task["task"], documents=documents, max_tokens=ANSWER_TOKENS)
    latency = time.perf_counter() - started
    steps = result.trace.steps
    if traces is not None:
        with traces.open("a") as out:
            out.write(json.dumps({"task": task["id"], "answer": result.text, "steps": steps}) + "\n")
    work = [s for s in steps if s["kind"] == "step"]
    prompt, completion = llm_tokens(result.trace.calls)
    planned = next((s["tier"] for s in steps if s["kind"] == "plan" and s["status"] == "ok"), "none")
    return Outcome(prompt, completion, result.trace.cost_usd, latency, facts_found(result.text, task["facts"]),
                   len(work), sum(1 for s in work if s["status"] == "ok" and s["tier"] == "slm"), planned)


def run_direct(hybrid: HybridLM, task: dict[str, Any]) -> Outcome:
    documents = "\n\n".join(f"## {d['name']}\n{d['text']}" for d in task["documents"])
    started = time.perf_counter()
    result = hybrid.chat(f"Task: {task['task']}\n\nDocuments:\n{documents}", model="llm", system=DIRECT_SYSTEM,
                         max_tokens=ANSWER_TOKENS)
    latency = time.perf_counter() - started
    usage = result.trace.usage
    return Outcome(usage.prompt_tokens, usage.completion_tokens, result.trace.cost_usd, latency,
                   facts_found(result.text, task["facts"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=Path, default=TASKS)
    parser.add_argument("--limit", type=int, default=None, help="The first N tasks only.")
    parser.add_argument("--llm-model", default="qwen2.5-coder-1.5b", help="Catalogued model the LLM server hosts.")
    parser.add_argument("--local-model", default="qwen2.5-coder-0.5b")
    parser.add_argument("--llm-threads", type=int, default=2)
    parser.add_argument("--json", action="store_true", help="One JSON object on the last line.")
    parser.add_argument("--traces", type=Path, default=None, help="Append each agent run's answer and steps here "
                        "(JSON lines), to read where it went wrong.")
    args = parser.parse_args()
    tasks = yaml.safe_load(args.tasks.read_text())["tasks"][:args.limit]

    workdir = Path(tempfile.mkdtemp(prefix="hybridlm-agent-bench-"))
    os.environ["HYBRIDLM_DATA_DIR"] = str(workdir / "data")
    server = start_llama_server(workdir, "--n_threads", str(args.llm_threads), "--n_ctx", "8192",
                                model=args.llm_model)
    config = {"tiers": {"slm": {"backend": "local", "model": args.local_model},
                        "llm": {"backend": "openai", "base_url": server.base_url, "model": args.llm_model,
                                "price": PRICE, "timeout": 600}},
              "server": {"deadline_s": 1200}}
    rows, agent, direct = [], [], []
    try:
        with HybridLM(parse_config(config)) as hybrid:
            for task in tasks:
                a, d = run_agent(hybrid, task, args.traces), run_direct(hybrid, task)
                agent.append(a)
                direct.append(d)
                rows.append([task["id"], f"{a.llm_prompt + a.llm_completion} / {d.llm_prompt + d.llm_completion}",
                             f"{a.facts:.2f} / {d.facts:.2f}", f"{a.latency_s:.0f} / {d.latency_s:.0f}",
                             f"{a.local_steps}/{a.steps}", a.planned_by])
                print(f"{task['id']}: agent {a}, direct {d}", file=sys.stderr, flush=True)
    finally:
        stop(server.proc)

    def total(outcomes: list[Outcome], field: str) -> float:
        return sum(getattr(o, field) for o in outcomes)

    agent_tokens = total(agent, "llm_prompt") + total(agent, "llm_completion")
    direct_tokens = total(direct, "llm_prompt") + total(direct, "llm_completion")
    summary = {
        "tasks": len(tasks), "llm_model": args.llm_model, "local_model": args.local_model,
        "agent_llm_tokens": int(agent_tokens), "direct_llm_tokens": int(direct_tokens),
        "llm_tokens_saved": round(1 - agent_tokens / direct_tokens, 3) if direct_tokens else None,
        "agent_cost_usd": round(total(agent, "cost_usd"), 6), "direct_cost_usd": round(total(direct, "cost_usd"), 6),
        "agent_facts": round(total(agent, "facts") / len(tasks), 3),
        "direct_facts": round(total(direct, "facts") / len(tasks), 3),
        "local_step_share": round(total(agent, "local_steps") / max(1, total(agent, "steps")), 3),
        "planned_locally": sum(1 for a in agent if a.planned_by == "slm"),
        "agent_latency_s": round(total(agent, "latency_s"), 1), "direct_latency_s": round(total(direct, "latency_s"), 1),
    }
    print_table(["task", "LLM tokens agent / all", "facts agent / all", "s agent / all", "local steps", "planned by"],
                rows, note=f"LLM {args.llm_model} on llama.cpp's server, local tier {args.local_model}")
    print(json.dumps(summary) if args.json else yaml.safe_dump(summary, sort_keys=False))


if __name__ == "__main__":
    main()
