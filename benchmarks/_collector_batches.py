"""The collector benchmark's batches: OTLP requests of GenAI and HTTP spans, stamped per send.

Part of :mod:`benchmarks.bench_collector` (its docstring says what runs).
"""

from __future__ import annotations

import struct
import time
from typing import Any

from ._common import GENAI_CALLS

__all__ = [
    "DEDUP_PREFILL",
    "DEDUP_WINDOW",
    "EXPORT",
    "GOAL_SPANS_S",
    "IN_FLIGHT",
    "MIB",
    "RETRY_S",
    "SENT_KEY",
    "SOAK_GROWTH_MIB",
    "SOAK_RATE",
    "SPANS_PER_BATCH",
    "TARGET_SPANS_S",
    "TEMPLATES",
    "prefill",
    "stamp",
    "template_batches",
]

TARGET_SPANS_S = 50_000
GOAL_SPANS_S = 100_000
SOAK_RATE = 10_000
SOAK_GROWTH_MIB = 20.0
SPANS_PER_BATCH = 512
TEMPLATES = 64  # distinct batches built by the client (token counts and ids vary); then stamped per send
IN_FLIGHT = 4
RETRY_S = 0.05
DEDUP_WINDOW = 250_000  # CollectorConfig's default (checked by the collector process, which prints its window)
DEDUP_PREFILL = 2 * DEDUP_WINDOW  # well past one turn of the window: its steady state
MIB = 1024 * 1024
EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"

# Markers rewritten in the serialized bytes at each send (same length, so the protobuf stays valid).
_TRACE_MARK = b"\xb3\x9c\x5e\x11\xd4\x7a\x20\x8f"  # the first 8 bytes of every trace id of a template
SENT_KEY = "bench.sent_ns"
_SENT_MARK = b"@" * 20  # the value of the SENT_KEY resource attribute: monotonic ns, zero-padded

_FEATURES = ("search", "support-chat", "summarize", "classify")

# -- the batches -------------------------------------------------------------------------------------


def _set(any_value: Any, value: Any) -> None:
    if isinstance(value, bool):
        any_value.bool_value = value
    elif isinstance(value, int):
        any_value.int_value = value
    elif isinstance(value, float):
        any_value.double_value = value
    elif isinstance(value, tuple):
        for item in value:
            _set(any_value.array_value.values.add(), item)
    else:
        any_value.string_value = value


def _attributes(field: Any, values: dict[str, Any]) -> None:
    for key, value in values.items():
        kv = field.add()
        kv.key = key
        _set(kv.value, value)


