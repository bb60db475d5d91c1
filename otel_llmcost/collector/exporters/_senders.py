"""The two OTLP senders of :class:`~.otlp.OtlpForwarder`: one request, one :class:`Result`.

Each sends one serialized ``ExportTraceServiceRequest`` and says whether it was delivered, may be
retried (with the server's delay hint: ``Retry-After``, gRPC ``RetryInfo``) or was refused for good.
"""

from __future__ import annotations

import email.utils
import gzip
import http.client
import ssl
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, NamedTuple
from urllib.parse import urlsplit

import grpc  # type: ignore[import-untyped]
from google.protobuf.message import DecodeError  # type: ignore[import-untyped]
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from ...config import ConfigError
from ...version import __version__

__all__ = ["GrpcSender", "HttpSender", "Result", "grpc_retry_delay", "parse_retry_after"]

_EXPORT_METHOD = "/{}/Export".format(trace_service_pb2.DESCRIPTOR.services_by_name["TraceService"].full_name)
_TRACES_PATH = "/v1/traces"
_USER_AGENT = f"otel-llmcost/{__version__}"
# the OTLP specification's retryable gRPC codes, plus RESOURCE_EXHAUSTED: a downstream applying
# back-pressure (as our own receivers do) must be retried, not have its data dropped
_RETRYABLE_GRPC = frozenset(
    {"CANCELLED", "DEADLINE_EXCEEDED", "ABORTED", "OUT_OF_RANGE", "UNAVAILABLE", "DATA_LOSS", "RESOURCE_EXHAUSTED"}
)
_RETRYABLE_HTTP = frozenset({429, 502, 503, 504})
_STATUS_DETAILS_KEY = "grpc-status-details-bin"


class Result(NamedTuple):
    """What one send came to: delivered, to retry (after a hinted delay), or refused for good."""

    kind: Literal["ok", "retry", "drop"]
    detail: str = ""
    retry_after_s: float | None = None
    rejected_spans: int = 0


def parse_retry_after(value: str | None) -> float | None:
    """Return the seconds a ``Retry-After`` header asks for (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def grpc_retry_delay(error: Any) -> float | None:
    """Return the delay of a ``google.rpc.RetryInfo`` in the error's trailing metadata, if any."""
    try:
        from google.rpc import error_details_pb2, status_pb2  # type: ignore[import-untyped]

        for key, value in error.trailing_metadata() or ():
            if key == _STATUS_DETAILS_KEY:
                status = status_pb2.Status.FromString(value)
                for detail in status.details:
                    if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
                        info = error_details_pb2.RetryInfo()
                        detail.Unpack(info)
                        return float(info.retry_delay.seconds + info.retry_delay.nanos / 1e9)
    except Exception:  # noqa: BLE001 - a malformed hint only loses the hint
        return None
    return None


def read_file(path: str | None) -> bytes | None:
    return None if path is None else Path(path).read_bytes()


class GrpcSender:
    """Sends to an OTLP/gRPC endpoint (``host:port``), over TLS unless told it is insecure."""

    def __init__(
        self,
        endpoint: str,
        headers: Mapping[str, str],
        insecure: bool | None,
        tls_files: tuple[str | None, str | None, str | None],
        compression: str | None,
        max_backoff_s: float,
    ) -> None:
        target, scheme = endpoint, ""
        parts = urlsplit(endpoint) if "://" in endpoint else None
        if parts is not None and parts.scheme in ("http", "https"):
            target, scheme = parts.netloc, parts.scheme
        if not target:
            raise ConfigError("endpoint", endpoint, "expected host:port or http(s)://host:port for OTLP/gRPC")
        ca_file, cert_file, key_file = tls_files
        tls = (scheme == "https" or any(tls_files)) if insecure is None else not insecure
        # grpc's own reconnect backoff reaches 120 s; keep it within ours so a downstream that comes
        # back is used at the next retry instead of minutes later
        reconnect_ms = max(100, int(max_backoff_s * 1000))
        options = [
            ("grpc.initial_reconnect_backoff_ms", min(1000, reconnect_ms)),
            ("grpc.min_reconnect_backoff_ms", min(1000, reconnect_ms)),
            ("grpc.max_reconnect_backoff_ms", reconnect_ms),
            ("grpc.primary_user_agent", _USER_AGENT),
        ]
        if tls:
            credentials = grpc.ssl_channel_credentials(read_file(ca_file), read_file(key_file), read_file(cert_file))
            self._channel = grpc.secure_channel(target, credentials, options=options)
        else:
            self._channel = grpc.insecure_channel(target, options=options)
        # batches are sent already serialized (the disk queue holds bytes): no request serializer
        self._call = self._channel.unary_unary(
            _EXPORT_METHOD, request_serializer=None, response_deserializer=ExportTraceServiceResponse.FromString
        )
        self._metadata = tuple((k.lower(), v) for k, v in headers.items()) or None
        self._compression = grpc.Compression.Gzip if compression == "gzip" else None

    def send(self, data: bytes, timeout_s: float) -> Result:
        try:
            response = self._call(data, timeout=timeout_s, metadata=self._metadata, compression=self._compression)
        except grpc.RpcError as exc:
            code = exc.code()
            detail = f"gRPC {code.name}: {exc.details()}"
            if code.name in _RETRYABLE_GRPC:
                return Result("retry", detail, grpc_retry_delay(exc))
            return Result("drop", detail)
        partial = response.partial_success
        return Result("ok", partial.error_message, rejected_spans=partial.rejected_spans)

    def close(self) -> None:
        self._channel.close()


