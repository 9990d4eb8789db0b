"""Labelled sentiment data: GoEmotions' sentiment groups (`text<TAB>label ids<TAB>id`, the names in
`labels.txt` beside the file) or a CSV with `text,sentiment` (negative / neutral / positive).

A GoEmotions comment is negative when its labels include the negative group (whatever else they
include: a customer who is pleased about one thing and angry about another is still unhappy),
positive when they include the positive group, and neutral otherwise (the neutral and ambiguous
groups: surprise, confusion, curiosity and realisation are no reason to escalate). Errors name the
file and the line.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from hybridlm.errors import HybridLMError
from hybridlm.skills.sentiment import LABELS

GOEMOTIONS_GROUPS = ("ambiguous", "negative", "neutral", "positive")  # their order in labels.txt
GOEMOTIONS_SPLITS = {"train": "train.tsv", "val": "dev.tsv", "test": "test.tsv"}


class SentimentDataError(HybridLMError, ValueError):
    """A sentiment data file that cannot be read, with its file and line."""


@dataclass(frozen=True)
class SentimentData:
    texts: list[str]
    labels: list[str]  # each one of LABELS
    source: str

    def __len__(self) -> int:
        return len(self.texts)


def load_sentiment_data(path: Path) -> SentimentData:
    """A GoEmotions group file (`.tsv`) or a `text,sentiment` CSV."""
    if not path.is_file():
        raise SentimentDataError(f"{path}: no such file")
    try:
        rows = _goemotions(path) if path.suffix == ".tsv" else _csv(path)
    except UnicodeDecodeError as err:
        raise SentimentDataError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from None
    except csv.Error as err:
        raise SentimentDataError(f"{path}: not a readable CSV ({err})") from None
    if not rows:
        raise SentimentDataError(f"{path}: no rows")
    return SentimentData([t for t, _ in rows], [label for _, label in rows], path.name)


def hold_out(data: SentimentData, every: int) -> tuple[SentimentData, SentimentData]:
    """(the rest, every `every`-th message): validation data from the training file itself."""
    held = set(range(every - 1, len(data), every))
    rest = [i for i in range(len(data)) if i not in held]
    return (SentimentData([data.texts[i] for i in rest], [data.labels[i] for i in rest], data.source),
            SentimentData(data.texts[every - 1::every], data.labels[every - 1::every],
                          f"{data.source} (every {every}th row)"))


def split_file(path: Path, split: str) -> Path | None:
    """The file of another split beside a GoEmotions split (train.tsv -> dev.tsv), if it is there."""
    if path.suffix != ".tsv" or path.name not in GOEMOTIONS_SPLITS.values():
        return None
    other = path.with_name(GOEMOTIONS_SPLITS[split])
    return other if other.is_file() else None


def _goemotions(path: Path) -> list[tuple[str, str]]:
    groups = _group_names(path)
    rows = []
    with path.open(encoding="utf-8", newline="") as f:
        for line, fields in enumerate(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE), 1):
            if not fields:
                continue
            where = f"{path}, line {line}"
            if len(fields) < 2:
                raise SentimentDataError(f"{where}: needs text<TAB>label ids (has {len(fields)} field)")
            try:
                ids = {int(i) for i in fields[1].split(",")}
            except ValueError:
                raise SentimentDataError(f"{where}: label ids must be comma-separated numbers "
                                         f"(has {fields[1][:40]!r})") from None
            if not ids or not ids <= set(range(len(groups))):
                raise SentimentDataError(f"{where}: label ids {sorted(ids)} outside 0-{len(groups) - 1}")
            names = {groups[i] for i in ids}
            label = "negative" if "negative" in names else "positive" if "positive" in names else "neutral"
            rows.append((_text(fields[0], where), label))
    return rows


def _group_names(path: Path) -> tuple[str, ...]:
    names_file = path.with_name("labels.txt")
    if not names_file.is_file():
        return GOEMOTIONS_GROUPS
    names = tuple(n.strip() for n in names_file.read_text(encoding="utf-8").splitlines() if n.strip())
    if not {"negative", "positive"} <= set(names):
        raise SentimentDataError(f"{names_file}: needs the groups negative and positive (has {list(names)})")
    return names


def _csv(path: Path) -> list[tuple[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        if not {"text", "sentiment"} <= set(reader.fieldnames or []):
            raise SentimentDataError(f"{path}, line 1: needs columns text,sentiment (has {reader.fieldnames})")
        rows = []
        for row in reader:
            where = f"{path}, line {reader.line_num}"
            label = (row["sentiment"] or "").strip().lower()
            if label not in LABELS:
                raise SentimentDataError(f"{where}: sentiment {row['sentiment']!r} is not one of {', '.join(LABELS)}")
            rows.append((_text(row["text"], where), label))
    return rows


def _text(text: str | None, where: str) -> str:
    if not text or not text.strip():
        raise SentimentDataError(f"{where}: empty text")
    return text
