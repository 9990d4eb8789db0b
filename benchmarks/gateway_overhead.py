"""Gateway overhead side by side: what each gateway adds to a request over calling the upstream directly.

One run, one instant upstream (benchmarks/fast_upstream.py), one client (httpx AsyncClient), and seven
targets whose rounds alternate so drift on a shared machine hits all alike:
  direct   the upstream itself
  litellm  LiteLLM's proxy (pinned, own venv under /tmp/hybridlm-bench, installed on first use)
  llm      hybridlm, model 'llm' (the tier forced: no routing)
  redacted hybridlm, model 'llm', with personal-data redaction on (hybridlm's default; off for the
           other targets, as the peers do none): what checking every message costs (each request's
           text made new by a number, so the detector's cache of recent texts never answers)
  hybrid   hybridlm, model 'hybrid', heuristic router (a query it sends to the LLM tier)
  learned  hybridlm, model 'hybrid', learned router (trained by `hybridlm train router` on
           tests/data/routellm/mmlu unless --router-data; threshold 0 so every request still reaches
           the upstream after the router has scored it)
  support  hybridlm, model 'hybrid/support' (the support demo's intents, FAQ and flows; an angry
           message, so intent, FAQ and sentiment all run and the LLM tier answers)
'llm' and 'hybrid' share one gateway process; 'redacted', 'learned' and 'support' have their own.

Run (from the repository root; about 2 x 6 x --seconds plus ~1 min start-up, more the first time):
  PYTHONPATH=$PWD/src HYBRIDLM_MODELS_DIR=/tmp/models python benchmarks/gateway_overhead.py --seconds 20
Options: --clients 1 32, --rounds 4, --targets direct,litellm,llm,redacted,hybrid,learned,support, --json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Callable
from typing import Any

from harness import (
    CLIENT,
    LITELLM_VERSION,
    LLM_PROMPT,
    ROUTER_DATA,
    SUPPORT_PROMPT,
    Clients,
    Run,
    Server,
    always,
    fresh_texts,
    as_server,
    chat_body,
    check_target,
    fmt,
    gateway_config,
    learned_router,
    load_average,
    percentile,
    progress,
    rss_mb,
    start_fast_upstream,
    start_hybridlm,
    start_litellm,
    stop,
    support_settings,
    today,
    verdict,
)
from machine import describe, print_table

TARGETS = ("direct", "litellm", "llm", "redacted", "hybrid", "learned", "support")
HYBRIDLM = ("llm", "hybrid", "learned")  # the spec's latency and throughput targets apply to these
TARGET_TEXT = {
    "added median": "added median <= 1 ms at 1 client",
    "throughput": ">= 1,000 requests/s at 32 clients with p99 <= 3x the median",
    "support": "hybrid/support >= 250 requests/s (at 32 clients)",
}


@dataclass
class Target:
    key: str
    label: str
    server: Server
    body: dict[str, Any]
    headers: dict[str, str] | None = None
    fresh: bool = False  # every request's text new, so that no cache keyed by text answers for it

    def bodies(self) -> Callable[[int], dict[str, Any]]:
        return fresh_texts(self.body) if self.fresh else always(self.body)


def start_targets(stack: ExitStack, workdir: Path, keys: list[str], router_data: Path) -> list[Target]:
    """The upstream and every server `keys` needs, each stopped when `stack` closes."""
    upstream = start_fast_upstream(workdir)
    stack.callback(stop, upstream.proc)
    targets = [Target("direct", "upstream directly", upstream, chat_body("fast", LLM_PROMPT))]
    if "litellm" in keys:
        litellm, auth = start_litellm(workdir, upstream)
        stack.callback(stop, litellm.proc)
        targets.append(Target("litellm", f"LiteLLM {LITELLM_VERSION} proxy", litellm,
                              chat_body("fast", LLM_PROMPT), auth))
    if {"llm", "hybrid"} & set(keys):
        progress("starting hybridlm (heuristic router)")
        plain = start_hybridlm(workdir, "gw-heuristic", gateway_config(upstream))
        stack.callback(stop, plain.proc)
        server = as_server("hybridlm", plain)
        targets += [Target("llm", "hybridlm, model llm (forced tier)", server, chat_body("llm", LLM_PROMPT)),
                    Target("hybrid", "hybridlm, hybrid, heuristic router", server, chat_body("hybrid", LLM_PROMPT))]
    if "redacted" in keys:
        progress("starting hybridlm (personal data redacted)")
        gateway = start_hybridlm(workdir, "gw-redacted", gateway_config(upstream, redact=True))
        stack.callback(stop, gateway.proc)
        targets.append(Target("redacted", "hybridlm, model llm, personal data redacted",
                              as_server("hybridlm redacted", gateway), chat_body("llm", LLM_PROMPT), fresh=True))
    if "learned" in keys:
        router = {"kind": "learned", "artifact": str(learned_router(router_data)), "threshold": 0.0}
        progress("starting hybridlm (learned router)")
        gateway = start_hybridlm(workdir, "gw-learned", gateway_config(upstream, router=router))
        stack.callback(stop, gateway.proc)
        targets.append(Target("learned", "hybridlm, hybrid, learned router", as_server("hybridlm learned", gateway),
                              chat_body("hybrid", LLM_PROMPT)))
    if "support" in keys:
        support = support_settings()
        progress("starting hybridlm (support profile)")
        gateway = start_hybridlm(workdir, "gw-support", gateway_config(upstream, support=support))
        stack.callback(stop, gateway.proc)
        targets.append(Target("support", "hybridlm, hybrid/support", as_server("hybridlm support", gateway),
                              chat_body("hybrid/support", SUPPORT_PROMPT)))
    chosen = [t for t in targets if t.key in keys or t.key == "direct"]
    for target in chosen:
        check_target(target.server, target.body, target.headers)
    return chosen


async def measure(targets: list[Target], clients: int, seconds: float, rounds: int) -> dict[str, tuple[Run, float]]:
    """Each target's run at `clients` clients, `rounds` rounds of seconds/rounds each, the order rotating
    every round; and the largest RSS (MB) its server process showed after a round."""
    pools = {t.key: Clients(t.server.base_url, clients, t.headers) for t in targets}
    runs = {t.key: Run() for t in targets}
    rss = {t.key: 0.0 for t in targets}
    bodies = {t.key: t.bodies() for t in targets}  # one per target for the whole run: fresh texts never repeat
    try:
        for target in targets:  # open every connection and warm each server up
            await pools[target.key].run(bodies[target.key], 1.0)
        for r in range(rounds):
            for target in targets[r % len(targets):] + targets[:r % len(targets)]:
                runs[target.key] += await pools[target.key].run(bodies[target.key], seconds / rounds)
                rss[target.key] = max(rss[target.key], rss_mb(target.server.pid))
    finally:
        for pool in pools.values():
            await pool.aclose()
    return {key: (runs[key], rss[key]) for key in runs}


def summarise(target: Target, clients: int, run: Run, rss: float, direct: Run) -> dict[str, Any]:
    lat, base = run.latencies(), direct.latencies()
    row: dict[str, Any] = {
        "target": target.key, "label": target.label, "clients": clients, "requests": len(run.samples),
        "errors": run.errors, "error_statuses": dict(Counter(s.status for s in run.samples if s.status != 200)),
        "median_ms": statistics.median(lat), "p99_ms": percentile(lat, 99),
        "added_median_ms": statistics.median(lat) - statistics.median(base),
        "added_p99_ms": percentile(lat, 99) - percentile(base, 99), "rps": run.rps, "rss_mb": rss,
    }
    row["targets"] = spec_targets(target.key, row)
    return row


def spec_targets(key: str, row: dict[str, Any]) -> dict[str, bool]:
    """The spec's targets that apply to this row, each met or not; a row with errors meets none."""
    ok = not row["errors"]
    if key in HYBRIDLM and row["clients"] == 1:
        return {TARGET_TEXT["added median"]: ok and row["added_median_ms"] <= 1.0}
    if key in HYBRIDLM and row["clients"] == 32:
        return {TARGET_TEXT["throughput"]: ok and row["rps"] >= 1000 and row["p99_ms"] <= 3 * row["median_ms"]}
    if key == "support" and row["clients"] == 32:
        return {TARGET_TEXT["support"]: ok and row["rps"] >= 250}
    return {}


