"""How well the embedded SLM's own certainty predicts whether its answer is right (the selfcheck cascade).

A catalogued local model (SmolLM2-135M unless --model names another) answers HaluEval QA questions from their passage (greedy, with token
log-probabilities); an answer is right when it contains the reference answer or shares half its
words (stem F1 >= 0.5). With --samples K it also samples K answers at temperature 0.8 for
self-consistency. Prints the SLM's accuracy, the AUROC with which each doubt signal finds the
wrong answers, what share a cascade keeps local at each doubt threshold and how accurate that
share is, and the milliseconds each signal costs.

Run: python benchmarks/slm_self_check.py --data ../shared/data/hallucination/halueval/qa_one-turn_data.jsonl --samples 3
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

from hybridlm.models.base import BackendContext, GenerationParams
from hybridlm.models.local_gguf import LocalGGUFBackend, LocalOptions
from hybridlm.routing.selfcheck import SAMPLE_TEMPERATURE, SelfCheckRouter, overlap
from hybridlm.types import Message

from machine import describe  # benchmarks/machine.py: run as a script, its folder is on the path

INSTRUCTION = "Answer the question with a short phrase taken from the passage."


def is_right(answer: str, reference: str) -> bool:
    norm = " ".join(answer.lower().split())
    return reference.lower().strip(" .") in norm or overlap(answer, reference) >= 0.5


def prompt(row: dict[str, str]) -> list[Message]:
    return [{"role": "system", "content": INSTRUCTION},
            {"role": "user", "content": f"Passage: {row['knowledge']}\n\nQuestion: {row['question']}"}]


def accept_curve(doubt: np.ndarray, right: np.ndarray) -> list[dict[str, float]]:
    """Accepting the least doubtful first: share kept local and its accuracy."""
    order = np.argsort(doubt)
    out = []
    for share in (0.1, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0):
        kept = order[: max(1, int(round(share * len(order))))]
        out.append({"share_local": share, "accuracy": round(float(right[kept].mean()), 3),
                    "threshold": round(float(doubt[kept[-1]]), 3)})
    return out


async def run(rows: list[dict[str, str]], samples: int, model: str) -> dict[str, object]:
    backend = LocalGGUFBackend(LocalOptions(model=model), BackendContext(Path(tempfile.mkdtemp())))
    backend.load()
    router = SelfCheckRouter(samples)
    greedy = GenerationParams(max_tokens=32, temperature=0.0, logprobs=True)
    signals: dict[str, list[float]] = {"logprob_doubt": [], "least_sure_token": [], "answer_words": []}
    if samples:
        signals.update({"resample_disagreement": [], "combined": []})
    right: list[bool] = []
    draft_ms: list[float] = []
    sample_ms: list[float] = []
    for row in rows:
        messages = prompt(row)
        start = time.perf_counter()
        draft = await backend.complete(messages, greedy)
        draft_ms.append((time.perf_counter() - start) * 1000)
        start = time.perf_counter()
        texts = [(await backend.complete(messages, GenerationParams(max_tokens=32, temperature=SAMPLE_TEMPERATURE,
                                                                     seed=i + 1))).text for i in range(samples)]
        sample_ms.append((time.perf_counter() - start) * 1000)
        right.append(is_right(draft.text, row["right_answer"]))
        lone = router.verify(messages, draft)
        signals["logprob_doubt"].append(lone.value)
        signals["least_sure_token"].append(-min(draft.token_logprobs or (0.0,)))
        signals["answer_words"].append(len(draft.text.split()))
        if samples:
            both = router.verify(messages, draft, texts)
            signals["resample_disagreement"].append(1.0 - both.contributions["resample_agreement"])
            signals["combined"].append(both.value)
    truth = np.array(right)
    wrong = ~truth
    return {
        "questions": len(rows),
        "slm_accuracy": round(float(truth.mean()), 3),
        "auroc_finding_wrong_answers": {name: round(float(roc_auc_score(wrong, values)), 3)
                                        if 0 < wrong.sum() < len(wrong) else None
                                        for name, values in signals.items()},
        "accept_curve_logprob": accept_curve(np.array(signals["logprob_doubt"]), truth),
        **({"accept_curve_combined": accept_curve(np.array(signals["combined"]), truth)} if samples else {}),
        "draft_ms_median": round(statistics.median(draft_ms), 1),
        **({"resample_ms_median": round(statistics.median(sample_ms), 1)} if samples else {}),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path,
                        default=Path(__file__).resolve().parents[2] / "shared/data/hallucination/halueval/qa_one-turn_data.jsonl")
    parser.add_argument("--questions", type=int, default=375)
    parser.add_argument("--samples", type=int, default=0, help="extra sampled answers per question (self-consistency)")
    parser.add_argument("--model", default="smollm2-135m", help="a catalogued local model")
    args = parser.parse_args()
    rows = [json.loads(line) for line in args.data.read_text(encoding="utf-8").splitlines() if line.strip()]
    result = asyncio.run(run(rows[: args.questions], args.samples, args.model))
    result["machine"] = describe()
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
