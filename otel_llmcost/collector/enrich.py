"""Pricing OTLP spans in place, on their protobuf form: the collector's processing step.

The same core as in-process: each span's attributes (only the keys pricing reads) become an
:class:`~otel_llmcost.calls.LLMCall`, priced by the :class:`~otel_llmcost.pricing.Pricer`, counted by
the :class:`~otel_llmcost.metrics.Recorder`, and the ``llm.cost.*`` attributes are appended to the
span. Session, user and property attributes may come from the span or, when the span lacks them,
from its resource. Non-LLM spans and spans that already carry a cost pass through untouched; a span
seen before (same trace and span id, at-least-once redelivery) is forwarded but not counted again.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Status

from .. import semconv as sc
from .._spans import cost_attributes
from ..calls import ATTRIBUTES_READ, extract_call, is_priced
from ..metrics import Recorder
from ..pricing import STATUS_INVALID, Pricer
from ..processor import price_call

__all__ = ["Deduplicator", "EnrichStats", "enrich"]

_PROPERTY_PREFIX = sc.LLM_PROPERTY + "."
_LLM_PREFIXES = ("gen_ai.", "llm.")
_COST_KEYS = frozenset({sc.LLM_COST_STATUS, sc.LLM_COST_TOTAL_USD})
# Every attribute name pricing reads: a span's other attributes are never decoded.
_WANTED = ATTRIBUTES_READ


@dataclass(slots=True)
class EnrichStats:
    """What one batch held: spans seen, priced, unpriced, skipped, duplicates, passed through."""

    spans: int = 0
    llm: int = 0
    priced: int = 0
    unpriced: int = 0
    invalid: int = 0
    duplicates: int = 0
    already_priced: int = 0


class Deduplicator:
    """Remembers the (trace id, span id) of at least the last *capacity* LLM spans counted.

    Two generations of sets of 64-bit keys: when the current one holds ``capacity // 2`` keys it
    becomes the previous one and a new one starts, so memory stays about ``capacity`` small ints
    (~70 bytes each) instead of an ordered map's ~240 bytes per entry.
    """

    def __init__(self, capacity: int = 250_000) -> None:
        """Create a window of at least ``capacity // 2`` and at most *capacity* span ids."""
        self.capacity = capacity
        self._half = max(1, capacity // 2)
        self._current: set[int] = set()
        self._previous: set[int] = set()

    def first_time(self, trace_id: bytes, span_id: bytes) -> bool:
        """Return True the first time a span is seen within the window, False for a redelivery."""
        key = hash(trace_id + span_id)
        if key in self._current or key in self._previous:
            return False
        if len(self._current) >= self._half:
            self._previous, self._current = self._current, set()
        self._current.add(key)
        return True


def _value(v: AnyValue) -> Any:
    kind = v.WhichOneof("value")
    if kind == "string_value":
        return v.string_value
    if kind == "int_value":
        return v.int_value
    if kind == "double_value":
        return v.double_value
    if kind == "bool_value":
        return v.bool_value
    return None  # arrays, maps, bytes: never a token count or a model name


def _append(attributes: Any, values: dict[str, Any]) -> None:
    """Append attributes to a span's repeated KeyValue field, building each in place."""
    for key, value in values.items():
        kv = attributes.add()
        kv.key = key
        if type(value) is float:
            kv.value.double_value = value
        elif type(value) is str:
            kv.value.string_value = value
        elif type(value) is bool:
            kv.value.bool_value = value
        elif type(value) is int:
            kv.value.int_value = value
        else:
            kv.value.string_value = str(value)


def _wanted(attributes: Iterable[KeyValue], properties: bool) -> dict[str, Any]:
    out = {}
    for kv in attributes:
        key = kv.key
        if key in _WANTED or (properties and key.startswith(_PROPERTY_PREFIX)):
            out[key] = _value(kv.value)
    return out


def enrich(
    request: ExportTraceServiceRequest,
    pricer: Pricer,
    recorder: Recorder,
    dedup: Deduplicator | None = None,
) -> EnrichStats:
    """Price every LLM span of *request* in place and count it; return what the batch held."""
    stats = EnrichStats()
    dims = recorder.dimensions
    for rs in request.resource_spans:
        resource_context: dict[str, Any] | None = None
        for ss in rs.scope_spans:
            for span in ss.spans:
                stats.spans += 1
                attrs = _wanted(span.attributes, bool(dims))
                if not attrs or not any(key.startswith(_LLM_PREFIXES) for key in attrs):
                    continue  # e.g. an HTTP span with only server.address: not an LLM call
                if _COST_KEYS.intersection(attrs) and is_priced(attrs):
                    stats.already_priced += 1
                    continue
                if resource_context is None:
                    resource_context = _wanted(rs.resource.attributes, True)
                for key, value in resource_context.items():
                    attrs.setdefault(key, value)
                call = extract_call(attrs, property_keys=dims)
                if call is None:
                    continue
                stats.llm += 1
                cost = price_call(pricer, call, span.start_time_unix_nano or None)
                if dedup is not None and not dedup.first_time(span.trace_id, span.span_id):
                    stats.duplicates += 1
                else:
                    if cost.status == STATUS_INVALID:
                        recorder.record_skip(cost.reason_code or "invalid_usage")
                    start, end = span.start_time_unix_nano, span.end_time_unix_nano
                    duration = (end - start) / 1e9 if start and end >= start else None
                    error = call.error_type is not None or span.status.code == Status.STATUS_CODE_ERROR
                    recorder.record(call, cost, duration_s=duration, error=error)
                if cost.total_usd is not None:
                    stats.priced += 1
                elif cost.status == STATUS_INVALID:
                    stats.invalid += 1
                else:
                    stats.unpriced += 1
                _append(span.attributes, cost_attributes(cost))
    return stats
