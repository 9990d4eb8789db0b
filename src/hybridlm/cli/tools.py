"""Function calling: `hybridlm eval tools` on the Berkeley Function Calling Leaderboard."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from hybridlm.cli.common import ConfigOption, JsonOption, console, err_console, fail, load_cli_config
from hybridlm.cli.lab import eval_app


@eval_app.command("tools")
def eval_tools(
    data: Annotated[Path, typer.Option("--data", "-d", help="A BFCL folder (BFCL_v4_*.json with possible_answer/) "
                                       "or one BFCL_v4_<category>.json file.")],
    model: Annotated[Optional[str], typer.Option("--model", "-m", help="A catalogued local model or a GGUF file "
                                                 "(default: the config's local tier).")] = None,
    local_only: Annotated[bool, typer.Option("--local-only", help="The local model alone, without the tool "
                                             "router.")] = False,
    categories: Annotated[Optional[str], typer.Option(help="Comma-separated categories (default: all in PATH).")] = None,
    limit: Annotated[Optional[int], typer.Option(help="The first N items of each category.")] = None,
    offset: Annotated[int, typer.Option(help="Skip the first N items of each category (with --limit: items "
                                        "offset+1 to offset+limit).")] = 0,
    outcomes: Annotated[Optional[Path], typer.Option(help="JSONL of per-item outcomes: appended to, and read "
                                                     "back to resume a run or re-score it without the model.")] = None,
    verifier: Annotated[Optional[Path], typer.Option(help="Score with these verifier weights instead of "
                                                     "out-of-fold ones.")] = None,
    save_verifier: Annotated[Optional[Path], typer.Option(help="Fit the verifier on all these outcomes and write "
                                                          "its weights (for router.tools.verifier).")] = None,
    threshold: Annotated[Optional[float], typer.Option(help="Verifier threshold (default: the config's "
                                                       "router.tools.threshold).")] = None,
    threads: Annotated[Optional[int], typer.Option(help="CPU threads for the model.")] = None,
    report_dir: Annotated[Optional[Path], typer.Option("--report", help="Folder for the results as JSON; the "
                                                       "dashboard's lab view shows the latest.")] = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Function calls of the local model judged by BFCL's AST rule, per category and overall; then the share
    the tool router keeps local and the accuracy of what it keeps."""
    from hybridlm.errors import HybridLMError
    from hybridlm.evaluation.bfcl import load_bfcl
    from hybridlm.evaluation.tool_eval import fit_verifier, read_outcomes, report, run_items
    from hybridlm.models.base import BackendContext
    from hybridlm.models.local_gguf import LocalGGUFBackend, LocalOptions
    from hybridlm.routing.tools import ToolRouter, Verifier

    cfg = load_cli_config(config)
    try:
        bfcl = load_bfcl(data, categories.split(",") if categories else None, limit, offset)
        options = _local_options(cfg, model, threads)
        backend = LocalGGUFBackend(LocalOptions.model_validate(options), BackendContext(cfg.resolved_data_dir()))
        router = ToolRouter(cfg.router.tools)
        fixed = Verifier.load(verifier) if verifier else None
    except (HybridLMError, ValueError, OSError) as err:
        fail(str(err), 2)
    quiet = as_json

    def progress(done: int, total: int, outcome: object) -> None:
        if not quiet and (done % 10 == 0 or done == total):
            err_console.print(f"[dim]{done}/{total}[/dim]")

    try:
        if len(read_outcomes(outcomes, backend.model_name).keys() & {i.id for i in bfcl.items}) < len(bfcl.items):
            with console.status("Loading the local model...", spinner="dots"):
                backend.load()
        results = asyncio.run(run_items(backend, bfcl.items, router, outcomes=outcomes, progress=progress))
    except HybridLMError as err:
        fail(str(err), 1)
    finally:
        asyncio.run(backend.aclose())
    if save_verifier is not None:
        fit_verifier(results, f"fitted on {len(results)} BFCL outcomes of {backend.model_name} "
                              f"({', '.join(bfcl.categories)})", prior=router.verifier).save(save_verifier)
    result = report(results, routed=not local_only, threshold=cfg.router.tools.threshold if threshold is None
                    else threshold, verifier=fixed).as_json()
    if any(bfcl.skipped.values()):
        result["skipped_without_answer"] = {k: v for k, v in bfcl.skipped.items() if v}
    if report_dir is not None:
        from hybridlm.evaluation.lab_results import publish

        publish("tools-bfcl", {"kind": "tools", "data": "bfcl", **result}, report_dir, cfg.resolved_data_dir())
    if as_json:
        print(json.dumps(result))
        return
    _print(result)


def _local_options(cfg: object, model: str | None, threads: int | None) -> dict[str, object]:
    """The config's local tier options, with the model and threads asked for on the command line."""
    from hybridlm.config import Config

    assert isinstance(cfg, Config)
    tier = cfg.tiers[cfg.router.local_tier]
    options = dict(tier.options) if tier.backend == "local" else {}
    if model is not None:
        options.pop("model", None)
        options.pop("model_path", None)
        options["model_path" if model.endswith(".gguf") else "model"] = model
    if threads is not None:
        options["n_threads"] = threads
    return options


def _print(result: dict[str, object]) -> None:
    table = Table("category", "n", "local accuracy", "kept local", "accuracy kept", title=f"BFCL: {result['model']}",
                  title_justify="left")
    routed = result.get("routed_categories") or {}
    assert isinstance(routed, dict)
    categories = result["categories"]
    assert isinstance(categories, dict)
    for name, cell in categories.items():
        r = routed.get(name, {})
        table.add_row(name, str(cell["n"]), f"{cell['accuracy']:.3f}",
                      f"{r['local_share']:.0%}" if r else "", f"{r['local_accuracy']:.3f}" if r else "")
    console.print(table)
    console.print(f"overall accuracy {result['accuracy']:.3f} over {result['n']} items "
                  f"({result['seconds_per_item']:.1f} s an item)")
    if "local_share" in result:
        console.print(f"tool router ({result['verifier']}, threshold {result['threshold']}): kept local "
                      f"{result['local_share']:.0%} at accuracy {result['local_accuracy']}")
