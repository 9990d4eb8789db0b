"""Context shrinking on HaluEval QA: does the sentence that answers survive a small token budget?

Each question gets a context of its own passage and N passages of other questions (seeded, its own at a
random place). Without an LLM: tokens before and after at each budget, the compression, and the share
of questions whose right answer still appears in what is kept (yes/no questions left out), for the
shrinker (and its scores alone) beside keeping the first sentences and a random choice. With
--llm-url (an OpenAI-compatible server): the questions answered from the whole context and from the
shrunk one (greedy, 32 tokens), accuracy and the prompt tokens the server counted.

Run: python benchmarks/context_shrinking.py --data ../shared/data/hallucination/halueval/qa_one-turn_data.jsonl \
         [--llm-url http://127.0.0.1:PORT/v1 --llm-items 20] [--json]
"""

from __future__ import annotations

import argparse
import json
import random
import re
import shlex
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from hybridlm.models.base import estimate_tokens
from hybridlm.models.encoder import load_encoder
from hybridlm.shrinking import ContextShrinker, Excerpt, Shrunk, keep_best, units_of
from hybridlm.types import Message

from machine import describe, print_table  # benchmarks/machine.py: run as a script, its folder is on the path

DEFAULT_DATA = Path(__file__).parents[1] / "../shared/data/hallucination/halueval/qa_one-turn_data.jsonl"
YES_NO = frozenset({"yes", "no"})
INSTRUCTION = "Answer the question from the documents. Reply with the answer alone, in a few words."
SHRINKER = "shrinker (cosine + overlap + neighbours)"
Scorer = Callable[[str, Sequence[Excerpt]], Sequence[float]]


@dataclass(frozen=True)
class Item:
    question: str
    answer: str
    sources: list[tuple[str, str]]


def normalised(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9]+", " ", text.lower()).split())


def contains(text: str, answer: str) -> bool:
    return f" {normalised(answer)} " in f" {normalised(text)} "


def load_items(path: Path, limit: int, distractors: int, seed: int) -> list[Item]:
    """Each row's passage among `distractors` passages of other rows, at a random place."""
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    rng = random.Random(seed)
    items = []
    for n, row in enumerate(rows[:limit]):
        others = rng.sample([r["knowledge"] for i, r in enumerate(rows) if i != n], distractors)
        others.insert(rng.randrange(distractors + 1), row["knowledge"])
        items.append(Item(row["question"], row["right_answer"],
                          [(f"passage {k + 1}", text) for k, text in enumerate(others)]))
    return items


def kept_text(shrunk: Shrunk) -> str:
    """The kept excerpts as running text: neighbours joined, anything between them a break."""
    runs, previous = [], None
    for excerpt in shrunk.excerpts:
        adjacent = previous is not None and (previous.source, previous.index + 1) == (excerpt.source, excerpt.index)
        runs.append(" " if adjacent else " | ")
        runs.append(excerpt.text)
        previous = excerpt
    return "".join(runs)


def scorers(encoder_name: str, seed: int) -> dict[str, Scorer]:
    encoder = load_encoder(encoder_name)
    rng = random.Random(seed)
    return {
        SHRINKER: ContextShrinker(encoder).scores,
        "shrinker, no neighbours": ContextShrinker(encoder, neighbour_weight=0.0).scores,
        "MiniLM cosine alone": ContextShrinker(encoder, lexical_weight=0.0, neighbour_weight=0.0).scores,
        "word overlap alone": ContextShrinker(encoder, lexical_weight=1.0, neighbour_weight=0.0).scores,
        "first sentences": lambda query, units: [-float(i) for i in range(len(units))],
        "random sentences": lambda query, units: [rng.random() for _ in units],
    }


def offline_run(items: list[Item], budgets: list[int], methods: dict[str, Scorer]) -> dict[str, object]:
    kept: dict[tuple[int, str], list[bool]] = {}
    after: dict[tuple[int, str], list[int]] = {}
    before: list[int] = []
    millis: list[float] = []
    for item in items:
        units = units_of(item.sources)
        original = sum(estimate_tokens(text) for _, text in item.sources)
        before.append(original)
        for name, scorer in methods.items():
            start = time.perf_counter()
            scores = list(scorer(item.question, units))
            if name == SHRINKER:  # the first scorer: its sentences are not yet in the encoder's cache
                millis.append((time.perf_counter() - start) * 1000)
            for budget in budgets:
                shrunk = keep_best(units, scores, budget, original)
                kept.setdefault((budget, name), []).append(contains(kept_text(shrunk), item.answer))
                after.setdefault((budget, name), []).append(shrunk.kept_tokens)
    ceiling = statistics.fmean(contains(" ".join(t for _, t in item.sources), item.answer) for item in items)
    results = {f"{budget}/{name}": {"tokens_after": round(statistics.mean(after[budget, name]), 1),
                                    "compression": round(sum(before) / sum(after[budget, name]), 2),
                                    "answer_kept": round(statistics.fmean(kept[budget, name]), 3)}
               for budget in budgets for name in methods}
    return {"items": len(items), "tokens_before": round(statistics.mean(before), 1),
            "scoring_ms_per_question": round(statistics.median(millis), 1),
            "answer_in_full_context": round(ceiling, 3), "results": results}