class HttpSender:
    """POSTs protobuf to an OTLP/HTTP endpoint's ``/v1/traces`` (gzip optional), reusing one connection."""

    def __init__(
        self,
        endpoint: str,
        headers: Mapping[str, str],
        tls_files: tuple[str | None, str | None, str | None],
        compression: str | None,
    ) -> None:
        parts = urlsplit(endpoint)
        host = parts.hostname
        if parts.scheme not in ("http", "https") or not host:
            raise ConfigError("endpoint", endpoint, "expected an http:// or https:// URL for OTLP/HTTP")
        try:
            port = parts.port
        except ValueError as exc:
            raise ConfigError("endpoint", endpoint, str(exc)) from exc
        path = parts.path.rstrip("/")
        if not path.endswith(_TRACES_PATH):  # a base URL, as in OTEL_EXPORTER_OTLP_ENDPOINT
            path += _TRACES_PATH
        self._path = path + (f"?{parts.query}" if parts.query else "")
        self._host, self._port = host, port
        self._context: ssl.SSLContext | None = None
        if parts.scheme == "https":
            ca_file, cert_file, key_file = tls_files
            self._context = ssl.create_default_context(cafile=ca_file)
            self._context.minimum_version = ssl.TLSVersion.TLSv1_2
            if cert_file is not None:
                self._context.load_cert_chain(cert_file, key_file)
        self._gzip = compression == "gzip"
        self._headers = {
            **headers,
            "Content-Type": "application/x-protobuf",
            "User-Agent": _USER_AGENT,
            **({"Content-Encoding": "gzip"} if self._gzip else {}),
        }
        self._conn: http.client.HTTPConnection | None = None

    def _connection(self, timeout_s: float) -> http.client.HTTPConnection:
        if self._conn is None:
            if self._context is not None:
                self._conn = http.client.HTTPSConnection(
                    self._host, self._port, timeout=timeout_s, context=self._context
                )
            else:
                self._conn = http.client.HTTPConnection(self._host, self._port, timeout=timeout_s)
        self._conn.timeout = timeout_s
        if self._conn.sock is not None:
            self._conn.sock.settimeout(timeout_s)
        return self._conn

    def send(self, data: bytes, timeout_s: float) -> Result:
        body = gzip.compress(data, compresslevel=5) if self._gzip else data
        conn = self._connection(timeout_s)
        try:
            conn.request("POST", self._path, body=body, headers=self._headers)
            response = conn.getresponse()
            payload = response.read()
        except (OSError, http.client.HTTPException) as exc:
            self.close()  # a fresh connection for the retry
            return Result("retry", f"{type(exc).__name__}: {exc}")
        status = response.status
        if 200 <= status < 300:
            rejected, message = 0, ""
            if payload:
                try:
                    partial = ExportTraceServiceResponse.FromString(payload).partial_success
                    rejected, message = partial.rejected_spans, partial.error_message
                except DecodeError:
                    pass  # a body that is not an OTLP response says nothing about rejected spans
            return Result("ok", message, rejected_spans=rejected)
        detail = f"HTTP {status}: {payload[:200].decode('utf-8', 'replace')}"
        if status in _RETRYABLE_HTTP:
            return Result("retry", detail, parse_retry_after(response.getheader("Retry-After")))
        return Result("drop", detail)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
