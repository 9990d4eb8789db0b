"""API keys for the gateway: `hybridlm keys create | list | revoke`.

The gateway asks for a key as soon as one exists; it reads the key store on every request, so a
revoke takes effect on a running gateway at once.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer
from rich.markup import escape
from rich.table import Table

from hybridlm.cli.common import ConfigOption, JsonOption, app, console, err_console, fail, load_cli_config

if TYPE_CHECKING:
    from hybridlm.access.keys import KeyStore

keys_app = typer.Typer(help="API keys for the gateway: create (the secret is shown once), list, revoke.",
                       no_args_is_help=True)
app.add_typer(keys_app, name="keys")


@contextmanager
def _store(config: Path | None) -> Iterator[KeyStore]:
    from hybridlm.access.keys import KeyStore, default_keys_path

    store = KeyStore(default_keys_path(load_cli_config(config).resolved_data_dir()))
    try:
        yield store
    finally:
        store.close()


def _names(value: str | None) -> list[str] | None:
    """`a,b` -> ['a', 'b']; None (no limit) when the option is not given."""
    return None if value is None else [name.strip() for name in value.split(",") if name.strip()]


@keys_app.command()
def create(
    name: Annotated[str, typer.Argument(help="Who or what the key is for (shown in `keys list`).")],
    admin: Annotated[bool, typer.Option("--admin", help="May open /dashboard and /admin.")] = False,
    tenant: Annotated[Optional[str], typer.Option(help="Tenant whose policies apply (policies.tenants).")] = None,
    profiles: Annotated[Optional[str], typer.Option(
        help="Routing profiles it may use, comma-separated ('hybrid' for plain routing, 'cheap' for "
             "hybrid/cheap, 'rag', 'support', 'summarize'); default: all.")] = None,
    tiers: Annotated[Optional[str], typer.Option(help="Tiers it may force with `model`, comma-separated "
                                                      "(e.g. slm); default: all.")] = None,
    budget_day: Annotated[Optional[float], typer.Option(min=0, help="US dollars it may spend per day.")] = None,
    budget_month: Annotated[Optional[float], typer.Option(min=0, help="US dollars it may spend per month.")] = None,
    rpm: Annotated[Optional[int], typer.Option(min=1, help="Requests per minute.")] = None,
    tpm: Annotated[Optional[int], typer.Option(min=1, help="Tokens per minute.")] = None,
    config: ConfigOption = None,
) -> None:
    """Make a key and print its secret, once: it is stored only as a hash."""
    with _store(config) as store:
        key_id, secret = store.create(name, admin=admin, tenant=tenant, profiles=_names(profiles),
                                      tiers=_names(tiers), budget_usd_per_day=budget_day,
                                      budget_usd_per_month=budget_month, requests_per_minute=rpm,
                                      tokens_per_minute=tpm)
    err_console.print(f"[yellow]key {key_id} ({escape(name)}) created. Copy the secret now: it is not stored and "
                      "cannot be shown again.[/yellow]")
    print(secret)


def _when(ts: float | None) -> str:
    return dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M") if ts else ""


@keys_app.command(name="list")
def list_keys(config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Every key with its limits (never a secret)."""
    with _store(config) as store:
        keys = store.list()
    if as_json:
        print(json.dumps([key.as_dict() for key in keys]))
        return
    table = Table()
    table.add_column("key id", no_wrap=True)  # whole: it is what `revoke` takes
    for column in ("name", "admin", "limits", "created", "revoked"):
        table.add_column(column)
    for key in keys:
        c = key.caller
        limits = {"tenant": c.tenant, "profiles": c.profiles and ",".join(c.profiles),
                  "tiers": c.tiers and ",".join(c.tiers), "$/day": c.budget_usd_per_day,
                  "$/month": c.budget_usd_per_month, "rpm": c.requests_per_minute, "tpm": c.tokens_per_minute}
        table.add_row(c.key_id, escape(c.name), "yes" if c.admin else "",
                      escape(" ".join(f"{k}={v}" for k, v in limits.items() if v is not None)) or "none",
                      _when(key.created), _when(key.revoked))
    console.print(table)
    if not keys:
        console.print("no keys: the gateway asks for none, and serves beyond loopback only with allow_open")


@keys_app.command()
def revoke(
    key_id: Annotated[str, typer.Argument(help="The key's id, as `hybridlm keys list` shows it.")],
    config: ConfigOption = None,
) -> None:
    """Refuse the key from now on, on a running gateway too."""
    from hybridlm.access.keys import UnknownKey

    with _store(config) as store:
        try:
            store.revoke(key_id)
        except UnknownKey as err:
            fail(str(err), 2)
    console.print(f"key {escape(key_id)} revoked")
