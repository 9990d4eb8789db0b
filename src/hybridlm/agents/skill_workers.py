"""Workers the project's own small models do: pick the passages that matter, read sentiment, find the FAQ,
search the knowledge store, fact-check a claim. CPU work, run in the worker pool."""

from __future__ import annotations

from importlib.util import find_spec

from pydantic import BaseModel, Field

from hybridlm.agents.workers import StepContext, worker
from hybridlm.deployment import Deployment


def _encoders_installed(_: Deployment) -> bool:
    return find_spec("sentence_transformers") is not None


def _has_knowledge_base(deployment: Deployment) -> bool:
    return _encoders_installed(deployment) and deployment.support.kb is not None


def _has_documents(deployment: Deployment) -> bool:
    from hybridlm.rag.store import STORE_FILE

    return _encoders_installed(deployment) and (deployment.config.resolved_data_dir() / STORE_FILE).exists()


class ExcerptInput(BaseModel):
    text: str
    question: str
    budget_tokens: int = Field(150, ge=16, le=4000)


class Excerpt(BaseModel):
    excerpt: str
    kept_tokens: int
    original_tokens: int


@worker("excerpt", input=ExcerptInput, output=Excerpt, kind="skill", available=_encoders_installed,
        description="the sentences of one text that bear on the question, in order, numbered, within the budget")
def excerpt(inputs: ExcerptInput, context: StepContext) -> Excerpt:
    from hybridlm.shrinking import shared_shrinker

    shrunk = shared_shrinker().select(inputs.question, [("text", inputs.text)], inputs.budget_tokens)
    return Excerpt(excerpt=shrunk.render(), kept_tokens=shrunk.kept_tokens, original_tokens=shrunk.original_tokens)


class TextInput(BaseModel):
    text: str


class SentimentOutput(BaseModel):
    label: str
    score: float = Field(ge=-1.0, le=1.0)


@worker("sentiment", input=TextInput, output=SentimentOutput, kind="skill",
        available=lambda _: find_spec("vaderSentiment") is not None,
        description="negative / neutral / positive, and a score from -1 to 1")
def sentiment(inputs: TextInput, context: StepContext) -> SentimentOutput:
    from hybridlm.skills.sentiment import analyse

    found = analyse(inputs.text)
    return SentimentOutput(label=found.label, score=found.score)


class FaqOutput(BaseModel):
    question: str | None
    answer: str | None
    similarity: float


@worker("faq", input=TextInput, output=FaqOutput, kind="skill", available=_has_knowledge_base,
        description="the knowledge base's answer to a customer's question, if one fits (question null if none)")
def faq(inputs: TextInput, context: StepContext) -> FaqOutput:
    kb = context.deployment.support.kb
    assert kb is not None
    match = kb.best([inputs.text])[0]
    if match is None or match.similarity < kb.threshold:
        return FaqOutput(question=None, answer=None, similarity=match.similarity if match else 0.0)
    return FaqOutput(question=match.faq.question, answer=match.faq.answer, similarity=match.similarity)


class RetrieveInput(BaseModel):
    query: str
    k: int = Field(3, ge=1, le=10)


class Retrieved(BaseModel):
    passages: list[str]
    sources: list[str]


@worker("retrieve", input=RetrieveInput, output=Retrieved, kind="skill", available=_has_documents,
        description="the k passages of the ingested documents that best match the query")
def retrieve(inputs: RetrieveInput, context: StepContext) -> Retrieved:
    hits = context.deployment.rag.store.search(inputs.query, inputs.k)
    return Retrieved(passages=[h.text for h in hits], sources=[h.path for h in hits])


class FactcheckInput(BaseModel):
    passage: str
    claim: str


class Factchecked(BaseModel):
    supported: bool
    score: float
    flagged: list[str]


@worker("factcheck", input=FactcheckInput, output=Factchecked, kind="skill", available=_encoders_installed,
        description="whether the passage supports every claim of the text, and the claims it does not")
def factcheck(inputs: FactcheckInput, context: StepContext) -> Factchecked:
    report = context.deployment.fact_checker.check(inputs.passage, inputs.claim)
    return Factchecked(supported=report.supported, score=round(report.score, 4),
                       flagged=[v.claim for v in report.flagged])
