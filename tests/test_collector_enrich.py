"""The collector's processing step on protobuf spans: priced in place, counted once, others untouched."""

from __future__ import annotations

import os
from decimal import Decimal
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

from otel_llmcost.collector.enrich import Deduplicator, enrich
from otel_llmcost.metrics import Recorder
from otel_llmcost.pricing import Pricer, Usage


def kv(key: str, value: Any) -> KeyValue:
    if isinstance(value, bool):
        return KeyValue(key=key, value=AnyValue(bool_value=value))
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=str(value)))


def span(attrs: dict[str, Any], span_id: bytes | None = None) -> Span:
    return Span(
        trace_id=b"\x01" * 16,
        span_id=span_id or os.urandom(8),
        name="chat",
        start_time_unix_nano=1_700_000_000_000_000_000,
        end_time_unix_nano=1_700_000_001_500_000_000,
        attributes=[kv(k, v) for k, v in attrs.items()],
    )


def request(spans: list[Span], resource: dict[str, Any] | None = None) -> ExportTraceServiceRequest:
    res = Resource(attributes=[kv(k, v) for k, v in (resource or {}).items()])
    return ExportTraceServiceRequest(
        resource_spans=[ResourceSpans(resource=res, scope_spans=[ScopeSpans(spans=spans)])]
    )


def attrs_of(s: Span) -> dict[str, Any]:
    out = {}
    for a in s.attributes:
        out[a.key] = getattr(a.value, a.value.WhichOneof("value"))
    return out


CHAT = {
    "gen_ai.provider.name": "openai",
    "gen_ai.operation.name": "chat",
    "gen_ai.request.model": "gpt-4o",
    "gen_ai.usage.input_tokens": 1000,
    "gen_ai.usage.output_tokens": "100",  # numbers as strings, as some SDKs in other languages send them
}


def test_llm_spans_are_priced_in_place_others_untouched(pricer: Pricer) -> None:
    http = span({"http.request.method": "GET", "url.path": "/"})
    before = http.SerializeToString()
    req = request([span(CHAT), http], resource={"service.name": "ts-app", "session.id": "s-from-resource"})
    rec = Recorder(())
    stats = enrich(req, pricer, rec)
    priced, other = req.resource_spans[0].scope_spans[0].spans
    a = attrs_of(priced)
    assert a["llm.cost.status"] == "priced"
    expected = pricer.price("openai", "gpt-4o", Usage(1000, 100)).total_usd
    assert Decimal(repr(a["llm.cost.total_usd"])) == expected
    assert other.SerializeToString() == before
    assert (stats.spans, stats.llm, stats.priced) == (2, 1, 1)
    assert rec.total_cost() == expected


def test_redelivered_spans_are_forwarded_but_counted_once(pricer: Pricer) -> None:
    rec = Recorder(())
    dedup = Deduplicator(100)
    sid = b"\x02" * 8
    for _ in range(3):
        req = request([span(CHAT, span_id=sid)])
        stats = enrich(req, pricer, rec, dedup)
        assert attrs_of(req.resource_spans[0].scope_spans[0].spans[0])["llm.cost.status"] == "priced"
    assert stats.duplicates == 1
    assert rec.total_cost() == pricer.price("openai", "gpt-4o", Usage(1000, 100)).total_usd


def test_already_priced_and_bad_spans(pricer: Pricer) -> None:
    rec = Recorder(())
    req = request(
        [
            span({**CHAT, "llm.cost.status": "priced", "llm.cost.total_usd": "1"}),
            span({**CHAT, "gen_ai.usage.input_tokens": -5}),
            span({**CHAT, "gen_ai.usage.input_tokens": 2**40}),
            span({**CHAT, "gen_ai.request.model": "never-heard-of"}),
        ]
    )
    stats = enrich(req, pricer, rec)
    statuses = [attrs_of(s).get("llm.cost.status") for s in req.resource_spans[0].scope_spans[0].spans]
    assert statuses == ["priced", "invalid_usage", "invalid_usage", "unpriced"]
    assert (stats.already_priced, stats.invalid, stats.unpriced) == (1, 2, 1)
    skipped = dict((labels["reason"], n) for labels, n in rec.snapshot().skipped)
    assert skipped == {"negative_tokens": 1, "absurd_tokens": 1}
    assert rec.total_cost() == 0


def test_dimensions_from_span_or_resource(pricer: Pricer) -> None:
    rec = Recorder(("feature",))
    req = request(
        [span(CHAT), span({**CHAT, "llm.property.feature": "chat"})], resource={"llm.property.feature": "search"}
    )
    enrich(req, pricer, rec)
    features = sorted(labels["feature"] for labels, _ in rec.snapshot().cost_usd)
    assert features == ["chat", "search"]


