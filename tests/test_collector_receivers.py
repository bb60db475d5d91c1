"""The collector's OTLP receivers, gRPC and HTTP, against real clients on 127.0.0.1.

The official OTLP exporters are the clients where a well-behaved client is what is under test
(pricing end to end, retries on back-pressure, TLS, auth); raw sockets and grpc calls where the
point is what a badly-behaved one gets.
"""

from __future__ import annotations

import datetime
import gzip
import http.client
import ipaddress
import json
import random
import socket
import ssl
import threading
import time
import tracemalloc
import warnings
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import json_format
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.exporter.otlp.proto.http import Compression as HttpCompression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_llmcost import semconv as sc
from otel_llmcost.collector.pipeline import Pipeline
from otel_llmcost.collector.receivers import _common
from otel_llmcost.collector.receivers.grpc import GrpcReceiver
from otel_llmcost.collector.receivers.http import HttpReceiver
from otel_llmcost.config import ConfigError
from otel_llmcost.metrics import Recorder
from otel_llmcost.pricing import default_pricer

pytestmark = pytest.mark.integration

HOST = "127.0.0.1"
EXPORT_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
TOKEN = "s3cret-token"


# ---------------------------------------------------------------- fixtures and helpers


class MemoryExporter:
    """The pipeline's exporter in these tests: keeps every batch; room can be switched off."""

    name = "memory"

    def __init__(self) -> None:
        self.room = True
        self.fail = False
        self.requests: list[ExportTraceServiceRequest] = []
        self._cond = threading.Condition()

    def has_room(self) -> bool:
        return self.room

    def export(self, request: ExportTraceServiceRequest) -> None:
        if self.fail:
            raise RuntimeError("exporter broke")
        with self._cond:
            self.requests.append(request)
            self._cond.notify_all()

    def depth(self) -> int:
        return 0

    def shutdown(self, timeout_s: float = 10.0) -> None:
        pass

    def spans(self) -> list[Any]:
        with self._cond:
            return [
                span for r in self.requests for rs in r.resource_spans for ss in rs.scope_spans for span in ss.spans
            ]


@pytest.fixture()
def exporter() -> MemoryExporter:
    return MemoryExporter()


@pytest.fixture()
def pipeline(exporter: MemoryExporter) -> Pipeline:
    return Pipeline(default_pricer(), Recorder(), [exporter], retry_after_s=0.3)


@pytest.fixture()
def http_rx(pipeline: Pipeline) -> Iterator[HttpReceiver]:
    rx = HttpReceiver(pipeline, HOST, 0).start()
    yield rx
    rx.stop(0.5)


@pytest.fixture()
def grpc_rx(pipeline: Pipeline) -> Iterator[GrpcReceiver]:
    rx = GrpcReceiver(pipeline, HOST, 0).start()
    yield rx
    rx.stop(0.5)


