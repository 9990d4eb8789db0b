"""What the gateway benchmarks share: servers on loopback (the instant upstream, hybridlm gateways,
LiteLLM's proxy), closed-loop httpx clients, percentiles, process memory, and the tool venvs they
install on first use under /tmp/hybridlm-bench (HYBRIDLM_BENCH_DIR moves it).

The gateways are driven over HTTP only, started with the helpers of tests/integration/servers.py.
Not a script: gateway_overhead.py, loop_latency.py, gateway_load.py and gateway_profile.py import it.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import math
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Self

import httpx
import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DEMO_DATA = ROOT / "src" / "hybridlm" / "demo" / "data"
ROUTER_DATA = ROOT / "tests" / "data" / "routellm" / "mmlu"
BENCH_DIR = Path(os.environ.get("HYBRIDLM_BENCH_DIR", "/tmp/hybridlm-bench"))
LOOPBACK = "127.0.0.1"
LITELLM_VERSION = "1.108.6"
PROFILER_PACKAGES = ["py-spy==0.4.3", "pyinstrument==5.1.3"]

# A query the heuristic router sends to the LLM tier, and one the support profile escalates to it
# (angry customer), so every hybridlm target ends at the same instant upstream.
LLM_PROMPT = "Analyze and compare these two vendor contracts step by step and explain the trade-offs in detail."
SUPPORT_PROMPT = "This is UNACCEPTABLE, my card was stolen and you did NOTHING!!!"
CLIENT = f"httpx {httpx.__version__} AsyncClient, one keep-alive connection per client"


def _use_this_checkout() -> None:
    """This process and every gateway it starts import hybridlm from this checkout's src/."""
    src = str(ROOT / "src")
    paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if src not in paths:
        os.environ["PYTHONPATH"] = os.pathsep.join([src, *paths])
    for path in (str(ROOT), src):
        if path not in sys.path:
            sys.path.insert(0, path)


_use_this_checkout()
# The scripts reach the test servers' helpers through here (Gateway and stop too), after the path is set.
from tests.integration.servers import Gateway, free_port, hybrid_config, start_gateway, stop


def today() -> str:
    return date.today().isoformat()


def load_average() -> str:
    """How busy the machine was (other processes included), for the notes under a table."""
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (1 min) / {five:.1f} (5 min) at the end on {os.cpu_count()} cores"


def progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- statistics -------------------------------------------------------------------------------------

def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100), linear between the nearest ranks; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    k = (len(ordered) - 1) * q / 100
    low = math.floor(k)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (k - low)


def fmt(value: float, digits: int = 2) -> str:
    return "n/a" if math.isnan(value) else f"{value:.{digits}f}"


def verdict(ok: bool) -> str:
    return "pass" if ok else "FAIL"


# --- processes --------------------------------------------------------------------------------------

def rss_mb(pid: int) -> float:
    """Resident memory of a process and all its descendants, in MB (psutil if installed, else /proc)."""
    try:
        import psutil
    except ImportError:
        return sum(_proc_rss_kb(p) for p in _process_tree(pid)) / 1024
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
        return float(sum(p.memory_info().rss for p in procs)) / 2**20
    except psutil.Error:
        return math.nan


def _process_tree(pid: int) -> list[int]:
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo += parents.get(current, [])
    return tree


def _proc_rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def wait_ready(proc: subprocess.Popen[bytes], url: str, log_file: Path, timeout: float = 120.0) -> None:
    """Until `url` answers 200; the server's log tail in the error if it exits or never does."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode}:\n{log_file.read_text()[-3000:]}")
        try:
            if httpx.get(url, timeout=1.0, trust_env=False).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    stop(proc)
    raise RuntimeError(f"{url} not ready after {timeout:.0f}s:\n{log_file.read_text()[-3000:]}")


def spawn(cmd: Sequence[str], log_file: Path, env: dict[str, str] | None = None,
          cwd: Path | None = None) -> subprocess.Popen[bytes]:
    with log_file.open("wb") as out:
        return subprocess.Popen(list(cmd), stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd)


@dataclass
class Server:
    """A server process on loopback and its OpenAI base URL (…/v1)."""

    name: str
    proc: subprocess.Popen[bytes]
    base_url: str

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def root_url(self) -> str:
        return self.base_url.removesuffix("/v1")


def start_fast_upstream(workdir: Path, fail_share: float = 0.0) -> Server:
    """benchmarks/fast_upstream.py on a free port."""
    port = free_port()
    log_file = workdir / f"fast-upstream-{port}.log"
    proc = spawn([sys.executable, str(HERE / "fast_upstream.py"), str(port), "--fail-share", str(fail_share)],
                 log_file)
    wait_ready(proc, f"http://{LOOPBACK}:{port}/v1/models", log_file)
    return Server("fast upstream", proc, f"http://{LOOPBACK}:{port}/v1")


def start_hybridlm(workdir: Path, name: str, config: dict[str, Any], env: dict[str, str] | None = None) -> Gateway:
    """`hybridlm serve` with `config` in workdir/name; `env` is added to this process's for it alone."""
    saved = dict(os.environ)
    os.environ.update(env or {})
    try:
        return start_gateway(workdir / name, config)
    finally:
        os.environ.clear()
        os.environ.update(saved)


