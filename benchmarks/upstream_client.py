"""The HTTP client under the remote tier: httpx against aiohttp, sequential calls to the instant upstream.

Run: python benchmarks/upstream_client.py [--calls 1000]
Prints the mean milliseconds per call of each client, the upstream's own time included.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import httpx
import orjson

BODY = orjson.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 8})
WARM_UP = 50


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def wait_ready(root: str) -> None:
    async with httpx.AsyncClient(trust_env=False) as client:
        for _ in range(200):
            try:
                await client.get(root + "/v1/models")
                return
            except httpx.HTTPError:
                await asyncio.sleep(0.1)
    raise SystemExit("the upstream did not start")


async def with_httpx(url: str, calls: int) -> float:
    async with httpx.AsyncClient(trust_env=False) as client:
        for _ in range(WARM_UP):
            await client.post(url, content=BODY)
        start = time.perf_counter()
        for _ in range(calls):
            (await client.post(url, content=BODY)).content
        return (time.perf_counter() - start) / calls * 1000


async def with_aiohttp(url: str, calls: int) -> float:
    headers = {"content-type": "application/json"}
    async with aiohttp.ClientSession() as session:
        for _ in range(WARM_UP):
            async with session.post(url, data=BODY, headers=headers) as reply:
                await reply.read()
        start = time.perf_counter()
        for _ in range(calls):
            async with session.post(url, data=BODY, headers=headers) as reply:
                await reply.read()
        return (time.perf_counter() - start) / calls * 1000


async def main(calls: int) -> None:
    port = free_port()
    upstream = subprocess.Popen([sys.executable, str(Path(__file__).with_name("fast_upstream.py")), str(port)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        root = f"http://127.0.0.1:{port}"
        await wait_ready(root)
        url = root + "/v1/chat/completions"
        print(f"httpx {httpx.__version__}: {await with_httpx(url, calls):.3f} ms per call")
        print(f"aiohttp {aiohttp.__version__}: {await with_aiohttp(url, calls):.3f} ms per call")
    finally:
        upstream.terminate()
        upstream.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000)
    asyncio.run(main(parser.parse_args().calls))
