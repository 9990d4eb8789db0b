"""Answer quality of each catalogued local model, in one run: grounded QA and briefed support answers.

1. HaluEval QA answered from its passage, with the rule of `slm_self_check.py` (the answer contains
   the reference, or shares half its words), greedy, on the first N questions.
2. The support desk's briefed answers: the SLM gets the brief the support policy writes
   (`SupportPolicy.note_for_slm`: the intent and the company's FAQ answer to build on) and a real
   customer message of that intent (BANKING77's test set, as in `hybridlm demo support`). An answer
   states the fact when it carries every number of the FAQ answer and at least half of its
   content words; it invents when it has a number the FAQ answer does not.

Run: python benchmarks/local_answers.py --models smollm2-135m,qwen2.5-coder-0.5b,qwen2.5-coder-1.5b
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from hybridlm.demo.support import demo_file
from hybridlm.evaluation.intent_eval import load_intent_data
from hybridlm.models.base import BackendContext, GenerationParams
from hybridlm.models.local_gguf import LocalGGUFBackend, LocalOptions
from hybridlm.skills.faq import FAQMatch, read_faqs
from hybridlm.skills.support import SupportDecision, SupportPolicy

from machine import describe  # benchmarks/machine.py: run as a script, its folder is on the path
from slm_self_check import is_right, prompt

NUMBER = re.compile(r"\d+(?:[.,]\d+)?")
WORD = re.compile(r"[a-z]{4,}")
COMMON = frozenset("your with that this from have will then there their they them what when which into".split())


def content_words(text: str) -> set[str]:
    return {w for w in WORD.findall(text.lower()) if w not in COMMON}


def states_fact(reply: str, faq_answer: str) -> bool:
    needed = set(NUMBER.findall(faq_answer))
    if not needed <= set(NUMBER.findall(reply)):
        return False
    words = content_words(faq_answer)
    return not words or len(words & content_words(reply)) / len(words) >= 0.5


def invents(reply: str, faq_answer: str) -> bool:
    return bool(set(NUMBER.findall(reply)) - set(NUMBER.findall(faq_answer)))


def briefed_cases(per_intent: int) -> list[tuple[str, str, str]]:
    """(brief, customer message, FAQ answer) for each FAQ entry with an intent."""
    texts, labels = load_intent_data(demo_file("banking77_test.csv"))[:2]
    by_intent: dict[str, list[str]] = defaultdict(list)
    for text, label in zip(texts, labels):
        by_intent[label].append(text)
    cases = []
    for faq in read_faqs(demo_file("faq.yaml")):
        if not faq.intent:
            continue
        decision = SupportDecision("slm", "benchmark", {"intent": faq.intent}, FAQMatch(faq, 0.6, faq.question))
        brief = SupportPolicy.note_for_slm(decision)
        cases += [(brief, text, faq.answer) for text in by_intent.get(faq.intent, [])[:per_intent]]
    return cases


async def measure(name: str, threads: int | None, qa: list[dict[str, str]],
                  cases: list[tuple[str, str, str]]) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as data_dir:
        backend = LocalGGUFBackend(LocalOptions(model=name, n_threads=threads), BackendContext(Path(data_dir)))
        backend.load()
        try:
            greedy = GenerationParams(max_tokens=32, temperature=0.0)
            started = time.perf_counter()
            right = [is_right((await backend.complete(prompt(row), greedy)).text, row["right_answer"]) for row in qa]
            qa_seconds = (time.perf_counter() - started) / max(1, len(qa))
            briefed = GenerationParams(max_tokens=96, temperature=0.0)
            stated, invented, examples = [], [], []
            for brief, text, answer in cases:
                reply = (await backend.complete([{"role": "system", "content": brief},
                                                 {"role": "user", "content": text}], briefed)).text
                stated.append(states_fact(reply, answer))
                invented.append(invents(reply, answer))
                if len(examples) < 3:
                    examples.append({"customer": text, "faq": answer, "reply": reply.strip()})
        finally:
            await backend.aclose()
    return {
        "model": name,
        "halueval_qa": {"questions": len(qa), "accuracy": round(sum(right) / max(1, len(right)), 3),
                        "seconds_per_question": round(qa_seconds, 2)},
        "briefed_support": {"answers": len(cases), "states_the_fact": round(statistics.mean(stated), 3) if cases else 0,
                            "invents_a_number": round(statistics.mean(invented), 3) if cases else 0,
                            "examples": examples},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="smollm2-135m,qwen2.5-coder-0.5b,qwen2.5-coder-1.5b")
    parser.add_argument("--halueval", type=Path,
                        default=Path(__file__).resolve().parents[2] / "shared/data/hallucination/halueval/qa_one-turn_data.jsonl")
    parser.add_argument("--questions", type=int, default=150)
    parser.add_argument("--per-intent", type=int, default=3, help="customer messages per FAQ entry")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    rows = [json.loads(line) for line in args.halueval.read_text(encoding="utf-8").splitlines() if line.strip()]
    cases = briefed_cases(args.per_intent)
    results = [asyncio.run(measure(name, args.threads, rows[: args.questions], cases))
               for name in args.models.split(",")]
    for r in results:
        qa, support = r["halueval_qa"], r["briefed_support"]
        assert isinstance(qa, dict) and isinstance(support, dict)
        print(f"{r['model']:22} HaluEval QA {qa['accuracy']:.3f} ({qa['questions']} questions, "
              f"{qa['seconds_per_question']} s each)   briefed support: states the fact {support['states_the_fact']:.3f}, "
              f"invents a number {support['invents_a_number']:.3f} ({support['answers']} answers)")
    print(json.dumps({"results": results, "machine": describe()}))


if __name__ == "__main__":
    main()
