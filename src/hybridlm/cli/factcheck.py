"""Fact-check commands: `hybridlm factcheck`, `hybridlm train factcheck`, `hybridlm eval factcheck`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer
from rich.progress import Progress
from rich.table import Table

from hybridlm.cli.common import JsonOption, app, console, err_console, fail
from hybridlm.cli.lab import eval_app, train_app

if TYPE_CHECKING:
    from hybridlm.factcheck.training import FactPair

DetectorOption = Annotated[Optional[Path], typer.Option("--model", "-m", help="A fact-check model file (default: the "
                                                        "one that ships with hybridlm).")]
NliOption = Annotated[Optional[Path], typer.Option("--nli", help="A local NLI cross-encoder folder that scores "
                                                  "claims instead of the shipped detector.")]
LABEL_COLOURS = {"supported": "green", "unsupported": "yellow", "contradicted": "red"}


def _pairs(paths: list[Path]) -> dict[str, list[FactPair]]:
    """Pairs by domain from files or folders of files."""
    from hybridlm.factcheck.training import FactDataError, load_pairs

    files = [f for p in paths for f in (sorted(p.glob("*.json*")) if p.is_dir() else [p])]
    if not files:
        fail("no data files found", 2)
    domains: dict[str, list[FactPair]] = {}
    try:
        for file in files:
            for pair in load_pairs(file):
                domains.setdefault(pair.domain, []).append(pair)
    except FactDataError as err:
        fail(str(err), 2)
    return domains


def _text(value: str) -> str:
    """A literal text, or the text of the document it names (Markdown, text, HTML, PDF)."""
    from hybridlm.rag.readers import DocumentError, read_text

    path = Path(value)
    try:
        if len(value) < 4096 and path.is_file():
            return read_text(path)
    except (OSError, DocumentError) as err:
        fail(f"{path}: cannot read ({err})", 2)
    return value


@app.command()
def factcheck(
    answer: Annotated[str, typer.Argument(help="The answer to check (text, or a file).")],
    context: Annotated[list[str], typer.Option("--context", "-x", help="A source passage (text, or a file); "
                                               "repeat for several.")],
    model: DetectorOption = None,
    nli: NliOption = None,
    as_json: JsonOption = False,
) -> None:
    """Label each claim of an answer supported / unsupported / contradicted by the context, with evidence."""
    from hybridlm.errors import HybridLMError
    from hybridlm.factcheck.detector import FactChecker

    try:
        report = FactChecker.load(model, nli).check([_text(c) for c in context], _text(answer))
    except HybridLMError as err:
        fail(str(err), 2)
    if as_json:
        print(json.dumps(report.as_dict()))
        return
    for verdict in report.claims:
        colour = LABEL_COLOURS[verdict.label]
        console.print(f"[{colour}]{verdict.label:12}[/{colour}] {verdict.score:.2f}  {verdict.claim}", highlight=False,
                      markup=True)
        console.print(f"[dim]    evidence [{verdict.source + 1}]: {verdict.evidence[:160]}  ({verdict.reason})[/dim]",
                      highlight=False)
    console.print("all claims supported" if report.supported else f"{len(report.flagged)} claim(s) flagged")


@train_app.command("factcheck")
def train_factcheck(
    data: Annotated[list[Path], typer.Option("--data", "-d", help="SummEdits JSON files or folders, HaluEval QA "
                                             "JSONL; repeat for several.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Fact-check model file to write (.npz).")],
    leave_out: Annotated[Optional[str], typer.Option(help="Leave this domain out of training.")] = None,
    synthetic: Annotated[bool, typer.Option(help="Add synthetic edits (entity/number swaps, negations, antonyms, "
                                            "inserted facts) of the consistent answers.")] = True,
) -> None:
    """Train the fact-checker on labelled pairs and synthetic edits; save it as a safe, versioned file."""
    from hybridlm.factcheck.training import train
    from hybridlm.models.encoder import CachedEncoder, EmbeddingCache, load_encoder

    domains = _pairs(data)
    pairs = [p for name, rest in domains.items() if name != leave_out for p in rest]
    with console.status(f"Training on {len(pairs)} pairs from {len(domains) - bool(leave_out)} domains...",
                        spinner="dots"):
        checker = train(pairs, CachedEncoder(load_encoder("minilm"), EmbeddingCache()), synthetic)
    checker.save(out)
    console.print(f"trained on {checker.header['rows']} claims ({', '.join(checker.header['trained_on'])}) -> {out}")


@eval_app.command("factcheck")
def eval_factcheck(
    data: Annotated[list[Path], typer.Option("--data", "-d", help="A SummEdits JSON or HaluEval QA JSONL file "
                                             "(scored without retraining), or a folder of SummEdits domains "
                                             "(scored leave-one-domain-out).")],
    model: DetectorOption = None,
    nli: NliOption = None,
    as_json: JsonOption = False,
) -> None:
    """Balanced accuracy and AUROC of the fact-checker; on HaluEval QA beside the length and overlap traps."""
    from hybridlm.errors import HybridLMError
    from hybridlm.evaluation import factcheck_eval as fe
    from hybridlm.factcheck.detector import FactChecker, unseen_detector
    from hybridlm.factcheck.training import fingerprints
    from hybridlm.models.encoder import CachedEncoder, EmbeddingCache, load_encoder

    domains = _pairs(data)
    encoder = CachedEncoder(load_encoder("minilm"), EmbeddingCache())
    total = sum(map(len, domains.values()))
    with Progress(console=err_console, transient=True) as bar:
        task = bar.add_task("checking", total=total)

        def step(n: int) -> None:
            bar.advance(task, n)

        if len(domains) > 1 and model is None and nli is None:
            metrics = fe.leave_one_domain_out(domains, encoder, step)
        else:
            pairs = [p for rest in domains.values() for p in rest]
            try:
                checker = FactChecker.load(model, nli) if model or nli else unseen_detector(fingerprints(pairs))
            except HybridLMError as err:
                fail(str(err), 2)
            if checker is None:
                fail("every shipped detector has read these documents; give --model trained without them", 2)
            checker.encoder = encoder
            scores = fe.score_pairs(checker, pairs, step)
            metrics = fe.detector_report(checker, pairs, scores)
    if as_json:
        print(json.dumps(metrics))
        return
    _print(metrics)


def _print(metrics: dict[str, Any]) -> None:
    table = Table("metric", "value")
    for key, value in metrics.items():
        if isinstance(value, dict) and key == "domains":
            for domain, row in value.items():
                table.add_row(f"  {domain}", f"balanced accuracy {row['balanced_accuracy']:.3f}, AUROC "
                              f"{row['auroc']:.3f} ({row['pairs']} pairs)")
        elif key != "worst_mistakes":
            table.add_row(key, json.dumps(value) if isinstance(value, dict | list) else str(value))
    console.print(table)
