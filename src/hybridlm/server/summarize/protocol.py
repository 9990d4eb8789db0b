"""POST /v1/summarize: a support conversation in, a ticket summary and the facts behind it out."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from hybridlm.server.chat.protocol import ChatMessageIn


class SummarizeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    messages: list[ChatMessageIn] = Field(..., min_length=1)
    max_tokens: int = Field(300, gt=0, le=4096)
