"""Model files: one `.npz` of named arrays plus a JSON header. No pickle, so loading a file can
never run code; the header says what it is, its version, and what it was trained on.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from hybridlm.errors import HybridLMError

VERSION = 1


class ArtifactError(HybridLMError, ValueError):
    """A model file that is missing, corrupt, or made for another version or purpose."""


def save(path: Path, fmt: str, header: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    blob = json.dumps({"format": fmt, "version": VERSION, **header}).encode()
    with path.open("wb") as out:
        np.savez_compressed(out, header=np.frombuffer(blob, dtype=np.uint8), **arrays)


def load(path: Path, fmt: str, what: str, retrain_hint: str) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The header and arrays of a `fmt` file; `what` names it in messages ("router", "intent model")."""
    if not path.is_file():
        raise ArtifactError(f"{path}: no such {what} file")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
        raise ArtifactError(f"{path}: not a {what} file or corrupt ({err})") from None
    if "header" not in arrays:
        raise ArtifactError(f"{path}: not a hybridlm {what} file (no header)")
    try:
        header = json.loads(arrays.pop("header").tobytes().decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ArtifactError(f"{path}: corrupt header ({err})") from None
    if header.get("format") != fmt:
        raise ArtifactError(f"{path}: not a hybridlm {what} file (format {header.get('format')!r})")
    if header.get("version") != VERSION:
        raise ArtifactError(f"{path}: {what} file version {header.get('version')} but this hybridlm reads version "
                            f"{VERSION}; retrain it with `{retrain_hint}`")
    return header, arrays
