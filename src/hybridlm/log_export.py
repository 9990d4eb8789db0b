"""`hybridlm logs --export`: the request log as CSV or JSON lines, streamed row by row from the file, so a
log of any size leaves in constant memory."""

from __future__ import annotations

import csv
import datetime as dt
import json
import re
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal, TextIO

from hybridlm.log_queries import with_json_read

ExportFormat = Literal["csv", "jsonl"]
RELATIVE = re.compile(r"^(\d+(?:\.\d+)?)([mhd])$")
SECONDS = {"m": 60, "h": 3600, "d": 86400}


def parse_since(text: str, now: float | None = None) -> float:
    """`30m`, `24h`, `7d` (before now), or an ISO date or date-time (the machine's zone unless it says one)."""
    relative = RELATIVE.match(text.strip())
    if relative:
        return (time.time() if now is None else now) - float(relative[1]) * SECONDS[relative[2]]
    try:
        return dt.datetime.fromisoformat(text.strip()).timestamp()
    except ValueError:
        raise ValueError(f"--since {text!r}: give 30m, 24h, 7d or a date such as 2026-12-01 or "
                         "2026-12-01T08:00") from None


def rows_since(path: Path, since: float) -> Iterator[dict[str, Any]]:
    """The log's requests from `since` on, oldest first, read through a cursor on a read-only connection
    of its own (a gateway writing meanwhile is not held up)."""
    db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    db.row_factory = sqlite3.Row
    try:
        for row in db.execute("SELECT * FROM requests WHERE ts >= ? ORDER BY ts, id", (since,)):
            yield dict(row)
    finally:
        db.close()


def write_export(rows: Iterator[dict[str, Any]], fmt: ExportFormat, out: TextIO) -> int:
    """Write the rows as `fmt`; returns how many. JSON lines keep the JSON columns as objects, CSV as text."""
    count = 0
    writer: csv.DictWriter[str] | None = None
    for row in rows:
        row.pop("id", None)
        if fmt == "jsonl":
            out.write(json.dumps(with_json_read(row), ensure_ascii=False) + "\n")
        else:
            if writer is None:
                writer = csv.DictWriter(out, fieldnames=list(row))
                writer.writeheader()
            writer.writerow(row)
        count += 1
    return count
