"""What leaves the machine: every text of a presidio-research set sent through the gateway (model
`llm`, redaction on as by default) to a recording upstream on loopback that echoes the last user
message. Counts the labelled personal values that reached the upstream, per type, and checks that
every answer came back exactly as it was sent (each echoed placeholder restored), half of them streamed.

    python benchmarks/pii_leak.py [--data FILE] [--limit N] [--json]
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from harness import hybrid_config, percentile, start_gateway, stop  # first: it puts this checkout on the path
from machine import describe
from openai import OpenAI

from hybridlm.evaluation.pii_eval import LEAK_TYPES, load_pii_data
from tests.integration.servers import start_recording_upstream

DEFAULT_DATA = Path(__file__).resolve().parents[1] / "../shared/data/pii/presidio_synth/synth_dataset_v2.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    examples = load_pii_data(args.data, args.limit)
    with tempfile.TemporaryDirectory() as tmp:
        upstream = start_recording_upstream(Path(tmp))
        gateway = start_gateway(Path(tmp) / "gw", hybrid_config(upstream.base_url))
        try:
            client = OpenAI(base_url=gateway.base_url, api_key="unused", max_retries=0)
            answers, millis = [], []
            for i, example in enumerate(examples):
                messages = [{"role": "user", "content": example.text}]
                start = time.perf_counter()
                if i % 2:
                    chunks = client.chat.completions.create(model="llm", messages=messages, stream=True)
                    answers.append("".join(c.choices[0].delta.content or "" for c in chunks if c.choices))
                else:
                    reply = client.chat.completions.create(model="llm", messages=messages)
                    answers.append(reply.choices[0].message.content)
                millis.append((time.perf_counter() - start) * 1000)
            sent = [json.dumps(body["messages"]) for body in upstream.recorded()]
        finally:
            stop(gateway.proc)
            stop(upstream.proc)
    total, leaked = Counter(), Counter()
    for i, example in enumerate(examples):
        for entity, start, end in example.spans:
            if entity in LEAK_TYPES:
                total[entity] += 1
                leaked[entity] += json.dumps(example.text[start:end])[1:-1] in sent[i]
    exact = sum(a == e.text for a, e in zip(answers, examples, strict=True))
    result = {
        "messages": len(examples), "values": sum(total.values()), "leaked": sum(leaked.values()),
        "leaked_share": round(sum(leaked.values()) / max(1, sum(total.values())), 4),
        "per_entity": {k: {"values": total[k], "leaked": leaked[k]} for k in sorted(total)},
        "answers_restored_exactly": exact,
        "latency_ms": {"p50": round(percentile(millis, 50), 1), "p95": round(percentile(millis, 95), 1)},
    }
    print("$ python " + shlex.join(sys.argv))
    print(describe())
    if args.json:
        print(json.dumps(result))
        return
    print(f"{result['messages']} messages, {result['values']} labelled personal values of the leak types")
    print(f"reached the upstream: {result['leaked']} ({result['leaked_share']:.1%})")
    for entity, row in result["per_entity"].items():
        print(f"  {entity:15} {row['leaked']:4} of {row['values']}")
    print(f"answers restored exactly: {exact} of {len(examples)}")
    print(f"request latency through the gateway: p50 {result['latency_ms']['p50']} ms, p95 {result['latency_ms']['p95']} ms")


if __name__ == "__main__":
    main()
