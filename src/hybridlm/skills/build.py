"""Build the support policy from the configuration: intent and sentiment model files, knowledge-base files and store."""

from __future__ import annotations

from hybridlm.config import Config, SupportConfig
from hybridlm.errors import MissingExtra
from hybridlm.extras import require
from hybridlm.skills.faq import KB_FILE, KnowledgeBase, load_store, read_faqs
from hybridlm.skills.flows import FlowEngine, FlowStore, read_flows
from hybridlm.skills.intent import IntentModel
from hybridlm.skills.sentiment import SentimentModel, SentimentSkill, shipped_model_path
from hybridlm.skills.support import SupportPolicy

FLOWS_FILE = "flows.db"


def support_policy(config: Config) -> SupportPolicy:
    support = config.support
    faqs = load_store(config.resolved_data_dir() / KB_FILE)
    for path in support.kb_files:
        faqs += read_faqs(path.expanduser())
    kb = KnowledgeBase(faqs, support.faq_threshold) if faqs else None
    intents = IntentModel.load(support.intent_model.expanduser()) if support.intent_model else None
    flows = [flow for path in support.flow_files for flow in read_flows(path.expanduser())]
    engine = FlowEngine(flows, FlowStore(config.resolved_data_dir() / FLOWS_FILE)) if flows else None
    return SupportPolicy(intents, kb, escalate_sentiment=support.escalate_sentiment,
                         max_routine_words=support.max_routine_words,
                         min_intent_confidence=support.min_intent_confidence,
                         llm_intents=set(support.llm_intents), flows=engine, sentiment=sentiment_skill(support))


def sentiment_skill(support: SupportConfig) -> SentimentSkill:
    """The configured reader; VADER alone when the learned one's extra is not installed."""
    if support.sentiment == "lexicon":
        return SentimentSkill()
    try:
        require("sklearn")
        require("sentence_transformers")
    except MissingExtra:
        return SentimentSkill()
    return SentimentSkill(SentimentModel.load((support.sentiment_model or shipped_model_path()).expanduser()))
