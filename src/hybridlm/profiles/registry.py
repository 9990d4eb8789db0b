"""Profiles by name: the one place a profile is registered. A new one is a module with a class that has
`plan(request, target) -> Plan` and `cheap(request, target) -> bool`, and one line here."""

from __future__ import annotations

from collections.abc import Callable

from hybridlm.deployment import Deployment
from hybridlm.profiles.base import Profile
from hybridlm.profiles.rag import RagProfile
from hybridlm.profiles.routed import RoutedProfile
from hybridlm.profiles.summary import SUMMARY, SummaryProfile
from hybridlm.profiles.support import SupportProfile
from hybridlm.profiles.tools import ToolsProfile
from hybridlm.routing.tools import TOOLS
from hybridlm.targets import RAG, SUPPORT

ROUTED = "routed"

PROFILES: dict[str, Callable[[Deployment], Profile]] = {
    ROUTED: RoutedProfile,
    TOOLS: ToolsProfile,
    SUPPORT: SupportProfile,
    RAG: RagProfile,
    SUMMARY: SummaryProfile,
}
