"""Gateway commands: serve, chat, route/explain, logs, stats, config."""

from __future__ import annotations

import datetime as dt
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer
from rich import box
from rich.markup import escape
from rich.table import Table

from hybridlm.cli.common import ConfigOption, JsonOption, ModelOption, app, console, err_console, fail, load_cli_config

if TYPE_CHECKING:
    from hybridlm.api import ChatResult, HybridLM
    from hybridlm.config import Config
    from hybridlm.pipeline import Pipeline
    from hybridlm.request_log import RequestLog
    from hybridlm.types import Trace


def hybrid_api(path: Path | None) -> HybridLM:
    from hybridlm.api import HybridLM
    from hybridlm.errors import HybridLMError

    try:
        return HybridLM(load_cli_config(path))
    except HybridLMError as err:
        fail(str(err), 2)


def _route_table(trace: Trace) -> Table:
    meta = trace.metadata()
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold cyan")
    table.add_column()
    rows: list[tuple[str, Any]] = [
        ("tier", meta["tier"]), ("model", meta["model"]), ("router", meta["router"]),
        ("score", None if meta["score"] is None else f"{meta['score']:.3f}"),
        ("threshold", None if meta["threshold"] is None else f"{meta['threshold']:.2f}"),
        ("reason", meta["reason"]), ("fallback", meta["fallback"]), ("fallback reason", meta["fallback_reason"]),
    ]
    if trace.model is not None:
        rows += [("tokens", f"{trace.usage.prompt_tokens} in / {trace.usage.completion_tokens} out"),
                 ("cost", f"${meta['cost_usd']:.6f}"), ("latency", f"{meta['latency_ms']:.0f} ms")]
    for name, value in rows:
        if value is not None:
            table.add_row(name, str(value))
    return table


def load_local_models(pipeline: Pipeline) -> None:
    """Load the local models, with a progress bar while one is joined from its parts (first use only)."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    for backend in pipeline.local_backends():
        if backend.needs_join():
            columns = (TextColumn(f"joining and checking {backend.model_name} (first use)"), BarColumn(),
                       DownloadColumn(), TransferSpeedColumn())
            with Progress(*columns, console=err_console, transient=True) as bar:
                task = bar.add_task("join", total=None)
                backend.load(lambda done, total: bar.update(task, completed=done, total=total))
        with console.status(f"Loading {backend.model_name}...", spinner="dots"):
            backend.load()
        if backend.note:
            err_console.print(f"[yellow]{backend.note}[/yellow]")


def answer_once(config: Path | None, doing: str, prompt: str, **options: Any) -> ChatResult:
    """One answer through the Python API, models loaded and released around it; errors end the command."""
    from hybridlm.errors import HybridLMError

    with console.status("Loading models...", spinner="dots"):
        hybrid = hybrid_api(config)
    try:
        load_local_models(hybrid.pipeline)
        with console.status(doing, spinner="dots"):
            return hybrid.chat(prompt, **options)
    except HybridLMError as err:
        fail(str(err), 1)
    finally:
        hybrid.close()


@app.command()
def chat(
    prompt: Annotated[str, typer.Argument(help="The question or instruction.")],
    model: ModelOption = "hybrid",
    max_tokens: Annotated[Optional[int], typer.Option(help="Longest answer, in tokens.")] = None,
    system: Annotated[Optional[str], typer.Option(help="A system prompt.")] = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Answer one prompt through the full pipeline (route, call, fall back, log) and show the route."""
    result = answer_once(config, "Thinking...", prompt, model=model, max_tokens=max_tokens, system=system)
    if as_json:
        print(json.dumps({"answer": result.text, "hybridlm": result.route}))
        return
    console.print(result.text.strip(), highlight=False, markup=False)
    console.print()
    console.print(_route_table(result.trace))


