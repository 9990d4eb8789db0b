"""Where the gateway's time goes: the hot path profiled while 32 clients send `hybrid` requests.

The gateway (heuristic router, or with --router learned the learned one, as in gateway_overhead.py) serves the instant upstream's answers while
the profiler samples it: py-spy attached to the process (`py-spy record --pid`), or, where py-spy
cannot attach (no ptrace), pyinstrument inside the gateway's event-loop thread, started and stopped
by signals from a sitecustomize.py this script puts on the gateway's PYTHONPATH. Waiting is left out
(select/epoll, threads parked in threading's wait()). Both tools come from a venv under
/tmp/hybridlm-bench, made on first use. Prints the top functions by own (self) time, the hybridlm
functions by time including callees, and own time by package.

Run (from the repository root; about --seconds plus ~30 s):
  PYTHONPATH=$PWD/src HYBRIDLM_MODELS_DIR=/tmp/models python benchmarks/gateway_profile.py --seconds 20
Options: --clients 32, --router heuristic|learned, --profiler auto|py-spy|pyinstrument, --top 20,
--save STACKS.txt, --json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import subprocess
import tempfile
import time
from collections import Counter
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from harness import (
    CLIENT,
    LLM_PROMPT,
    PROFILER_PACKAGES,
    Clients,
    Gateway,
    Run,
    always,
    chat_body,
    ensure_venv,
    gateway_config,
    learned_router,
    load_average,
    progress,
    start_fast_upstream,
    start_hybridlm,
    stop,
    today,
    venv_site_packages,
)
from machine import describe, print_table

BODY = chat_body("hybrid", LLM_PROMPT)
OUT_ENV = "HYBRIDLM_BENCH_PYINSTRUMENT_OUT"
SITECUSTOMIZE = f'''"""Put on a gateway's PYTHONPATH by benchmarks/gateway_profile.py: SIGUSR1 starts pyinstrument on the
main (event-loop) thread, SIGUSR2 stops it and writes collapsed stacks ("frame;frame;... microseconds")."""
import os
import signal

_OUT = os.environ.get("{OUT_ENV}")
_STATE = {{}}


def _label(frame):
    return f"{{frame.function}} ({{frame.file_path_short}}:{{frame.line_no}})"


def _walk(frame, path, lines):
    for child in frame.children:
        if child.function == "[self]":
            lines.append(";".join(path) + f" {{round(child.time * 1e6)}}")
        else:
            _walk(child, [*path, _label(child)], lines)


def _start(*_):
    from pyinstrument import Profiler

    _STATE["profiler"] = Profiler(interval=0.0005, async_mode="disabled")
    _STATE["profiler"].start()


def _stop(*_):
    session = _STATE.pop("profiler").stop()
    root, lines = session.root_frame(), []
    if root is not None:
        _walk(root, [_label(root)], lines)
    with open(_OUT + ".part", "w") as out:
        out.write("\\n".join(lines) + "\\n")
    os.replace(_OUT + ".part", _OUT)


if _OUT:
    signal.signal(signal.SIGUSR1, _start)
    signal.signal(signal.SIGUSR2, _stop)
'''
FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


def parse_stacks(text: str) -> Counter[tuple[tuple[str, str], ...]]:
    """Collapsed stacks ("f (file:line);g (file:line) weight"), root first, as (function, file) tuples
    without line numbers; py-spy's thread prefixes and the event loop's waits are dropped."""
    stacks: Counter[tuple[tuple[str, str], ...]] = Counter()
    for line in text.splitlines():
        if not line.strip():
            continue
        path, _, weight = line.rpartition(" ")
        frames = []
        for part in path.split(";"):
            match = FRAME.match(part.strip())
            if match:
                frames.append((match["func"], match["file"]))
        if frames and not is_idle(frames[-1]):
            stacks[tuple(frames)] += int(weight)
    return stacks


def is_idle(frame: tuple[str, str]) -> bool:
    """Waiting, not working: the event loop in select/epoll (pyinstrument counts wall time, so it sees
    these) and threads parked on a condition (py-spy's idle detection misses some on a busy machine)."""
    func, file = frame
    return (file.endswith("selectors.py") and func.rsplit(".", 1)[-1] in ("select", "poll")) or \
        (file.endswith("threading.py") and func.rsplit(".", 1)[-1] == "wait")


def package(file: str) -> str:
    """'hybridlm/pipeline.py' -> 'hybridlm'; '/…/site-packages/starlette/routing.py' -> 'starlette';
    'asyncio/events.py' -> 'asyncio'; a lone 'threading.py' -> 'threading'."""
    tail = file.split("site-packages/")[-1].split("lib/python3")[-1]
    parts = [p for p in tail.split("/") if p and not p.startswith(".")]
    if len(parts) > 1 and re.fullmatch(r"\d+(\.\d+)*", parts[0]):  # "3.11/asyncio/…" from a stdlib path
        parts = parts[1:]
    head = parts[0] if parts else file
    return head.removesuffix(".py")


def summarise(stacks: Counter[tuple[tuple[str, str], ...]], top: int) -> dict[str, Any]:
    total = sum(stacks.values()) or 1
    own: Counter[tuple[str, str]] = Counter()
    inclusive: Counter[tuple[str, str]] = Counter()
    by_package: Counter[str] = Counter()
    for frames, weight in stacks.items():
        own[frames[-1]] += weight
        by_package[package(frames[-1][1])] += weight
        for frame in set(frames):
            inclusive[frame] += weight

    def share(items: list[tuple[Any, int]]) -> list[dict[str, Any]]:
        return [{"function": f"{k[0]} ({k[1]})" if isinstance(k, tuple) else k, "share": w / total}
                for k, w in items]

    ours = [(k, w) for k, w in inclusive.most_common() if package(k[1]) == "hybridlm"]
    return {"samples": sum(stacks.values()), "own": share(own.most_common(top)),
            "hybridlm_inclusive": share(ours[:top]), "by_package": share(by_package.most_common(top))}


def py_spy(bin_dir: Path, pid: int, seconds: float, out: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([str(bin_dir / "py-spy"), "record", "--pid", str(pid), "--duration", str(round(seconds)),
                             "--rate", "200", "--format", "raw", "--output", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def can_attach(bin_dir: Path, pid: int) -> bool:
    done = subprocess.run([str(bin_dir / "py-spy"), "dump", "--pid", str(pid)], capture_output=True, text=True,
                          check=False)
    return done.returncode == 0


async def profiled(gateway: Gateway, clients: int, seconds: float, tool: str, bin_dir: Path,
                   out: Path) -> tuple[Run, str]:
    """The load, with the profiler running during its measured part; the run and the collapsed stacks."""
    pool = Clients(gateway.base_url, clients)
    try:
        await pool.run(always(BODY), 1.0)
        if tool == "py-spy":
            spy = py_spy(bin_dir, gateway.proc.pid, seconds, out)
            await asyncio.sleep(0.5)  # attached before the load starts
            run = await pool.run(always(BODY), seconds)
            message = (await asyncio.to_thread(spy.communicate))[0].decode(errors="replace")
            if spy.returncode != 0 or not out.is_file():
                raise RuntimeError(f"py-spy failed:\n{message[-2000:]}")
        else:
            os.kill(gateway.proc.pid, signal.SIGUSR1)
            run = await pool.run(always(BODY), seconds)
            os.kill(gateway.proc.pid, signal.SIGUSR2)
            deadline = time.monotonic() + 60
            while not out.is_file() and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
        return run, out.read_text()
    finally:
        await pool.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--router", choices=["heuristic", "learned"], default="heuristic")
    parser.add_argument("--profiler", choices=["auto", "py-spy", "pyinstrument"], default="auto")
    parser.add_argument("--top", type=int, default=20)
    parser.add_argument("--save", type=Path, help="also write the collapsed stacks here (flamegraph input)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    bin_dir = ensure_venv("profiler-venv", PROFILER_PACKAGES)
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        workdir = Path(tmp)
        upstream = start_fast_upstream(workdir)
        stack.callback(stop, upstream.proc)
        hook = workdir / "hook"
        hook.mkdir()
        (hook / "sitecustomize.py").write_text(SITECUSTOMIZE)
        out = workdir / "stacks.txt"
        env = {"PYTHONPATH": os.pathsep.join([str(hook), os.environ["PYTHONPATH"],
                                              str(venv_site_packages(bin_dir))]), OUT_ENV: str(out)}
        router = None if args.router == "heuristic" else {"kind": "learned", "artifact": str(learned_router()),
                                                           "threshold": 0.0}
        progress(f"starting hybridlm ({args.router} router)")
        gateway = start_hybridlm(workdir, "gw", gateway_config(upstream, router=router), env)
        stack.callback(stop, gateway.proc)
        tool = args.profiler
        if tool == "auto":
            tool = "py-spy" if can_attach(bin_dir, gateway.proc.pid) else "pyinstrument"
        progress(f"{args.clients} clients for {args.seconds:g} s under {tool}")
        run, text = asyncio.run(profiled(gateway, args.clients, args.seconds, tool, bin_dir, out))
    if args.save:
        args.save.write_text(text)
    result = summarise(parse_stacks(text), args.top)

    if args.json:
        print(json.dumps({"date": today(), "machine": describe(), "load": load_average(), "client": CLIENT, "profiler": tool,
                          "router": args.router, "clients": args.clients, "seconds": args.seconds, "rps": run.rps, "errors": run.errors,
                          **result}))
        return
    unit = "samples" if tool == "py-spy" else "microseconds"
    note = (f"{today()}; {load_average()}; {tool}; {args.clients} clients x {args.seconds:g} s of model hybrid "
            f"({args.router} router), {run.rps:.0f} req/s "
            f"while profiled, {run.errors} errors; {result['samples']} {unit}")
    for title, key in (("own time", "own"), ("hybridlm functions, time including callees", "hybridlm_inclusive"),
                       ("own time by package", "by_package")):
        print(f"\n{title}")
        print_table(["function" if key != "by_package" else "package", "share"],
                    [[r["function"], f"{100 * r['share']:.1f}%"] for r in result[key]], note=note)


if __name__ == "__main__":
    main()
