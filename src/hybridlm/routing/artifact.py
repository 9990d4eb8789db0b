"""Router files (see `hybridlm.artifacts`): which heads a router has, saved as named arrays."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np

from hybridlm import artifacts
from hybridlm.artifacts import ArtifactError
from hybridlm.heads import Head, KNNHead, LinearHead, LogisticHead, Percentiles, TopicHead

FORMAT = "hybridlm-router"
HEAD_TYPES: dict[str, type[KNNHead] | type[LinearHead] | type[TopicHead] | type[LogisticHead]] = {
    "knn": KNNHead,
    "linear": LinearHead,
    "topic": TopicHead,
    "logistic": LogisticHead,
}
SCALARS = {"k"}


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
    artifacts.save(path, FORMAT, header, arrays)


def load(path: Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    return artifacts.load(path, FORMAT, "router", "hybridlm train router")


def build_head(path: Path, spec: dict[str, Any], arrays: dict[str, np.ndarray]) -> tuple[Any, Percentiles]:
    name, kind = spec.get("name"), spec.get("type")
    cls = HEAD_TYPES.get(str(kind))
    if cls is None:
        raise ArtifactError(f"{path}: unknown head type {kind!r}")
    values: dict[str, Any] = dict(spec.get("params", {}))
    try:
        for f in fields(cls):
            if f.name not in SCALARS:
                values[f.name] = arrays[f"{name}.{f.name}"]
        scale = Percentiles(arrays[f"{name}.percentiles"])
    except KeyError as err:
        raise ArtifactError(f"{path}: head '{name}' lacks array {err}") from None
    return cls(**values), scale
