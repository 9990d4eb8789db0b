"""Grounded answers (`hybrid/rag`): the question is searched in the knowledge store, a small model
grades each chunk, only relevant ones reach the model as numbered sources to cite, and the answer
is fact-checked against them; flagged claims go back for correction, then are removed if still
unsupported; supported claims left uncited get their source's number. With nothing relevant found
the answer says so instead of inventing one.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from hybridlm.config import Config, RagConfig
from hybridlm.factcheck import text as tx
from hybridlm.factcheck.detector import SUPPORTED, FactChecker, FactReport
from hybridlm.rag.grading import RELEVANT, RelevanceGrader
from hybridlm.rag.store import STORE_FILE, KnowledgeStore
from hybridlm.types import Message

NO_SOURCE_TIER = "no_source"
NO_SOURCE_ANSWER = "I could not find this in the documents I have, so I will not guess."
NOTHING_LEFT = "The documents do not support an answer to this question."
SOURCES_PROMPT = ("Answer the user's question using only the numbered sources below, and cite the source of every "
                  "statement like [1]. If the sources do not contain the answer, say so.\n\n{sources}")
CORRECTION_PROMPT = ("These statements in your answer are not supported by the sources:\n{problems}\n"
                     "Rewrite the answer using only the sources: correct these statements or remove them. "
                     "Keep the citations.")
CITATION = re.compile(r"\s*\[\d+(?:,\s*\d+)*\]")


@dataclass(frozen=True)
class GradedChunk:
    n: int  # its number in the prompt, cited as [n]; 0 for a chunk not passed on
    path: str
    heading: str
    text: str
    grade: str
    score: float


@dataclass
class Grounding:
    """What one question was grounded on, and what the fact-check made of the answer."""

    sources: list[GradedChunk]  # graded relevant, numbered from 1
    graded: list[GradedChunk]  # every retrieved chunk with its grade
    report: FactReport | None = None
    rounds: int = 0
    removed: list[str] = field(default_factory=list)

    def messages(self, messages: list[Message]) -> list[Message]:
        numbered = "\n\n".join(f"[{s.n}] ({Path(s.path).name}{' - ' + s.heading if s.heading else ''})\n{s.text}"
                               for s in self.sources)
        return [{"role": "system", "content": SOURCES_PROMPT.format(sources=numbered)}, *messages]

    def correction(self, messages: list[Message], answer: str, report: FactReport) -> list[Message]:
        problems = "\n".join(f"- \"{c.claim}\" ({c.label}; source [{c.source + 1}] says: \"{c.evidence}\")"
                             for c in report.flagged)
        return [*self.messages(messages), {"role": "assistant", "content": answer},
                {"role": "user", "content": CORRECTION_PROMPT.format(problems=problems)}]

    def as_dict(self) -> dict[str, Any]:
        return {
            "sources": [{k: v for k, v in asdict(s).items() if k != "text"} for s in self.sources],
            "graded": [{"path": s.path, "heading": s.heading, "grade": s.grade, "score": round(s.score, 4)}
                       for s in self.graded],
            "verification": None if self.report is None else {**self.report.as_dict(), "rounds": self.rounds,
                                                              "removed": self.removed},
        }

    def summary(self) -> dict[str, Any]:
        """For the request log: where the answer came from and how its check went, without any text."""
        report = self.report
        return {"sources": [s.path for s in self.sources], "grades": [s.grade for s in self.graded],
                "claims": [c.label for c in report.claims] if report else None, "rounds": self.rounds,
                "removed": len(self.removed)}


def without_citations(text: str) -> str:
    return CITATION.sub("", text)


def cite(answer: str, report: FactReport) -> str:
    """Supported claims the model left uncited get the number of the source their evidence is in."""
    sources = {c.claim: c.source + 1 for c in report.claims if c.label == SUPPORTED and c.source >= 0}
    for sentence in tx.sentences(answer):
        n = sources.get(without_citations(sentence).strip())
        if n and not CITATION.search(sentence):
            body = sentence.rstrip()
            end = len(body.rstrip(".!?")) if body[-1:] in ".!?" else len(body)
            answer = answer.replace(sentence, f"{body[:end]} [{n}]{body[end:]}", 1)
    return answer


def remove_claims(answer: str, report: FactReport) -> tuple[str, list[str]]:
    """The answer without the sentences the report flags (matched with their citations stripped)."""
    flagged = {c.claim for c in report.flagged}
    kept, removed = [], []
    for sentence in tx.sentences(answer):
        (removed if without_citations(sentence).strip() in flagged else kept).append(sentence)
    return " ".join(kept), removed


class GroundedAnswers:
    def __init__(self, config: RagConfig, store: KnowledgeStore, grader: RelevanceGrader,
                 checker: FactChecker) -> None:
        self.config = config
        self.store, self.grader, self.checker = store, grader, checker

    @classmethod
    def from_config(cls, config: Config, checker: FactChecker) -> GroundedAnswers:
        rag = config.rag
        return cls(rag, KnowledgeStore(config.resolved_data_dir() / STORE_FILE), RelevanceGrader.load(rag.grader),
                   checker)

    def ground(self, question: str) -> Grounding:
        hits = self.store.search(question, self.config.top_k)
        grades = self.grader.grade(question, [h.text for h in hits])
        graded = [GradedChunk(0, h.path, h.heading, h.text, g.label, g.score)
                  for h, g in zip(hits, grades, strict=True)]
        relevant = [s for s in graded if s.grade == RELEVANT]
        return Grounding([replace(s, n=n) for n, s in enumerate(relevant, 1)], graded)

    async def verify(self, grounding: Grounding, messages: list[Message], answer: str,
                     ask: Callable[[list[Message]], Awaitable[str]]) -> str:
        """Check the answer; send flagged claims back up to `max_correction_rounds` times; then drop
        what is still flagged (if configured) and cite what the model left uncited. The grounding
        keeps the final report."""
        passages = [s.text for s in grounding.sources]
        while True:
            report = await asyncio.to_thread(self.checker.check, passages, without_citations(answer))
            grounding.report = report
            if report.supported or grounding.rounds >= self.config.max_correction_rounds:
                break
            answer = await ask(grounding.correction(messages, answer, report))
            grounding.rounds += 1
        if not report.supported and self.config.remove_unsupported:
            answer, grounding.removed = remove_claims(answer, report)
        return cite(answer, report) if answer else NOTHING_LEFT

    def close(self) -> None:
        self.store.close()
