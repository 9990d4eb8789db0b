"""What a core install (no extras) can import and run; each check in a fresh interpreter, most with
the optional libraries made unimportable."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

from hybridlm.extras import OPTIONAL

HEAVY = ("torch", "sentence_transformers", "sklearn", "llama_cpp")
PYPROJECT = Path(__file__).parents[2] / "pyproject.toml"

# A fresh interpreter in which every optional library fails to import, as on a core install.
WITHOUT_EXTRAS = textwrap.dedent(f"""
    import importlib.abc, json, sys

    class NotInstalled(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if any(name == m or name.startswith(m + ".") for m in {sorted(OPTIONAL)!r}):
                raise ImportError(f"No module named {{name!r}}")
            return None

    sys.meta_path.insert(0, NotInstalled())
""")

CORE_MODULES = ("hybridlm.server.app", "hybridlm.server.chat.serving", "hybridlm.routing.heuristic",
                "hybridlm.models.local_gguf", "hybridlm.models.openai_http", "hybridlm.tools.protocol",
                "hybridlm.tools.grammar", "hybridlm.tools.parsing", "hybridlm.pipeline", "hybridlm.api", "hybridlm.cli")


def python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def run_python(code: str) -> str:
    """Run `code` in a fresh interpreter that must succeed; its standard output, stripped."""
    done = python(code)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_importing_the_package_loads_nothing_heavy() -> None:
    loaded = run_python(f"import hybridlm, sys; print(sorted(m for m in {HEAVY!r} if m in sys.modules))")
    assert loaded == "[]"


def test_public_names_load_on_first_use() -> None:
    import hybridlm
    from hybridlm.api import HybridLM
    from hybridlm.plugins import load_checked_config

    assert hybridlm.HybridLM is HybridLM
    assert hybridlm.load_checked_config is load_checked_config
    assert all(hasattr(hybridlm, name) for name in hybridlm.__all__)


def test_the_core_imports_and_routes_without_any_extra() -> None:
    code = WITHOUT_EXTRAS + textwrap.dedent(f"""
        import importlib
        for name in {CORE_MODULES!r}:
            importlib.import_module(name)
        from fastapi.testclient import TestClient
        from hybridlm.api import HybridLM
        from hybridlm.plugins import load_checked_config
        from hybridlm.server.app import build_app

        with HybridLM(load_checked_config()) as hybrid:
            decision = hybrid.explain("What are your opening hours?").decision
            with TestClient(build_app(hybrid.config, hybrid.pipeline)) as client:
                health = client.get("/healthz").json()
        print(json.dumps({{"tier": decision.tier, "router": health["router"], "status": health["status"]}}))
    """)
    assert json.loads(run_python(code)) == {"tier": "slm", "router": "heuristic", "status": "ok"}


def test_features_without_their_extra_say_which_extra_to_install(tmp_path: Path) -> None:
    pdf = tmp_path / "scan.pdf"
    pdf.write_bytes(b"%PDF-1.4\n")
    code = WITHOUT_EXTRAS + textwrap.dedent(f"""
        from pathlib import Path
        import numpy as np
        from hybridlm.errors import MissingExtra
        from hybridlm.heads import LogisticHead
        from hybridlm.models.encoder import load_encoder
        from hybridlm.rag.readers import read_text
        from hybridlm.skills.sentiment import analyse
        from hybridlm.tools.relevance import ToolRelevance

        features = {{
            "sentiment": lambda: analyse("my card was stolen"),
            "encoder": lambda: load_encoder("minilm"),
            "static encoder": lambda: load_encoder("minilm-static"),
            "training a head": lambda: LogisticHead.fit(np.eye(2), np.array([0, 1])),
            "reading a PDF": lambda: read_text(Path({str(pdf)!r})),
        }}
        said = {{}}
        for feature, use in features.items():
            try:
                use()
            except MissingExtra as err:
                said[feature] = str(err)
        relevance = ToolRelevance()
        said["tool fit"] = "ready" if relevance.ready() else str(relevance.missing)
        print(json.dumps(said))
    """)
    said = json.loads(run_python(code))
    support = "this needs hybridlm[support]: pip install 'hybridlm[support]'"
    assert said == {
        "sentiment": f"vadersentiment is not installed: {support}",
        "encoder": f"sentence-transformers is not installed: {support}",
        "static encoder": f"model2vec[distill] is not installed: {support}",
        "training a head": f"scikit-learn is not installed: {support}",
        "reading a PDF": "pypdf is not installed: this needs hybridlm[rag]: pip install 'hybridlm[rag]'",
        "tool fit": f"sentence-transformers is not installed: {support}",
    }


def test_the_command_line_names_the_missing_extra_instead_of_a_traceback(tmp_path: Path) -> None:
    doc = tmp_path / "fees.md"
    doc.write_text("# Fees\n\nCard payments abroad cost 2% of the amount.\n", encoding="utf-8")
    done = python(WITHOUT_EXTRAS + f"from hybridlm.cli import app; app(['ingest', {str(doc)!r}], prog_name='hybridlm')")
    assert done.returncode == 1
    assert done.stderr.strip() == ("error: sentence-transformers is not installed: this needs hybridlm[support]: "
                                   "pip install 'hybridlm[support]'")


def named(requirement: str) -> str:
    """`model2vec[distill]>=0.4` -> `model2vec[distill]`: the distribution with its extras, no version."""
    match = re.match(r"[\w.\-]+(\[[^\]]*\])?", requirement)
    assert match is not None, requirement
    return match.group(0)


def test_each_optional_library_is_in_the_extra_that_names_it_and_not_in_the_core() -> None:
    project = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]
    extras = {name: {named(r) for r in requirements} for name, requirements in project["optional-dependencies"].items()}
    core = {named(r).split("[")[0] for r in project["dependencies"]}
    for module, (distribution, extra) in OPTIONAL.items():
        assert distribution in extras[extra], f"{module}: {distribution} is not in hybridlm[{extra}]"
        assert distribution.split("[")[0] not in core, f"{distribution} is a core dependency"
    assert extras["support"] <= extras["rag"]
    assert extras["support"] | extras["rag"] | extras["lab"] | extras["otel"] == extras["all"]


def test_a_trace_endpoint_without_the_otel_extra_stops_the_gateway_before_it_serves(tmp_path: Path) -> None:
    config = tmp_path / "hybridlm.yaml"
    config.write_text("telemetry:\n  otlp_endpoint: http://127.0.0.1:4318/v1/traces\n", encoding="utf-8")
    done = python(WITHOUT_EXTRAS + "from hybridlm.cli import app; "
                  f"app(['serve', '--config', {str(config)!r}], prog_name='hybridlm')")
    assert done.returncode == 2
    assert done.stderr.strip() == ("error: opentelemetry-sdk is not installed: this needs hybridlm[otel]: "
                                   "pip install 'hybridlm[otel]'")