def as_server(name: str, gateway: Gateway) -> Server:
    return Server(name, gateway.proc, gateway.base_url)


# --- hybridlm configurations ------------------------------------------------------------------------

def hybridlm_cli(*args: str) -> None:
    """Runs `python -m hybridlm ARGS` (this checkout's code), raising with its output if it fails."""
    done = subprocess.run([sys.executable, "-m", "hybridlm", *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"hybridlm {' '.join(args)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")


def _digest(path: Path) -> str:
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    h = hashlib.sha256()
    for file in files:
        h.update(file.name.encode())
        h.update(file.read_bytes())
    return h.hexdigest()[:12]


def cached(name: str, source: Path, build: Callable[[Path], None]) -> Path:
    """BENCH_DIR/artifacts/<name>-<digest of source>.npz, built once by `build(out)`."""
    out = BENCH_DIR / "artifacts" / f"{name}-{_digest(source)}.npz"
    if not out.is_file():
        out.parent.mkdir(parents=True, exist_ok=True)
        partial = out.with_suffix(".partial.npz")
        build(partial)
        partial.rename(out)
    return out


def learned_router(data: Path = ROUTER_DATA) -> Path:
    """`hybridlm train router` (ensemble, minilm-static) on outcome data; no router file ships with hybridlm."""
    def build(out: Path) -> None:
        progress(f"training a learned router on {data} (once)")
        hybridlm_cli("train", "router", "--data", str(data), "--kind", "ensemble", "--encoder", "minilm-static",
                     "--out", str(out))
    return cached("router-ensemble", data, build)


def support_settings() -> dict[str, Any]:
    """The support demo's setup: intents trained on its BANKING77 set, its FAQ and its flows."""
    train = DEMO_DATA / "banking77_train.csv"

    def build(out: Path) -> None:
        progress("training the support demo's intent model on BANKING77 (once; a few minutes)")
        hybridlm_cli("train", "intent", "--data", str(train), "--out", str(out))
    intents = cached("banking77-intents", train, build)
    return {"intent_model": str(intents), "kb_files": [str(DEMO_DATA / "faq.yaml")],
            "flow_files": [str(DEMO_DATA / "flows.yaml")]}


def gateway_config(upstream: Server, router: dict[str, Any] | None = None,
                   support: dict[str, Any] | None = None, redact: bool = False) -> dict[str, Any]:
    """The integration tests' hybrid config (embedded SmolLM2 + the upstream as tier 'llm'). Personal-data
    redaction (on by default in hybridlm) is off unless asked for: the peers compared do none, and its
    cost is measured as a target of its own."""
    config: dict[str, Any] = hybrid_config(upstream.base_url)
    config["server"]["default_max_tokens"] = 8
    config["privacy"] = {"redact": redact}
    if router:
        config["router"] = router
    if support:
        config["support"] = support
    return config


# --- tool venvs -------------------------------------------------------------------------------------

def ensure_venv(name: str, requirements: list[str]) -> Path:
    """BENCH_DIR/<name>, a venv holding exactly `requirements`, created with pip on first use; its bin/."""
    venv = BENCH_DIR / name
    stamp = venv / ".bench-requirements"
    wanted = "\n".join(requirements)
    if stamp.is_file() and stamp.read_text() == wanted:
        return venv / "bin"
    progress(f"installing {' '.join(requirements)} into {venv} (once)")
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    done = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                           *requirements], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"pip install {' '.join(requirements)} failed:\n{done.stderr[-3000:]}")
    stamp.write_text(wanted)
    return venv / "bin"


