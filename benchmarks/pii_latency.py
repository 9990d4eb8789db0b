"""Personal-data detection: per-message latency of PiiDetector.detect() and messages/s at 2 threads.

    python benchmarks/pii_latency.py [--data FILE] [--threads 2]

Warm-up includes importing spaCy and Presidio. Runs every text of the synthetic PII set once one by one (median, p95), then all of them again
through a thread pool (the gateway runs detection in its worker threads).
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from hybridlm.evaluation.pii_eval import load_pii_data
from hybridlm.privacy import PiiDetector

DEFAULT_DATA = Path(__file__).parents[1] / "../shared/data/pii/presidio_synth/synth_dataset_v2.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    texts = [e.text for e in load_pii_data(args.data)]
    start = time.perf_counter()
    detector = PiiDetector()
    detector.warm_up()
    warm = time.perf_counter() - start

    millis = []
    for text in texts:
        start = time.perf_counter()
        detector.detect(text)
        millis.append((time.perf_counter() - start) * 1000)
    millis.sort()
    short = "Hi, I'm Jane Doe, call me at 415 555 0100 please."
    short_millis = []
    for i in range(200):  # a new text each time: the detector reuses the findings of texts it has just seen
        start = time.perf_counter()
        detector.detect(f"{short} ({i})")
        short_millis.append((time.perf_counter() - start) * 1000)
    fresh = PiiDetector()  # the same engine, none of the findings above kept
    with ThreadPoolExecutor(args.threads) as pool:
        start = time.perf_counter()
        list(pool.map(fresh.detect, texts))
        elapsed = time.perf_counter() - start

    print("$ python " + shlex.join(sys.argv))
    print(f"{len(texts)} texts, mean {statistics.mean(len(t) for t in texts):.0f} characters; warm-up {warm:.1f} s")
    print(f"one thread: median {statistics.median(millis):.1f} ms, p95 {millis[int(0.95 * len(millis))]:.1f} ms a message")
    print(f"a short message ({len(short) + 6} characters or so): median {statistics.median(short_millis):.1f} ms")
    print(f"{args.threads} threads: {len(texts) / elapsed:.1f} messages/s")


if __name__ == "__main__":
    main()
