"""Reading a YAML list with each item's line number, so errors in data files can say where."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from hybridlm.errors import HybridLMError


def read_yaml_list(path: Path, error: type[HybridLMError], expected: str) -> list[tuple[Any, yaml.Node]]:
    """[(item, its YAML node)]; `node.start_mark.line + 1` is the item's line in the file."""
    if not path.is_file():
        raise error(f"{path}: no such file")
    text = path.read_text(encoding="utf-8")
    try:
        root = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        raise error(f"{path}, line {mark.line + 1 if mark else '?'}: not valid YAML") from None
    if not isinstance(data, list) or root is None:
        raise error(f"{path}, line 1: expected a list of {expected}")
    return list(zip(data, root.value, strict=True))
