"""A small app run under ``opentelemetry-instrument``: its exported spans and metrics carry cost."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from otel_llmcost import default_pricer
from otel_llmcost.pricing import Usage

from .fakes import otlp_receiver
from .fakes.openai_server import chat_usage, serve

APP = """
import openai
client = openai.OpenAI(base_url="{base_url}", api_key="test-key")
for n in range(3):
    client.chat.completions.create(model="gpt-4o-mini", messages=[{{"role": "user", "content": "hello " * (n + 1)}}])
"""


@pytest.fixture()
def receiver() -> Iterator[otlp_receiver.OTLPReceiver]:
    with otlp_receiver.serve() as r:
        yield r


@pytest.mark.integration
def test_app_under_opentelemetry_instrument_exports_priced_spans_and_metrics(
    receiver: otlp_receiver.OTLPReceiver, tmp_path: Path
) -> None:
    with serve() as llm:
        app = tmp_path / "app.py"
        app.write_text(APP.format(base_url=llm.base_url))
        env = {
            **os.environ,
            "OTEL_SERVICE_NAME": "instrumented-app",
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_METRICS_EXPORTER": "none",
            "OTEL_LOGS_EXPORTER": "none",
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_LLMCOST_PROMETHEUS_PORT": "0",
        }
        tool = Path(sys.executable).parent / "opentelemetry-instrument"
        proc = subprocess.run(
            [str(tool), sys.executable, str(app)], env=env, capture_output=True, text=True, timeout=120
        )
        assert proc.returncode == 0, proc.stderr
        bodies = [r.body for r in llm.requests if r.path.endswith("/chat/completions")]
    received = receiver.received
    usages = [chat_usage(b) for b in bodies]
    expected = sorted(
        default_pricer()
        .price("openai", "gpt-4o-mini-2024-07-18", Usage(u.prompt_tokens, u.completion_tokens, u.cached_tokens))
        .total_usd
        for u in usages
    )
    # spans: each call exported once with its cost; any other instrumentation's span of the same call
    # (the official OpenAI one is installed too) carries none
    spans = [
        span
        for body in received.get("/v1/traces", [])
        for rs in ExportTraceServiceRequest.FromString(body).resource_spans
        for ss in rs.scope_spans
        for span in ss.spans
    ]
    priced = [s for s in spans if any(kv.key == "llm.cost.total_usd" for kv in s.attributes)]
    assert len(priced) == 3, [s.name for s in spans]
    totals = [next(kv.value.double_value for kv in s.attributes if kv.key == "llm.cost.total_usd") for s in priced]
    assert sorted(Decimal(repr(t)) for t in totals) == expected
    # metrics: our cost counter reached the OTLP endpoint with the same total
    points = [
        dp.as_double
        for body in received.get("/v1/metrics", [])
        for rm in ExportMetricsServiceRequest.FromString(body).resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
        if m.name == "llm.cost.usd"
        for dp in m.sum.data_points
    ]
    assert points, "no llm.cost.usd exported"
    assert Decimal(repr(points[-1])) == sum(expected, Decimal(0))