def messages_for(item: Item) -> list[Message]:
    """The documents in one message and the question in the last: the question is what is never cut."""
    documents = "\n\n".join(f"{name}:\n{text}" for name, text in item.sources)
    return [{"role": "system", "content": INSTRUCTION},
            {"role": "user", "content": f"Documents:\n\n{documents}"},
            {"role": "user", "content": item.question}]


def llm_run(items: list[Item], url: str, budget: int, encoder_name: str) -> dict[str, object]:
    from openai import OpenAI

    client = OpenAI(base_url=url, api_key="none", max_retries=0, timeout=300)
    model = client.models.list().data[0].id
    shrinker = ContextShrinker(load_encoder(encoder_name))
    out: dict[str, object] = {"items": len(items), "budget_tokens": budget}
    prepared = {"full context": [messages_for(item) for item in items]}
    start = time.perf_counter()
    prepared["shrunk"] = [shrinker.shrink_messages(m, budget, 0)[0] for m in prepared["full context"]]
    out["shrink_ms_per_item"] = round((time.perf_counter() - start) * 1000 / len(items), 1)
    for name, conversations in prepared.items():
        right, prompt_tokens = [], []
        start = time.perf_counter()
        for item, messages in zip(items, conversations, strict=True):
            reply = client.chat.completions.create(model=model, messages=messages, max_tokens=32, temperature=0)
            right.append(contains(reply.choices[0].message.content or "", item.answer))
            prompt_tokens.append(reply.usage.prompt_tokens if reply.usage else 0)
        out[name] = {"accuracy": round(statistics.mean(right), 3),
                     "prompt_tokens": round(statistics.mean(prompt_tokens), 1),
                     "seconds": round(time.perf_counter() - start, 1)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--items", type=int, default=500)
    parser.add_argument("--distractors", type=int, default=9)
    parser.add_argument("--budgets", type=int, nargs="+", default=[64, 128, 256])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--encoder", default="minilm")
    parser.add_argument("--llm-url", help="an OpenAI-compatible base URL, e.g. http://127.0.0.1:8080/v1")
    parser.add_argument("--llm-items", type=int, default=20)
    parser.add_argument("--llm-budget", type=int, default=128)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    items = load_items(args.data, args.items, args.distractors, args.seed)
    spans = [item for item in items if normalised(item.answer) not in YES_NO]  # "yes" is in any text by chance
    methods = scorers(args.encoder, args.seed)
    start = time.perf_counter()
    offline = offline_run(spans, args.budgets, methods)
    offline["seconds"] = round(time.perf_counter() - start, 1)
    print("$ python " + shlex.join(sys.argv))
    print_table(["budget", "kept by", "tokens before", "tokens after", "compression", "answer kept"],
                [[key.split("/")[0], key.split("/", 1)[1], offline["tokens_before"], r["tokens_after"],
                  f"{r['compression']}x", r["answer_kept"]] for key, r in offline["results"].items()],
                note=f"{offline['items']} questions (the {len(items) - len(spans)} answered yes or no left out), "
                     f"{args.distractors} distractor passages each; the answer is in "
                     f"the full context for {offline['answer_in_full_context']}; scoring "
                     f"{offline['scoring_ms_per_question']} ms a question (median)")
    report: dict[str, object] = {"machine": describe(), "offline": offline}
    if args.llm_url:
        llm = llm_run(items[:args.llm_items], args.llm_url, args.llm_budget, args.encoder)
        print_table(["context", "accuracy", "prompt tokens", "seconds"],
                    [[name, llm[name]["accuracy"], llm[name]["prompt_tokens"], llm[name]["seconds"]]
                     for name in ("full context", "shrunk")],
                    note=f"{llm['items']} questions, budget {llm['budget_tokens']} tokens, "
                         f"shrinking {llm['shrink_ms_per_item']} ms a question")
        report["llm"] = llm
    if args.json:
        print(json.dumps(report))


if __name__ == "__main__":
    main()
