"""A configuration checked against what is registered: each tier's backend and its options, and
the router kind.

It sits above `config.py` so that reading the schema never imports a backend or a router; the
command line and the gateway load their configuration through `load_checked_config`, which fails
on a bad backend option or an unknown router kind with the file and the field, as a schema error
does.
"""

from __future__ import annotations

from pathlib import Path

from hybridlm.config import DEFAULTS_SOURCE, Config, find_config, invalid_config, load_config
from hybridlm.models.registry import validate_options
from hybridlm.routing.registry import router_factory


def check_plugins(config: Config, source: str) -> None:
    """Raise one ConfigError naming `source` and every field whose backend or router is wrong."""
    problems: list[tuple[str, str]] = []
    for name, tier in config.tiers.items():
        try:
            validate_options(tier.backend, tier.options)
        except ValueError as err:
            problems.append((f"tiers.{name}", str(err)))
    try:
        router_factory(config.router.kind)
    except ValueError as err:
        problems.append(("router.kind", str(err)))
    if problems:
        raise invalid_config(source, problems)


def load_checked_config(path: str | Path | None = None) -> Config:
    """`load_config`, then `check_plugins`: what every entry point that will run the config uses."""
    found = find_config(path)
    config = load_config(found)
    check_plugins(config, DEFAULTS_SOURCE if found is None else str(found))
    return config
