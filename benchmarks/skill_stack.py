"""Throughput of the support skill stack (intent + learned sentiment + FAQ match) per query on this CPU:
one query at a time (the full support decision) and batched (the three skills over a batch).

Run: python benchmarks/skill_stack.py [--queries 1000] [--batch 64] [--intent-model FILE] [--lexicon]
Uses the bundled sample bank (its intents train once, about a minute, then are cached), or the
intent model file given (e.g. one tuned on a larger encoder with `--encoder`).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np

from hybridlm.config import parse_config
from hybridlm.demo.support import demo_file, intent_model
from hybridlm.evaluation.intent_eval import load_intent_data
from hybridlm.skills.faq import KnowledgeBase, read_faqs
from hybridlm.skills.intent import IntentModel
from hybridlm.skills.sentiment import SentimentModel, SentimentSkill, shipped_model_path
from hybridlm.skills.support import SupportPolicy

from machine import print_table  # benchmarks/machine.py: run as a script, its folder is on the path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--intent-model", type=Path, help="an intent model file instead of the sample bank's")
    parser.add_argument("--lexicon", action="store_true", help="VADER alone instead of the learned sentiment reader")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    config = parse_config({})
    intents = IntentModel.load(args.intent_model) if args.intent_model else intent_model(lambda message: None)
    kb = KnowledgeBase(read_faqs(demo_file("faq.yaml")), config.support.faq_threshold)
    sentiment = SentimentSkill(None if args.lexicon else SentimentModel.load(shipped_model_path()))
    policy = SupportPolicy(intents, kb, sentiment=sentiment)
    texts = load_intent_data(demo_file("banking77_test.csv"))[0][: args.queries]
    for text in texts[:20]:
        policy.decide([{"role": "user", "content": text + " (warm-up)"}])

    single = []
    for text in texts:
        start = time.perf_counter()
        policy.decide([{"role": "user", "content": text}])
        single.append((time.perf_counter() - start) * 1000)

    variants = [t + " please" for t in texts]  # new strings: nothing cached from the single-query pass
    start = time.perf_counter()
    for i in range(0, len(variants), args.batch):
        batch = variants[i:i + args.batch]
        intents.predict(batch)
        kb.best(batch)
        sentiment.read(batch)
    batched_qps = len(variants) / (time.perf_counter() - start)

    start = time.perf_counter()
    for text in texts:
        sentiment.read([text + " again"])  # uncached: the learned reader embeds it itself
    sentiment_qps = len(texts) / (time.perf_counter() - start)

    result = {"queries": len(texts), "batch1_median_ms": statistics.median(single),
              "batch1_p95_ms": float(np.percentile(single, 95)), "batched_qps": batched_qps,
              "batch": args.batch, "sentiment_only_qps": sentiment_qps}
    if args.json:
        print(json.dumps(result))
        return
    print_table(["queries", "batch-1 median ms", "batch-1 p95 ms", f"batched queries/s (batch {args.batch})",
                 "sentiment alone, queries/s"],
                [[len(texts), f"{result['batch1_median_ms']:.2f}", f"{result['batch1_p95_ms']:.2f}",
                  f"{batched_qps:.0f}", f"{sentiment_qps:.0f}"]])


if __name__ == "__main__":
    main()
