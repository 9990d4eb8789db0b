"""What a core install (no extras) can import and run; each check in a fresh interpreter."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("torch", "sentence_transformers", "sklearn", "llama_cpp")


def run_python(code: str) -> str:
    """Run `code` in a fresh interpreter; its standard output, stripped."""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
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
