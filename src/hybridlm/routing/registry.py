"""Routers by name: the one place a new router is registered."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from hybridlm.routing.base import Router
from hybridlm.routing.heuristic import HeuristicRouter

if TYPE_CHECKING:
    from hybridlm.config import RouterConfig


def _learned(config: RouterConfig, data_dir: Path) -> Router:
    from hybridlm.routing.learned import load_router

    assert config.artifact is not None
    return load_router(config.artifact.expanduser(), data_dir)


ROUTERS: dict[str, Callable[[RouterConfig, Path], Router]] = {
    "heuristic": lambda config, data_dir: HeuristicRouter(),
    "learned": _learned,
}


def build_router(config: RouterConfig, data_dir: Path) -> Router:
    try:
        factory = ROUTERS[config.kind]
    except KeyError:
        raise ValueError(f"unknown router '{config.kind}'; known: {', '.join(sorted(ROUTERS))}") from None
    return factory(config, data_dir)
