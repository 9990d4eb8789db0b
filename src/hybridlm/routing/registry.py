"""Routers by name: the one place a new router is registered."""

from __future__ import annotations

from collections.abc import Callable

from hybridlm.routing.base import Router
from hybridlm.routing.heuristic import HeuristicRouter

ROUTERS: dict[str, Callable[[], Router]] = {
    "heuristic": HeuristicRouter,
}


def build_router(kind: str) -> Router:
    try:
        return ROUTERS[kind]()
    except KeyError:
        raise ValueError(f"unknown router '{kind}'; known: {', '.join(sorted(ROUTERS))}") from None
