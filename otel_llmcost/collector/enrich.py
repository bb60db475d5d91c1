"""Pricing OTLP spans in place, on their protobuf form: the collector's processing step.

The same core as in-process: each span's attributes (only the keys pricing reads) become an
:class:`~otel_llmcost.calls.LLMCall`, priced by the :class:`~otel_llmcost.pricing.Pricer`, counted by
the :class:`~otel_llmcost.metrics.Recorder`, and the ``llm.cost.*`` attributes are appended to the
span. Session, user and property attributes may come from the span or, when the span lacks them,
from its resource. Non-LLM spans, spans that already carry a cost and spans covered by another
span of the same call (``llm.cost.covered_by``: another instrumentation's span of a call ours
priced) pass through untouched; a span seen before (same trace and span id, at-least-once
redelivery) is forwarded but not counted again.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Status

from .. import semconv as sc
from .._spans import add_amount_attributes, amount_floats, cost_attributes
from ..calls import ATTRIBUTES_READ, NOT_PLAIN_NAMES, PLAIN_TOKEN_NAMES, extract_call, is_priced
from ..metrics import Recorder
from ..pricing import STATUS_INVALID, STATUS_PRICED, Pricer
from ..processor import FastPath, price_call, session_of

__all__ = ["Deduplicator", "EnrichStats", "enrich"]

_PROPERTY_PREFIX = sc.LLM_PROPERTY + "."
_LLM_PREFIXES = ("gen_ai.", "llm.")
_COST_KEYS = frozenset({sc.LLM_COST_STATUS, sc.LLM_COST_TOTAL_USD})
_COVERED_BY = sc.LLM_COST_COVERED_BY
# Every attribute name pricing reads: a span's other attributes are never decoded.
_WANTED = ATTRIBUTES_READ


@dataclass(slots=True)
class EnrichStats:
    """What one batch held: spans seen, priced, unpriced, skipped, duplicates, passed through.

    ``already_priced`` and ``covered`` count LLM spans passed through unpriced and uncounted: they
    carry a cost already, or another span of the same call carries it (``llm.cost.covered_by``).
    """

    spans: int = 0
    llm: int = 0
    priced: int = 0
    unpriced: int = 0
    invalid: int = 0
    duplicates: int = 0
    already_priced: int = 0
    covered: int = 0


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


def _varint(n: int) -> bytes:
    n &= 0xFFFFFFFFFFFFFFFF  # int64 as protobuf writes it: a negative number in ten bytes
    out = bytearray()
    while n > 0x7F:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _field(tag: int, payload: bytes) -> bytes:
    return bytes((tag,)) + _varint(len(payload)) + payload


_SPAN_ATTRIBUTE = 0x4A  # Span.attributes (field 9, length-delimited)
_KEY, _VALUE = 0x0A, 0x12  # KeyValue.key, KeyValue.value
_STRING, _BOOL, _INT, _DOUBLE = 0x0A, 0x10, 0x18, 0x21  # AnyValue's oneof
_pack_double = struct.Struct("<d").pack
_MAX_ENCODED = 4096
# (key, value) -> one serialized Span.attributes entry, for the few string values that repeat
_ENCODED: dict[tuple[str, Any], bytes] = {}
# key -> the serialized entry of a double value, but for its 8 bytes
_DOUBLE_HEAD: dict[str, bytes] = {}


def _encoded_attribute(key: str, value: Any) -> bytes:
    """Return ``Span.attributes`` entry *key* = *value* serialized (what ``_append`` builds, as bytes)."""
    if type(value) is float:
        head = _DOUBLE_HEAD.get(key)
        if head is None:
            head = _DOUBLE_HEAD[key] = _field(_SPAN_ATTRIBUTE, _field(_KEY, key.encode()) + b"\x12\x09\x21" + bytes(8))[
                :-8
            ]
        return head + _pack_double(value)
    cached = _ENCODED.get((key, value))
    if cached is not None:
        return cached
    if type(value) is bool:
        any_value = bytes((_BOOL, 1 if value else 0))
    elif type(value) is int:
        any_value = bytes((_INT,)) + _varint(value)
    else:
        any_value = _field(_STRING, (value if type(value) is str else str(value)).encode())
    encoded = _field(_SPAN_ATTRIBUTE, _field(_KEY, key.encode()) + _field(_VALUE, any_value))
    if type(value) is str and len(_ENCODED) < _MAX_ENCODED:
        _ENCODED[(key, value)] = encoded
    return encoded


_AMOUNT_KEYS = (
    sc.LLM_COST_TOTAL_USD,
    sc.LLM_COST_INPUT_USD,
    sc.LLM_COST_OUTPUT_USD,
    sc.LLM_COST_CACHE_READ_USD,
    sc.LLM_COST_CACHE_WRITE_USD,
    sc.LLM_COST_REQUEST_USD,
)
# the six amounts, each after the serialized start of its entry
_pack_amounts = struct.Struct("<" + "".join(f"{len(_encoded_attribute(k, 0.0)) - 8}sd" for k in _AMOUNT_KEYS)).pack
_AMOUNT_HEADS = tuple(_encoded_attribute(k, 0.0)[:-8] for k in _AMOUNT_KEYS)
# (version, model, provider) -> the serialized entries before and after the amounts
_AROUND_AMOUNTS: dict[tuple[str, str | None, str | None], tuple[bytes, bytes]] = {}


def _append_amounts(
    span: Any, version: str, amounts: tuple[float, ...], model: str | None, provider: str | None
) -> None:
    """:func:`_append` of what :func:`~otel_llmcost._spans.add_amount_attributes` adds for a priced call."""
    around = _AROUND_AMOUNTS.get((version, model, provider))
    if around is None:
        head: dict[str, Any] = {}
        add_amount_attributes(head, STATUS_PRICED, version, (0.0,) * 6, model, provider)
        keys = list(head)
        if keys[2:8] != list(_AMOUNT_KEYS):
            raise RuntimeError("the cost attributes are not in the order _append_amounts writes")
        around = (
            b"".join(_encoded_attribute(k, head[k]) for k in keys[:2]),
            b"".join(_encoded_attribute(k, head[k]) for k in keys[8:]),
        )
        if len(_AROUND_AMOUNTS) < _MAX_ENCODED:
            _AROUND_AMOUNTS[(version, model, provider)] = around
    h = _AMOUNT_HEADS
    total, inp, out, cache_read, cache_write, request = amounts
    span.MergeFromString(
        around[0]
        + _pack_amounts(h[0], total, h[1], inp, h[2], out, h[3], cache_read, h[4], cache_write, h[5], request)
        + around[1]
    )


def _append(span: Any, values: dict[str, Any]) -> None:
    """Append attributes to a span: parsing their serialized form costs a tenth of building each in place."""
    span.MergeFromString(b"".join([_encoded_attribute(key, value) for key, value in values.items()]))


# How _span_attributes reads each name pricing reads: whether it is a gen_ai.*/llm.* name, whether
# its value is usually an int (read first as one: one step instead of asking which type it is; a
# value of another type, a count as a string..., is read fully), whether nothing in the collector
# uses its value (user ids, session path: only their presence matters to extract_call; session ids
# are read: the recorder counts sessions).
_LLM, _AS_INT, _UNUSED = 1, 2, 4
_INT_NAMES = frozenset(PLAIN_TOKEN_NAMES) | NOT_PLAIN_NAMES
_UNUSED_VALUES = frozenset({sc.USER_ID, sc.ENDUSER_ID, sc.LLM_SESSION_PATH})
_PROPERTY_LEN = len(_PROPERTY_PREFIX)


def _reading(names: Iterable[str]) -> dict[str, int]:
    """Return how :func:`_span_attributes` reads each of *names*."""
    return {
        # the covered mark alone does not make an LLM span (an HTTP span inside one of our calls)
        key: (_LLM if key.startswith(_LLM_PREFIXES) and key != _COVERED_BY else 0)
        | (_AS_INT if key in _INT_NAMES else 0)
        | (_UNUSED if key in _UNUSED_VALUES else 0)
        for key in names
    }


def _span_attributes(attributes: Any, reading: dict[str, int], properties: bool) -> dict[str, Any] | None:
    """Read the attributes pricing needs, or ``None`` when the span is not an LLM call.

    ``None`` when no attribute pricing reads is a ``gen_ai.*`` or ``llm.*`` one (with *properties*,
    any ``llm.property.*`` one counts). *reading* says how to read each name pricing reads (see
    :func:`_reading`; the dimension properties included).
    """
    out: dict[str, Any] = {}
    llm = False
    for kv in attributes:
        key = kv.key
        how = reading.get(key)
        if how is None:
            if properties and not llm and key[:_PROPERTY_LEN] == _PROPERTY_PREFIX:
                llm = True
            continue
        if how & _LLM:
            llm = True
        if how & _UNUSED:
            out[key] = None
            continue
        v = kv.value
        value = v.int_value if how & _AS_INT else v.string_value
        out[key] = value if value else _value(v)
    return out if llm else None


def _maybe_llm(span: Any) -> bool:
    """Whether a span may have a ``gen_ai.*`` or ``llm.*`` attribute: a test much cheaper than reading them."""
    attributes = span.attributes
    if not attributes:
        return False
    if attributes[0].key.startswith(_LLM_PREFIXES):  # how GenAI instrumentations start
        return True
    data = span.SerializeToString()  # the names are in it as they are
    return b"gen_ai." in data or b"llm." in data


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
    fast: FastPath | None = None,
) -> EnrichStats:
    """Price every LLM span of *request* in place and count it; return what the batch held.

    *fast* keeps what pricing learns of each kind of call from one batch to the next (a
    :class:`~otel_llmcost.processor.FastPath` of *pricer* and *recorder*); without it, only for
    this batch.
    """
    stats = EnrichStats()
    dims = recorder.dimensions
    properties = bool(dims)
    reading = _reading(_WANTED | {_COVERED_BY} | {_PROPERTY_PREFIX + dim for dim in dims})
    if fast is None or fast.pricer is not pricer or fast.recorder is not recorder:
        fast = FastPath(pricer, recorder)
    for rs in request.resource_spans:
        resource_context: dict[str, Any] | None = None
        for ss in rs.scope_spans:
            spans = ss.spans
            stats.spans += len(spans)
            for span in spans:
                if not _maybe_llm(span):
                    continue  # e.g. an HTTP span
                attrs = _span_attributes(span.attributes, reading, properties)
                if attrs is None:
                    continue  # e.g. an HTTP span with only server.address: not an LLM call
                if _COST_KEYS.intersection(attrs) and is_priced(attrs):
                    stats.already_priced += 1
                    continue
                if _COVERED_BY in attrs:  # another span of this call carries its cost
                    stats.covered += 1
                    continue
                if resource_context is None:
                    resource_context = _wanted(rs.resource.attributes, True)
                for key, value in resource_context.items():
                    attrs.setdefault(key, value)
                start, end = span.start_time_unix_nano, span.end_time_unix_nano
                prepared = fast.prepare(attrs)
                priced = fast.price(*prepared, start or None) if prepared is not None else None
                if prepared is not None and priced is not None:
                    plan, counts = prepared
                    stats.llm += 1
                    stats.priced += 1
                    error = plan.failed or span.status.code == Status.STATUS_CODE_ERROR
                    if dedup is not None and not dedup.first_time(span.trace_id, span.span_id):
                        stats.duplicates += 1
                        amounts = priced[7] or amount_floats(*priced[:6])
                    else:
                        duration = (end - start) / 1e9 if start and end >= start else None
                        amounts = fast.record(plan, counts, priced, duration, error, session_of(attrs))
                    _append_amounts(span, fast.version, amounts, plan.model_id, plan.provider)
                    continue
                call = extract_call(attrs, property_keys=dims)
                if call is None:
                    continue
                stats.llm += 1
                cost = price_call(pricer, call, start or None)
                if dedup is not None and not dedup.first_time(span.trace_id, span.span_id):
                    stats.duplicates += 1
                else:
                    if cost.status == STATUS_INVALID:
                        recorder.record_skip(cost.reason_code or "invalid_usage")
                    duration = (end - start) / 1e9 if start and end >= start else None
                    error = call.error_type is not None or span.status.code == Status.STATUS_CODE_ERROR
                    recorder.record(call, cost, duration_s=duration, error=error)
                if cost.total_usd is not None:
                    stats.priced += 1
                elif cost.status == STATUS_INVALID:
                    stats.invalid += 1
                else:
                    stats.unpriced += 1
                _append(span, cost_attributes(cost))
    return stats
