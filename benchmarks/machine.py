"""What every benchmark prints: the machine its figures come from, and a Markdown table of them."""

from __future__ import annotations

import os
import platform
from collections.abc import Iterable, Sequence


def describe() -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def print_table(header: Sequence[str], rows: Iterable[Sequence[object]], note: str = "") -> None:
    print(f"machine: {describe()}{'; ' + note if note else ''}")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(str(cell) for cell in row) + " |")
