"""What grounding adds to a request: grading the retrieved chunks and fact-checking the answer.

Each HaluEval QA question is graded against its 5 retrieved-size passages (its own and 4 others),
and its right answer, written as a sentence, is fact-checked against its passage. Median and p95
milliseconds per question, batch 1, MiniLM on the CPU.

Run: python benchmarks/grounding_speed.py --data ../shared/data/hallucination/halueval/qa_one-turn_data.jsonl
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from hybridlm.factcheck.detector import FactChecker
from hybridlm.rag.grading import RelevanceGrader

from machine import print_table  # benchmarks/machine.py: run as a script, its folder is on the path


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path,
                        default=Path(__file__).resolve().parents[2] / "shared/data/hallucination/halueval/qa_one-turn_data.jsonl")
    parser.add_argument("--questions", type=int, default=150)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    rows = [json.loads(line) for line in args.data.read_text(encoding="utf-8").splitlines() if line.strip()]
    rows = rows[: args.questions]
    grader, checker = RelevanceGrader.load(), FactChecker.load()
    grader.grade("warm up", ["warm up"])
    checker.check(["warm up."], "Warm up.")
    grading, checking = [], []
    for i, row in enumerate(rows):
        chunks = [row["knowledge"], *(rows[(i + j) % len(rows)]["knowledge"] for j in range(1, 5))]
        t0 = time.perf_counter()
        grader.grade(row["question"], chunks)
        t1 = time.perf_counter()
        checker.check([row["knowledge"]], f"The answer is {row['right_answer']}.")
        t2 = time.perf_counter()
        grading.append((t1 - t0) * 1000)
        checking.append((t2 - t1) * 1000)
    result = {"questions": len(rows), "grade_5_chunks_median_ms": statistics.median(grading),
              "grade_5_chunks_p95_ms": percentile(grading, 0.95), "factcheck_median_ms": statistics.median(checking),
              "factcheck_p95_ms": percentile(checking, 0.95)}
    if args.json:
        print(json.dumps(result))
        return
    print_table(["questions", "grade 5 chunks median ms", "p95", "fact-check median ms", "p95"],
                [[len(rows), *(f"{result[k]:.1f}" for k in ("grade_5_chunks_median_ms", "grade_5_chunks_p95_ms",
                                                             "factcheck_median_ms", "factcheck_p95_ms"))]])


if __name__ == "__main__":
    main()
