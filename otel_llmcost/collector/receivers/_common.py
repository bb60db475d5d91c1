"""What the OTLP receivers share: limits, refusals, bearer auth, TLS files, decoding, and the hand-off.

Both receivers turn every problem into a :class:`Refusal` (a drop reason, a message for the client,
the spans it held if known) and count it once with :func:`count_refusal`; each protocol maps the
reason to its own status code from one table (:data:`STATUS_BY_REASON`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import math
import os
import ssl
import zlib
from collections.abc import Callable
from typing import Any

from google.protobuf import json_format  # type: ignore[import-untyped]
from google.protobuf.message import DecodeError  # type: ignore[import-untyped]
from google.rpc import code_pb2  # type: ignore[import-untyped]
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess,
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from ...config import ConfigError
from ..pipeline import Backpressure, Pipeline, span_count

__all__ = [
    "BACKPRESSURE",
    "DEFAULT_GRPC_MAX_MESSAGE_BYTES",
    "DEFAULT_HTTP_MAX_BODY_BYTES",
    "INCOMPLETE",
    "INTERNAL_ERROR",
    "MALFORMED",
    "MISSING_RESOURCE",
    "NOT_FOUND",
    "STATUS_BY_REASON",
    "TOO_LARGE",
    "UNAUTHENTICATED",
    "UNSUPPORTED_MEDIA_TYPE",
    "BearerAuth",
    "Refusal",
    "TlsFiles",
    "check_port",
    "count_refusal",
    "decode_json",
    "decode_protobuf",
    "guarded",
    "inflate",
    "retry_after_header",
    "server_ssl_context",
    "submit",
    "warn_cleartext_token",
]

_log = logging.getLogger(__name__)

DEFAULT_GRPC_MAX_MESSAGE_BYTES = 4 * 1024 * 1024
"""Largest OTLP/gRPC message accepted, after decompression (the OpenTelemetry Collector's default)."""
DEFAULT_HTTP_MAX_BODY_BYTES = 20 * 1024 * 1024
"""Largest OTLP/HTTP body accepted, measured after decompression."""

# Drop reasons (the ``reason`` of the collector's dropped-spans counter).
TOO_LARGE = "too_large"
MALFORMED = "malformed"
MISSING_RESOURCE = "missing_resource"
UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
UNAUTHENTICATED = "unauthenticated"
NOT_FOUND = "not_found"
INCOMPLETE = "incomplete"
BACKPRESSURE = "backpressure"
INTERNAL_ERROR = "internal_error"

STATUS_BY_REASON: dict[str, tuple[int, int]] = {
    TOO_LARGE: (413, code_pb2.RESOURCE_EXHAUSTED),
    MALFORMED: (400, code_pb2.INVALID_ARGUMENT),
    MISSING_RESOURCE: (400, code_pb2.INVALID_ARGUMENT),
    UNSUPPORTED_MEDIA_TYPE: (415, code_pb2.INVALID_ARGUMENT),
    UNAUTHENTICATED: (401, code_pb2.UNAUTHENTICATED),
    NOT_FOUND: (404, code_pb2.UNIMPLEMENTED),
    INCOMPLETE: (400, code_pb2.INVALID_ARGUMENT),
    # 429 and UNAVAILABLE are what OTLP clients retry (with Retry-After / RetryInfo)
    BACKPRESSURE: (429, code_pb2.UNAVAILABLE),
    # not retryable: a batch that breaks the collector would break it again
    INTERNAL_ERROR: (500, code_pb2.INTERNAL),
}
"""Drop reason -> (HTTP status, ``google.rpc.Code``)."""

_TRACE_ID_HEX = 32
_SPAN_ID_HEX = 16


class Refusal(Exception):
    """A request the receiver will not accept, with the reason it is counted under.

    Attributes:
        reason: the drop reason (a key of :data:`STATUS_BY_REASON`).
        message: what is wrong, for the client.
        spans: spans the request held, 0 when it could not be read.
        retry_after_s: for back-pressure, how long the client should wait.
        counted: the pipeline already counted the drop.
    """

    def __init__(
        self,
        reason: str,
        message: str,
        *,
        spans: int = 0,
        retry_after_s: float | None = None,
        counted: bool = False,
    ) -> None:
        """Create the refusal."""
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.spans = spans
        self.retry_after_s = retry_after_s
        self.counted = counted

    @property
    def http_status(self) -> int:
        """The HTTP status code that answers this refusal."""
        return STATUS_BY_REASON[self.reason][0]

    @property
    def rpc_code(self) -> int:
        """The ``google.rpc.Code`` that answers this refusal."""
        return STATUS_BY_REASON[self.reason][1]


def count_refusal(pipeline: Pipeline, refusal: Refusal) -> None:
    """Count *refusal* in the pipeline's dropped spans, unless the pipeline already did."""
    if not refusal.counted:
        pipeline.metrics.drop(refusal.reason, refusal.spans)


def retry_after_header(retry_after_s: float) -> str:
    """Return a ``Retry-After`` value: whole seconds (RFC 9110), at least 1 so clients never spin."""
    return str(max(1, math.ceil(retry_after_s)))


def check_port(port: int) -> None:
    """Validate a TCP port (0 picks a free one).

    Raises:
        ConfigError: *port* is outside 0..65535.
    """
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ConfigError("port", port, "must be an integer from 0 to 65535")


class BearerAuth:
    """Checks ``Authorization: Bearer <token>`` in constant time."""

    def __init__(self, token: str) -> None:
        """Create the check.

        Raises:
            ConfigError: the token is empty or holds spaces or non-printable characters
                (the value is never echoed).
        """
        if not token or not token.isascii() or not token.isprintable() or any(c.isspace() for c in token):
            raise ConfigError("bearer_token", "<redacted>", "must be non-empty printable ASCII without spaces")
        self._digest = hashlib.sha256(token.encode()).digest()

    def allows(self, header: str | None) -> bool:
        """Return True when *header* (an ``Authorization`` value) carries the token."""
        if header is None:
            return False
        scheme, _, credentials = header.strip().partition(" ")
        if scheme.lower() != "bearer":
            return False
        # comparing digests keeps the time independent of the token's length as well as its bytes
        offered = hashlib.sha256(credentials.strip().encode("utf-8", "surrogateescape")).digest()
        return hmac.compare_digest(offered, self._digest)


_LOOPBACK = frozenset({"127.0.0.1", "::1", "[::1]", "localhost"})


def warn_cleartext_token(host: str, cleartext_token: bool, protocol: str) -> None:
    """Log a warning when a bearer token would cross the network unencrypted."""
    if cleartext_token and host not in _LOOPBACK:
        _log.warning(
            "otel-llmcost collector: the OTLP/%s receiver on %s checks a bearer token without TLS; "
            "the token travels in clear text",
            protocol,
            host,
        )


TlsFiles = tuple[str | os.PathLike[str], str | os.PathLike[str]]
"""A PEM certificate chain file and its private key file."""


def server_ssl_context(tls: TlsFiles) -> ssl.SSLContext:
    """Return a server TLS context (TLS 1.2 or newer) for the *tls* certificate and key files.

    Raises:
        ConfigError: a file is missing or unreadable, or the key does not match the certificate.
    """
    cert, key = tls
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError("tls", f"{os.fspath(cert)}, {os.fspath(key)}", f"cannot load the certificate: {exc}") from exc
    return context


def inflate(data: bytes, encoding: str, limit: int) -> bytes:
    """Decompress a ``gzip`` or ``deflate`` body, refusing it as soon as it grows past *limit* bytes.

    The output is produced *limit* + 1 bytes at most, so a gzip bomb costs no more memory than an
    honest body of the largest size accepted.

    Raises:
        Refusal: ``too_large`` past the limit, ``malformed`` for a corrupt or truncated stream.
    """
    if encoding == "gzip":
        wbits = 16 + zlib.MAX_WBITS
    elif data[:1] and (data[0] & 0x0F) == 8 and int.from_bytes(data[:2], "big") % 31 == 0:
        wbits = zlib.MAX_WBITS  # HTTP "deflate" is the zlib format...
    else:
        wbits = -zlib.MAX_WBITS  # ...but some clients send a raw deflate stream
    out = bytearray()
    pending = data
    inflater = zlib.decompressobj(wbits)
    try:
        while True:
            chunk = inflater.decompress(pending, limit + 1 - len(out))
            out += chunk
            if len(out) > limit:
                raise Refusal(TOO_LARGE, f"body is larger than {limit} bytes once decompressed")
            if inflater.eof:
                pending = inflater.unused_data
                if not pending:
                    return bytes(out)
                if encoding != "gzip" or pending[:2] != b"\x1f\x8b":
                    raise Refusal(MALFORMED, f"{encoding} body: bytes after the end of the compressed stream")
                inflater = zlib.decompressobj(wbits)  # the next member of a multi-member gzip file
                continue
            pending = inflater.unconsumed_tail
            if not pending and not chunk:
                raise Refusal(MALFORMED, f"{encoding} body is truncated")
    except zlib.error as exc:
        raise Refusal(MALFORMED, f"{encoding} body is corrupt: {exc}") from exc


def decode_protobuf(data: bytes) -> ExportTraceServiceRequest:
    """Parse a binary OTLP trace request.

    Raises:
        Refusal: ``malformed``, saying the protobuf is invalid.
    """
    request = ExportTraceServiceRequest()
    try:
        request.ParseFromString(data)
    except (DecodeError, RecursionError) as exc:
        raise Refusal(MALFORMED, f"invalid protobuf ExportTraceServiceRequest: {exc}") from exc
    return request


def decode_json(data: bytes) -> ExportTraceServiceRequest:
    """Parse an OTLP/JSON trace request (ids as hex strings, as the OTLP specification requires).

    Unknown fields are ignored, as the specification asks of receivers.

    Raises:
        Refusal: ``malformed``, naming the field that is wrong where possible.
    """
    try:
        document = json.loads(data)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise Refusal(MALFORMED, f"invalid JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise Refusal(MALFORMED, "OTLP/JSON: the body must be a JSON object")
    _hex_ids_to_base64(document)
    request = ExportTraceServiceRequest()
    try:
        json_format.ParseDict(document, request, ignore_unknown_fields=True)
    except (json_format.ParseError, ValueError, TypeError, RecursionError) as exc:
        raise Refusal(MALFORMED, f"invalid OTLP/JSON: {str(exc).rstrip('.')}") from exc
    return request


def _items(node: dict[str, Any], camel: str, snake: str) -> list[Any]:
    # json_format accepts both spellings of a field name; a wrong type is left for it to report
    value = node.get(camel, node.get(snake))
    return value if isinstance(value, list) else []


def _convert_id(node: dict[str, Any], camel: str, snake: str, digits: int, where: str) -> None:
    for key in (camel, snake):
        value = node.get(key)
        if not isinstance(value, str) or not value:
            continue  # absent, empty, or a wrong type that json_format reports
        try:
            if len(value) != digits:
                raise ValueError
            raw = binascii.unhexlify(value)
        except (ValueError, binascii.Error):
            shown = value if len(value) <= 64 else value[:64] + "..."
            raise Refusal(MALFORMED, f"OTLP/JSON: {where}.{camel} must be {digits} hex digits, got {shown!r}") from None
        # json_format reads bytes fields as base64; OTLP/JSON writes these ids in hex
        node[key] = base64.b64encode(raw).decode("ascii")


def _hex_ids_to_base64(document: dict[str, Any]) -> None:
    for r, rs in enumerate(_items(document, "resourceSpans", "resource_spans")):
        if not isinstance(rs, dict):
            continue
        for s, ss in enumerate(_items(rs, "scopeSpans", "scope_spans")):
            if not isinstance(ss, dict):
                continue
            for n, span in enumerate(_items(ss, "spans", "spans")):
                if not isinstance(span, dict):
                    continue
                where = f"resourceSpans[{r}].scopeSpans[{s}].spans[{n}]"
                _convert_id(span, "traceId", "trace_id", _TRACE_ID_HEX, where)
                _convert_id(span, "spanId", "span_id", _SPAN_ID_HEX, where)
                _convert_id(span, "parentSpanId", "parent_span_id", _SPAN_ID_HEX, where)
                for k, link in enumerate(_items(span, "links", "links")):
                    if isinstance(link, dict):
                        _convert_id(link, "traceId", "trace_id", _TRACE_ID_HEX, f"{where}.links[{k}]")
                        _convert_id(link, "spanId", "span_id", _SPAN_ID_HEX, f"{where}.links[{k}]")


def _without_resourceless(request: ExportTraceServiceRequest) -> tuple[int, str]:
    """Remove the resource spans that carry no resource; return the spans removed and why."""
    missing = [i for i, rs in enumerate(request.resource_spans) if not rs.HasField("resource")]
    if not missing:
        return 0, ""
    rejected = 0
    for i in reversed(missing):
        rejected += sum(len(ss.spans) for ss in request.resource_spans[i].scope_spans)
        del request.resource_spans[i]
    where = ", ".join(f"resource_spans[{i}]" for i in missing[:5]) + (", ..." if len(missing) > 5 else "")
    return rejected, f"{where}: no resource (every span must say which service sent it)"


def submit(pipeline: Pipeline, request: ExportTraceServiceRequest) -> ExportTraceServiceResponse:
    """Hand a decoded request to the pipeline; return the OTLP response (with any partial success).

    Resource spans without a resource are removed and reported as rejected; the rest goes on.

    Raises:
        Refusal: nothing usable (``missing_resource``), back-pressure (already counted by the
            pipeline), or an internal error.
    """
    rejected, message = _without_resourceless(request)
    spans = span_count(request)
    if rejected:
        if not request.resource_spans:
            raise Refusal(MISSING_RESOURCE, message, spans=rejected)
        pipeline.metrics.drop(MISSING_RESOURCE, rejected)
    response = ExportTraceServiceResponse()
    if spans == 0 and not rejected:
        return response  # nothing to price or forward
    try:
        result = pipeline.submit(request) if spans else None
    except Backpressure as exc:
        raise Refusal(
            BACKPRESSURE, f"collector busy: {exc}", spans=spans, retry_after_s=exc.retry_after_s, counted=True
        ) from exc
    except Exception as exc:  # a pipeline failure is answered, never raised into the server
        _log.warning("otel-llmcost collector: submitting a batch failed (%s: %s)", type(exc).__name__, exc)
        raise Refusal(INTERNAL_ERROR, "the collector failed to process the batch", spans=spans) from exc
    if result is not None and result.rejected:
        rejected += result.rejected
        message = "; ".join(m for m in (message, result.message) if m)
    if rejected:
        response.partial_success.CopyFrom(ExportTracePartialSuccess(rejected_spans=rejected, error_message=message))
    return response


def guarded(pipeline: Pipeline, work: Callable[[], ExportTraceServiceResponse]) -> ExportTraceServiceResponse:
    """Run *work*, turning any unexpected exception into a counted ``internal_error`` refusal.

    Raises:
        Refusal: from *work*, or ``internal_error``; counted here, once.
    """
    try:
        return work()
    except Refusal as refusal:
        count_refusal(pipeline, refusal)
        raise
    except Exception as exc:  # the receiver's boundary: client input never crashes it
        _log.exception("otel-llmcost collector: receiver error")
        internal = Refusal(INTERNAL_ERROR, "the collector failed to process the request")
        count_refusal(pipeline, internal)
        raise internal from exc
