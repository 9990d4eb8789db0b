"""Routing decision latency (batch 1, embedding included) and batched throughput, side by side
with aurelio-labs' semantic-router on the same queries and the same local MiniLM model.

All routers learn from the same training prompts (MMLU outcomes: the large model better or not)
and are timed on the same test prompts, alternating, in one run. APGR on the test prompts shows
what each one's speed costs in routing quality.

Run: python benchmarks/routing_latency.py --data ../shared/data/routing/routellm/mmlu
     (pip install semantic-router for the comparison; without it, that row is skipped)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from hybridlm.evaluation.router_eval import embed, two_model_result
from hybridlm.models.encoder import minilm_path
from hybridlm.routing.learned import fit_router
from hybridlm.routing.outcomes import load_outcomes

from machine import print_table  # benchmarks/machine.py: run as a script, its folder is on the path


def semantic_router_scorer(train_prompts: list[str], gains: np.ndarray) -> Callable[[list[str]], np.ndarray]:
    """An IndexedRouter with two routes, 'llm' (large model was better) and 'slm' (it was not)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from semantic_router import IndexedRouter, Route
    from semantic_router.encoders import LocalEncoder

    encoder = LocalEncoder(name=str(minilm_path()), device="cpu")
    routes = [Route(name="llm", utterances=[p for p, g in zip(train_prompts, gains, strict=True) if g > 0]),
              Route(name="slm", utterances=[p for p, g in zip(train_prompts, gains, strict=True) if g <= 0])]
    router = IndexedRouter(encoder=encoder, routes=routes, top_k=50, aggregation="mean")

    def score(texts: list[str]) -> np.ndarray:
        out = []
        for text in texts:
            choices = router(text, limit=None, threshold=0.0)
            conf = {c.name: c.confidence for c in choices}
            out.append(conf.get("llm", 0.0) - conf.get("slm", 0.0))
        return np.array(out)

    return score


def time_batch1(scorers: dict[str, Callable[[list[str]], np.ndarray]], queries: list[str]) -> dict[str, list[float]]:
    """Milliseconds per single-query call, the scorers taking turns on each query."""
    times: dict[str, list[float]] = {name: [] for name in scorers}
    for q in queries:
        for name, score in scorers.items():
            t0 = time.perf_counter()
            score([q])
            times[name].append((time.perf_counter() - t0) * 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared/data/routing/routellm/mmlu")
    parser.add_argument("--train", type=int, default=2000, help="training prompts")
    parser.add_argument("--test", type=int, default=1000, help="test prompts (APGR, throughput)")
    parser.add_argument("--timed", type=int, default=200, help="test prompts timed one at a time")
    parser.add_argument("--skip-semantic-router", action="store_true", help="time hybridlm's routers only")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    outcomes = load_outcomes(args.data)
    order = np.random.default_rng(0).permutation(len(outcomes))
    train, test = outcomes.subset(order[: args.train]), outcomes.subset(order[args.train: args.train + args.test])
    weak, strong = test.scores[:, 0], test.scores[:, 1]
    gains = train.scores[:, 1] - train.scores[:, 0]

    scorers: dict[str, Callable[[list[str]], np.ndarray]] = {}
    for encoder_name in ("minilm-static", "minilm"):
        router = fit_router("ensemble", train, embed(train, encoder_name), encoder_name)
        scorers[f"hybridlm ensemble ({encoder_name})"] = router.score_texts  # type: ignore[union-attr]
    if not args.skip_semantic_router:
        try:
            scorers["semantic-router IndexedRouter (minilm)"] = semantic_router_scorer(train.prompts, gains)
        except ImportError:
            print("semantic-router is not installed; skipping it", file=sys.stderr)

    for score in scorers.values():
        score(test.prompts[:5])  # warm up
    batch1 = time_batch1(scorers, test.prompts[: args.timed])
    rows = []
    for name, score in scorers.items():
        t0 = time.perf_counter()
        scores = score(test.prompts)
        batched_qps = len(test.prompts) / (time.perf_counter() - t0)
        quality = two_model_result(name, scores, weak, strong)
        rows.append({"router": name, "median_ms": statistics.median(batch1[name]),
                     "p99_ms": float(np.percentile(batch1[name], 99)), "batched_qps": batched_qps,
                     **quality.metrics()})
    if args.json:
        print(json.dumps({"train": args.train, "test": args.test, "rows": rows}))
        return
    print_table(["router", "batch-1 median ms", "batch-1 p99 ms", "batched queries/s", "APGR", "CPT(50%)"],
                [[r["router"], f"{r['median_ms']:.2f}", f"{r['p99_ms']:.2f}", f"{r['batched_qps']:.0f}",
                  f"{r['apgr']:.3f}", f"{100 * r['cpt50']:.1f}%"] for r in rows],
                f"MMLU outcomes: {args.train} train / {args.test} test prompts, {args.timed} timed one at a time")


if __name__ == "__main__":
    main()
