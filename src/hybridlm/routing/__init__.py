"""Routers: each scores how much a query needs the large model; a threshold decides."""

from hybridlm.routing.base import Router, Score
from hybridlm.routing.heuristic import HeuristicRouter
from hybridlm.routing.registry import ROUTERS, build_router

__all__ = ["ROUTERS", "HeuristicRouter", "Router", "Score", "build_router"]