def venv_site_packages(bin_dir: Path) -> Path:
    return next((bin_dir.parent / "lib").glob("python*/site-packages"))


def start_litellm(workdir: Path, upstream: Server) -> tuple[Server, dict[str, str]]:
    """LiteLLM's proxy (pinned, in its own venv) with model 'fast' on the upstream; its telemetry, request
    logging and access log off. Returns the server and the auth header its master key needs."""
    bin_dir = ensure_venv(f"litellm-venv-{LITELLM_VERSION}", [f"litellm[proxy]=={LITELLM_VERSION}"])
    home = workdir / "litellm"
    home.mkdir(parents=True, exist_ok=True)
    key = "sk-bench-" + os.urandom(16).hex()
    config = {
        "model_list": [{"model_name": "fast", "litellm_params": {
            "model": "openai/fast", "api_base": upstream.base_url, "api_key": "unused"}}],
        "litellm_settings": {"telemetry": False, "turn_off_message_logging": True, "set_verbose": False},
        "general_settings": {"master_key": key, "disable_spend_logs": True},
    }
    (home / "config.yaml").write_text(yaml.safe_dump(config))
    (home / "logging.json").write_text(json.dumps({
        "version": 1, "disable_existing_loggers": False,
        "loggers": {"uvicorn.access": {"level": "WARNING"}, "uvicorn.error": {"level": "WARNING"}}}))
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "PYTHONPATH")}
    env.update(LITELLM_LOCAL_MODEL_COST_MAP="True", LITELLM_TELEMETRY="False", LITELLM_LOG="ERROR",
               NO_PROXY="127.0.0.1,localhost")
    port = free_port()
    log_file = home / "litellm.log"
    proc = spawn([str(bin_dir / "litellm"), "--config", str(home / "config.yaml"), "--host", LOOPBACK,
                  "--port", str(port), "--num_workers", "1", "--log_config", str(home / "logging.json")],
                 log_file, env=env, cwd=home)
    wait_ready(proc, f"http://{LOOPBACK}:{port}/health/liveliness", log_file)
    return Server(f"LiteLLM {LITELLM_VERSION}", proc, f"http://{LOOPBACK}:{port}/v1"), \
        {"authorization": f"Bearer {key}"}


# --- load -------------------------------------------------------------------------------------------

def chat_body(model: str, prompt: str, max_tokens: int = 8) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": prompt}], "max_tokens": max_tokens}


def always(body: dict[str, Any]) -> Callable[[int], dict[str, Any]]:
    """A `body_for` for Clients.run that sends the same body every time."""
    return lambda _: body


def fresh_texts(body: dict[str, Any]) -> Callable[[int], dict[str, Any]]:
    """A `body_for` whose every body has new text: the last message with a request number appended, counted over
    every run this one `body_for` serves."""
    counter = itertools.count()
    *earlier, last = body["messages"]

    def body_for(_: int) -> dict[str, Any]:
        return {**body, "messages": [*earlier, {**last, "content": f"{last['content']} (request {next(counter)})"}]}

    return body_for


@dataclass
class Sample:
    latency_ms: float
    status: int  # 0: no HTTP response (connection error or timeout)
    model: str
    detail: Any = None  # what the run's `inspect` made of the response


@dataclass
class Run:
    samples: list[Sample] = field(default_factory=list)
    wall_s: float = 0.0
    transport_errors: Counter[str] = field(default_factory=Counter)

    def __iadd__(self, other: Run) -> Self:
        self.samples += other.samples
        self.wall_s += other.wall_s
        self.transport_errors += other.transport_errors
        return self

    def latencies(self, ok_only: bool = True) -> list[float]:
        return [s.latency_ms for s in self.samples if s.status == 200 or not ok_only]

    @property
    def rps(self) -> float:
        return len(self.samples) / self.wall_s if self.wall_s else math.nan

    @property
    def errors(self) -> int:
        return sum(s.status != 200 for s in self.samples)


