import subprocess
import sys
from pathlib import Path

import pytest

from hybridlm.config import ConfigError, load_config, parse_config
from hybridlm.plugins import load_checked_config


def test_defaults_without_environment_have_only_the_local_slm() -> None:
    cfg = load_checked_config()
    assert list(cfg.tiers) == ["slm"]
    assert cfg.tiers["slm"].backend == "local"
    assert cfg.remote_tier is None


def test_defaults_pick_up_openai_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    cfg = load_checked_config()
    assert cfg.remote_tier == "llm"
    assert cfg.tiers["llm"].options["base_url"] == "http://127.0.0.1:9/v1"
    assert cfg.tiers["llm"].price.output > 0


def test_data_dir_env_overrides_config(tmp_path: Path, isolated_env: Path) -> None:
    cfg = parse_config({"data_dir": str(tmp_path / "elsewhere")})
    assert cfg.resolved_data_dir() == isolated_env


def test_full_file_loads(tmp_path: Path) -> None:
    path = tmp_path / "hybridlm.yaml"
    path.write_text(
        "tiers:\n"
        "  slm: {backend: local, n_ctx: 1024}\n"
        "  llm:\n"
        "    backend: openai\n"
        "    base_url: http://127.0.0.1:8080/v1\n"
        "    model: big\n"
        "    price: {input: 1.0, output: 2.0}\n"
        "    budget_usd_per_day: 3\n"
        "router: {threshold: 0.4}\n"
        "profiles: {cheap: {threshold: 0.9}}\n"
    )
    cfg = load_checked_config(path)
    assert cfg.router.threshold == 0.4
    assert cfg.tiers["llm"].price.cost(1_000_000, 500_000) == pytest.approx(2.0)
    assert cfg.tiers["llm"].budget_usd_per_day == 3
    assert set(cfg.profiles) == {"cheap"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("tiers: [unclosed", "not valid YAML at line 1"),
        ("- a list", "expected a mapping"),
        ("tiers: {slm: {backend: quantum}}", "unknown backend 'quantum'"),
        ("tiers: {slm: {backend: local, n_ctx: lots}}", "n_ctx"),
        ("tiers: {slm: {backend: openai, model: x}}", "base_url"),
        ("tiers: {slm: {backend: local, price: {input: -1}}}", "tiers.slm.price.input"),
        ("tiers: {slm: {backend: local}}\nrouter: {threshold: 7}", "router.threshold"),
        ("tiers: {slm: {backend: local}}\nrouter: {kind: psychic}", "unknown router 'psychic'"),
        ("tiers: {slm: {backend: local}}\nrouterr: {}", "routerr"),
        ("tiers: {tiny: {backend: local}}", "router.local_tier 'slm'"),
        ("tiers: {slm: {backend: local}, hybrid: {backend: local}}", "reserved"),
    ],
)
def test_bad_files_give_clear_errors(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_checked_config(path)
    assert str(path) in str(err.value)
    assert expected in str(err.value)


def test_backend_and_router_errors_name_the_file_and_each_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("tiers: {slm: {backend: local}, llm: {backend: openai, model: x}}\nrouter: {kind: psychic}\n")
    with pytest.raises(ConfigError) as err:
        load_checked_config(path)
    assert str(err.value).splitlines() == [
        f"{path}: invalid configuration",
        "  tiers.llm: backend 'openai': give either 'base_url' or a list of 'upstreams'",
        "  router.kind: unknown router 'psychic'; known: heuristic, learned, selfcheck",
    ]


def test_the_schema_alone_leaves_backends_and_routers_to_the_registries(tmp_path: Path) -> None:
    path = tmp_path / "hybridlm.yaml"
    path.write_text("tiers: {slm: {backend: quantum}}\n")
    assert load_config(path).tiers["slm"].backend == "quantum"
    with pytest.raises(ConfigError, match="unknown backend 'quantum'"):
        load_checked_config(path)


def test_reading_the_schema_imports_no_backend_or_router() -> None:
    code = ("import sys, hybridlm.config; "
            "print(sorted(m for m in sys.modules if m.startswith(('hybridlm.models', 'hybridlm.routing'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_checked_config(tmp_path / "nope.yaml")


def test_the_example_config_is_valid_and_names_every_local_option() -> None:
    from hybridlm.models.local_gguf import LocalOptions

    example = Path(__file__).parents[2] / "examples" / "hybridlm.yaml"
    config = load_checked_config(example)
    text = example.read_text(encoding="utf-8")
    assert config.tiers["slm"].options["model"] == "qwen2.5-coder-0.5b"
    assert all(name in text for name in LocalOptions.model_fields), "examples/hybridlm.yaml misses a local option"
