"""OTLP/gRPC receiver: ``TraceService/Export`` on a ``grpc.server``.

The method is registered with a bytes-in handler so that the receiver, not gRPC, parses the
request: an invalid protobuf is answered ``INVALID_ARGUMENT`` and counted (gRPC's own deserializer
would answer ``INTERNAL`` and leave no trace). Messages over the size limit, compressed or not, are
refused by gRPC itself with ``RESOURCE_EXHAUSTED`` before any Python code runs, so they are not
counted in the dropped spans.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType
from typing import Any, NoReturn

import grpc  # type: ignore[import-untyped]
from google.protobuf.duration_pb2 import Duration  # type: ignore[import-untyped]
from google.rpc import error_details_pb2, status_pb2  # type: ignore[import-untyped]
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc  # type: ignore[attr-defined]
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from ...config import ConfigError
from ..pipeline import Pipeline
from ._common import (
    DEFAULT_GRPC_MAX_MESSAGE_BYTES,
    UNAUTHENTICATED,
    BearerAuth,
    Refusal,
    TlsFiles,
    check_port,
    decode_protobuf,
    guarded,
    server_ssl_context,
    submit,
    warn_cleartext_token,
)

__all__ = ["GrpcReceiver"]

_log = logging.getLogger(__name__)

_SERVICE = trace_service_pb2.DESCRIPTOR.services_by_name["TraceService"]
_EXPORT = _SERVICE.methods_by_name["Export"]
_STATUS_CODES: dict[int, Any] = {code.value[0]: code for code in grpc.StatusCode}
# The Python OTLP exporter reads the delay from this key; Go, Java and the Collector read the
# RetryInfo inside the status details.
_RETRY_INFO_KEY = "google.rpc.retryinfo-bin"
_STATUS_DETAILS_KEY = "grpc-status-details-bin"
_AUTHORIZATION = "authorization"
# RPCs admitted beyond the busy workers before gRPC answers RESOURCE_EXHAUSTED (a retryable code):
# bounds the memory held by waiting requests to about workers * this * max_message_bytes.
_WAITING_PER_WORKER = 4


def _abort(context: Any, refusal: Refusal) -> NoReturn:
    if refusal.retry_after_s is not None:
        seconds = max(refusal.retry_after_s, 0.0)
        whole = math.floor(seconds)
        retry = error_details_pb2.RetryInfo(retry_delay=Duration(seconds=whole, nanos=int((seconds - whole) * 1e9)))
        status = status_pb2.Status(code=refusal.rpc_code, message=refusal.message)
        status.details.add().Pack(retry)
        context.set_trailing_metadata(
            ((_RETRY_INFO_KEY, retry.SerializeToString()), (_STATUS_DETAILS_KEY, status.SerializeToString()))
        )
    context.abort(_STATUS_CODES[refusal.rpc_code], refusal.message)
    raise RuntimeError("grpc context.abort returned")  # abort always raises


class _TraceService(trace_service_pb2_grpc.TraceServiceServicer):  # type: ignore[misc]
    """The OTLP trace service, feeding the pipeline."""

    def __init__(self, pipeline: Pipeline, auth: BearerAuth | None) -> None:
        self._pipeline = pipeline
        self._auth = auth

    def _authorize(self, context: Any) -> None:
        if self._auth is None:
            return
        header = next((value for key, value in context.invocation_metadata() if key == _AUTHORIZATION), None)
        if not isinstance(header, str) or not self._auth.allows(header):
            raise Refusal(UNAUTHENTICATED, "missing or wrong bearer token (metadata 'authorization: Bearer <token>')")

    def _answer(self, context: Any, work: Callable[[], ExportTraceServiceResponse]) -> ExportTraceServiceResponse:
        try:
            return guarded(self._pipeline, work)
        except Refusal as refusal:
            _abort(context, refusal)

    def Export(self, request: ExportTraceServiceRequest, context: Any) -> ExportTraceServiceResponse:
        """Accept a request already parsed by gRPC (when registered with the generated helper)."""

        def work() -> ExportTraceServiceResponse:
            self._authorize(context)
            return submit(self._pipeline, request)

        return self._answer(context, work)

    def export_bytes(self, data: bytes, context: Any) -> ExportTraceServiceResponse:
        """Accept a serialized request: authorize before parsing, count what does not parse."""

        def work() -> ExportTraceServiceResponse:
            self._authorize(context)
            return submit(self._pipeline, decode_protobuf(data))

        return self._answer(context, work)


class GrpcReceiver:
    """OTLP/gRPC trace receiver (``opentelemetry.proto.collector.trace.v1.TraceService/Export``)."""

    def __init__(
        self,
        pipeline: Pipeline,
        host: str,
        port: int,
        *,
        tls: TlsFiles | None = None,
        bearer_token: str | None = None,
        max_message_bytes: int = DEFAULT_GRPC_MAX_MESSAGE_BYTES,
        workers: int = 8,
    ) -> None:
        """Create the receiver; :meth:`start` binds and serves.

        Args:
            pipeline: where accepted requests go.
            host: interface to listen on.
            port: TCP port; 0 picks a free one (read :attr:`port` after :meth:`start`).
            tls: PEM certificate chain and private key files; ``None`` serves plaintext.
            bearer_token: when set, requests must carry ``authorization: Bearer <token>``.
            max_message_bytes: largest message accepted, after decompression.
            workers: threads serving requests.

        Raises:
            ConfigError: a value is invalid or the TLS files cannot be loaded.
        """
        check_port(port)
        if max_message_bytes < 1:
            raise ConfigError("max_message_bytes", max_message_bytes, "must be at least 1")
        if workers < 1:
            raise ConfigError("workers", workers, "must be at least 1")
        self._pipeline = pipeline
        self._host = host
        self._port = port
        self._max_message_bytes = max_message_bytes
        self._workers = workers
        self._auth = BearerAuth(bearer_token) if bearer_token is not None else None
        self._key_cert: tuple[bytes, bytes] | None = None
        if tls is not None:
            server_ssl_context(tls)  # fails here, naming the files, rather than at the first handshake
            cert, key = tls
            with open(key, "rb") as key_file, open(cert, "rb") as cert_file:
                self._key_cert = (key_file.read(), cert_file.read())
        warn_cleartext_token(host, bearer_token is not None and tls is None, "gRPC")
        self._service = _TraceService(pipeline, self._auth)
        self._server: Any = None
        self._executor: ThreadPoolExecutor | None = None

    @property
    def port(self) -> int:
        """The bound port once started (the requested one before)."""
        return self._port

    def start(self) -> GrpcReceiver:
        """Bind and start serving; return self.

        Raises:
            OSError: the address cannot be bound.
        """
        if self._server is not None:
            return self
        executor = ThreadPoolExecutor(max_workers=self._workers, thread_name_prefix="otlp-grpc")
        server = grpc.server(
            executor,
            options=[
                ("grpc.max_receive_message_length", self._max_message_bytes),
                # gRPC sets SO_REUSEPORT by default: two collectors would silently share a port
                ("grpc.so_reuseport", 0),
            ],
            maximum_concurrent_rpcs=self._workers * (1 + _WAITING_PER_WORKER),
        )
        handler = grpc.unary_unary_rpc_method_handler(
            self._service.export_bytes,
            request_deserializer=None,  # bytes in: parse errors are ours to answer and count
            response_serializer=ExportTraceServiceResponse.SerializeToString,
        )
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(_SERVICE.full_name, {_EXPORT.name: handler}),)
        )
        host = f"[{self._host}]" if ":" in self._host and not self._host.startswith("[") else self._host
        address = f"{host}:{self._port}"
        try:
            if self._key_cert is not None:
                bound = server.add_secure_port(address, grpc.ssl_server_credentials([self._key_cert]))
            else:
                bound = server.add_insecure_port(address)
        except RuntimeError as exc:
            executor.shutdown(wait=False)
            raise OSError(f"OTLP/gRPC receiver cannot bind {address}: {exc}") from exc
        if not bound:
            executor.shutdown(wait=False)
            raise OSError(f"OTLP/gRPC receiver cannot bind {address}")
        server.start()
        self._server, self._executor, self._port = server, executor, int(bound)
        _log.info("otel-llmcost collector: OTLP/gRPC receiver on %s:%d", self._host, self._port)
        return self

    def stop(self, grace_s: float = 5.0) -> None:
        """Stop accepting requests; let those in flight finish within *grace_s*, then cancel them."""
        server, executor = self._server, self._executor
        if server is None:
            return
        self._server = self._executor = None
        server.stop(grace_s).wait(grace_s + 1.0)
        if executor is not None:
            executor.shutdown(wait=False)

    def __enter__(self) -> GrpcReceiver:
        """Start the receiver."""
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Stop the receiver."""
        self.stop()
