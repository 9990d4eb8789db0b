"""Personal data commands: `hybridlm eval pii`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.table import Table

from hybridlm.cli.common import ConfigOption, JsonOption, console, fail, load_cli_config
from hybridlm.cli.lab import eval_app


def _row(table: Table, name: str, s: dict[str, Any], support: Any = "") -> None:
    table.add_row(name, f"{s['precision']:.3f}", f"{s['recall']:.3f}", f"{s['f2']:.3f}", str(support))


@eval_app.command("pii")
def eval_pii(
    data: Annotated[Path, typer.Option("--data", "-d", help="presidio-research JSON: a list of {full_text, spans}.")],
    limit: Annotated[Optional[int], typer.Option(min=1, help="Score the first N texts only.")] = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Token-level precision, recall and F2 of personal-data detection over the leak types, per type and
    overall, on the whole data and on each half; and the median time per message."""
    from hybridlm.errors import HybridLMError
    from hybridlm.evaluation.pii_eval import evaluate_pii, load_pii_data
    from hybridlm.privacy.detector import PiiDetector

    try:
        examples = load_pii_data(data, limit)
        detector = PiiDetector.from_config(load_cli_config(config).privacy)
        with console.status(f"Detecting personal data in {len(examples)} texts...", spinner="dots"):
            result = evaluate_pii(detector, examples)
    except HybridLMError as err:
        fail(str(err), 2)
    result["data"] = data.name
    if as_json:
        print(json.dumps(result))
        return
    table = Table("type", "precision", "recall", "F2", "tokens")
    for entity, s in result["per_entity"].items():
        _row(table, entity, s, s["support"])
    _row(table, "[bold]all leak types[/bold]", result)
    for name, half in result["halves"].items():
        _row(table, f"{name} half", half)
    console.print(table)
    covered = ", ".join(f"{t} {o['covered']:.0%}" for t, o in result["other_types"].items())
    console.print(f"other types' tokens covered by a finding: {covered}", highlight=False)
    console.print(f"{result['messages']} texts, median {result['ms_per_message']} ms a text", highlight=False)