def genai_spans(count: int = 2) -> list[ReadableSpan]:
    """Finished GenAI spans, as an instrumented application produces them."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "receiver-test"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("test")
    for i in range(count):
        with tracer.start_as_current_span("chat gpt-4o") as span:
            span.set_attribute(sc.GEN_AI_PROVIDER_NAME, "openai")
            span.set_attribute(sc.GEN_AI_OPERATION_NAME, "chat")
            span.set_attribute(sc.GEN_AI_REQUEST_MODEL, "gpt-4o")
            span.set_attribute(sc.GEN_AI_USAGE_INPUT_TOKENS, 1000 + i)
            span.set_attribute(sc.GEN_AI_USAGE_OUTPUT_TOKENS, 200)
    provider.shutdown()
    return list(memory.get_finished_spans())


def request_bytes(spans: int = 2, *, resource: bool = True) -> bytes:
    """A serialized ExportTraceServiceRequest holding *spans* GenAI spans."""
    request = ExportTraceServiceRequest()
    rs = request.resource_spans.add()
    if resource:
        rs.resource.attributes.add(key="service.name", value=AnyValue(string_value="raw"))
    ss = rs.scope_spans.add()
    for i in range(spans):
        span = ss.spans.add(trace_id=bytes([i + 1]) * 16, span_id=bytes([i + 1]) * 8, name="chat")
        span.start_time_unix_nano, span.end_time_unix_nano = 1_700_000_000_000_000_000, 1_700_000_001_000_000_000
        span.attributes.extend(
            [
                KeyValue(key=sc.GEN_AI_PROVIDER_NAME, value=AnyValue(string_value="openai")),
                KeyValue(key=sc.GEN_AI_REQUEST_MODEL, value=AnyValue(string_value="gpt-4o")),
                KeyValue(key=sc.GEN_AI_USAGE_INPUT_TOKENS, value=AnyValue(int_value=1000)),
                KeyValue(key=sc.GEN_AI_USAGE_OUTPUT_TOKENS, value=AnyValue(int_value=200)),
            ]
        )
    return request.SerializeToString()


def attrs(span: Any) -> dict[str, Any]:
    return {kv.key: getattr(kv.value, kv.value.WhichOneof("value")) for kv in span.attributes}


def post(
    port: int,
    body: bytes,
    headers: dict[str, str] | None = None,
    *,
    path: str = "/v1/traces",
    context: ssl.SSLContext | None = None,
) -> tuple[int, http.client.HTTPResponse, bytes]:
    conn: http.client.HTTPConnection
    if context is None:
        conn = http.client.HTTPConnection(HOST, port, timeout=10)
    else:
        conn = http.client.HTTPSConnection(HOST, port, timeout=10, context=context)
    try:
        conn.request("POST", path, body=body, headers={"Content-Type": "application/x-protobuf", **(headers or {})})
        response = conn.getresponse()
        return response.status, response, response.read()
    finally:
        conn.close()


def status_message(body: bytes, *, as_json: bool = False) -> str:
    status = status_pb2.Status()
    if as_json:
        json_format.Parse(body, status)
    else:
        status.ParseFromString(body)
    return str(status.message)


def raw_export(port: int, data: bytes, *, metadata: Any = None, compression: Any = None) -> Any:
    with grpc.insecure_channel(f"{HOST}:{port}", compression=compression) as channel:
        call = channel.unary_unary(EXPORT_METHOD)
        return call(data, metadata=metadata, timeout=10)


def grpc_error(port: int, data: bytes, **kwargs: Any) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        raw_export(port, data, **kwargs)
    return info.value


def priced(exporter: MemoryExporter) -> list[dict[str, Any]]:
    return [a for a in map(attrs, exporter.spans()) if a.get(sc.LLM_COST_STATUS) == sc.LLM_COST_STATUS_PRICED]


def gzip_bomb(decompressed_bytes: int) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = bytes(1024 * 1024)
    parts = [compressor.compress(block) for _ in range(decompressed_bytes // len(block))]
    return b"".join([*parts, compressor.flush()])


# ---------------------------------------------------------------- official exporters, end to end


def test_grpc_official_exporter_spans_arrive_priced(grpc_rx: GrpcReceiver, exporter: MemoryExporter) -> None:
    client = GrpcSpanExporter(endpoint=f"http://{HOST}:{grpc_rx.port}", insecure=True, timeout=5)
    try:
        assert client.export(genai_spans(3)) == SpanExportResult.SUCCESS
    finally:
        client.shutdown()
    got = priced(exporter)
    assert len(got) == 3
    assert all(float(a[sc.LLM_COST_TOTAL_USD]) > 0 for a in got)


@pytest.mark.parametrize("compression", [HttpCompression.NoCompression, HttpCompression.Gzip])
def test_http_official_exporter_spans_arrive_priced(
    http_rx: HttpReceiver, exporter: MemoryExporter, compression: HttpCompression
) -> None:
    client = HttpSpanExporter(endpoint=f"http://{HOST}:{http_rx.port}/v1/traces", timeout=5, compression=compression)
    try:
        assert client.export(genai_spans(2)) == SpanExportResult.SUCCESS
    finally:
        client.shutdown()
    got = priced(exporter)
    assert len(got) == 2
    assert {a[sc.GEN_AI_USAGE_INPUT_TOKENS] for a in got} == {1000, 1001}


# ---------------------------------------------------------------- OTLP/JSON


def otlp_json(trace_id: str = "5b8efff798038103d269b633813fc60c", span_id: str = "eee19b7ec3c1b174") -> dict[str, Any]:
    return {
        "resourceSpans": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "js-app"}}]},
                "scopeSpans": [
                    {
                        "scope": {"name": "manual"},
                        "spans": [
                            {
                                "traceId": trace_id,
                                "spanId": span_id,
                                "parentSpanId": "",
                                "name": "chat gpt-4o",
                                "kind": 3,
                                "startTimeUnixNano": "1700000000000000000",
                                "endTimeUnixNano": "1700000001000000000",
                                "attributes": [
                                    {"key": sc.GEN_AI_PROVIDER_NAME, "value": {"stringValue": "openai"}},
                                    {"key": sc.GEN_AI_REQUEST_MODEL, "value": {"stringValue": "gpt-4o"}},
                                    {"key": sc.GEN_AI_USAGE_INPUT_TOKENS, "value": {"intValue": "1000"}},
                                    {"key": sc.GEN_AI_USAGE_OUTPUT_TOKENS, "value": {"intValue": 200}},
                                ],
                                "links": [
                                    {"traceId": "0af7651916cd43dd8448eb211c80319c", "spanId": "b7ad6b7169203331"}
                                ],
                                "status": {"code": 1},
                                "unknownFutureField": {"ignored": True},
                            }
                        ],
                    }
                ],
            }
        ]
    }


def test_http_json_hex_ids_and_json_response(http_rx: HttpReceiver, exporter: MemoryExporter) -> None:
    status, response, body = post(
        http_rx.port, json.dumps(otlp_json()).encode(), {"Content-Type": "application/json; charset=utf-8"}
    )
    assert status == 200, body
    assert response.getheader("Content-Type") == "application/json"
    assert json.loads(body) == {}
    (span,) = exporter.spans()
    assert span.trace_id == bytes.fromhex("5b8efff798038103d269b633813fc60c")
    assert span.span_id == bytes.fromhex("eee19b7ec3c1b174")
    assert span.links[0].trace_id == bytes.fromhex("0af7651916cd43dd8448eb211c80319c")
    assert span.kind == 3
    assert attrs(span)[sc.LLM_COST_STATUS] == sc.LLM_COST_STATUS_PRICED


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        (otlp_json(trace_id="not-hex-at-all-not-hex-at-all-xx"), "traceId must be 32 hex digits"),
        (otlp_json(span_id="abcd"), "spanId must be 16 hex digits"),
        ({"resourceSpans": {"oops": 1}}, "resourceSpans"),
        (
            {"resourceSpans": [{"resource": {}, "scopeSpans": [{"spans": [{"startTimeUnixNano": "soon"}]}]}]},
            "startTimeUnixNano",
        ),
        ([1, 2, 3], "must be a JSON object"),
        ({"resourceSpans": [{"scopeSpans": [{"spans": [{"name": "x"}]}]}]}, "no resource"),
    ],
)
def test_http_json_errors_are_clear_400s(http_rx: HttpReceiver, document: Any, expected: str) -> None:
    status, response, body = post(http_rx.port, json.dumps(document).encode(), {"Content-Type": "application/json"})
    assert status == 400
    assert response.getheader("Content-Type") == "application/json"
    assert expected in status_message(body, as_json=True)


def test_http_invalid_json_text(http_rx: HttpReceiver, pipeline: Pipeline) -> None:
    status, _, body = post(http_rx.port, b'{"resourceSpans": [', {"Content-Type": "application/json"})
    assert status == 400
    assert "invalid JSON" in status_message(body, as_json=True)
    assert pipeline.metrics.dropped == {_common.MALFORMED: 0}


# ---------------------------------------------------------------- encodings and limits


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_http_compressed_bodies(http_rx: HttpReceiver, exporter: MemoryExporter, encoding: str) -> None:
    data = request_bytes(3)
    body = gzip.compress(data) if encoding == "gzip" else zlib.compress(data)
    status, _, reply = post(http_rx.port, body, {"Content-Encoding": encoding})
    assert status == 200
    assert ExportTraceServiceResponse.FromString(reply) == ExportTraceServiceResponse()
    assert len(priced(exporter)) == 3


def test_http_chunked_body(http_rx: HttpReceiver, exporter: MemoryExporter) -> None:
    data = request_bytes(2)
    conn = http.client.HTTPConnection(HOST, http_rx.port, timeout=10)
    try:
        conn.request(
            "POST",
            "/v1/traces",
            body=iter([data[:10], data[10:]]),
            headers={"Content-Type": "application/x-protobuf"},
            encode_chunked=True,
        )
        assert conn.getresponse().status == 200
    finally:
        conn.close()
    assert len(exporter.spans()) == 2


def test_http_content_length_over_limit_is_413_without_reading(http_rx: HttpReceiver, pipeline: Pipeline) -> None:
    with socket.create_connection((HOST, http_rx.port), timeout=10) as sock:
        sock.sendall(
            b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
            b"Content-Length: 104857600\r\n\r\n" + bytes(65536)
        )
        reply = sock.makefile("rb").read()  # the server answers, then closes
    assert reply.startswith(b"HTTP/1.1 413")
    assert b"Connection: close" in reply
    assert pipeline.metrics.dropped == {_common.TOO_LARGE: 0}
    assert post(http_rx.port, request_bytes(1))[0] == 200  # still serving


def test_http_gzip_bomb_is_413_and_not_inflated(http_rx: HttpReceiver, exporter: MemoryExporter) -> None:
    bomb = gzip_bomb(100 * 1024 * 1024)  # 100 MiB of zeros in ~100 KB
    assert len(bomb) < 200_000
    started = time.monotonic()
    status, _, body = post(http_rx.port, bomb, {"Content-Encoding": "gzip"})
    assert status == 413
    assert "larger than" in status_message(body)
    assert time.monotonic() - started < 5
    assert post(http_rx.port, request_bytes(1))[0] == 200
    assert len(exporter.spans()) == 1


def test_inflate_stops_at_the_limit_without_inflating_everything() -> None:
    bomb = gzip_bomb(64 * 1024 * 1024)
    tracemalloc.start()
    try:
        with pytest.raises(_common.Refusal) as info:
            _common.inflate(bomb, "gzip", 1024 * 1024)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert info.value.reason == _common.TOO_LARGE
    assert peak < 8 * 1024 * 1024  # a few MiB, never the 64 MiB the bomb holds


def test_inflate_rejects_corrupt_and_truncated_streams() -> None:
    good = gzip.compress(b"x" * 1000)
    assert _common.inflate(good + gzip.compress(b"y"), "gzip", 10_000) == b"x" * 1000 + b"y"  # two members
    for bad in (good[:-10], good + b"junk", b"\x1f\x8bnot gzip"):
        with pytest.raises(_common.Refusal) as info:
            _common.inflate(bad, "gzip", 10_000)
        assert info.value.reason == _common.MALFORMED
    raw = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    assert _common.inflate(raw.compress(b"z" * 50) + raw.flush(), "deflate", 100) == b"z" * 50


def test_http_truncated_protobuf_is_400(http_rx: HttpReceiver, pipeline: Pipeline) -> None:
    data = request_bytes(2)
    status, response, body = post(http_rx.port, data[: len(data) // 2])
    assert status == 400
    assert response.getheader("Content-Type") == "application/x-protobuf"
    assert "invalid protobuf" in status_message(body)
    assert pipeline.metrics.dropped == {_common.MALFORMED: 0}


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Content-Type": "text/plain"}, "'text/plain' is not supported"),
        ({"Content-Type": "application/x-protobuf", "Content-Encoding": "br"}, "Content-Encoding 'br'"),
    ],
)
def test_http_unsupported_media_is_415(
    http_rx: HttpReceiver, pipeline: Pipeline, headers: dict[str, str], expected: str
) -> None:
    status, _, body = post(http_rx.port, request_bytes(1), headers)
    assert status == 415
    assert expected in status_message(body)
    assert pipeline.metrics.dropped == {_common.UNSUPPORTED_MEDIA_TYPE: 0}


def test_http_missing_content_type_is_415(http_rx: HttpReceiver) -> None:
    conn = http.client.HTTPConnection(HOST, http_rx.port, timeout=10)
    try:
        conn.putrequest("POST", "/v1/traces")
        conn.putheader("Content-Length", "2")
        conn.endheaders(b"\x0a\x00")
        response = conn.getresponse()
        assert response.status == 415
        assert "Content-Type is missing" in status_message(response.read())
    finally:
        conn.close()


def test_http_other_paths_and_health(http_rx: HttpReceiver) -> None:
    assert post(http_rx.port, request_bytes(1), path="/v1/metrics")[0] == 404
    status, _, body = post(http_rx.port, b"{}", {"Content-Type": "application/json"}, path="/v1/logs")
    assert status == 404
    assert "/v1/traces" in status_message(body, as_json=True)  # a JSON client gets JSON errors
    conn = http.client.HTTPConnection(HOST, http_rx.port, timeout=10)
    try:
        conn.request("GET", "/health")
        response = conn.getresponse()
        assert response.status == 200
        assert json.loads(response.read()) == {"status": "ok"}
    finally:
        conn.close()


def test_http_refused_small_body_keeps_the_connection(http_rx: HttpReceiver, exporter: MemoryExporter) -> None:
    conn = http.client.HTTPConnection(HOST, http_rx.port, timeout=10)
    try:
        conn.request("POST", "/v1/traces", body=b"\xff" * 100, headers={"Content-Type": "application/x-protobuf"})
        first = conn.getresponse()
        first.read()
        conn.request("POST", "/v1/traces", body=b"{}", headers={"Content-Type": "text/plain"})
        second = conn.getresponse()
        second.read()
        conn.request("POST", "/v1/traces", body=request_bytes(1), headers={"Content-Type": "application/x-protobuf"})
        third = conn.getresponse()
        third.read()
    finally:
        conn.close()
    assert (first.status, second.status, third.status) == (400, 415, 200)
    assert len(exporter.spans()) == 1


def test_http_expect_100_refused_before_the_body(http_rx: HttpReceiver) -> None:
    with socket.create_connection((HOST, http_rx.port), timeout=10) as sock:
        sock.sendall(
            b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n"
            b"Content-Length: 1000\r\nExpect: 100-continue\r\n\r\n"
        )
        reply = sock.makefile("rb").read()
    assert reply.startswith(b"HTTP/1.1 415")
    assert b"100 Continue" not in reply


# ---------------------------------------------------------------- missing resource, partial success


def test_missing_resource_is_partial_success_or_400(
    http_rx: HttpReceiver, grpc_rx: GrpcReceiver, pipeline: Pipeline
) -> None:
    request = ExportTraceServiceRequest.FromString(request_bytes(2))
    request.resource_spans.extend(ExportTraceServiceRequest.FromString(request_bytes(3, resource=False)).resource_spans)
    status, _, body = post(http_rx.port, request.SerializeToString())
    assert status == 200
    partial = ExportTraceServiceResponse.FromString(body).partial_success
    assert partial.rejected_spans == 3
    assert "resource_spans[1]: no resource" in partial.error_message

    response = ExportTraceServiceResponse.FromString(raw_export(grpc_rx.port, request.SerializeToString()))
    assert response.partial_success.rejected_spans == 3

    status, _, body = post(http_rx.port, request_bytes(1, resource=False))
    assert status == 400
    assert "no resource" in status_message(body)
    assert pipeline.metrics.dropped == {_common.MISSING_RESOURCE: 7}


# ---------------------------------------------------------------- auth


def test_http_bearer_token(pipeline: Pipeline, exporter: MemoryExporter) -> None:
    with HttpReceiver(pipeline, HOST, 0, bearer_token=TOKEN) as rx:
        status, response, body = post(rx.port, request_bytes(1))
        assert status == 401
        assert response.getheader("WWW-Authenticate") == "Bearer"
        assert "bearer token" in status_message(body)
        assert post(rx.port, request_bytes(1), {"Authorization": "Bearer wrong"})[0] == 401
        assert post(rx.port, request_bytes(1), {"Authorization": f"Basic {TOKEN}"})[0] == 401
        client = HttpSpanExporter(
            endpoint=f"http://{HOST}:{rx.port}/v1/traces", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5
        )
        try:
            assert client.export(genai_spans(1)) == SpanExportResult.SUCCESS
        finally:
            client.shutdown()
    assert len(exporter.spans()) == 1
    assert pipeline.metrics.dropped == {_common.UNAUTHENTICATED: 0}


def test_grpc_bearer_token(pipeline: Pipeline, exporter: MemoryExporter) -> None:
    with GrpcReceiver(pipeline, HOST, 0, bearer_token=TOKEN) as rx:
        assert grpc_error(rx.port, request_bytes(1)).code() == grpc.StatusCode.UNAUTHENTICATED
        wrong = grpc_error(rx.port, request_bytes(1), metadata=(("authorization", "Bearer nope"),))
        assert wrong.code() == grpc.StatusCode.UNAUTHENTICATED
        client = GrpcSpanExporter(
            endpoint=f"http://{HOST}:{rx.port}", insecure=True, headers={"authorization": f"Bearer {TOKEN}"}, timeout=5
        )
        try:
            assert client.export(genai_spans(1)) == SpanExportResult.SUCCESS
        finally:
            client.shutdown()
    assert len(exporter.spans()) == 1
    assert pipeline.metrics.dropped == {_common.UNAUTHENTICATED: 0}


def test_bad_settings_are_config_errors(pipeline: Pipeline, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="port"):
        HttpReceiver(pipeline, HOST, 70000)
    with pytest.raises(ConfigError, match="bearer_token") as info:
        GrpcReceiver(pipeline, HOST, 0, bearer_token="has space")
    assert "has space" not in str(info.value)
    with pytest.raises(ConfigError, match="tls"):
        HttpReceiver(pipeline, HOST, 0, tls=(tmp_path / "missing.pem", tmp_path / "missing.key"))
    with pytest.raises(ConfigError, match="max_message_bytes"):
        GrpcReceiver(pipeline, HOST, 0, max_message_bytes=0)


def test_port_in_use_is_an_error(pipeline: Pipeline, http_rx: HttpReceiver, grpc_rx: GrpcReceiver) -> None:
    with pytest.raises(OSError):
        HttpReceiver(pipeline, HOST, http_rx.port).start()
    with pytest.raises(OSError):
        GrpcReceiver(pipeline, HOST, grpc_rx.port).start()


# ---------------------------------------------------------------- back-pressure


def room_returns_after(exporter: MemoryExporter, delay_s: float) -> threading.Timer:
    exporter.room = False
    timer = threading.Timer(delay_s, lambda: setattr(exporter, "room", True))
    timer.start()
    return timer


def test_http_backpressure_429_then_the_official_exporter_retries(
    http_rx: HttpReceiver, exporter: MemoryExporter, pipeline: Pipeline
) -> None:
    exporter.room = False
    status, response, body = post(http_rx.port, request_bytes(2))
    assert status == 429
    assert response.getheader("Retry-After") == "1"
    assert "busy" in status_message(body)
    assert pipeline.metrics.dropped == {_common.BACKPRESSURE: 2}

    timer = room_returns_after(exporter, 0.3)
    client = HttpSpanExporter(endpoint=f"http://{HOST}:{http_rx.port}/v1/traces", timeout=8)
    try:
        assert client.export(genai_spans(2)) == SpanExportResult.SUCCESS
    finally:
        client.shutdown()
        timer.cancel()
    assert len(priced(exporter)) == 2


def test_grpc_backpressure_unavailable_with_retry_info_then_the_official_exporter_retries(
    grpc_rx: GrpcReceiver, exporter: MemoryExporter
) -> None:
    exporter.room = False
    error = grpc_error(grpc_rx.port, request_bytes(2))
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    trailers = dict(error.trailing_metadata())
    retry = error_details_pb2.RetryInfo.FromString(trailers["google.rpc.retryinfo-bin"])
    assert retry.retry_delay.ToTimedelta() == datetime.timedelta(seconds=0.3)
    details = status_pb2.Status.FromString(trailers["grpc-status-details-bin"])
    assert details.code == grpc.StatusCode.UNAVAILABLE.value[0]
    assert details.details[0].Is(error_details_pb2.RetryInfo.DESCRIPTOR)

    timer = room_returns_after(exporter, 0.5)
    client = GrpcSpanExporter(endpoint=f"http://{HOST}:{grpc_rx.port}", insecure=True, timeout=8)
    try:
        assert client.export(genai_spans(2)) == SpanExportResult.SUCCESS
    finally:
        client.shutdown()
        timer.cancel()
    assert len(priced(exporter)) == 2


def test_pipeline_failure_is_500_and_internal(
    http_rx: HttpReceiver, grpc_rx: GrpcReceiver, exporter: MemoryExporter, pipeline: Pipeline
) -> None:
    exporter.fail = True
    assert post(http_rx.port, request_bytes(1))[0] == 500
    assert grpc_error(grpc_rx.port, request_bytes(1)).code() == grpc.StatusCode.INTERNAL
    assert pipeline.metrics.dropped == {_common.INTERNAL_ERROR: 2}


# ---------------------------------------------------------------- gRPC bad input


def test_grpc_invalid_protobuf_is_invalid_argument_and_counted(grpc_rx: GrpcReceiver, pipeline: Pipeline) -> None:
    data = request_bytes(2)
    error = grpc_error(grpc_rx.port, data[: len(data) // 2])
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "invalid protobuf" in error.details()
    assert pipeline.metrics.dropped == {_common.MALFORMED: 0}
    assert ExportTraceServiceResponse.FromString(raw_export(grpc_rx.port, data)) == ExportTraceServiceResponse()


def test_grpc_oversize_and_gzip_bomb_are_resource_exhausted(grpc_rx: GrpcReceiver, exporter: MemoryExporter) -> None:
    request = ExportTraceServiceRequest.FromString(request_bytes(1))
    request.resource_spans[0].scope_spans[0].spans[0].attributes.add(
        key="big", value=AnyValue(string_value="0" * (8 * 1024 * 1024))
    )
    big = request.SerializeToString()
    assert grpc_error(grpc_rx.port, big).code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    # compressed on the wire to a few KB: the limit holds after decompression
    bomb = grpc_error(grpc_rx.port, big, compression=grpc.Compression.Gzip)
    assert bomb.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    raw_export(grpc_rx.port, request_bytes(1), compression=grpc.Compression.Gzip)
    assert len(exporter.spans()) == 1


# ---------------------------------------------------------------- TLS


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for 127.0.0.1 it signed: (ca.pem, server.pem, server.key)."""
    x509 = pytest.importorskip("cryptography.x509", reason="TLS tests need the cryptography package")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    folder = tmp_path_factory.mktemp("tls")

    def name(common: str) -> Any:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(name("test CA"))
        .issuer_name(name("test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name("localhost"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(HOST))]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = folder / "ca.pem", folder / "server.pem", folder / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return paths


def old_tls_refused(port: int) -> bool:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # offering TLS 1.1 is the point here
            context.minimum_version = ssl.TLSVersion.TLSv1
            context.maximum_version = ssl.TLSVersion.TLSv1_1
        context.set_ciphers("DEFAULT:@SECLEVEL=0")
    except (ValueError, ssl.SSLError):
        return True  # this OpenSSL cannot even offer TLS 1.1
    try:
        with socket.create_connection((HOST, port), timeout=5) as sock, context.wrap_socket(sock):
            return False
    except (ssl.SSLError, OSError):
        return True


def test_http_tls(
    pipeline: Pipeline, exporter: MemoryExporter, tls_files: tuple[Path, Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    ca, cert, key = tls_files
    # requests lets these variables override the exporter's certificate_file (psf/requests#3829)
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    with HttpReceiver(pipeline, HOST, 0, tls=(cert, key)) as rx:
        client = HttpSpanExporter(endpoint=f"https://{HOST}:{rx.port}/v1/traces", certificate_file=str(ca), timeout=5)
        try:
            assert client.export(genai_spans(1)) == SpanExportResult.SUCCESS
        finally:
            client.shutdown()
        with pytest.raises((http.client.HTTPException, OSError)):
            post(rx.port, request_bytes(1))  # plaintext to a TLS port
        assert old_tls_refused(rx.port)
        assert post(rx.port, request_bytes(1), context=ssl.create_default_context(cafile=str(ca)))[0] == 200
    assert len(exporter.spans()) == 2


def test_grpc_tls(pipeline: Pipeline, exporter: MemoryExporter, tls_files: tuple[Path, Path, Path]) -> None:
    ca, cert, key = tls_files
    with GrpcReceiver(pipeline, HOST, 0, tls=(cert, key)) as rx:
        credentials = grpc.ssl_channel_credentials(root_certificates=ca.read_bytes())
        client = GrpcSpanExporter(endpoint=f"{HOST}:{rx.port}", insecure=False, credentials=credentials, timeout=5)
        try:
            assert client.export(genai_spans(1)) == SpanExportResult.SUCCESS
        finally:
            client.shutdown()
        assert grpc_error(rx.port, request_bytes(1)).code() == grpc.StatusCode.UNAVAILABLE  # plaintext client
        assert old_tls_refused(rx.port)
    assert len(exporter.spans()) == 1


# ---------------------------------------------------------------- fuzzing


def mutations(rng: random.Random, valid: bytes, count: int) -> Iterator[bytes]:
    for i in range(count):
        kind = i % 4
        if kind == 0:
            yield rng.randbytes(rng.randrange(1, 512))
        elif kind == 1:
            data = bytearray(valid)
            for _ in range(rng.randrange(1, 8)):
                data[rng.randrange(len(data))] = rng.randrange(256)
            yield bytes(data)
        elif kind == 2:
            yield valid[: rng.randrange(len(valid))]
        else:
            cut = rng.randrange(len(valid))
            yield valid[:cut] + rng.randbytes(rng.randrange(1, 32)) + valid[cut:]


def test_http_fuzz(http_rx: HttpReceiver, exporter: MemoryExporter) -> None:
    rng = random.Random(5)
    valid = request_bytes(2)
    valid_json = json.dumps(otlp_json()).encode()
    deadline = time.monotonic() + 4
    conn = http.client.HTTPConnection(HOST, http_rx.port, timeout=10)
    statuses: set[int] = set()
    try:
        for i, body in enumerate(mutations(rng, valid, 400)):
            if time.monotonic() > deadline:
                break
            headers = {"Content-Type": "application/x-protobuf"}
            if i % 3 == 1:
                body, headers = gzip.compress(body), {**headers, "Content-Encoding": "gzip"}
            elif i % 3 == 2:
                body = next(mutations(rng, valid_json, 1 + i % 4))
                headers = {"Content-Type": "application/json"}
            conn.request("POST", "/v1/traces", body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            statuses.add(response.status)
            if response.getheader("Connection") == "close":
                conn.close()
        # garbage at the HTTP level, on fresh connections
        for _ in range(20):
            with socket.create_connection((HOST, http_rx.port), timeout=5) as sock:
                sock.sendall(rng.randbytes(rng.randrange(1, 300)) + b"\r\n\r\n")
                sock.makefile("rb").read()
    finally:
        conn.close()
    assert statuses <= {200, 400, 413}, statuses
    assert 400 in statuses
    before = len(exporter.spans())
    assert post(http_rx.port, valid)[0] == 200
    assert len(exporter.spans()) == before + 2


def test_grpc_fuzz(grpc_rx: GrpcReceiver, exporter: MemoryExporter) -> None:
    rng = random.Random(7)
    valid = request_bytes(2)
    deadline = time.monotonic() + 3
    codes: set[Any] = set()
    with grpc.insecure_channel(f"{HOST}:{grpc_rx.port}") as channel:
        call = channel.unary_unary(EXPORT_METHOD)
        for data in mutations(rng, valid, 300):
            if time.monotonic() > deadline:
                break
            try:
                call(data, timeout=5)
                codes.add(grpc.StatusCode.OK)
            except grpc.RpcError as error:
                codes.add(error.code())
        before = len(exporter.spans())
        call(valid, timeout=5)
    assert codes <= {grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT}, codes
    assert grpc.StatusCode.INVALID_ARGUMENT in codes
    assert len(exporter.spans()) == before + 2


def test_http_stop_closes_idle_keepalive_connections(pipeline: Pipeline) -> None:
    rx = HttpReceiver(pipeline, HOST, 0).start()
    conn = http.client.HTTPConnection(HOST, rx.port, timeout=10)
    try:
        conn.request("GET", "/health")
        conn.getresponse().read()
        started = time.monotonic()
        rx.stop(1.0)
        assert time.monotonic() - started < 1.5
        with pytest.raises((http.client.HTTPException, OSError)):
            conn.request("GET", "/health")
            conn.getresponse()
    finally:
        conn.close()


def test_servicer_registered_with_the_generated_helper(pipeline: Pipeline, exporter: MemoryExporter) -> None:
    """The service is a real TraceServiceServicer: it can join an existing grpc server."""
    from concurrent.futures import ThreadPoolExecutor

    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc

    from otel_llmcost.collector.receivers.grpc import _TraceService

    server = grpc.server(ThreadPoolExecutor(2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(_TraceService(pipeline, None), server)
    port = server.add_insecure_port(f"{HOST}:0")
    server.start()
    try:
        with grpc.insecure_channel(f"{HOST}:{port}") as channel:
            stub = trace_service_pb2_grpc.TraceServiceStub(channel)
            stub.Export(ExportTraceServiceRequest.FromString(request_bytes(2)), timeout=5)
            exporter.room = False
            with pytest.raises(grpc.RpcError) as info:
                stub.Export(ExportTraceServiceRequest.FromString(request_bytes(1)), timeout=5)
    finally:
        server.stop(0)
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    assert len(priced(exporter)) == 2
