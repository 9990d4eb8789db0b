"""Routers by name: the one place a new router is registered."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from hybridlm.routing.base import Router
from hybridlm.routing.heuristic import HeuristicRouter

if TYPE_CHECKING:
    from hybridlm.config import RouterConfig


def _learned(config: RouterConfig) -> Router:
    from hybridlm.routing.learned import load_router

    assert config.artifact is not None
    return load_router(config.artifact.expanduser())


def _selfcheck(config: RouterConfig) -> Router:
    from hybridlm.routing.selfcheck import SelfCheckRouter

    return SelfCheckRouter(config.resamples)


ROUTERS: dict[str, Callable[[RouterConfig], Router]] = {
    "heuristic": lambda config: HeuristicRouter(),
    "learned": _learned,
    "selfcheck": _selfcheck,
}


def router_factory(kind: str) -> Callable[[RouterConfig], Router]:
    """The builder of a router kind; ValueError naming the known kinds when there is none."""
    try:
        return ROUTERS[kind]
    except KeyError:
        raise ValueError(f"unknown router '{kind}'; known: {', '.join(sorted(ROUTERS))}") from None


def build_router(config: RouterConfig) -> Router:
    return router_factory(config.kind)(config)
