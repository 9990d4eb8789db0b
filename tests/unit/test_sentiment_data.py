"""Reading sentiment data: GoEmotions' groups mapped to three classes, and errors that name the file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from hybridlm.skills.sentiment import complaint_signs
from hybridlm.skills.sentiment_data import SentimentDataError, load_sentiment_data, split_file


def test_goemotions_groups_become_three_classes(tmp_path: Path) -> None:
    (tmp_path / "labels.txt").write_text("ambiguous\nnegative\nneutral\npositive\n")
    (tmp_path / "train.tsv").write_text("so sad\t1\ta\nlovely\t3\tb\nhmm what\t0\tc\nok\t2\td\nlove it, hate it\t3,1\te\n")
    data = load_sentiment_data(tmp_path / "train.tsv")
    assert data.labels == ["negative", "positive", "neutral", "neutral", "negative"]
    assert split_file(tmp_path / "train.tsv", "val") is None
    (tmp_path / "dev.tsv").write_text("fine\t2\tf\n")
    assert split_file(tmp_path / "train.tsv", "val") == tmp_path / "dev.tsv"


@pytest.mark.parametrize(("name", "body", "message"), [
    ("a.tsv", "good\t3\tx\nbad\tseven\ty\n", "a.tsv, line 2: label ids must be comma-separated numbers"),
    ("a.tsv", "good\t3\tx\nbad\t9\ty\n", "a.tsv, line 2: label ids [9] outside 0-3"),
    ("a.tsv", "good\n", "a.tsv, line 1: needs text<TAB>label ids"),
    ("a.csv", "text,label\nhi,positive\n", "a.csv, line 1: needs columns text,sentiment"),
    ("a.csv", "text,sentiment\nhi,positive\n ,negative\n", "a.csv, line 3: empty text"),
    ("a.csv", "text,sentiment\n", "a.csv: no rows"),
])
def test_bad_files_name_the_file_and_line(tmp_path: Path, name: str, body: str, message: str) -> None:
    (tmp_path / name).write_text(body)
    with pytest.raises(SentimentDataError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_sentiment_data(tmp_path / name)


def test_complaint_signs() -> None:
    assert complaint_signs("On hold for 2 hours and my refund still hasn't arrived") == (
        "waiting", "repeated", "failed", "money back")
    assert complaint_signs("How do I change my PIN?") == ()
