"""POST /v1/feedback: a quality score (or a thumb) for a request the gateway answered."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    request_id: str = Field(..., min_length=1)
    score: float | None = Field(None, ge=0.0, le=1.0, description="Quality in [0, 1].")
    thumbs: Literal["up", "down"] | None = None
    comment: str | None = Field(None, max_length=2000)

    @model_validator(mode="after")
    def _one_rating(self) -> FeedbackRequest:
        if (self.score is None) == (self.thumbs is None):
            raise ValueError("give exactly one of 'score' (0-1) or 'thumbs' ('up' or 'down')")
        return self

    @property
    def value(self) -> float:
        if self.score is not None:
            return self.score
        return 1.0 if self.thumbs == "up" else 0.0
