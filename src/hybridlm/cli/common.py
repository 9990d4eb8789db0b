"""What every command shares: the app, consoles, common options and clean failure."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from hybridlm.errors import HybridLMError

if TYPE_CHECKING:
    from hybridlm.config import Config


class App(typer.Typer):
    """The command line: an error meant for a person that no command caught (a missing extra, say)
    still ends with its message and exit code 1, not a traceback."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().__call__(*args, **kwargs)
        except HybridLMError as err:
            print_error(str(err))
            raise SystemExit(1) from None


app = App(
    help="Small and large language models working together: a local SLM, any OpenAI-compatible LLM, "
    "an explainable router between them, and an OpenAI-compatible gateway.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console()
err_console = Console(stderr=True, soft_wrap=True)

ConfigOption = Annotated[
    Optional[Path], typer.Option("--config", "-c", help="hybridlm.yaml (default: $HYBRIDLM_CONFIG, ./hybridlm.yaml, built-in defaults).")
]
ModelOption = Annotated[str, typer.Option("--model", "-m", help="'hybrid', 'hybrid/<profile>' or a tier name to force it.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of tables.")]


def print_error(message: str) -> None:
    err_console.print(f"[red]error:[/red] {escape(message)}", highlight=False)


def fail(message: str, code: int = 1) -> NoReturn:
    print_error(message)
    raise typer.Exit(code)


def print_metrics(metrics: dict[str, Any], as_json: bool) -> None:
    """One JSON object on the last line for machines, or a two-column table for people."""
    if as_json:
        print(json.dumps(metrics))
        return
    table = Table("metric", "value")
    for key, value in metrics.items():
        table.add_row(key, str(value))
    console.print(table)


def load_cli_config(path: Path | None) -> Config:
    from hybridlm.config import ConfigError
    from hybridlm.plugins import load_checked_config

    try:
        return load_checked_config(path)
    except ConfigError as err:
        fail(str(err), 2)