def test_appended_attributes_are_what_the_protobuf_api_builds() -> None:
    # enrich() appends the cost attributes as serialized KeyValues (one MergeFromString): the span
    # must be the one that adding each KeyValue through the protobuf API gives.
    from otel_llmcost.collector.enrich import _append

    values = {
        "llm.cost.status": "priced",
        "llm.cost.total_usd": 0.000123,
        "llm.cost.input_usd": 0.0,
        "llm.cost.request_usd": -1.5e300,
        "llm.cost.reason": "no price for model 'ümlaut-模型' " + "x" * 200,  # multi-byte, long: 2-byte lengths
        "an.int": -7,
        "a.big.int": 2**62,
        "a.bool": True,
        "another.bool": False,
    }
    by_api = span({"gen_ai.request.model": "m"}, span_id=b"\x03" * 8)
    appended = Span()
    appended.CopyFrom(by_api)
    for key, value in values.items():
        item = by_api.attributes.add()
        item.key = key
        if isinstance(value, bool):
            item.value.bool_value = value
        elif isinstance(value, int):
            item.value.int_value = value
        elif isinstance(value, float):
            item.value.double_value = value
        else:
            item.value.string_value = value
    _append(appended, values)
    assert appended == by_api
    assert appended.SerializeToString() == by_api.SerializeToString()


def test_fast_path_gives_what_the_general_path_gives(pricer: Pricer, monkeypatch: Any) -> None:
    # enrich() prices the usual span through the processor's FastPath; every span must come out
    # with the same bytes, and leave the same metrics and counts, as through the general path.
    from otel_llmcost.processor import FastPath

    base = {**CHAT, "gen_ai.usage.output_tokens": 100}
    shapes: list[dict[str, Any]] = [
        base,
        {**base, "gen_ai.usage.output_tokens": "100"},
        {**base, "gen_ai.request.model": "o3", "gen_ai.usage.cache_read.input_tokens": 300},
        {**base, "gen_ai.request.model": "gpt-5.4", "gen_ai.usage.input_tokens": 300_000},
        {**base, "gen_ai.request.model": "reasoner-x", "gen_ai.usage.reasoning.output_tokens": 60},
        {**base, "gen_ai.request.model": "tiered-x", "llm.property.feature": "chat"},
        {**base, "gen_ai.conversation.id": "c-1", "session.id": "s", "user.id": "u", "error.type": ""},
        {**base, "gen_ai.system": "openai", "llm.session.name": "support"},
        {**base, "error.type": "rate_limited"},
        {**base, "gen_ai.usage.input_tokens": -1},
        {**base, "gen_ai.request.model": "never-heard-of"},
        {**base, "openai.request.service_tier": "flex", "gen_ai.request.model": "tiered-x"},
        {"http.request.method": "GET", "server.address": "shop.example.com"},
        {"llm.property.other": "x"},
        # sessions: of any type, the conversation id as a fallback, on the fast and the general path
        {**base, "session.id": "s-2", "llm.session.name": "support"},
        {**base, "session.id": "s-2", "llm.property.feature": "other"},  # seen: not counted again
        {**base, "session.id": 42, "gen_ai.usage.output_tokens": "3"},
        {**base, "session.id": "", "gen_ai.conversation.id": "c-2"},
        # cache savings and the cache-write premium
        {
            **base,
            "gen_ai.provider.name": "anthropic",
            "gen_ai.request.model": "claude-sonnet-4-5",
            "gen_ai.usage.cache_read.input_tokens": 300,
            "gen_ai.usage.cache_creation.input_tokens": 200,
            "llm.usage.cache_creation_1h.input_tokens": 50,
        },
    ]

    def run(fast: bool) -> tuple[list[bytes], list[str], Any]:
        if not fast:
            monkeypatch.setattr(FastPath, "prepare", lambda self, attrs: None)
        rec = Recorder(("feature", "session_name"))
        dedup = Deduplicator(1000)
        out, stats = [], []
        for n in range(3):  # the third time, every span is a redelivery
            spans = [span(a, span_id=bytes([i + 1]) * 8) for i, a in enumerate(shapes)]
            req = request(spans, resource={"llm.property.feature": "search", "gen_ai.provider.name": "openai"})
            stats.append(repr(enrich(req, pricer, rec, dedup if n else None)))
            out.append(req.SerializeToString())
        monkeypatch.undo()
        snap = rec.snapshot()
        assert snap.cache_savings and snap.cache_write_premium
        assert sum(n for _, n in snap.sessions) == 4  # s (over c-1), s-2, 42, c-2: once each, redeliveries not
        return out, stats, (repr(snap), rec.total_cost())

    fast_run, general_run = run(True), run(False)
    assert fast_run == general_run
    assert "priced=" in fast_run[1][0]
