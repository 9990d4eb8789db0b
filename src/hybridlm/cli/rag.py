"""Knowledge-store commands: `hybridlm ingest`, `hybridlm search`, and the relevance grader's
`hybridlm train grader` and `hybridlm eval grading`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from hybridlm.cli.common import (
    ConfigOption,
    JsonOption,
    app,
    console,
    err_console,
    fail,
    load_cli_config,
    print_metrics,
)
from hybridlm.cli.lab import eval_app, train_app


def _store(config: Path | None):  # type: ignore[no-untyped-def]
    from hybridlm.rag.store import STORE_FILE, KnowledgeStore

    return KnowledgeStore(load_cli_config(config).resolved_data_dir() / STORE_FILE)


def _files(paths: list[Path]) -> list[Path]:
    from hybridlm.rag.readers import SUFFIXES

    out: list[Path] = []
    for path in paths:
        if path.is_dir():
            out += sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES)
        else:
            out.append(path)
    return out


@app.command()
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders (read recursively): .md .txt .rst .html .pdf")],
    delete: Annotated[bool, typer.Option("--delete", help="Remove these files from the store instead.")] = False,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Read, chunk, embed and store documents for retrieval; a bad file is reported and skipped."""
    store = _store(config)
    report: dict[str, object] = {}
    files = _files(paths)
    if not files:
        fail("no files to ingest", 2)
    with console.status(f"Reading and embedding {len(files)} files...", spinner="dots"):
        if delete:
            outcomes = {str(p): ("deleted" if store.delete(p) else "not in the store") for p in files}
        else:
            outcomes = store.ingest_many(files)
    for path_name, outcome in outcomes.items():
        if isinstance(outcome, Exception):
            report[path_name] = f"error: {outcome}"
            if not as_json:
                err_console.print(f"[red]skipped[/red] {outcome}", highlight=False)
        else:
            report[path_name] = "unchanged" if outcome is None else outcome
    store.close()
    failed = sum(str(v).startswith("error") for v in report.values())
    if as_json:
        print(json.dumps(report))
    else:
        for path, outcome in report.items():
            if not str(outcome).startswith("error"):
                console.print(f"{path}: {outcome}{' chunks' if isinstance(outcome, int) else ''}")
    if failed:
        raise typer.Exit(1)  # the rest was ingested; the exit code still says not everything was


@app.command()
def search(
    query: Annotated[str, typer.Argument(help="What to look for.")],
    k: Annotated[int, typer.Option("-k", help="How many chunks.")] = 5,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Hybrid retrieval (dense MiniLM + BM25 keywords, fused by reciprocal rank) over ingested documents."""
    store = _store(config)
    hits = store.search(query, k)
    store.close()
    if as_json:
        print(json.dumps([h.__dict__ for h in hits]))
        return
    if not hits:
        console.print("nothing found (ingest documents first with `hybridlm ingest PATH`)")
    for h in hits:
        console.print(f"[bold]{h.score:.4f}[/bold] {Path(h.path).name} · {h.heading} "
                      f"(dense #{h.dense_rank}, keyword #{h.keyword_rank})", highlight=False)
        console.print(h.text[:300], highlight=False, markup=False)


QuestionsOption = Annotated[Path, typer.Option("--data", "-d", help="HaluEval QA JSON lines: question and the "
                                               "knowledge passage that answers it.")]


@train_app.command("grader")
def train_grader(
    data: QuestionsOption,
    out: Annotated[Path, typer.Option("--out", "-o", help="Grader file to write (.npz).")],
    k: Annotated[int, typer.Option("-k", help="Chunks retrieved per question to learn from.")] = 5,
) -> None:
    """Train the relevance grader on retrieved chunks of questions with known passages."""
    from hybridlm.errors import HybridLMError
    from hybridlm.evaluation.grading_eval import labelled_features, load_questions, retrieve
    from hybridlm.models.encoder import load_encoder
    from hybridlm.rag.grading import ENCODER, fit_grader

    try:
        questions = load_questions(data)
        with console.status(f"Retrieving and grading chunks for {len(questions)} questions...", spinner="dots"):
            pairs, _ = retrieve(questions, k)
            features, labels = labelled_features(questions, pairs, load_encoder(ENCODER))
            grader = fit_grader(features, labels, {"trained_on": data.name, "chunks": len(pairs)})
    except HybridLMError as err:
        fail(str(err), 2)
    grader.save(out)
    console.print(f"trained on {len(pairs)} chunks ({int(labels.sum())} relevant) -> {out}")


@eval_app.command("grading")
def eval_grading(
    data: QuestionsOption,
    model: Annotated[Optional[Path], typer.Option("--model", "-m", help="Score this grader file (default: train "
                                                  "and score k-fold by question).")] = None,
    k: Annotated[int, typer.Option("-k", help="Chunks retrieved per question.")] = 5,
    as_json: JsonOption = False,
) -> None:
    """Retrieval recall@k, and precision/recall of the chunks graded relevant."""
    from hybridlm.errors import HybridLMError
    from hybridlm.evaluation.grading_eval import evaluate_grading, load_questions
    from hybridlm.models.encoder import CachedEncoder, EmbeddingCache, load_encoder
    from hybridlm.rag.grading import ENCODER, RelevanceGrader

    try:
        questions = load_questions(data)
        grader = RelevanceGrader.load(model) if model else None
        with console.status(f"Retrieving and grading for {len(questions)} questions...", spinner="dots"):
            metrics = evaluate_grading(questions, CachedEncoder(load_encoder(ENCODER), EmbeddingCache()), k,
                                       grader=grader)
    except HybridLMError as err:
        fail(str(err), 2)
    print_metrics(metrics, as_json)


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="A question about the ingested documents.")],
    max_tokens: Annotated[Optional[int], typer.Option(help="Longest answer, in tokens.")] = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Answer from ingested documents: retrieve, grade chunks, answer with citations, fact-check, correct."""
    from hybridlm.cli.gateway import answer_once
    from hybridlm.targets import HYBRID, RAG

    result = answer_once(config, "Retrieving, answering and checking...", question, model=f"{HYBRID}/{RAG}",
                         max_tokens=max_tokens)
    if as_json:
        print(json.dumps({"answer": result.text, "hybridlm": result.route}))
        return
    console.print(result.text.strip(), highlight=False, markup=False)
    rag = result.route.get("rag") or {}
    for source in rag.get("sources", []):
        console.print(f"[dim][{source['n']}] {Path(source['path']).name} · {source['heading']} "
                      f"(relevance {source['score']:.2f})[/dim]", highlight=False)
    verification = rag.get("verification")
    if verification:
        flagged = sum(c["label"] != "supported" for c in verification["claims"])
        console.print(f"[dim]fact-check: {len(verification['claims'])} claim(s), {flagged} flagged, "
                      f"{verification['rounds']} correction round(s), {len(verification['removed'])} removed[/dim]")
    console.print(f"[dim]{result.route['tier']} · {result.route['reason']}[/dim]", highlight=False)
