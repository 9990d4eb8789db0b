"""The latest evaluation of each kind, kept in the data dir for the dashboard's router lab view: what
`hybridlm eval router --report` and `hybridlm eval tools --report` found, as JSON."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from hybridlm.evaluation.router_eval import Evaluation

LAB_DIR = "lab"


def router_result(evaluation: Evaluation) -> dict[str, Any]:
    """A router evaluation as the lab view draws it: quality against calls to the large model, and the
    cost-quality frontier of many models."""
    return {
        "kind": "router", "data": evaluation.data, "prompts": evaluation.prompts, "protocol": evaluation.protocol,
        "weak_quality": evaluation.weak_quality, "strong_quality": evaluation.strong_quality,
        "two_model": [{"name": r.name, **r.metrics(),
                       "curve": [[p.strong_share, p.quality, p.threshold] for p in r.curve]}
                      for r in evaluation.two_model],
        "multi_model": [{"name": r.name, **r.metrics(), "points": [list(p) for p in r.points]}
                        for r in evaluation.multi_model],
    }


def save_result(folder: Path, name: str, result: dict[str, Any]) -> Path:
    """Write `<folder>/<name>.json` whole or not at all (a reader never sees half a file)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    partial = path.with_suffix(".json.partial")
    partial.write_text(json.dumps({**result, "saved_at": time.time()}), encoding="utf-8")
    os.replace(partial, path)
    return path


def publish(name: str, result: dict[str, Any], report_dir: Path, data_dir: Path) -> Path:
    """`--report`: the result in the report's folder, and as the latest of its kind for the lab view."""
    save_result(data_dir / LAB_DIR, name, result)
    return save_result(report_dir, name, result)


def latest_results(data_dir: Path) -> list[dict[str, Any]]:
    """Every saved evaluation, newest first; a file that cannot be read is named, not fatal."""
    out = []
    for path in sorted((data_dir / LAB_DIR).glob("*.json")):
        try:
            result = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(result, dict):
                raise ValueError("not an object")
        except (OSError, ValueError):
            out.append({"name": path.stem, "kind": "unreadable", "saved_at": 0})
            continue
        out.append({"name": path.stem, **result})
    return sorted(out, key=lambda r: -float(r.get("saved_at") or 0))
