"""`hybridlm demo support`: a sample bank's support desk over a stream of real customer queries.

The bundled company has a FAQ (faq.yaml), troubleshooting flows (flows.yaml) and intents trained
from BANKING77's training set; the stream is BANKING77's test set. Each query goes through the
support policy (sentiment, FAQ match, intent with out-of-scope check): answered from the FAQ,
started on a flow, answered by the local SLM, or escalated to the LLM. Over the whole stream only
the decisions are run: escalations are counted, marked and priced. With `answers`, that many
queries spread over the stream are also answered for real through the gateway's pipeline
(`demo/answers.py`).
Accuracy of what was handled locally: the FAQ entry's intent, or the predicted intent, against
the true one.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path

import numpy as np

from hybridlm.config import Config, Price
from hybridlm.demo.answers import Transcript, answer_queries
from hybridlm.evaluation.intent_eval import load_intent_data
from hybridlm.models.base import estimate_tokens
from hybridlm.models.encoder import cache_dir
from hybridlm.skills.faq import KnowledgeBase, read_faqs
from hybridlm.skills.flows import FlowEngine, FlowStore, read_flows
from hybridlm.skills.intent import IntentModel, fit_intent
from hybridlm.skills.build import sentiment_skill
from hybridlm.skills.support import SupportPolicy

REFERENCE_PRICE = Price(input=0.15, output=0.60)  # gpt-4o-mini list price, when no LLM tier is priced
ANSWER_TOKENS = 150
ACTIONS = ("faq", "flow", "slm", "llm")


def demo_file(name: str) -> Path:
    return Path(str(files("hybridlm.demo") / "data" / name))


@dataclass
class DemoResult:
    queries: int = 0
    handled: Counter[str] = field(default_factory=Counter)  # faq / flow / slm / llm
    correct_local: int = 0
    guided: int = 0  # SLM answers briefed with a near FAQ entry's answer
    local: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    unhappy: Counter[str] = field(default_factory=Counter)  # sentiment escalations by what marked them
    latencies_ms: list[float] = field(default_factory=list)
    cost_usd: float = 0.0
    all_llm_cost_usd: float = 0.0
    price: Price = field(default_factory=lambda: REFERENCE_PRICE)
    transcripts: list[Transcript] = field(default_factory=list)  # queries answered for real

    @property
    def local_accuracy(self) -> float:
        return self.correct_local / self.local if self.local else 0.0

    def summary(self) -> dict[str, float | int | dict[str, int] | bool]:
        lat = np.array(self.latencies_ms) if self.latencies_ms else np.zeros(1)
        return {
            "queries": self.queries,
            **{f"share_{k}": round(self.handled[k] / max(1, self.queries), 4) for k in ACTIONS},
            "local_accuracy": round(self.local_accuracy, 4),
            "slm_with_faq_guidance": self.guided,
            "latency_p50_ms": round(float(np.percentile(lat, 50)), 2),
            "latency_p95_ms": round(float(np.percentile(lat, 95)), 2),
            "cost_usd": round(self.cost_usd, 6),
            "all_llm_cost_usd": round(self.all_llm_cost_usd, 6),
            "saved_share": round(1 - self.cost_usd / self.all_llm_cost_usd, 4) if self.all_llm_cost_usd else 0.0,
            "top_escalation_reasons": dict(self.reasons.most_common(5)),
            "sentiment_escalations": sum(self.unhappy.values()),
            "sentiment_escalations_why": dict(self.unhappy.most_common()),
            **(self._answered() if self.transcripts else {}),
        }

    def _answered(self) -> dict[str, float | int | dict[str, int]]:
        latency = np.array([t.latency_ms for t in self.transcripts])
        return {
            "answered": len(self.transcripts),
            "answered_by": dict(Counter(str(t.tier) for t in self.transcripts)),
            "escalations_not_sent": sum(t.fallback is not None for t in self.transcripts),  # LLM missing or down
            "answer_latency_p50_ms": round(float(np.percentile(latency, 50)), 1),
            "answer_latency_p95_ms": round(float(np.percentile(latency, 95)), 1),
            "answered_cost_usd": round(sum(t.cost_usd for t in self.transcripts), 6),
        }


def intent_model(progress: Callable[[str], None]) -> IntentModel:
    """The sample bank's intents: trained once from BANKING77's training set, then kept in the cache dir."""
    path = cache_dir() / "demo" / "banking77-intents.npz"
    if path.is_file():
        return IntentModel.load(path)
    progress("training the sample bank's intents on BANKING77 (once; about a minute)")
    texts, labels = load_intent_data(demo_file("banking77_train.csv"))
    model = fit_intent(texts, labels, name="banking77_train.csv")
    model.save(path)
    return model


def reason_kind(reason: str) -> str:
    """'out of scope: best intent ...' -> 'out of scope', for counting."""
    return reason.split(":")[0].split("(")[0].strip()


def unhappy_because(signals: dict[str, object]) -> str:
    """What marked an escalated customer as unhappy: anger, the complaint signs, or the wording alone."""
    if signals.get("angry"):
        return "angry"
    signs = signals.get("complaint_signs") or ()
    return "complaint signs: " + ", ".join(signs) if signs else "negative wording"  # type: ignore[arg-type]


def run_demo(config: Config, limit: int | None, progress: Callable[[str], None],
             step: Callable[[], None] | None = None, answers: int = 0, log_path: Path | None = None) -> DemoResult:
    """Decide every query; answer `answers` of them, spread over the stream, for real, logging them to `log_path`."""
    flows = FlowEngine(read_flows(demo_file("flows.yaml")), FlowStore(cache_dir() / "demo" / "flows.db"))
    policy = SupportPolicy(intent_model(progress), KnowledgeBase(read_faqs(demo_file("faq.yaml")),
                                                                 config.support.faq_threshold),
                           escalate_sentiment=config.support.escalate_sentiment,
                           max_routine_words=config.support.max_routine_words,
                           min_intent_confidence=config.support.min_intent_confidence, flows=flows,
                           sentiment=sentiment_skill(config.support))
    texts, labels = load_intent_data(demo_file("banking77_test.csv"))
    if limit:
        texts, labels = texts[:limit], labels[:limit]
    remote = config.remote_tier
    result = DemoResult(price=config.tiers[remote].price if remote else REFERENCE_PRICE)
    progress("customer queries")
    for number, (text, label) in enumerate(zip(texts, labels, strict=True)):
        conversation = f"demo-{number}"
        start = time.perf_counter()
        decision = policy.decide([{"role": "user", "content": text}], conversation)
        flows.store.clear(conversation)  # each query is its own conversation here
        result.latencies_ms.append((time.perf_counter() - start) * 1000)
        result.queries += 1
        result.handled[decision.action] += 1
        llm_cost = result.price.cost(estimate_tokens(text), ANSWER_TOKENS)
        result.all_llm_cost_usd += llm_cost
        if decision.action == "llm":
            result.cost_usd += llm_cost
            result.reasons[reason_kind(decision.reason)] += 1
            if decision.reason.startswith("negative sentiment"):
                result.unhappy[unhappy_because(decision.signals)] += 1
        else:
            result.local += 1
            result.guided += decision.action == "slm" and decision.faq is not None
            if decision.action == "faq" and decision.faq:
                answered = decision.faq.faq.intent
            else:
                answered = decision.signals.get("intent")  # flows start by intent
            result.correct_local += answered == label
        if step:
            step()
    if answers:
        progress(f"answering {min(answers, len(texts))} queries through the pipeline")
        stream = list(zip(texts, labels, strict=True))
        sample = stream[:: max(1, len(stream) // answers)][:answers]  # spread over the stream, which is sorted by intent
        result.transcripts = answer_queries(config, policy, sample, log_path or cache_dir() / "demo" / "requests.db",
                                            step)
    return result
