"""Bounded load test: many clients against hybridlm while the upstream fails half the time; every request
must leave a request-log row and get an OpenAI-shaped answer.

The instant upstream (benchmarks/fast_upstream.py --fail-share) answers 500 to that share of chat
requests, every other one at 0.5. --clients closed-loop clients send --seconds of requests, routed
(model 'hybrid', a query the heuristic router sends to the LLM tier; on failure the gateway may fall
back to the local SmolLM2) and forced (model 'llm') alternating. Then the gateway is stopped and its
SQLite request log read: each answer's request id (header x-hybridlm-request-id, else the body's id)
must have its row. Raw 500s are responses with status 500, or whose body is neither a chat completion
(status 200) nor OpenAI's error object ({"error": {"message", "type", ...}}). Exit status 1 when any
row is lost, any raw 500 or any request got no HTTP answer.

Run (from the repository root; about --seconds plus ~30 s):
  PYTHONPATH=$PWD/src HYBRIDLM_MODELS_DIR=/tmp/models python benchmarks/gateway_load.py --seconds 60 --clients 64
Options: --fail-share 0.5, --json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
from collections import Counter
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
from harness import (
    CLIENT,
    LLM_PROMPT,
    Clients,
    Gateway,
    Run,
    answer_shape,
    chat_body,
    fmt,
    gateway_config,
    load_average,
    percentile,
    progress,
    start_fast_upstream,
    start_hybridlm,
    stop,
    today,
    verdict,
)
from machine import describe, print_table

BODIES = [chat_body("hybrid", LLM_PROMPT), chat_body("llm", LLM_PROMPT)]


def inspect(reply: httpx.Response) -> dict[str, Any]:
    """What the check needs of one answer: its shape, request id and (on success) the tier that served it."""
    shape = answer_shape(reply)
    body = reply.json() if shape != "malformed" else {}
    meta = body.get("hybridlm")
    meta = meta if isinstance(meta, dict) else {}
    return {"shape": shape, "id": reply.headers.get("x-hybridlm-request-id") or body.get("id"),
            "tier": meta.get("tier") if reply.status_code == 200 else None}


async def drive(base_url: str, clients: int, seconds: float) -> Run:
    pool = Clients(base_url, clients)
    try:
        return await pool.run(lambda i: BODIES[i % 2], seconds, inspect)
    finally:
        await pool.aclose()


def logged(gateway: Gateway, ids: list[str]) -> tuple[int, int]:
    """How many of `ids` have a row in the gateway's request log, and how many rows it holds."""
    log = gateway.log()
    try:
        return sum(log.get(request_id) is not None for request_id in ids), log.totals().requests
    finally:
        log.close()


def report(run: Run, found: int, rows: int) -> dict[str, Any]:
    answered = [s for s in run.samples if s.status]
    ids = [s.detail["id"] for s in answered if s.detail["id"]]
    raw_500 = sum(s.status == 500 or s.detail["shape"] == "malformed" for s in answered)
    lat = [s.latency_ms for s in answered]
    by_model = {model: [s for s in answered if s.model == model] for model in ("hybrid", "llm")}
    return {
        "requests": len(run.samples), "answered": len(answered), "no_answer": dict(run.transport_errors),
        "rps": run.rps, "statuses": {f"{m} {k}": v for m, samples in by_model.items()
                                     for k, v in sorted(Counter(s.status for s in samples).items())},
        "served_by": dict(Counter(f"{s.model} -> {s.detail['tier']}" for s in answered if s.detail["tier"])),
        "raw_500s": raw_500, "without_request_id": len(answered) - len(ids), "log_rows_found": found,
        "log_rows_total": rows, "lost_rows": len(answered) - found,
        "p50_ms": statistics.median(lat) if lat else float("nan"), "p99_ms": percentile(lat, 99),
        **{f"{m}_p50_ms": statistics.median([s.latency_ms for s in samples]) if samples else float("nan")
           for m, samples in by_model.items()},
        **{f"{m}_p99_ms": percentile([s.latency_ms for s in samples], 99) for m, samples in by_model.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--fail-share", type=float, default=0.5, help="share of upstream chat requests that get 500")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        workdir = Path(tmp)
        upstream = start_fast_upstream(workdir, args.fail_share)
        stack.callback(stop, upstream.proc)
        progress("starting hybridlm (heuristic router)")
        gateway = start_hybridlm(workdir, "gw", gateway_config(upstream))
        stack.callback(stop, gateway.proc)
        progress(f"{args.clients} clients for {args.seconds:g} s, upstream failing {args.fail_share:.0%}")
        run = asyncio.run(drive(gateway.base_url, args.clients, args.seconds))
        progress("stopping the gateway, reading its request log")
        stop(gateway.proc)
        found, rows = logged(gateway, [s.detail["id"] for s in run.samples if s.status and s.detail["id"]])
        result = report(run, found, rows)

    ok = result["lost_rows"] == 0 and result["raw_500s"] == 0 and not result["no_answer"]
    if args.json:
        print(json.dumps({"date": today(), "machine": describe(), "load": load_average(), "client": CLIENT, "seconds": args.seconds,
                          "clients": args.clients, "fail_share": args.fail_share, "ok": ok, **result}))
    else:
        print_table(["requests", "answered", "no HTTP answer", "req/s", "p50 ms", "p99 ms", "log rows found",
                     "lost rows", "raw 500s", "check"],
                    [[result["requests"], result["answered"], sum(result["no_answer"].values()),
                      fmt(result["rps"], 0), fmt(result["p50_ms"], 1), fmt(result["p99_ms"], 1),
                      f"{result['log_rows_found']} of {result['log_rows_total']}", result["lost_rows"],
                      result["raw_500s"], verdict(ok)]],
                    note=f"{today()}; {load_average()}; {args.clients} clients, {args.seconds:g} s, upstream failing "
                         f"{args.fail_share:.0%}, hybrid and llm requests alternating")
        print()
        print_table(["model", "status", "responses"],
                    [[*key.split(" "), n] for key, n in result["statuses"].items()], note="statuses seen")
        print()
        print_table(["model -> tier that answered (200s)", "responses"], sorted(result["served_by"].items()),
                    note="who served the successes")
        print()
        print(f"p50 / p99 ms: hybrid {fmt(result['hybrid_p50_ms'], 1)} / {fmt(result['hybrid_p99_ms'], 1)}, "
              f"llm {fmt(result['llm_p50_ms'], 1)} / {fmt(result['llm_p99_ms'], 1)}")
        if result["no_answer"]:
            print(f"no HTTP answer: {result['no_answer']}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
