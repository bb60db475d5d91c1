"""configure(): Prometheus endpoint over real HTTP, OTLP export to a local receiver, bad settings."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from decimal import Decimal

import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import TracerProvider

import otel_llmcost
from otel_llmcost.config import ConfigError

from .fakes import otlp_receiver

CHAT = {
    "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "gpt-4o",
    "gen_ai.operation.name": "chat",
    "gen_ai.usage.input_tokens": 1000,
    "gen_ai.usage.output_tokens": 100,
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture()
def setups() -> Iterator[list[otel_llmcost.LLMCostSetup]]:
    made: list[otel_llmcost.LLMCostSetup] = []
    yield made
    for setup in made:
        setup.shutdown()


def test_prometheus_endpoint_serves_cost_metrics(setups: list[otel_llmcost.LLMCostSetup]) -> None:
    provider = TracerProvider()
    setup = otel_llmcost.configure(
        tracer_provider=provider, prometheus_port=free_port(), dimensions=("feature",), instrument=False
    )
    setups.append(setup)
    assert otel_llmcost.configure() is setup  # a second call returns the first setup
    with otel_llmcost.properties(feature="search"):
        provider.get_tracer("t").start_span("chat", attributes=CHAT).end()
    assert setup.prometheus_address is not None
    host, port = setup.prometheus_address
    assert host == "127.0.0.1"
    body = urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=5).read().decode()
    assert re.search(r'^llm_cost_usd_total\{.*feature="search".*\} 0\.0035$', body, re.M)
    assert re.search(r'^llm_cost_catalog_info\{.*llm_cost_pricing_version="\d{4}\.\d\d\.\d\d\+[0-9a-f]{8}"', body, re.M)


def test_port_in_use_is_reported_not_raised(setups: list[otel_llmcost.LLMCostSetup]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        setup = otel_llmcost.configure(tracer_provider=TracerProvider(), prometheus_port=port, instrument=False)
        setups.append(setup)
    assert setup.prometheus_address is None
    assert setup.prometheus_error is not None and str(port) in setup.prometheus_error


def test_bad_environment_values_name_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_LLMCOST_PROMETHEUS_PORT", "http")
    with pytest.raises(ConfigError, match="OTEL_LLMCOST_PROMETHEUS_PORT='http'"):
        otel_llmcost.configure(tracer_provider=TracerProvider())
    monkeypatch.setenv("OTEL_LLMCOST_PROMETHEUS_PORT", "0")
    monkeypatch.setenv("OTEL_LLMCOST_DIMENSIONS", "feature,user_id")
    with pytest.raises(ConfigError, match="dimensions='user_id'"):
        otel_llmcost.configure(tracer_provider=TracerProvider())


def test_max_sessions_from_the_environment_bounds_the_session_memory(
    setups: list[otel_llmcost.LLMCostSetup], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_LLMCOST_MAX_SESSIONS", "4")
    provider = TracerProvider()
    setup = otel_llmcost.configure(tracer_provider=provider, prometheus_port=0, instrument=False)
    setups.append(setup)
    tracer = provider.get_tracer("t")
    for i in range(50):
        with otel_llmcost.session(f"s-{i}"):
            tracer.start_span("chat", attributes=CHAT).end()
    assert 0 < setup.recorder.sessions_remembered() <= 4


def test_bad_max_sessions_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_LLMCOST_MAX_SESSIONS", "0")
    with pytest.raises(ConfigError, match="OTEL_LLMCOST_MAX_SESSIONS='0'"):
        otel_llmcost.configure(tracer_provider=TracerProvider(), prometheus_port=0, instrument=False)


def test_otlp_export_when_standard_variables_are_set(
    monkeypatch: pytest.MonkeyPatch, setups: list[otel_llmcost.LLMCostSetup]
) -> None:
    with otlp_receiver.serve() as receiver:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
        provider = TracerProvider()
        setup = otel_llmcost.configure(tracer_provider=provider, prometheus_port=0, instrument=False)
        provider.get_tracer("t").start_span("chat gpt-4o", attributes=CHAT).end()
        setup.processor.force_flush()
        setup.meter_provider.force_flush()
        setup.shutdown()
    received = receiver.received
    traces = ExportTraceServiceRequest.FromString(received["/v1/traces"][0])
    span = traces.resource_spans[0].scope_spans[0].spans[0]
    attrs = {kv.key: kv.value for kv in span.attributes}
    assert attrs["llm.cost.status"].string_value == "priced"
    assert attrs["llm.cost.total_usd"].double_value == 0.0035
    names = set()
    for body in received["/v1/metrics"]:
        req = ExportMetricsServiceRequest.FromString(body)
        names |= {m.name for rm in req.resource_metrics for sm in rm.scope_metrics for m in sm.metrics}
    assert {"llm.cost.usd", "llm.requests", "llm.tokens", "llm.request.cost_usd"} <= names


def test_demo_serve_keeps_metrics_up() -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "otel_llmcost", "demo", "--serve", "--port", str(port), "--sessions", "5"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONWARNINGS": "error"},
    )
    try:
        deadline = time.monotonic() + 30
        body = ""
        while time.monotonic() < deadline:
            try:
                body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
                if "llm_cost_usd_total" in body:
                    break
            except OSError:
                time.sleep(0.2)
        assert "llm_cost_usd_total" in body
        assert re.search(r'^llm_requests_total\{.*cost_status="priced"', body, re.M)
        assert 'session_name="' in body and "user-0" not in body
    finally:
        proc.terminate()
        proc.communicate(timeout=10)


def test_configure_adds_processor_to_the_provider_the_app_already_set() -> None:
    # The global tracer provider can be set once per process, so this runs in a fresh one.
    code = """
import otel_llmcost
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
app_provider = TracerProvider()
exporter = InMemorySpanExporter()
app_provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(app_provider)
setup = otel_llmcost.configure(prometheus_port=0, instrument=False)
assert setup.tracer_provider is app_provider
with otel_llmcost.session("s-1"):
    trace.get_tracer("app").start_span("chat", attributes={
        "gen_ai.system": "openai", "gen_ai.request.model": "gpt-4o",
        "gen_ai.usage.input_tokens": 1000, "gen_ai.usage.output_tokens": 100}).end()
# the app's own exporter sees the session stamped at start; money is in the recorder
(span,) = exporter.get_finished_spans()
assert span.attributes["session.id"] == "s-1"
print(setup.recorder.total_cost())
setup.shutdown()
"""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "error"}
    )
    assert out.returncode == 0, out.stderr
    assert Decimal(out.stdout.strip()) == Decimal("0.0035")


def test_configure_creates_and_sets_a_provider_when_none_is_set() -> None:
    code = """
import otel_llmcost
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
setup = otel_llmcost.configure(prometheus_port=0, service_name="billing-api", instrument=False)
assert trace.get_tracer_provider() is setup.tracer_provider
assert isinstance(setup.tracer_provider, TracerProvider)
trace.get_tracer("app").start_span("chat", attributes={
    "gen_ai.provider.name": "anthropic", "gen_ai.request.model": "claude-sonnet-4-5",
    "gen_ai.usage.input_tokens": 1000, "gen_ai.usage.output_tokens": 100}).end()
print(setup.recorder.total_cost(), setup.tracer_provider.resource.attributes["service.name"])
setup.shutdown()
"""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "error"}
    )
    assert out.returncode == 0, out.stderr
    total, service = out.stdout.split()
    assert (Decimal(total), service) == (Decimal("0.0045"), "billing-api")
