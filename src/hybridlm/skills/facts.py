"""Facts a ticket summary should not get wrong, pulled out locally: amounts, dates, card endings,
references, and the customer's intent and mood. They ride along to the LLM as a system note."""

from __future__ import annotations

import re
from typing import Any

from hybridlm.skills.sentiment import analyse
from hybridlm.types import Message

AMOUNT = re.compile(r"(?:[£$€]\s?\d[\d,]*(?:\.\d{1,2})?|\d[\d,]*(?:\.\d{1,2})?\s?(?:GBP|USD|EUR|pounds|dollars|euros))",
                     re.IGNORECASE)
DATE = re.compile(r"\b(?:\d{1,2}[/-]\d{1,2}(?:[/-]\d{2,4})?|(?:mon|tues|wednes|thurs|fri|satur|sun)day|yesterday|today|"
                  r"last (?:week|month)|\d{1,2} (?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*)\b",
                  re.IGNORECASE)
CARD_END = re.compile(r"\b(?:ending(?: in)?|last four(?: digits)?)\s*(\d{4})\b", re.IGNORECASE)
REFERENCE = re.compile(r"\b(?:ref(?:erence)?|ticket|order)\s*(?:no\.?|number|#)?\s*[:#]?\s*([A-Z0-9-]{5,})\b",
                       re.IGNORECASE)


def extract_facts(messages: list[Message]) -> dict[str, Any]:
    customer = [str(m.get("content") or "") for m in messages if m.get("role") == "user"]
    text = "\n".join(customer)
    moods = [analyse(t) for t in customer] or [analyse("")]
    return {
        "customer_messages": len(customer),
        "amounts": sorted(set(AMOUNT.findall(text))),
        "dates": sorted(set(DATE.findall(text))),
        "card_endings": sorted(set(CARD_END.findall(text))),
        "references": sorted(set(REFERENCE.findall(text))),
        "sentiment_first": moods[0].label,
        "sentiment_last": moods[-1].label,
        "angry": any(m.angry for m in moods),
    }
