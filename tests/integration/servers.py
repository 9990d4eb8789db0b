"""Real servers on loopback for the integration tests: a llama.cpp upstream and the gateway itself."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from hybridlm.models.catalogue import SMALLEST_LOCAL_MODEL
from hybridlm.models.manager import MODELS_DIR_ENV, ModelManager
from hybridlm.request_log import RequestLog, default_log_path

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def _wait_ready(proc: subprocess.Popen[bytes], url: str, log_file: Path, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}:\n{log_file.read_text()[-3000:]}")
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"server at {url} not ready after {timeout}s:\n{log_file.read_text()[-3000:]}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class Upstream:
    """`python -m llama_cpp.server` hosting the bundled SmolLM2: the stand-in cloud LLM."""

    proc: subprocess.Popen[bytes]
    port: int

    @property
    def base_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}/v1"


def model_file(name: str = SMALLEST_LOCAL_MODEL) -> Path:
    """A catalogued model's verified GGUF, joined into the session's shared models dir if need be."""
    return ModelManager(Path(os.environ[MODELS_DIR_ENV])).locate(name)


def start_llama_server(workdir: Path, *options: str, model: str = SMALLEST_LOCAL_MODEL) -> Upstream:
    """`python -m llama_cpp.server` with a catalogued model (SmolLM2 by default); `options` are more flags."""
    port = free_port()
    log_file = workdir / f"llama-server-{port}.log"
    cmd = [sys.executable, "-m", "tests.integration.llama_server", "--model", str(model_file(model)),
           "--host", LOOPBACK, "--port", str(port), "--n_ctx", "4096", "--n_threads", "1", *options]
    with log_file.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=Path(__file__).parents[2])
    _wait_ready(proc, f"http://{LOOPBACK}:{port}/v1/models", log_file)
    return Upstream(proc, port)


def _start_test_server(workdir: Path, module: str, *args: str) -> tuple[subprocess.Popen[bytes], int]:
    """One of this folder's OpenAI-compatible servers (`python -m tests.integration.<module>`), ready."""
    port = free_port()
    log_file = workdir / f"{module}-{port}.log"
    cmd = [sys.executable, "-m", f"tests.integration.{module}", "--port", str(port), *args]
    with log_file.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=Path(__file__).parents[2])
    _wait_ready(proc, f"http://{LOOPBACK}:{port}/v1/models", log_file)
    return proc, port


@dataclass
class RecordingUpstream(Upstream):
    """An upstream that keeps every body it got (`GET /recorded`)."""

    def recorded(self) -> list[dict[str, Any]]:
        return list(httpx.get(f"http://{LOOPBACK}:{self.port}/recorded", timeout=5).json())

    def cookies(self) -> list[str | None]:
        """The Cookie header of each request (a recording upstream's; it sets one on every answer)."""
        return list(httpx.get(f"http://{LOOPBACK}:{self.port}/cookies", timeout=5).json())


def start_scripted_upstream(workdir: Path, script: list[dict[str, Any]]) -> RecordingUpstream:
    """`tests.integration.scripted_upstream`: an OpenAI-compatible server that says what it is told."""
    script_file = workdir / f"script-{len(list(workdir.glob('script-*.json')))}.json"
    script_file.write_text(json.dumps(script))
    return RecordingUpstream(*_start_test_server(workdir, "scripted_upstream", "--script", str(script_file)))


def start_recording_upstream(workdir: Path) -> RecordingUpstream:
    return RecordingUpstream(*_start_test_server(workdir, "recording_upstream"))


@dataclass
class FaultyUpstream(Upstream):
    """`tests.integration.faulty_upstream`: an OpenAI-compatible server that fails as it is told to."""

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def set_fault(self, fault: str, **options: Any) -> None:
        httpx.post(self.url + "/control", json={"fault": fault, **options}, timeout=5).raise_for_status()

    def requests(self) -> int:
        """Chat requests received so far."""
        return int(httpx.get(self.url + "/stats", timeout=5).json()["requests"])


def start_faulty_upstream(workdir: Path, reply: str = "the faulty upstream answers") -> FaultyUpstream:
    return FaultyUpstream(*_start_test_server(workdir, "faulty_upstream", "--reply", reply))


@dataclass
class Gateway:
    """`hybridlm serve` in a subprocess with its own config and data dir."""

    proc: subprocess.Popen[bytes]
    port: int
    data_dir: Path

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def base_url(self) -> str:
        return self.url + "/v1"

    @property
    def output(self) -> Path:
        """What the gateway process printed (its log lines)."""
        return self.data_dir.parent / f"gateway-{self.port}.log"

    def log(self) -> RequestLog:
        return RequestLog(default_log_path(self.data_dir))

    def row(self, request_id: str, timeout: float = 5.0) -> dict[str, Any]:
        """The request's row, once the gateway's writer has committed it (just after the response)."""
        log = self.log()
        deadline = time.monotonic() + timeout
        try:
            while (row := log.get(request_id)) is None and time.monotonic() < deadline:
                time.sleep(0.02)
        finally:
            log.close()
        assert row is not None, f"no log row for {request_id} after {timeout}s"
        return row

    def newest_request_id(self) -> str | None:
        log = self.log()
        try:
            rows = log.recent(1)
        finally:
            log.close()
        return rows[0]["request_id"] if rows else None

    def row_after(self, previous_id: str | None, timeout: float = 5.0) -> dict[str, Any]:
        """The first row written after `previous_id`, for a request whose client left before it saw its id."""
        deadline = time.monotonic() + timeout
        while (newest := self.newest_request_id()) == previous_id and time.monotonic() < deadline:
            time.sleep(0.02)
        assert newest != previous_id, f"no new log row after {timeout}s"
        return self.row(newest)


def start_gateway(workdir: Path, config: dict[str, Any]) -> Gateway:
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config_file = workdir / "hybridlm.yaml"
    config_file.write_text(yaml.safe_dump(config))
    data_dir = workdir / "data"
    env = {**os.environ, "HYBRIDLM_DATA_DIR": str(data_dir), "NO_PROXY": "127.0.0.1,localhost"}
    log_file = workdir / f"gateway-{port}.log"
    cmd = [sys.executable, "-m", "hybridlm", "serve", "--host", LOOPBACK, "--port", str(port),
           "--config", str(config_file)]
    with log_file.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
    _wait_ready(proc, f"http://{LOOPBACK}:{port}/healthz", log_file)
    return Gateway(proc, port, data_dir)


def hybrid_config(llm_base_url: str | None, slm_model: str = SMALLEST_LOCAL_MODEL, **llm: Any) -> dict[str, Any]:
    """Embedded SLM (the smallest model unless one is named) plus an 'llm' tier on the given
    OpenAI-compatible URL (None: `llm` names its `upstreams`), priced so costs show."""
    where = {"base_url": llm_base_url} if llm_base_url is not None else {}
    return {
        "tiers": {
            "slm": {"backend": "local", "model": slm_model, "price": {"input": 0.0, "output": 0.0}},
            "llm": {"backend": "openai", **where, "model": "smollm2-cloud",
                    "price": {"input": 2.5, "output": 10.0}, "timeout": 30, "connect_timeout": 2, **llm},
        },
        "server": {"default_max_tokens": 16},
    }