def template_batches(count: int = TEMPLATES, spans: int = SPANS_PER_BATCH, kind: str = "mix") -> list[bytes]:
    """Return *count* serialized ``ExportTraceServiceRequest`` of *spans* spans each.

    With *kind* ``mix``, even spans are GenAI client spans (17 attributes: the request and response
    attributes of an instrumentation, a session, a user and a ``feature`` property), odd ones HTTP
    server spans (10 attributes); ``genai`` or ``http`` makes every span of that kind. 8 spans per trace. Every trace id starts with :data:`_TRACE_MARK` and the resource
    carries :data:`_SENT_MARK`, both rewritten per send by :func:`stamp`.
    """
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    from opentelemetry.proto.trace.v1.trace_pb2 import Span

    now = time.time_ns()
    out = []
    for k in range(count):
        request = ExportTraceServiceRequest()
        rs = request.resource_spans.add()
        _attributes(
            rs.resource.attributes,
            {
                "service.name": "checkout-api",
                "service.version": "2.14.1",
                "deployment.environment.name": "prod",
                "host.name": "checkout-api-7c9f5d8b6-x2x9q",
                "telemetry.sdk.language": "python",
                "telemetry.sdk.name": "opentelemetry",
                "telemetry.sdk.version": "1.38.0",
                "llm.property.environment": "prod",
                SENT_KEY: _SENT_MARK.decode(),
            },
        )
        ss = rs.scope_spans.add()
        ss.scope.name = "opentelemetry.instrumentation.openai_v2"
        ss.scope.version = "2.1b0"
        for j in range(spans):
            span = ss.spans.add()
            span.trace_id = _TRACE_MARK + struct.pack(">II", k, j // 8)
            span.span_id = struct.pack(">II", k + 1, j + 1)
            if j % 8:
                span.parent_span_id = struct.pack(">II", k + 1, j - j % 8 + 1)
            start = now - 60_000_000_000 + (k * spans + j) * 1_000_000
            if kind == "genai" or (kind == "mix" and j % 2 == 0):
                provider, request_model, response_model, address, tokens_in, tokens_out = GENAI_CALLS[
                    (j // 2) % len(GENAI_CALLS)
                ]
                span.name = f"chat {request_model}"
                span.kind = Span.SPAN_KIND_CLIENT
                span.start_time_unix_nano = start
                span.end_time_unix_nano = start + 1_200_000_000 + j * 3_000_000
                _attributes(
                    span.attributes,
                    {
                        "gen_ai.operation.name": "chat",
                        "gen_ai.provider.name": provider,
                        "gen_ai.request.model": request_model,
                        "gen_ai.request.max_tokens": 1024,
                        "gen_ai.request.temperature": 0.2,
                        "server.address": address,
                        "server.port": 443,
                        "gen_ai.response.model": response_model,
                        "gen_ai.response.id": f"resp_01J9ZK3Q4X8V2M5N7P{k:04d}{j:04d}",
                        "gen_ai.response.finish_reasons": ("stop",),
                        "gen_ai.usage.input_tokens": tokens_in + (k * 31 + j) % 997,
                        "gen_ai.usage.output_tokens": tokens_out + (k * 17 + j) % 211,
                        "session.id": f"sess-{k:03d}-{j // 64:02d}",
                        "llm.session.name": "support-chat",
                        "user.id": f"user-{(k * spans + j) % 5000:05d}",
                        "llm.property.feature": _FEATURES[(j // 2) % 4],
                        "gen_ai.conversation.id": f"conv-{k:03d}-{j // 64:02d}",
                    },
                )
            else:
                span.name = "GET /api/orders/{id}"
                span.kind = Span.SPAN_KIND_SERVER
                span.start_time_unix_nano = start
                span.end_time_unix_nano = start + 4_000_000 + j * 10_000
                _attributes(
                    span.attributes,
                    {
                        "http.request.method": "GET",
                        "http.route": "/api/orders/{id}",
                        "url.path": f"/api/orders/{k * spans + j}",
                        "url.scheme": "https",
                        "http.response.status_code": 200,
                        "server.address": "shop.example.com",
                        "server.port": 443,
                        "network.protocol.version": "1.1",
                        "client.address": f"10.0.{k % 256}.{j % 256}",
                        "user_agent.original": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36",
                    },
                )
        data = request.SerializeToString()
        if data.count(_TRACE_MARK) != spans or data.count(_SENT_MARK) != 1:
            raise RuntimeError("a marker occurs where it should not: choose other marker bytes")
        out.append(data)
    return out


def stamp(template: bytes, seq: int, sent_ns: int = 0) -> bytes:
    """Return *template* with distinct trace ids (from *seq*) and the send time *sent_ns*."""
    prefix = struct.pack(">Q", (1 << 63) | seq)  # never the prefill's b"prefill!" nor the mark
    return template.replace(_TRACE_MARK, prefix).replace(_SENT_MARK, b"%020d" % sent_ns)


def prefill(dedup: Any, n: int) -> None:
    """Fill a ``Deduplicator`` with *n* keys the benchmark never sends (its steady state)."""
    pack = struct.Struct(">Q").pack
    first_time = dedup.first_time
    for i in range(n):
        first_time(b"prefill!" + pack(i), pack(i))
