"""The router lab: `hybridlm train router`, `hybridlm eval router`, `hybridlm calibrate`."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer
from rich.table import Table

from hybridlm.cli.common import ConfigOption, JsonOption, app, console, err_console, fail, load_cli_config

if TYPE_CHECKING:
    from hybridlm.routing.outcomes import OutcomeSet

train_app = typer.Typer(help="Train routers, skills and the fact-checker from labelled data.", no_args_is_help=True)
eval_app = typer.Typer(help="Measure routers, skills and the fact-checker on labelled data; --json for machines.",
                       no_args_is_help=True)
app.add_typer(train_app, name="train")
app.add_typer(eval_app, name="eval")

DataOption = Annotated[Path, typer.Option("--data", "-d", help="Outcome data: a RouteLLM folder/CSV, a dcrouter JSON "
                                          "or hybridlm JSONL.")]
FormatOption = Annotated[Optional[str], typer.Option("--format", help="mmlu | gsm8k | mt_bench | dcrouter | jsonl "
                                                     "(default: detected).")]
EncoderOption = Annotated[str, typer.Option("--encoder", help="minilm-static (fast, default), minilm, or a local "
                                             "sentence-transformers folder (a larger encoder, slower).")]


def _outcomes(path: Path, fmt: str | None) -> OutcomeSet:
    from hybridlm.errors import HybridLMError
    from hybridlm.routing.outcomes import load_outcomes

    try:
        return load_outcomes(path, fmt)
    except HybridLMError as err:
        fail(str(err), 2)


def _log_outcomes(config: Path | None) -> OutcomeSet:
    from hybridlm.errors import HybridLMError
    from hybridlm.routing.outcomes import from_log_pairs
    from hybridlm.request_log import RequestLog, default_log_path

    path = default_log_path(load_cli_config(config).resolved_data_dir())
    if not path.exists():
        fail(f"no request log at {path}", 2)
    log = RequestLog(path)
    try:
        return from_log_pairs(log.labelled_pairs())
    except HybridLMError as err:
        fail(str(err), 2)
    finally:
        log.close()


def _progress(quiet: bool) -> Any:
    start = time.perf_counter()
    return lambda message: None if quiet else err_console.print(f"[dim]{time.perf_counter() - start:6.1f}s[/dim] {message}")


@train_app.command("router")
def train_router(
    out: Annotated[Path, typer.Option("--out", "-o", help="Router file to write (.npz).")],
    data: Annotated[Optional[Path], typer.Option("--data", "-d", help="Outcome data (see `eval router`).")] = None,
    from_log: Annotated[bool, typer.Option("--from-log", help="Learn from the request log: prompts both tiers "
                                           "answered (shadow mode) and that got feedback.")] = False,
    kind: Annotated[str, typer.Option(help="ensemble (default) | knn | multi (3+ models) | cascade (needs the "
                                      "small model's answers, e.g. GSM8K) | random.")] = "ensemble",
    fmt: FormatOption = None,
    encoder: EncoderOption = "minilm-static",
    k: Annotated[int, typer.Option(help="Neighbours for the kNN parts.")] = 50,
    config: ConfigOption = None,
) -> None:
    """Train a router on outcome data (or the request log) and save it as a safe, versioned file."""
    from hybridlm.errors import HybridLMError
    from hybridlm.evaluation.router_eval import embed
    from hybridlm.models.encoder import encoder_name
    from hybridlm.routing.learned import KINDS, WITHOUT_EMBEDDINGS, fit_router

    if kind not in KINDS:
        fail(f"unknown router kind '{kind}'; known: {', '.join(KINDS)}", 2)
    if (data is None) == (not from_log):
        fail("give --data FILE or --from-log", 2)
    outcomes = _outcomes(data, fmt) if data is not None else _log_outcomes(config)
    try:
        encoder = encoder_name(encoder)
        with console.status(f"Embedding {len(outcomes)} prompts with {encoder}...", spinner="dots"):
            x = embed(outcomes, encoder) if kind not in WITHOUT_EMBEDDINGS else None
        router = fit_router(kind, outcomes, x, encoder, k)
        router.save(out)
    except HybridLMError as err:
        fail(str(err), 2)
    weak, strong = outcomes.pair()
    console.print(f"trained [bold]{kind}[/bold] on {len(outcomes)} prompts of {outcomes.name} "
                  f"(small: {outcomes.models[weak]}, large: {outcomes.models[strong]}) -> {out}")
    console.print(f"use it: router: {{kind: learned, artifact: {out}, threshold: 0.5}}  "
                  f"(pick the threshold with `hybridlm calibrate`)", highlight=False)


@eval_app.command("router")
def eval_router(
    data: DataOption,
    router: Annotated[Optional[list[Path]], typer.Option("--router", "-r", help="Trained router file(s) to score as "
                                                         "they are (no retraining).")] = None,
    kinds: Annotated[Optional[str], typer.Option(help="Router kinds to train per fold, comma-separated "
                                                 "(default: ensemble,knn,random; multi,knn,random for >2 models; "
                                                 "none with --router).")] = None,
    train: Annotated[Optional[Path], typer.Option(help="Train on this file and test on --data (a given split) "
                                                  "instead of k-fold.")] = None,
    folds: Annotated[int, typer.Option(help="k for k-fold cross-validation.")] = 5,
    fmt: FormatOption = None,
    encoder: EncoderOption = "minilm-static",
    k: Annotated[int, typer.Option(help="Neighbours for the kNN parts.")] = 50,
    report: Annotated[Optional[Path], typer.Option(help="Folder for the PNG plot, the Markdown/HTML report and its "
                                                   "JSON; the dashboard's lab view shows the latest.")] = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """RouteLLM's APGR / CPT(50%) / CPT(80%) for two models, RouterBench's AIQ for more."""
    from hybridlm.errors import HybridLMError
    from hybridlm.evaluation.lab_results import publish, router_result
    from hybridlm.evaluation.report import write_report
    from hybridlm.evaluation.router_eval import RouterEvaluator
    from hybridlm.models.encoder import encoder_name
    from hybridlm.routing.learned import KINDS, load_router

    outcomes = _outcomes(data, fmt)
    if kinds is None:
        kind_list = [] if router else (["multi", "knn", "random"] if len(outcomes.models) > 2
                                       else ["ensemble", "knn", "random"])
    else:
        kind_list = [x.strip() for x in kinds.split(",") if x.strip()]
    unknown = [x for x in kind_list if x not in KINDS]
    if unknown:
        fail(f"unknown router kind(s) {unknown}; known: {', '.join(KINDS)}", 2)
    try:
        loaded = {p.stem: load_router(p) for p in (router or [])}
        evaluator = RouterEvaluator(encoder_name(encoder), k, progress=_progress(as_json))
        result = evaluator.evaluate(outcomes, kind_list, loaded, folds=folds,
                                    train=_outcomes(train, fmt) if train else None)
    except (HybridLMError, ValueError) as err:
        fail(str(err), 2)
    paths = []
    if report:
        paths = [*write_report(result, report), publish(f"router-{result.data}", router_result(result), report,
                                                        load_cli_config(config).resolved_data_dir())]
    summary = result.summary()
    if as_json:
        print(json.dumps(summary))
        return
    console.print(f"[bold]{result.data}[/bold]: {result.protocol}")
    if result.two_model:
        table = Table("router", "APGR", "CPT(50%)", "CPT(80%)")
        for r in result.two_model:
            table.add_row(r.name, f"{r.apgr:.3f}", f"{100 * r.cpt50:.1f}%", f"{100 * r.cpt80:.1f}%")
        console.print(table)
    if result.multi_model:
        table = Table("router or model", "AIQ")
        for m in result.multi_model:
            table.add_row(m.name, f"{m.aiq:.3f}")
        console.print(table)
    for p in paths:
        console.print(f"wrote {p}")


@app.command()
def calibrate(
    router: Annotated[Path, typer.Option("--router", "-r", help="A trained router file.")],
    data: DataOption,
    llm_share: Annotated[Optional[float], typer.Option(help="Target share of requests sent to the LLM (0-1).")] = None,
    budget: Annotated[Optional[float], typer.Option(help="Target mean cost per request, US$.")] = None,
    min_quality: Annotated[Optional[float], typer.Option(help="Minimum quality as a fraction of the LLM's (0-1).")] = None,
    guarantee: Annotated[Optional[float], typer.Option(help="With --min-quality: choose the threshold so the target "
                                                       "holds with this confidence (e.g. 0.95) over bootstrap "
                                                       "resamples, not just on average.")] = None,
    fmt: FormatOption = None,
    as_json: JsonOption = False,
) -> None:
    """Choose the router threshold for a target on your data, with a bootstrap 95% interval on held-out prompts."""
    from hybridlm.errors import HybridLMError
    from hybridlm.routing.calibrate import calibrate as run_calibration
    from hybridlm.routing.learned import load_router

    targets = {"llm_share": llm_share, "cost": budget, "quality": min_quality}
    chosen = [(name, value) for name, value in targets.items() if value is not None]
    if len(chosen) != 1:
        fail("give exactly one target: --llm-share, --budget or --min-quality", 2)
    target, value = chosen[0]
    outcomes = _outcomes(data, fmt)
    try:
        loaded = load_router(router)
        with console.status(f"Scoring {len(outcomes)} prompts...", spinner="dots"):
            scores = loaded.score_texts(outcomes.prompts)
    except HybridLMError as err:
        fail(str(err), 2)
    weak, strong = outcomes.pair()
    if guarantee is not None and not 0.5 <= guarantee < 1.0:
        fail("--guarantee is a confidence between 0.5 and 1 (e.g. 0.95)", 2)
    result = run_calibration(scores, target, float(value), outcomes.scores[:, weak], outcomes.scores[:, strong],  # type: ignore[arg-type]
                             outcomes.costs[:, weak], outcomes.costs[:, strong], guarantee=guarantee)
    if as_json:
        print(json.dumps(result.as_dict()))
        return
    table = Table("", "LLM share", "quality vs LLM", "mean cost $")
    for label, d in (("calibration half", result.calibration), ("held-out half", result.held_out)):
        table.add_row(label, f"{d.llm_share:.1%}", f"{d.quality_vs_llm:.1%}", f"{d.cost:.6f}")
    ci = result.interval
    table.add_row("held-out 95% interval", f"{ci['llm_share'][0]:.1%} - {ci['llm_share'][1]:.1%}",
                  f"{ci['quality_vs_llm'][0]:.1%} - {ci['quality_vs_llm'][1]:.1%}",
                  f"{ci['cost'][0]:.6f} - {ci['cost'][1]:.6f}")
    console.print(f"target {target} = {value}: threshold [bold]{result.threshold:.4f}[/bold]")
    console.print(table)
    verdict = "[green]met[/green]" if result.met_on_held_out else "[red]not met[/red]"
    console.print(f"on held-out prompts the target is {verdict}")
    console.print(f"router: {{kind: learned, artifact: {router}, threshold: {result.threshold:.4f}}}", highlight=False)
