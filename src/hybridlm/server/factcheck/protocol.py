"""POST /v1/factcheck: an answer and its sources in, a verdict per claim out."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from hybridlm.factcheck import text as tx
from hybridlm.factcheck.features import MAX_SOURCE_SENTENCES

MAX_CLAIMS = 100


class FactCheckRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    answer: str = Field(..., min_length=1)
    context: str | list[str] = Field(..., description="The source passage, or several.")

    @field_validator("answer")
    @classmethod
    def _has_text(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("the answer is blank")
        if (claims := len(tx.sentences(value))) > MAX_CLAIMS:
            raise ValueError(f"the answer has {claims} sentences; at most {MAX_CLAIMS} are checked per request")
        return value

    @field_validator("context")
    @classmethod
    def _has_source(cls, value: str | list[str]) -> str | list[str]:
        passages = [value] if isinstance(value, str) else value
        if not any(p.strip() for p in passages):
            raise ValueError("give at least one non-empty source passage")
        if (sentences := sum(len(tx.sentences(p)) for p in passages)) > MAX_SOURCE_SENTENCES:
            raise ValueError(f"the context has {sentences} sentences; at most {MAX_SOURCE_SENTENCES} are read")
        return value

    @property
    def passages(self) -> list[str]:
        return [self.context] if isinstance(self.context, str) else list(self.context)
