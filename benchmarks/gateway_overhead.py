"""What the gateway adds to a request: latency over calling the upstream directly, and throughput.

Both paths hit the same instant upstream; the gateway path also routes (model 'hybrid', a
query the router sends to the LLM tier), accounts and writes the SQLite log row.

Run: python benchmarks/gateway_overhead.py [--requests 400] [--concurrency 1 32] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from machine import describe, print_table  # benchmarks/machine.py: run as a script, its folder is on the path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.integration.servers import Gateway, _wait_ready, free_port, start_gateway, stop  # noqa: E402

PROMPT = "Analyze and compare these two vendor contracts step by step and explain the trade-offs in detail."


def start_fast_upstream(workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    log_file = workdir / "fast-upstream.log"
    with log_file.open("wb") as out:
        proc = subprocess.Popen([sys.executable, str(Path(__file__).with_name("fast_upstream.py")), str(port)],
                                stdout=out, stderr=subprocess.STDOUT)
    _wait_ready(proc, f"http://127.0.0.1:{port}/v1/models", log_file)
    return proc, f"http://127.0.0.1:{port}/v1"


async def timed_requests(url: str, model: str, total: int, concurrency: int) -> tuple[list[float], float]:
    """Latencies in ms of `total` requests sent by `concurrency` workers, and the wall time in s."""
    body = {"model": model, "messages": [{"role": "user", "content": PROMPT}], "max_tokens": 8}
    latencies: list[float] = []
    queue = iter(range(total))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=30, trust_env=False) as client:
        async def worker() -> None:
            for _ in queue:
                t0 = time.perf_counter()
                reply = await client.post(url + "/chat/completions", json=body)
                latencies.append((time.perf_counter() - t0) * 1000)
                reply.raise_for_status()

        await asyncio.gather(*(worker() for _ in range(concurrency)))  # warm connections
        queue = iter(range(total))
        latencies.clear()
        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - start
    return latencies, wall


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98]


def measure(upstream: str, gateway: Gateway, total: int, concurrency: int, rounds: int) -> dict[str, float]:
    """Alternates direct and gateway rounds so drift on a shared machine hits both alike."""
    direct: list[float] = []
    through: list[float] = []
    direct_wall = gateway_wall = 0.0
    for _ in range(rounds):
        lat, wall = asyncio.run(timed_requests(upstream, "fast", total // rounds, concurrency))
        direct += lat
        direct_wall += wall
        lat, wall = asyncio.run(timed_requests(gateway.base_url, "hybrid", total // rounds, concurrency))
        through += lat
        gateway_wall += wall
    return {
        "concurrency": concurrency,
        "requests": len(through),
        "direct_median_ms": statistics.median(direct),
        "direct_p99_ms": p99(direct),
        "gateway_median_ms": statistics.median(through),
        "gateway_p99_ms": p99(through),
        "added_median_ms": statistics.median(through) - statistics.median(direct),
        "added_p99_ms": p99(through) - p99(direct),
        "direct_rps": len(direct) / direct_wall,
        "gateway_rps": len(through) / gateway_wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400, help="requests per path and concurrency level")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        upstream_proc, upstream = start_fast_upstream(workdir)
        config = {"tiers": {"slm": {"backend": "local"},
                            "llm": {"backend": "openai", "base_url": upstream, "model": "fast",
                                    "price": {"input": 2.5, "output": 10.0}}}}
        gateway = start_gateway(workdir / "gw", config)
        try:
            results = [measure(upstream, gateway, args.requests, c, args.rounds) for c in args.concurrency]
            log = gateway.log()
            tiers = {t.tier: t.requests for t in log.totals().by_tier}
            log.close()
        finally:
            stop(gateway.proc)
            stop(upstream_proc)

    assert set(tiers) == {"llm"}, f"every benchmark request should reach the llm tier, got {tiers}"
    if args.json:
        print(json.dumps({"machine": describe(), "results": results}))
        return
    print_table(["clients", "requests", "direct median ms", "gateway median ms", "added median ms", "added p99 ms",
                 "direct req/s", "gateway req/s"],
                [[r["concurrency"], r["requests"],
                  *(f"{r[k]:.2f}" for k in ("direct_median_ms", "gateway_median_ms", "added_median_ms", "added_p99_ms")),
                  f"{r['direct_rps']:.0f}", f"{r['gateway_rps']:.0f}"] for r in results])


if __name__ == "__main__":
    main()