@app.command()
def route(
    prompt: Annotated[str, typer.Argument(help="The query to route.")],
    model: ModelOption = "hybrid",
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show the routing decision and its reasons, without calling any model."""
    from hybridlm.errors import HybridLMError

    hybrid = hybrid_api(config)
    try:
        trace = hybrid.explain(prompt, model=model)
    except HybridLMError as err:
        fail(str(err), 1)
    finally:
        hybrid.close()
    assert trace.decision is not None
    if as_json:
        print(json.dumps({**trace.metadata(), "features": trace.decision.features}))
        return
    console.print(_route_table(trace))
    features = Table("feature", "weight", title="score parts", title_justify="left")
    for name, weight in sorted(trace.decision.features.items(), key=lambda kv: -abs(kv[1])):
        if weight:
            features.add_row(name, f"{weight:+.3f}")
    console.print(features)


app.command(name="explain", help="Same as 'route': the decision and why.")(route)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    config: ConfigOption = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "warning",
    allow_open: Annotated[bool, typer.Option(
        "--allow-open", help="Serve on a non-loopback host with no API keys (as server.allow_open).")] = False,
) -> None:
    """Start the OpenAI-compatible gateway (POST /v1/chat/completions, GET /v1/models, GET /healthz).

    Beyond loopback it needs an API key to exist (`hybridlm keys create`) or --allow-open."""
    import uvicorn

    from hybridlm.access.exposure import open_exposure
    from hybridlm.access.keys import KeyStore, default_keys_path
    from hybridlm.errors import HybridLMError
    from hybridlm.models.openai_http import public_url
    from hybridlm.pipeline import Pipeline
    from hybridlm.server import build_app

    cfg = load_cli_config(config)
    keys = KeyStore(default_keys_path(cfg.resolved_data_dir()))
    keys_active = keys.active()
    keys.close()
    if refusal := open_exposure(host, keys_active, allow_open or cfg.server.allow_open):
        fail(refusal, 2)
    try:
        pipeline = Pipeline.from_config(cfg)
        load_local_models(pipeline)
        with console.status("Loading the routers...", spinner="dots"):
            pipeline.warm_up()
    except HybridLMError as err:
        fail(str(err), 2)
    for name, backend in pipeline.backends.items():
        console.print(f"tier [bold]{name}[/bold]: {cfg.tiers[name].backend} / {backend.model_name}")
    if (missing := pipeline.tool_router.relevance.missing) is not None:
        console.print(f"[yellow]tool fit not judged (functions are not matched to requests): {escape(str(missing))}"
                      "[/yellow]")
    if pipeline.remote_tier is None:
        console.print("[yellow]no LLM tier configured: everything is answered locally[/yellow]")
    console.print(f"request log: {pipeline.log.path}")
    if (traces := cfg.telemetry.endpoint()) is not None:
        console.print(f"traces: OTLP/HTTP to {public_url(traces)}")
    console.print("API keys: required" if keys_active else "API keys: none (open; `hybridlm keys create` adds one)")
    console.print(f"gateway on [bold]http://{host}:{port}/v1[/bold] (model 'hybrid' routes)")
    uvicorn.run(build_app(cfg, pipeline), host=host, port=port, log_level=log_level, access_log=False)


def _open_log(config: Path | None) -> Any:
    from hybridlm.request_log import RequestLog, default_log_path

    path = default_log_path(load_cli_config(config).resolved_data_dir())
    if not path.exists():
        err_console.print(f"no request log yet at {path}")
        raise typer.Exit(0)
    return RequestLog(path)


@app.command()
def logs(
    limit: Annotated[int, typer.Option("--limit", "-n", help="How many recent requests.")] = 20,
    purge: Annotated[bool, typer.Option("--purge", help="Delete the requests older than the retention period "
                                                        "(server.retention_days, or --older-than) instead.")] = False,
    older_than: Annotated[Optional[float], typer.Option(help="With --purge: days to keep.", min=0)] = None,
    export: Annotated[Optional[str], typer.Option("--export", help="Write every request (all columns) as csv or "
                                                  "jsonl to stdout or --out, streamed, instead.")] = None,
    since: Annotated[Optional[str], typer.Option(help="With --export: from 30m, 24h, 7d ago or a date "
                                                 "(2026-12-01, 2026-12-01T08:00); default: all.")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="With --export: the file to write.")] = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show recent requests: route, tokens, cost, latency, status; or export or purge them."""
    request_log = _open_log(config)
    if export is not None:
        _export(request_log, export, since, out)
        return
    if purge:
        days = older_than if older_than is not None else load_cli_config(config).server.retention_days
        if days is None:
            fail("server.retention_days is null (keep everything): give --older-than DAYS", 2)
        gone = request_log.purge(time.time() - days * 86400)
        print(json.dumps({"purged": gone, "older_than_days": days}) if as_json else
              f"deleted {gone} requests older than {days:g} days")
        return
    rows = request_log.recent(limit)
    if as_json:
        print(json.dumps(rows))
        return
    cells = []
    for r in rows:
        status = "ok" if r["status"] == "ok" else str(r["http_status"])
        cells.append([
            dt.datetime.fromtimestamp(r["ts"]).strftime("%H:%M:%S"), r["tier"] or "",
            "" if r["score"] is None else f"{r['score']:.2f}", status + (" fallback" if r["fallback"] else ""),
            f"{r['prompt_tokens']}/{r['completion_tokens']}", f"{r['cost_usd']:.5f}", f"{r['latency_ms']:.0f}",
            r["error"] or r["prompt_preview"] or "",
        ])
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    names = ("time", "tier", "score", "status", "tokens", "cost $", "ms")
    for i, name in enumerate(names):
        table.add_column(name, no_wrap=True, min_width=max([len(name), *(len(c[i]) for c in cells)]))
    table.add_column("prompt / error", overflow="ellipsis", no_wrap=True)
    for row in cells:
        table.add_row(*(escape(c) for c in row))
    console.print(table)


def _export(request_log: RequestLog, fmt: str, since: str | None, out: Path | None) -> None:
    from hybridlm.log_export import parse_since, rows_since, write_export

    if fmt not in ("csv", "jsonl"):
        fail(f"--export {fmt!r}: csv or jsonl", 2)
    try:
        start = parse_since(since) if since else 0.0
    except ValueError as err:
        fail(str(err), 2)
    request_log.flush()
    rows = rows_since(request_log.path, start)
    if out is None:
        count = write_export(rows, fmt, sys.stdout)  # type: ignore[arg-type]  # fmt checked above
    else:
        with out.open("w", encoding="utf-8", newline="") as file:
            count = write_export(rows, fmt, file)  # type: ignore[arg-type]
    err_console.print(f"[dim]exported {count} requests[/dim]")


def _key_names(cfg: Config) -> dict[str, str]:
    """Key id -> name, from the key store (none yet: keys show by id alone)."""
    from hybridlm.access.keys import KeyStore, default_keys_path

    path = default_keys_path(cfg.resolved_data_dir())
    if not path.exists():
        return {}
    store = KeyStore(path)
    try:
        return {info.caller.key_id: info.caller.name for info in store.list()}
    finally:
        store.close()


@app.command()
def stats(
    config: ConfigOption = None,
    days: Annotated[Optional[float], typer.Option(help="Only the last N days.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Totals: requests per tier, cost, and what sending everything to the LLM would have cost; spend per tier
    and per API key today, this month and in all (days and months in `budgets.timezone`)."""
    from hybridlm.spend import periods, zone

    cfg = load_cli_config(config)
    log = _open_log(config)
    since = time.time() - days * 86400 if days else 0.0
    totals = log.totals(since)
    p = periods(time.time(), zone(cfg.budgets.timezone))
    by_tier = log.spend_by("tier", p.day_start, p.month_start)
    by_key = [k for k in log.spend_by("key_id", p.day_start, p.month_start) if k.name is not None]
    names = _key_names(cfg) if by_key else {}
    if as_json:
        print(json.dumps({
            "requests": totals.requests, "errors": totals.errors, "fallbacks": totals.fallbacks,
            "cost_usd": totals.cost_usd, "all_llm_cost_usd": totals.baseline_cost_usd, "saved_usd": totals.saved_usd,
            "by_tier": [t.__dict__ for t in totals.by_tier],
            "spend": {
                "timezone": cfg.budgets.timezone,
                "by_tier": [{"tier": t.name, "today_usd": t.today_usd, "month_usd": t.month_usd,
                             "all_time_usd": t.all_time_usd, **_tier_budgets(cfg, t.name)} for t in by_tier],
                "by_key": [{"key_id": k.name, "name": names.get(str(k.name)), "requests": k.requests,
                            "today_usd": k.today_usd, "month_usd": k.month_usd, "all_time_usd": k.all_time_usd}
                           for k in by_key],
            },
        }))
        return
    table = Table("tier", "requests", "share", "tokens in", "tokens out", "cost $")
    for t in totals.by_tier:
        share = t.requests / totals.requests if totals.requests else 0.0
        table.add_row(t.tier, str(t.requests), f"{share:.0%}", str(t.prompt_tokens), str(t.completion_tokens),
                      f"{t.cost_usd:.6f}")
    console.print(table)
    console.print(f"requests {totals.requests}  errors {totals.errors}  fallbacks {totals.fallbacks}")
    console.print(f"cost ${totals.cost_usd:.6f}  all-LLM cost ${totals.baseline_cost_usd:.6f}  "
                  f"saved [bold green]${totals.saved_usd:.6f}[/bold green]")
    if totals.baseline_cost_usd == 0 and totals.requests:
        console.print("[dim]all-LLM cost is priced with the LLM tier's prices; none is configured or priced[/dim]")
    spend = Table("tier", "today $", "this month $", "all time $", "budget/day $", "budget/month $",
                  title=f"spend ({cfg.budgets.timezone or 'local time'})")
    for t in by_tier:
        if t.name is None:
            continue
        budgets = _tier_budgets(cfg, t.name)
        spend.add_row(t.name, f"{t.today_usd:.6f}", f"{t.month_usd:.6f}", f"{t.all_time_usd:.6f}",
                      *(_money(budgets[k]) for k in ("budget_usd_per_day", "budget_usd_per_month")))
    console.print(spend)
    if by_key:
        keys = Table("key", "name", "requests", "today $", "this month $", "all time $", title="spend per API key")
        for k in by_key:
            keys.add_row(escape(str(k.name)), escape(names.get(str(k.name), "")), str(k.requests),
                         f"{k.today_usd:.6f}", f"{k.month_usd:.6f}", f"{k.all_time_usd:.6f}")
        console.print(keys)


def _tier_budgets(cfg: Config, tier: str) -> dict[str, float | None]:
    t = cfg.tiers.get(tier)
    return {"budget_usd_per_day": t.budget_usd_per_day if t else None,
            "budget_usd_per_month": t.budget_usd_per_month if t else None}


def _money(value: float | None) -> str:
    return "-" if value is None else f"{value:.6f}"


MASK = "***"


def masked(value: Any) -> Any:
    """The configuration with every header value replaced: an upstream's headers may carry credentials."""
    if isinstance(value, dict):
        return {k: ({h: MASK for h in v} if k == "headers" and isinstance(v, dict) else masked(v))
                for k, v in value.items()}
    if isinstance(value, list):
        return [masked(v) for v in value]
    return value


@app.command(name="config")
def show_config(config: ConfigOption = None) -> None:
    """Validate the configuration and print it as the gateway will use it; header values are masked (keys live
    in environment variables and the key store, never in it)."""
    import yaml

    cfg = load_cli_config(config)
    console.print(yaml.safe_dump(masked(cfg.model_dump(mode="json")), sort_keys=False), highlight=False,
                  markup=False)
    console.print(f"# request log: {cfg.resolved_data_dir()}")