def errors(row: dict[str, Any]) -> str:
    """'0', or '8 (503: 8)': status 0 is a request that got no HTTP answer."""
    if not row["errors"]:
        return "0"
    return f"{row['errors']} (" + ", ".join(f"{k}: {v}" for k, v in sorted(row["error_statuses"].items())) + ")"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="measured time per target and client count")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--targets", default=",".join(TARGETS), help="comma-separated subset of " + ",".join(TARGETS))
    parser.add_argument("--router-data", type=Path, default=ROUTER_DATA,
                        help="outcome data the learned router is trained on")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    keys = args.targets.split(",")
    if unknown := set(keys) - set(TARGETS):
        parser.error(f"unknown targets {sorted(unknown)}")

    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        targets = start_targets(stack, Path(tmp), keys, args.router_data)
        for clients in args.clients:
            progress(f"{clients} clients: {len(targets)} targets x {args.seconds:g} s")
            runs = asyncio.run(measure(targets, clients, args.seconds, args.rounds))
            direct = runs["direct"][0]
            results += [summarise(t, clients, *runs[t.key], direct) for t in targets]

    if args.json:
        print(json.dumps({"date": today(), "machine": describe(), "load": load_average(), "client": CLIENT, "litellm": LITELLM_VERSION,
                          "seconds": args.seconds, "rounds": args.rounds, "results": results}))
        return
    print_table(["target", "clients", "requests", "errors", "median ms", "p99 ms", "added median ms", "added p99 ms",
                 "req/s", "RSS MB", "spec target"],
                [[r["label"], r["clients"], r["requests"], errors(r), fmt(r["median_ms"]), fmt(r["p99_ms"]),
                  "" if r["target"] == "direct" else fmt(r["added_median_ms"]),
                  "" if r["target"] == "direct" else fmt(r["added_p99_ms"]), fmt(r["rps"], 0), fmt(r["rss_mb"], 0),
                  "; ".join(f"{verdict(ok)}: {text}" for text, ok in r["targets"].items())] for r in results],
                note=f"{today()}; {load_average()}; client: {CLIENT}; {args.seconds:g} s per target and client count in "
                     f"{args.rounds} alternating rounds")


if __name__ == "__main__":
    main()
