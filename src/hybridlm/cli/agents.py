"""Task commands: run (an LLM plans, local workers do the steps) and trace (what one request did, as a tree)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer
from rich.live import Live
from rich.markup import escape
from rich.table import Table
from rich.tree import Tree

from hybridlm.cli.common import ConfigOption, JsonOption, app, console, err_console, fail
from hybridlm.cli.gateway import _open_log, _route_table, hybrid_api, load_local_models

if TYPE_CHECKING:
    from hybridlm.agents.step_record import StepRecord

STATUS_STYLE = {"running": "yellow", "ok": "green", "invalid": "red", "failed": "red", "skipped": "dim"}


def _part(step: dict[str, Any]) -> str:
    """One line for a planning attempt, a step or the answer."""
    status = step["status"]
    what = f"{step['id']} [bold]{step['worker']}[/bold]" if step.get("worker") else step["id"]
    where = f" on {step['tier']}" + (f" ({step['model']})" if step.get("model") else "") if step.get("tier") else ""
    line = f"{what}  [{STATUS_STYLE.get(status, '')}]{status}[/]{escape(where)}"
    if step.get("escalated"):
        line += "  [magenta]escalated[/magenta]"
    if step.get("prompt_tokens") or step.get("completion_tokens"):
        line += f"  {step['prompt_tokens']}/{step['completion_tokens']} tokens  ${step['cost_usd']:.6f}"
    if step.get("latency_ms"):
        line += f"  {step['latency_ms']:.0f} ms"
    for key in ("note", "error"):
        if step.get(key):
            line += f"\n[dim]{key}: {escape(str(step[key]))}[/dim]"
    return line


def _progress(records: list[StepRecord]) -> Table:
    table = Table("part", "worker", "status", "tier", "tokens", "ms", box=None, pad_edge=False)
    for r in records:
        style = STATUS_STYLE.get(r.status, "")
        table.add_row(r.id, r.worker or "", f"[{style}]{r.status}[/]", r.tier or "",
                      f"{r.prompt_tokens}/{r.completion_tokens}" if r.status != "running" else "",
                      f"{r.latency_ms:.0f}" if r.status != "running" else "")
    return table


@app.command()
def run(
    task: Annotated[str, typer.Argument(help="What to do, e.g. 'Summarise the critical shift in our Q3 sales'.")],
    files: Annotated[Optional[list[Path]], typer.Option("--files", "-f", help="Documents the task reads "
                                                        "(text, Markdown, HTML, PDF); repeat the option per file.")] = None,
    max_tokens: Annotated[int, typer.Option(help="Longest final answer, in tokens.")] = 512,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Do a task over documents: the LLM plans it into steps, local workers do them (concurrently where they
    can), the LLM writes the answer. Shows the plan's steps as they run; `hybridlm trace ID` shows them after."""
    from hybridlm.errors import HybridLMError

    records: list[StepRecord] = []
    hybrid = hybrid_api(config)
    try:
        load_local_models(hybrid.pipeline)
        with Live(_progress(records), console=err_console, transient=as_json, refresh_per_second=4) as live:
            def observe(record: StepRecord) -> None:
                if record not in records:
                    records.append(record)
                live.update(_progress(records))

            result = hybrid.run(task, files=files or [], max_tokens=max_tokens, observer=observe)
    except HybridLMError as err:
        fail(str(err), 1)
    finally:
        hybrid.close()
    if as_json:
        print(json.dumps({"answer": result.text, "hybridlm": result.route}))
        return
    console.print()
    console.print(result.text.strip(), highlight=False, markup=False)
    console.print()
    console.print(_route_table(result.trace))
    console.print(f"[dim]hybridlm trace {result.trace.request_id}[/dim]")


@app.command()
def trace(
    request_id: Annotated[str, typer.Argument(help="A request id, from a response's hybridlm.request_id or "
                                                   "`hybridlm logs`.")],
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show what one request did: its decision and, for a task, every planning attempt, step and the answer,
    with tier, tokens, cost and time."""
    row = _open_log(config).get(request_id)
    if row is None:
        fail(f"no request {request_id!r} in the request log", 1)
    steps = json.loads(row["steps"]) if row.get("steps") else []
    if as_json:
        keep = ("request_id", "ts", "endpoint", "requested_model", "profile", "tier", "model", "reason", "status",
                "http_status", "error", "error_code", "fallback", "fallback_reason", "prompt_tokens",
                "completion_tokens", "cost_usd", "baseline_cost_usd", "latency_ms")
        print(json.dumps({**{k: row[k] for k in keep}, "steps": steps}))
        return
    head = (f"[bold]{request_id}[/bold]  {escape(row['requested_model'] or '')}  {row['status']} {row['http_status']}"
            f"  tier {row['tier']}  {row['prompt_tokens']}/{row['completion_tokens']} tokens  "
            f"${row['cost_usd']:.6f} (all-LLM ${row['baseline_cost_usd']:.6f})  {row['latency_ms']:.0f} ms")
    tree = Tree(head)
    tree.add(f"[dim]reason: {escape(row['reason'] or '')}[/dim]")
    if row["error"]:
        tree.add(f"[red]error: {escape(row['error'])}[/red]")
    if row["fallback"]:
        tree.add(f"[yellow]fallback {row['fallback']}: {escape(row['fallback_reason'] or '')}[/yellow]")
    planning = [s for s in steps if s["kind"] == "plan"]
    if planning:
        node = tree.add("plan")
        for step in planning:
            node.add(_part(step))
    work = [s for s in steps if s["kind"] == "step"]
    if work:
        node = tree.add("steps")
        for step in work:
            branch = node.add(_part(step))
            if step["depends_on"]:
                branch.add(f"[dim]after {', '.join(step['depends_on'])}[/dim]")
    for step in (s for s in steps if s["kind"] == "answer"):
        tree.add(_part(step))
    console.print(tree)
