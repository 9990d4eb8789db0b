"""Knowledge store: ingest throughput (chunks/s), query latency, and retrieval recall@k.

Each HaluEval QA knowledge passage becomes one document; each question is then searched, and a
hit is counted when a chunk of its own passage is among the top k.

Run: python benchmarks/rag_store.py --data ../shared/data/hallucination/halueval/qa_one-turn_data.jsonl
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from hybridlm.rag.store import KnowledgeStore

from machine import print_table  # benchmarks/machine.py: run as a script, its folder is on the path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path,
                        default=Path(__file__).resolve().parents[2] / "shared/data/hallucination/halueval/qa_one-turn_data.jsonl")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    rows = [json.loads(line) for line in args.data.read_text(encoding="utf-8").splitlines() if line.strip()]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        files = []
        for i, row in enumerate(rows):
            path = folder / f"passage-{i:04d}.txt"
            path.write_text(row["knowledge"], encoding="utf-8")
            files.append(path)
        store = KnowledgeStore(folder / "store.db")
        first = store.ingest(files[0]) or 0  # loads the encoder outside the timing
        start = time.perf_counter()
        outcomes = store.ingest_many(files[1:])
        ingest_s = time.perf_counter() - start
        chunks = first + sum(n for n in outcomes.values() if isinstance(n, int))
        latencies, hits = [], {1: 0, 3: 0, 5: 0}
        for i, row in enumerate(rows):
            t0 = time.perf_counter()
            found = store.search(row["question"], k=5)
            latencies.append((time.perf_counter() - t0) * 1000)
            names = [Path(h.path).name for h in found]
            for k in hits:
                hits[k] += f"passage-{i:04d}.txt" in names[:k]
        store.close()
    result = {"documents": len(files), "chunks": chunks, "chunks_per_s": (chunks - first) / ingest_s,
              "query_median_ms": statistics.median(latencies),
              **{f"recall_at_{k}": hits[k] / len(rows) for k in hits}}
    if args.json:
        print(json.dumps(result))
        return
    print_table(["documents", "chunks", "ingest chunks/s", "query median ms", "recall@1", "recall@3", "recall@5"],
                [[len(files), chunks, f"{result['chunks_per_s']:.0f}", f"{result['query_median_ms']:.1f}",
                  *(f"{result[f'recall_at_{k}']:.3f}" for k in (1, 3, 5))]])


if __name__ == "__main__":
    main()
