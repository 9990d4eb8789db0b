"""The knowledge store with the real encoder: ingest, re-ingest, delete, bad files, hybrid search."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tests.conftest import DATA
from tests.integration.commands import hybridlm


def test_ingest_search_reingest_and_delete(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    shutil.copytree(DATA / "docs", docs)
    first = json.loads(hybridlm("ingest", str(docs), "--json").stdout)
    assert all(isinstance(n, int) and n > 0 for n in first.values()) and len(first) == 3

    hits = json.loads(hybridlm("search", "how much do card payments abroad cost?", "-k", "3", "--json").stdout)
    assert hits[0]["heading"] == "International payments" and "1% above 500 GBP" in hits[0]["text"]
    assert not any("do not index me" in h["text"] for h in hits)

    again = json.loads(hybridlm("ingest", str(docs / "hours.txt"), "--json").stdout)
    assert again == {str(docs / "hours.txt"): "unchanged"}
    (docs / "hours.txt").write_text("Branches now open on Sundays from 11:00 to 15:00.\n")
    assert json.loads(hybridlm("ingest", str(docs / "hours.txt"), "--json").stdout)[str(docs / "hours.txt")] == 1
    hits = json.loads(hybridlm("search", "are you open on Sunday?", "-k", "1", "--json").stdout)
    assert "11:00 to 15:00" in hits[0]["text"]

    gone = json.loads(hybridlm("ingest", "--delete", str(docs / "fees.html"), "--json").stdout)
    assert gone == {str(docs / "fees.html"): "deleted"}
    hits = json.loads(hybridlm("search", "payments abroad", "-k", "5", "--json").stdout)
    assert all(not h["path"].endswith("fees.html") for h in hits)


def test_bad_files_are_reported_one_by_one_and_the_rest_is_ingested(tmp_path: Path) -> None:
    docs = tmp_path / "mixed"
    docs.mkdir()
    shutil.copy(DATA / "docs" / "cards.md", docs / "cards.md")
    (docs / "empty.md").write_text("")
    (docs / "binary.txt").write_bytes(b"\x00\x01\x02 not text" * 100)
    (docs / "broken.pdf").write_bytes(b"%PDF-1.4 this is not really a pdf")
    with (docs / "huge.txt").open("wb") as f:
        f.truncate(25_000_000)
    proc = hybridlm("ingest", str(docs), "--json")
    report = json.loads(proc.stdout)
    assert report[str(docs / "cards.md")] == 2
    assert "empty file" in report[str(docs / "empty.md")]
    assert "looks binary" in report[str(docs / "binary.txt")]
    assert "corrupt PDF" in report[str(docs / "broken.pdf")]
    assert "over the" in report[str(docs / "huge.txt")]
    assert proc.returncode == 1  # some files failed
    assert "Traceback" not in proc.stderr
