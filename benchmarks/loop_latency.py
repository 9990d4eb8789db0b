"""Event-loop responsiveness: /healthz and a cheap request while hybrid/support requests keep the gateway
busy, against the same probes with nothing else in flight.

One gateway with the support demo's setup (as in gateway_overhead.py) in front of the instant upstream.
A probe process of its own (so the load generator's event loop cannot delay it) sends GET /healthz,
then a cheap request (model 'llm', the forced tier, to the instant upstream), then pauses --interval-ms,
over and over. Idle and busy phases alternate; in a busy phase --load-clients closed-loop clients keep
that many hybrid/support requests (an angry message: intent, FAQ and sentiment all run) in flight.

Run (from the repository root; about 2 x --seconds plus ~30 s start-up):
  PYTHONPATH=$PWD/src HYBRIDLM_MODELS_DIR=/tmp/models python benchmarks/loop_latency.py --seconds 20
Options: --rounds 4, --load-clients 32, --interval-ms 10, --json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import statistics
import tempfile
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from harness import (
    CLIENT,
    SUPPORT_PROMPT,
    Clients,
    Run,
    always,
    as_server,
    chat_body,
    check_target,
    fmt,
    gateway_config,
    load_average,
    percentile,
    probe_latencies,
    progress,
    start_fast_upstream,
    start_hybridlm,
    stop,
    support_settings,
    today,
)
from machine import describe, print_table

CHEAP = chat_body("llm", "ping")
LOAD = chat_body("hybrid/support", SUPPORT_PROMPT)
START_GAP_S = 0.3  # the load is in flight this long before the probes start, and outlasts them by as much


async def phases(root_url: str, base_url: str, seconds: float, rounds: int, load_clients: int,
                 interval_s: float) -> dict[str, dict[str, Any]]:
    """Probe results per phase ('idle', 'busy'), and the load's run during the busy phases."""
    out: dict[str, dict[str, Any]] = {p: {"healthz": [], "cheap": [], "statuses": Counter()} for p in ("idle", "busy")}
    load_run = Run()
    loop = asyncio.get_running_loop()
    pool = Clients(base_url, load_clients)
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as prober:
        await loop.run_in_executor(prober, probe_latencies, root_url, CHEAP, 0.5, interval_s)  # start it, warm up
        await pool.run(always(LOAD), 1.0)
        try:
            for r in range(rounds):
                for phase in ("idle", "busy") if r % 2 == 0 else ("busy", "idle"):
                    each = seconds / rounds
                    load = asyncio.create_task(pool.run(always(LOAD), each + 2 * START_GAP_S)) \
                        if phase == "busy" else None
                    await asyncio.sleep(START_GAP_S if load else 0)
                    probes = await loop.run_in_executor(prober, probe_latencies, root_url, CHEAP, each, interval_s)
                    if load:
                        load_run += await load
                    for key in ("healthz", "cheap", "statuses"):
                        out[phase][key] += probes[key]
        finally:
            await pool.aclose()
    out["busy"]["load"] = load_run
    return out


def summary(phase: str, results: dict[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = {"phase": phase, "probes": len(results["healthz"]), "statuses": dict(results["statuses"])}
    for key in ("healthz", "cheap"):
        values = results[key]
        row.update({f"{key}_p50_ms": statistics.median(values), f"{key}_p99_ms": percentile(values, 99),
                    f"{key}_max_ms": max(values)})
    load: Run | None = results.get("load")
    row["load_rps"] = load.rps if load else 0.0
    row["load_errors"] = load.errors if load else 0
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="probing time per phase (idle, busy)")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--load-clients", type=int, default=32)
    parser.add_argument("--interval-ms", type=float, default=10.0, help="pause between two probe pairs")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        workdir = Path(tmp)
        upstream = start_fast_upstream(workdir)
        stack.callback(stop, upstream.proc)
        support = support_settings()
        progress("starting hybridlm (support profile)")
        gateway = start_hybridlm(workdir, "gw-support", gateway_config(upstream, support=support))
        stack.callback(stop, gateway.proc)
        server = as_server("hybridlm support", gateway)
        check_target(server, LOAD)
        check_target(server, CHEAP)
        progress(f"idle and busy phases, {args.seconds:g} s each")
        results = asyncio.run(phases(gateway.url, gateway.base_url, args.seconds, args.rounds, args.load_clients,
                                     args.interval_ms / 1000))
    rows = [summary(phase, results[phase]) for phase in ("idle", "busy")]

    if args.json:
        print(json.dumps({"date": today(), "machine": describe(), "load": load_average(), "client": CLIENT, "seconds": args.seconds,
                          "load_clients": args.load_clients, "results": rows}))
        return
    print_table(["phase", "probes", "/healthz p50 ms", "/healthz p99 ms", "/healthz max ms", "cheap p50 ms",
                 "cheap p99 ms", "cheap max ms", "hybrid/support req/s in flight", "load errors"],
                [[f"{r['phase']}" + (f" ({args.load_clients} hybrid/support in flight)" if r["phase"] == "busy" else
                                     " (nothing else in flight)"), r["probes"],
                  *(fmt(r[f"{k}_{s}_ms"]) for k in ("healthz", "cheap") for s in ("p50", "p99", "max")),
                  fmt(r["load_rps"], 0) if r["phase"] == "busy" else "", r["load_errors"] if r["phase"] == "busy"
                  else ""] for r in rows],
                note=f"{today()}; {load_average()}; {args.seconds:g} s per phase in {args.rounds} alternating rounds; probes every "
                     f"{args.interval_ms:g} ms from their own process")


if __name__ == "__main__":
    main()
