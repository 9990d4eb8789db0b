"""A knowledge base of question-answer pairs, matched by meaning: a confident match is answered
straight from the base, with no model call; a weak one is left to the models.

Files: YAML (a list of {question, answer, also: [other phrasings]}), CSV (question,answer) or
Markdown (each `## question` heading followed by its answer). Errors name the file and line.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from hybridlm.errors import HybridLMError
from hybridlm.models.encoder import load_encoder
from hybridlm.routing.base import last_user_text
from hybridlm.skills.base import Signals
from hybridlm.types import Message
from hybridlm.skills.yaml_list import read_yaml_list

ENCODER = "minilm"
KB_FILE = "kb.jsonl"


class KnowledgeBaseError(HybridLMError):
    """A knowledge-base file that cannot be read, with its file and line."""


@dataclass(frozen=True)
class FAQ:
    question: str
    answer: str
    source: str
    line: int
    also: list[str] = field(default_factory=list)
    intent: str | None = None  # the intent it answers, when known (lets an evaluation check answers)


@dataclass(frozen=True)
class FAQMatch:
    faq: FAQ
    similarity: float
    matched: str


def _need(value: object, what: str, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise KnowledgeBaseError(f"{where}: '{what}' must be non-empty text")
    return value.strip()


def _from_yaml(path: Path) -> list[FAQ]:
    out = []
    for item, item_node in read_yaml_list(path, KnowledgeBaseError, "{question, answer} entries"):
        line = item_node.start_mark.line + 1
        where = f"{path}, line {line}"
        if not isinstance(item, dict):
            raise KnowledgeBaseError(f"{where}: expected a mapping with 'question' and 'answer'")
        also = item.get("also") or []
        if not isinstance(also, list):
            raise KnowledgeBaseError(f"{where}: 'also' must be a list of phrasings")
        intent = item.get("intent")
        out.append(FAQ(_need(item.get("question"), "question", where), _need(item.get("answer"), "answer", where),
                       path.name, line, [_need(a, "also", where) for a in also], str(intent) if intent else None))
    return out


def _from_csv(path: Path) -> list[FAQ]:
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        if not {"question", "answer"} <= set(reader.fieldnames or []):
            raise KnowledgeBaseError(f"{path}, line 1: needs columns question,answer (has {reader.fieldnames})")
        return [FAQ(_need(r["question"], "question", f"{path}, line {reader.line_num}"),
                    _need(r["answer"], "answer", f"{path}, line {reader.line_num}"), path.name, reader.line_num)
                for r in reader]


def _from_markdown(path: Path) -> list[FAQ]:
    out: list[FAQ] = []
    question, start, body = None, 0, []
    for number, line in enumerate([*path.read_text(encoding="utf-8").splitlines(), "## "], 1):
        if line.startswith("## "):
            if question is not None:
                out.append(FAQ(question, _need("\n".join(body), "answer", f"{path}, line {start}"), path.name, start))
            question, start, body = line[3:].strip() or None, number, []
        elif question is not None:
            body.append(line)
    return out


READERS = {".yaml": _from_yaml, ".yml": _from_yaml, ".csv": _from_csv, ".md": _from_markdown}


def read_faqs(path: Path) -> list[FAQ]:
    reader = READERS.get(path.suffix.lower())
    if reader is None:
        raise KnowledgeBaseError(f"{path}: unknown kind of file; use .yaml, .csv or .md")
    if not path.is_file():
        raise KnowledgeBaseError(f"{path}: no such file")
    faqs = reader(path)
    if not faqs:
        raise KnowledgeBaseError(f"{path}: no question-answer pairs found")
    return faqs


class KnowledgeBase:
    """FAQs and the embeddings of every phrasing of their questions."""

    def __init__(self, faqs: Sequence[FAQ], threshold: float = 0.75) -> None:
        self.faqs = list(faqs)
        self.threshold = threshold
        self._owner = [i for i, f in enumerate(self.faqs) for _ in (f.question, *f.also)]
        self._phrasings = [p for f in self.faqs for p in (f.question, *f.also)]
        self._vectors = load_encoder(ENCODER).encode(self._phrasings) if self.faqs else np.zeros((0, 1))

    name = "faq"

    def analyse(self, messages: list[Message]) -> Signals:
        """The nearest FAQ to the last user message, as a skill."""
        match = self.best([last_user_text(messages)])[0]
        values = {"faq_similarity": match.similarity, "faq_question": match.faq.question} if match else {}
        return Signals(self.name, values, match)

    def best(self, texts: Sequence[str]) -> list[FAQMatch | None]:
        if not self.faqs:
            return [None] * len(texts)
        sims = load_encoder(ENCODER).encode(texts) @ self._vectors.T
        out = []
        for row in sims:
            j = int(row.argmax())
            out.append(FAQMatch(self.faqs[self._owner[j]], round(float(row[j]), 4), self._phrasings[j]))
        return out

    def answer(self, text: str) -> FAQMatch | None:
        """The best match if it clears the threshold, else None (the models take it)."""
        match = self.best([text])[0]
        return match if match is not None and match.similarity >= self.threshold else None

    @staticmethod
    def add_file(store: Path, path: Path) -> int:
        """Keep a file's FAQs in the data dir's knowledge base, replacing what that file gave before."""
        faqs = read_faqs(path)
        kept = [f for f in load_store(store) if f.source != path.name]
        store.parent.mkdir(parents=True, exist_ok=True)
        with store.open("w", encoding="utf-8") as out:
            for f in [*kept, *faqs]:
                out.write(json.dumps(asdict(f), ensure_ascii=False) + "\n")
        return len(faqs)


def load_store(store: Path) -> list[FAQ]:
    if not store.is_file():
        return []
    return [FAQ(**json.loads(line)) for line in store.read_text(encoding="utf-8").splitlines() if line.strip()]
