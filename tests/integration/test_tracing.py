"""Traces over OTLP/HTTP: a real gateway sends one span tree per request to a collector on loopback (with
the configured headers, which it never prints), and nothing at all without an endpoint."""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import openai
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from hybridlm.config import OTLP_ENDPOINT_ENV, TRACES_ENDPOINT_ENV, TelemetryConfig
from tests.integration.commands import hybridlm
from tests.integration.servers import LOOPBACK, hybrid_config, start_faulty_upstream, start_gateway, stop

HELLO = [{"role": "user", "content": "Hi!"}]
SECRET = "collector-secret-4f2a"


class Collector:
    """An OTLP/HTTP receiver: each POST /v1/traces decoded, its spans kept with the headers that came with it."""

    def __init__(self) -> None:
        self.spans: list[Span] = []
        self.services: set[str] = set()
        self.headers: list[dict[str, str]] = []
        collector = self

        class Receiver(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.path == "/v1/traces":
                    collector.received(ExportTraceServiceRequest.FromString(body), dict(self.headers))
                    answer, status = ExportTraceServiceResponse().SerializeToString(), 200
                else:
                    answer, status = b"", 404
                self.send_response(status)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer((LOOPBACK, 0), Receiver)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def endpoint(self) -> str:
        return f"http://{LOOPBACK}:{self.server.server_address[1]}/v1/traces"

    def received(self, export: ExportTraceServiceRequest, headers: dict[str, str]) -> None:
        self.headers.append({k.lower(): v for k, v in headers.items()})
        for resource_spans in export.resource_spans:
            self.services |= {kv.value.string_value for kv in resource_spans.resource.attributes
                              if kv.key == "service.name"}
            for scope_spans in resource_spans.scope_spans:
                self.spans.extend(scope_spans.spans)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def collector() -> Iterator[Collector]:
    receiver = Collector()
    yield receiver
    receiver.close()


def attributes(span: Span) -> dict[str, Any]:
    return {kv.key: getattr(kv.value, kv.value.WhichOneof("value")) for kv in span.attributes}


def request_id(response: Any) -> str:
    return str(response.model_extra["hybridlm"]["request_id"])


def test_each_request_is_one_span_tree_with_its_stages(tmp_path: Path, collector: Collector) -> None:
    upstream = start_faulty_upstream(tmp_path, reply="the cloud answers")
    config = hybrid_config(upstream.base_url, retries={"attempts": 1})
    config["telemetry"] = {"otlp_endpoint": collector.endpoint, "service_name": "hybridlm-test",
                           "headers": {"x-collector-key": SECRET}}
    gateway = start_gateway(tmp_path / "gw", config)
    client = openai.OpenAI(base_url=gateway.base_url, api_key="unused", max_retries=0)
    try:
        routed = client.chat.completions.create(model="hybrid", messages=HELLO, max_tokens=4)
        forced = client.chat.completions.create(model="llm", messages=HELLO, max_tokens=4)
        chunks = list(client.chat.completions.create(model="llm", messages=HELLO, max_tokens=4, stream=True))
        support = client.chat.completions.create(model="hybrid/support", messages=HELLO, max_tokens=4)
        upstream.set_fault("http_500")
        with pytest.raises(openai.APIStatusError) as failure:
            client.chat.completions.create(model="llm", messages=HELLO, max_tokens=4)
    finally:
        stop(gateway.proc)  # the app's shutdown sends what is still queued
        stop(upstream.proc)
    assert routed.model_extra["hybridlm"]["tier"] == "slm"
    ids = {"routed": request_id(routed), "forced": request_id(forced), "streamed": request_id(chunks[-1]),
           "support": request_id(support), "failed": failure.value.response.headers["x-hybridlm-request-id"]}

    by_trace: dict[bytes, list[Span]] = defaultdict(list)
    for span in collector.spans:
        by_trace[span.trace_id].append(span)
    roots = {}
    for spans in by_trace.values():
        own = {span.span_id for span in spans}
        (root,) = [span for span in spans if not span.parent_span_id]
        assert all(span.parent_span_id in own for span in spans if span is not root)
        roots[attributes(root)["hybridlm.request_id"]] = (root, spans)
    assert set(roots) == set(ids.values())  # one trace per request, each its own

    def stages(name: str) -> dict[str, list[Span]]:
        named: dict[str, list[Span]] = defaultdict(list)
        for span in roots[ids[name]][1]:
            named[span.name].append(span)
        return named

    for name, tier in [("routed", "slm"), ("forced", "llm"), ("streamed", "llm"), ("support", "slm")]:
        root, _ = roots[ids[name]]
        seen = stages(name)
        assert {"hybridlm.request", "decide", "analyse", f"call {tier}", "record"} <= set(seen), name
        outcome = attributes(root)
        assert (outcome["hybridlm.tier"], outcome["hybridlm.status"], outcome["http.response.status_code"]) == \
            (tier, "ok", 200)
        call = attributes(seen[f"call {tier}"][0])
        assert call["hybridlm.tier"] == tier and call["hybridlm.completion_tokens"] > 0
        assert all(span.parent_span_id == root.span_id for span in seen["decide"] + seen["record"])
    assert attributes(roots[ids["forced"]][0])["hybridlm.cost_usd"] > 0
    assert attributes(roots[ids["streamed"]][0])["hybridlm.stream"] is True
    assert attributes(stages("routed")["decide"][0])["hybridlm.routed_tier"] == "slm"
    # hybrid/support plans in the worker pool: its skills' span still nests under the plan
    support_stages = stages("support")
    assert support_stages["analyse"][0].parent_span_id == support_stages["decide"][0].span_id

    failed_root, _ = roots[ids["failed"]]
    assert failed_root.status.code == Status.STATUS_CODE_ERROR
    assert attributes(failed_root)["http.response.status_code"] == failure.value.status_code
    assert stages("failed")["call llm"][0].status.code == Status.STATUS_CODE_ERROR

    assert collector.services == {"hybridlm-test"}
    assert all(h.get("x-collector-key") == SECRET for h in collector.headers)
    assert SECRET not in gateway.output.read_text()
    shown = hybridlm("config", "--config", str(tmp_path / "gw" / "hybridlm.yaml"))
    assert shown.returncode == 0 and "x-collector-key" in shown.stdout and SECRET not in shown.stdout


def test_without_an_endpoint_nothing_is_sent(tmp_path: Path, collector: Collector) -> None:
    upstream = start_faulty_upstream(tmp_path)
    gateway = start_gateway(tmp_path / "gw", hybrid_config(upstream.base_url))
    try:
        client = openai.OpenAI(base_url=gateway.base_url, api_key="unused", max_retries=0)
        assert client.chat.completions.create(model="llm", messages=HELLO, max_tokens=4).choices
    finally:
        stop(gateway.proc)
        stop(upstream.proc)
    assert collector.headers == [] and collector.spans == []


def test_the_endpoint_is_the_configured_one_else_the_standard_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    assert TelemetryConfig().endpoint() is None
    monkeypatch.setenv(OTLP_ENDPOINT_ENV, "http://127.0.0.1:4318/")
    assert TelemetryConfig().endpoint() == "http://127.0.0.1:4318/v1/traces"
    monkeypatch.setenv(TRACES_ENDPOINT_ENV, "http://127.0.0.1:4319/traces")
    assert TelemetryConfig().endpoint() == "http://127.0.0.1:4319/traces"
    assert TelemetryConfig(otlp_endpoint="http://127.0.0.1:9/v1/traces").endpoint() == "http://127.0.0.1:9/v1/traces"
