"""What every command shares: the app, consoles, common options and clean failure."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn, Optional

import typer
from rich.console import Console
from rich.markup import escape

if TYPE_CHECKING:
    from hybridlm.config import Config

app = typer.Typer(
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


def fail(message: str, code: int = 1) -> NoReturn:
    err_console.print(f"[red]error:[/red] {escape(message)}", highlight=False)
    raise typer.Exit(code)


def load_cli_config(path: Path | None) -> Config:
    from hybridlm.config import ConfigError, load_config

    try:
        return load_config(path)
    except ConfigError as err:
        fail(str(err), 2)
