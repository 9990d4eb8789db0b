"""Knowledge-store commands: `hybridlm ingest`, `hybridlm search`, `hybridlm documents`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from hybridlm.cli.common import ConfigOption, JsonOption, app, console, err_console, fail, load_cli_config


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
