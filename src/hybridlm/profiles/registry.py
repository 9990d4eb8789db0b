"""Profiles by name: the one place a profile is registered. A new one is a module with a class that has
`plan(request, target) -> Plan` and `cheap(request, target) -> bool`, and one line here.

Policies wrap every profile (each a class taking the profile and the deployment, with the same two
methods), innermost first; a new one is a module and one line in `POLICIES`."""

from __future__ import annotations

from collections.abc import Callable

from hybridlm.deployment import Deployment
from hybridlm.profiles.agent import AgentProfile
from hybridlm.profiles.base import Profile
from hybridlm.profiles.local_only import LocalOnly
from hybridlm.profiles.rag import RagProfile
from hybridlm.profiles.routed import RoutedProfile
from hybridlm.profiles.summary import SUMMARY, SummaryProfile
from hybridlm.profiles.support import SupportProfile
from hybridlm.profiles.tools import ToolsProfile
from hybridlm.routing.tools import TOOLS
from hybridlm.targets import AGENT, RAG, SUPPORT

ROUTED = "routed"

PROFILES: dict[str, Callable[[Deployment], Profile]] = {
    ROUTED: RoutedProfile,
    TOOLS: ToolsProfile,
    SUPPORT: SupportProfile,
    RAG: RagProfile,
    SUMMARY: SummaryProfile,
    AGENT: AgentProfile,
}

POLICIES: list[Callable[[Profile, Deployment], Profile]] = [LocalOnly]


def build_profile(name: str, deployment: Deployment) -> Profile:
    profile = PROFILES[name](deployment)
    for policy in POLICIES:
        profile = policy(profile, deployment)
    return profile
