"""Experiment: a MiniLM cross-encoder fine-tuned to read (evidence, claim) pairs, against the shipped
feature-based fact-checker, on one SummEdits domain held out.

Training rows are the same as `hybridlm train factcheck` uses (labelled claims of the other five
domains plus synthetic edits), capped at --rows for time; the evidence of a claim is its three
nearest source sentences (MiniLM). The answer-level threshold is chosen on 300 pairs of the training
domains. One epoch on 2 CPU cores takes about a minute per 800 rows.

Run: python benchmarks/factcheck_cross_encoder.py --data ../shared/data/hallucination/summedits --held-out news
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from pathlib import Path

import numpy as np

from hybridlm.evaluation.factcheck_eval import binary_metrics
from hybridlm.factcheck import text as tx
from hybridlm.factcheck.features import Source
from hybridlm.factcheck.training import FactPair, labelled_rows, load_pairs, synthetic_rows
from hybridlm.models.encoder import CachedEncoder, EmbeddingCache, load_encoder, minilm_path

MAX_TOKENS = 128


def evidence(source: Source, claim_vector: np.ndarray) -> str:
    order = np.argsort(-(source.vectors @ claim_vector))[:3]
    return " ".join(source.sentences[i] for i in sorted(order))


def pairs_for(rows: list, encoder: CachedEncoder) -> list[tuple[str, str, int]]:
    sources: dict[str, Source] = {}
    out = []
    for row in rows:
        source = sources.get(row.source) or sources.setdefault(row.source, Source.build([row.source], encoder))
        out.append((evidence(source, encoder.encode([row.claim])[0]), row.claim, row.label))
    return out


def answer_scores(model, tokenizer, pairs: list[FactPair], encoder: CachedEncoder) -> np.ndarray:  # type: ignore[no-untyped-def]
    import torch

    scores = []
    for pair in pairs:
        source = Source.build([pair.source], encoder)
        claims = tx.sentences(pair.answer) or [pair.answer]
        premises = [evidence(source, v) for v in encoder.encode(claims)]
        batch = tokenizer(premises, claims, truncation="only_first", max_length=MAX_TOKENS, padding=True,
                          return_tensors="pt")
        with torch.no_grad():
            p = torch.softmax(model(**batch).logits, dim=-1)[:, 1].numpy()
        scores.append(float(p.min()))
    return np.array(scores)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="the SummEdits folder")
    parser.add_argument("--held-out", default="news")
    parser.add_argument("--rows", type=int, default=6000)
    parser.add_argument("--epochs", type=int, default=1)
    args = parser.parse_args()

    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    torch.manual_seed(0)
    torch.set_num_threads(os.cpu_count() or 2)
    encoder = CachedEncoder(load_encoder("minilm"), EmbeddingCache())
    domains = {p.stem.removeprefix("summedits_"): load_pairs(p) for p in sorted(args.data.glob("summedits_*.json"))}
    test = domains[args.held_out]
    training = [p for name, rest in domains.items() if name != args.held_out for p in rest]
    rng = random.Random(0)
    rng.shuffle(training)
    validation, training = training[:300], training[300:]
    rows = labelled_rows(training) + synthetic_rows(training)
    rng.shuffle(rows)
    examples = pairs_for(rows[: args.rows], encoder)

    tokenizer = AutoTokenizer.from_pretrained(str(minilm_path()))
    model = AutoModelForSequenceClassification.from_pretrained(str(minilm_path()), num_labels=2)
    optimiser = torch.optim.AdamW(model.parameters(), lr=3e-5)
    labels = np.array([y for _, _, y in examples])
    weights = torch.tensor([len(labels) / (2 * max((labels == c).sum(), 1)) for c in (0, 1)], dtype=torch.float)
    loss_fn = torch.nn.CrossEntropyLoss(weight=weights)
    start = time.perf_counter()
    model.train()
    for _ in range(args.epochs):
        for i in range(0, len(examples), 16):
            batch = examples[i:i + 16]
            enc = tokenizer([b[0] for b in batch], [b[1] for b in batch], truncation="only_first",
                            max_length=MAX_TOKENS, padding=True, return_tensors="pt")
            loss = loss_fn(model(**enc).logits, torch.tensor([b[2] for b in batch]))
            loss.backward()
            optimiser.step()
            optimiser.zero_grad()
    train_s = time.perf_counter() - start
    model.eval()
    val_scores = answer_scores(model, tokenizer, validation, encoder)
    val_labels = np.array([p.label for p in validation])
    candidates = np.quantile(val_scores, np.linspace(0.02, 0.98, 49))
    threshold = max(candidates, key=lambda t: binary_metrics(val_labels, val_scores, t)["balanced_accuracy"])
    scores = answer_scores(model, tokenizer, test, encoder)
    result = {"held_out": args.held_out, "training_rows": len(examples), "train_minutes": round(train_s / 60, 1),
              **binary_metrics([p.label for p in test], scores, float(threshold))}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