class Clients:
    """`n` closed-loop clients of one server, each its own httpx.AsyncClient with one keep-alive
    connection (one shared pool serialises at 32 clients: about 270 against 630 requests/s here)."""

    def __init__(self, base_url: str, n: int, headers: dict[str, str] | None = None, timeout: float = 60.0) -> None:
        self.base_url = base_url
        self.clients = [httpx.AsyncClient(base_url=base_url, headers=headers, timeout=timeout, trust_env=False,
                                          limits=httpx.Limits(max_connections=1, max_keepalive_connections=1))
                        for _ in range(n)]

    async def run(self, body_for: Callable[[int], dict[str, Any]], seconds: float,
                  inspect: Callable[[httpx.Response], Any] | None = None, path: str = "/chat/completions") -> Run:
        """Every client sends request after request until `seconds` have passed; `body_for(i)` is the
        i-th request's body, `inspect(response)` what to keep of each answer."""
        run = Run()
        counter = iter(range(1 << 62))
        deadline = time.perf_counter() + seconds

        async def loop(client: httpx.AsyncClient) -> None:
            while time.perf_counter() < deadline:
                body = body_for(next(counter))
                t0 = time.perf_counter()
                try:
                    reply = await client.post(path, json=body)
                except httpx.HTTPError as err:
                    run.samples.append(Sample((time.perf_counter() - t0) * 1000, 0, body["model"]))
                    run.transport_errors[type(err).__name__] += 1
                    continue
                run.samples.append(Sample((time.perf_counter() - t0) * 1000, reply.status_code, body["model"],
                                          inspect(reply) if inspect else None))

        start = time.perf_counter()
        await asyncio.gather(*(loop(c) for c in self.clients))
        run.wall_s = time.perf_counter() - start
        return run

    async def aclose(self) -> None:
        await asyncio.gather(*(c.aclose() for c in self.clients))


def probe_latencies(root_url: str, cheap_body: dict[str, Any], seconds: float, interval_s: float) -> dict[str, Any]:
    """In its own process (so the load generator's event loop does not delay it): GET /healthz, then one
    cheap chat request, then a pause, until `seconds` have passed. Latencies in ms, and the statuses."""
    async def probe() -> dict[str, Any]:
        out: dict[str, Any] = {"healthz": [], "cheap": [], "statuses": Counter()}
        async with httpx.AsyncClient(base_url=root_url, timeout=60, trust_env=False) as client:
            await client.get("/healthz")
            deadline = time.perf_counter() + seconds
            while time.perf_counter() < deadline:
                for key in ("healthz", "cheap"):
                    t0 = time.perf_counter()
                    reply = await (client.get("/healthz") if key == "healthz"
                                   else client.post("/v1/chat/completions", json=cheap_body))
                    out[key].append((time.perf_counter() - t0) * 1000)
                    out["statuses"][f"{key} {reply.status_code}"] += 1
                await asyncio.sleep(interval_s)
        return out

    result: dict[str, Any] = asyncio.run(probe())
    return result


# --- answers ----------------------------------------------------------------------------------------

def answer_shape(reply: httpx.Response) -> str:
    """'completion', 'error' (OpenAI's error object) or 'malformed', for a response's body."""
    try:
        body = reply.json()
    except ValueError:
        return "malformed"
    if not isinstance(body, dict):
        return "malformed"
    if reply.status_code == 200:
        choices = body.get("choices")
        return "completion" if isinstance(choices, list) and choices else "malformed"
    error = body.get("error")
    if isinstance(error, dict) and isinstance(error.get("message"), str) and isinstance(error.get("type"), str):
        return "error"
    return "malformed"


def served_tier(reply: httpx.Response) -> str | None:
    """The tier hybridlm says answered (its `hybridlm` metadata), None for other servers."""
    meta = reply.json().get("hybridlm")
    return meta.get("tier") if isinstance(meta, dict) else None


def check_target(server: Server, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
    """One request: it must succeed, and reach the upstream (hybridlm's tier 'llm') where hybridlm says."""
    reply = httpx.post(server.base_url + "/chat/completions", json=body, headers=headers, timeout=120,
                       trust_env=False)
    if reply.status_code != 200:
        raise RuntimeError(f"{server.name}, model {body['model']}: {reply.status_code} {reply.text[:500]}")
    tier = served_tier(reply)
    if tier not in (None, "llm"):
        raise RuntimeError(f"{server.name}, model {body['model']} was answered by tier {tier!r}, not the upstream: "
                           f"{reply.json().get('hybridlm')}")
