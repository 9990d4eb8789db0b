"""The support desk's policy: which messages a canned answer, the local SLM or the LLM should take.

In order: a conversation inside a troubleshooting flow stays in it (or escalates when the
customer leaves it); a request for a summary or report, or an angry or unhappy customer (the sentiment skill's calibrated call) -> LLM; a
confident FAQ match that the intent model does not contradict -> the knowledge base answers, no
model call; an out-of-scope message, an
unsure intent, two intents at once or a long multi-part message -> LLM; a routine intent with a
flow starts it; any other routine intent -> SLM. The LLM gets
the small models' signals (intent, sentiment, FAQ near-miss) in a system note; the SLM gets the
intent and, when a FAQ entry about the same intent comes close, its answer as guidance, so a
small model answers from the company's own text instead of from its imagination.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

from hybridlm.routing.base import last_user_text
from hybridlm.skills.base import Signals, Skill
from hybridlm.skills.faq import FAQMatch, KnowledgeBase
from hybridlm.skills.flows import FlowEngine
from hybridlm.skills.intent import IntentModel, IntentPrediction
from hybridlm.skills.sentiment import Sentiment, SentimentSkill
from hybridlm.types import Message

Action = Literal["faq", "flow", "slm", "llm"]
GUIDANCE_SIMILARITY = 0.5  # a FAQ answer this close and about the same intent guides the SLM
SUMMARY = re.compile(r"\b(summar(y|ise|ize)|report|recap|overview of (our|my|this) (conversation|case|ticket))\b",
                     re.IGNORECASE)


@dataclass(frozen=True)
class SupportDecision:
    action: Action
    reason: str
    signals: dict[str, Any] = field(default_factory=dict)
    faq: FAQMatch | None = None  # the FAQ answered (action faq), or guides the SLM (action slm)
    reply: str | None = None  # the canned answer of a FAQ or flow step: no model call


@dataclass
class SupportPolicy:
    intents: IntentModel | None
    kb: KnowledgeBase | None
    escalate_sentiment: float = -0.5
    max_routine_words: int = 60
    min_intent_confidence: float = 0.65
    second_intent_share: float = 0.3
    llm_intents: set[str] = field(default_factory=set)
    flows: FlowEngine | None = None
    sentiment: SentimentSkill = field(default_factory=SentimentSkill)

    @property
    def skills(self) -> list[Skill]:
        return [self.sentiment, *([self.intents] if self.intents else []), *([self.kb] if self.kb else [])]

    def analyse(self, messages: list[Message]) -> dict[str, Signals]:
        """Every skill's signals for the conversation, by skill name."""
        return {signals.skill: signals for signals in (skill.analyse(messages) for skill in self.skills)}

    def decide(self, messages: list[Message], conversation: str | None = None) -> SupportDecision:
        text = last_user_text(messages)
        if self.flows and conversation and self.flows.active(conversation):
            turn = self.flows.answer(conversation, text)
            signals = {"flow": turn.flow, **{f"slot_{k}": v for k, v in turn.slots.items()}}
            if turn.escalate:
                return SupportDecision("llm", turn.reason, {**signals, "escalation": "flow"})
            return SupportDecision("flow", turn.reason, signals, reply=turn.reply)
        found = self.analyse(messages)
        signals: dict[str, Any] = {k: v for s in found.values() for k, v in s.values.items()}
        sentiment: Sentiment = found["sentiment"].finding
        intent: IntentPrediction | None = found["intent"].finding if "intent" in found else None
        faq: FAQMatch | None = found["faq"].finding if "faq" in found else None

        def llm(why: str, reason: str) -> SupportDecision:
            """Escalate, `why` naming the rule (the dashboard counts escalations by it)."""
            return SupportDecision("llm", reason, {**signals, "escalation": why})

        if SUMMARY.search(text):
            return llm("summary", "a summary or report was asked for")
        if sentiment.angry or self.unhappy(sentiment):
            return llm("negative_sentiment", f"negative sentiment ({self.why_unhappy(sentiment)})")
        agrees = faq is not None and (intent is None or faq.faq.intent in (None, intent.label))
        if faq and self.kb and faq.similarity >= self.kb.threshold and agrees:
            return SupportDecision("faq", f"FAQ match {faq.similarity:.2f} >= {self.kb.threshold:.2f}: "
                                          f"'{faq.faq.question}'", signals, faq, faq.faq.answer)
        if intent is None:
            return SupportDecision("slm", "no intent model; the SLM answers what the FAQ does not", signals)
        if intent.out_of_scope:
            return llm("out_of_scope", f"out of scope: {intent.scope_reason}")
        if intent.confidence < self.min_intent_confidence:
            return llm("low_intent_confidence", f"low intent confidence: '{intent.label}' at {intent.confidence:.2f}")
        if intent.label in self.llm_intents:
            return llm("llm_intent", f"intent '{intent.label}' is handled by the LLM")
        second = intent.alternatives[1] if len(intent.alternatives) > 1 else None
        if second and second[1] >= self.second_intent_share:
            return llm("two_intents", f"two intents: '{intent.label}' ({intent.confidence:.2f}) and '{second[0]}' ({second[1]:.2f})")
        words, questions = len(text.split()), text.count("?")
        if words > self.max_routine_words or questions > 2:
            return llm("long_message", f"long multi-part message ({words} words, {questions} questions)")
        turn = self.flows.start(conversation, intent.label) if self.flows and conversation else None
        if turn is not None:
            if turn.escalate:
                return llm("flow", turn.reason)
            return SupportDecision("flow", f"routine intent '{intent.label}' ({intent.confidence:.2f}) starts "
                                           f"{turn.reason.removeprefix('flow ')}", signals, reply=turn.reply)
        guide = faq if faq and faq.similarity >= GUIDANCE_SIMILARITY and agrees else None
        return SupportDecision("slm", f"routine intent '{intent.label}' ({intent.confidence:.2f})", signals, guide)

    def unhappy(self, sentiment: Sentiment) -> bool:
        """The learned reader's calibrated call; the lexicon's compound score against `escalate_sentiment`."""
        return sentiment.unhappy if sentiment.reader == "learned" else sentiment.score <= self.escalate_sentiment

    def why_unhappy(self, sentiment: Sentiment) -> str:
        if sentiment.reader == "learned" and self.sentiment.model:
            why = f"P(negative) {sentiment.negativity:.2f}, threshold {self.sentiment.model.threshold:.2f}"
        else:
            why = f"{sentiment.score:+.2f}"
        why += ", angry" if sentiment.angry else ""
        return why + (f"; signs: {', '.join(sentiment.signs)}" if sentiment.signs else "")

    @staticmethod
    def note_for_slm(decision: SupportDecision) -> str:
        """The SLM's brief: what the customer wants and the company's own answer to build on."""
        topic = str(decision.signals.get("intent", "")).replace("_", " ")
        note = "You are a customer support assistant. Reply in two or three short, polite sentences."
        if topic:
            note += f" The customer's request is about: {topic}."
        if decision.faq:
            note += (f" Base your reply on the company's help text and add nothing it does not say: "
                     f"\"{decision.faq.faq.answer}\"")
        return note

    @staticmethod
    def note_for_llm(decision: SupportDecision) -> str:
        """What the small models found, for the LLM's system prompt."""
        parts = [f"{k}={v}" for k, v in decision.signals.items() if k != "escalation"]  # the reason says it
        return ("Support desk signals from local models (use them, do not repeat them): "
                + "; ".join(parts) + f". Escalated because: {decision.reason}.")
