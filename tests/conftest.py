"""Each test gets its own data dir and an environment without API keys or proxies."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

# Distilled encoders and embeddings are re-creatable: one cache for the whole session, fresh per run.
os.environ["HYBRIDLM_CACHE_DIR"] = tempfile.mkdtemp(prefix="hybridlm-test-cache-")
# Joined models are 0.5-1 GB: one models dir for the session (kept between runs on this machine), not one per test.
os.environ.setdefault("HYBRIDLM_MODELS_DIR", str(Path(tempfile.gettempdir()) / "hybridlm-test-models"))
DATA = Path(__file__).parent / "data"

STRIPPED = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "HYBRIDLM_CONFIG", "HYBRIDLM_LLM_MODEL",
            "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy",
            "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in STRIPPED:
        monkeypatch.delenv(name, raising=False)
    data_dir = tmp_path / "data"
    monkeypatch.setenv("HYBRIDLM_DATA_DIR", str(data_dir))
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.chdir(tmp_path)
    return data_dir


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "integration" in Path(str(item.fspath)).parts:
            item.add_marker(pytest.mark.integration)


os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
