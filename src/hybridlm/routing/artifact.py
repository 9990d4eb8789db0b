"""Router files: one `.npz` of named arrays plus a JSON header. No pickle, so loading a router
file can never run code; the header says what it is, which encoder it needs and how it scored.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np

from hybridlm.errors import HybridLMError
from hybridlm.routing.heads import Head, KNNHead, LinearHead, LogisticHead, Percentiles, TopicHead

FORMAT = "hybridlm-router"
VERSION = 1
HEAD_TYPES: dict[str, type[KNNHead] | type[LinearHead] | type[TopicHead] | type[LogisticHead]] = {
    "knn": KNNHead,
    "linear": LinearHead,
    "topic": TopicHead,
    "logistic": LogisticHead,
}
SCALARS = {"k"}


class RouterArtifactError(HybridLMError, ValueError):
    """A router file that is missing, corrupt, or made for another version or encoder."""


def head_type(head: Head | LogisticHead) -> str:
    for name, cls in HEAD_TYPES.items():
        if isinstance(head, cls):
            return name
    raise TypeError(f"not a router head: {type(head).__name__}")


def head_arrays(prefix: str, head: Head | LogisticHead) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    arrays, params = {}, {}
    for f in fields(head):
        value = getattr(head, f.name)
        if f.name in SCALARS:
            params[f.name] = value
        else:
            arrays[f"{prefix}.{f.name}"] = np.asarray(value)
    return arrays, params


def save(path: Path, header: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"header": np.frombuffer(json.dumps({"format": FORMAT, "version": VERSION, **header}).encode(),
                                       dtype=np.uint8), **arrays}
    with path.open("wb") as out:
        np.savez_compressed(out, **payload)


def load(path: Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    if not path.is_file():
        raise RouterArtifactError(f"{path}: no such router file")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
        raise RouterArtifactError(f"{path}: not a router file or corrupt ({err})") from None
    if "header" not in arrays:
        raise RouterArtifactError(f"{path}: not a hybridlm router file (no header)")
    try:
        header = json.loads(arrays.pop("header").tobytes().decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise RouterArtifactError(f"{path}: corrupt header ({err})") from None
    if header.get("format") != FORMAT:
        raise RouterArtifactError(f"{path}: not a hybridlm router file (format {header.get('format')!r})")
    if header.get("version") != VERSION:
        raise RouterArtifactError(
            f"{path}: router file version {header.get('version')} but this hybridlm reads version {VERSION}; "
            "retrain it with `hybridlm train router`"
        )
    return header, arrays


def build_head(path: Path, spec: dict[str, Any], arrays: dict[str, np.ndarray]) -> tuple[Any, Percentiles]:
    name, kind = spec.get("name"), spec.get("type")
    cls = HEAD_TYPES.get(str(kind))
    if cls is None:
        raise RouterArtifactError(f"{path}: unknown head type {kind!r}")
    values: dict[str, Any] = dict(spec.get("params", {}))
    try:
        for f in fields(cls):
            if f.name not in SCALARS:
                values[f.name] = arrays[f"{name}.{f.name}"]
        scale = Percentiles(arrays[f"{name}.percentiles"])
    except KeyError as err:
        raise RouterArtifactError(f"{path}: head '{name}' lacks array {err}") from None
    return cls(**values), scale
