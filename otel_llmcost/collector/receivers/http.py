"""OTLP/HTTP receiver: ``POST /v1/traces`` (protobuf or JSON, optionally gzip) on a threading HTTP server.

Checks run cheapest first and before the body is read: path, bearer token, content type and
encoding, declared length. A refused request's body is read and discarded when it is small enough
so the connection can be reused; otherwise the connection is closed after the answer, and the
socket is drained for a moment first so that the client reads the answer instead of a reset.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import socket
import socketserver
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, cast
from urllib.parse import urlsplit

from google.protobuf import json_format  # type: ignore[import-untyped]
from google.rpc import status_pb2  # type: ignore[import-untyped]
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from ...config import ConfigError
from ..pipeline import Pipeline
from ._common import (
    DEFAULT_HTTP_MAX_BODY_BYTES,
    INCOMPLETE,
    MALFORMED,
    NOT_FOUND,
    TOO_LARGE,
    UNAUTHENTICATED,
    UNSUPPORTED_MEDIA_TYPE,
    BearerAuth,
    Refusal,
    TlsFiles,
    check_port,
    count_refusal,
    decode_json,
    decode_protobuf,
    guarded,
    inflate,
    retry_after_header,
    server_ssl_context,
    submit,
    warn_cleartext_token,
)

__all__ = ["HttpReceiver"]

_log = logging.getLogger(__name__)

TRACES_PATH = "/v1/traces"
HEALTH_PATH = "/health"
_PROTOBUF = "application/x-protobuf"
_PROTOBUF_TYPES = frozenset({_PROTOBUF, "application/protobuf"})
_JSON = "application/json"
_ENCODINGS = {"identity": None, "gzip": "gzip", "x-gzip": "gzip", "deflate": "deflate"}
_READ_TIMEOUT_S = 30.0  # per socket read: a client that stalls this long loses its connection
_LINGER_S = 2.0
_MAX_CONNECTIONS = 1024
_MAX_CHUNK_LINE = 1024
_MAX_TRAILERS = 64
_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,16}")

# Where the current request's body stands, for deciding whether the connection can be reused.
_UNREAD, _BROKEN, _READ = "unread", "broken", "read"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], receiver: HttpReceiver, family: socket.AddressFamily) -> None:
        self.address_family = family
        self.receiver = receiver
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host's FQDN, a DNS lookup that can take seconds
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.connections_lock:
            full = len(self.connections) >= _MAX_CONNECTIONS
        if full:
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def finish_request(self, request: Any, client_address: Any) -> None:
        conn = request
        context = self.receiver.ssl_context
        if context is not None:
            # the handshake runs here, in the connection's thread, never in the accept loop
            try:
                request.settimeout(_READ_TIMEOUT_S)
                conn = context.wrap_socket(request, server_side=True)
            except (OSError, ValueError) as exc:
                _log.debug("OTLP/HTTP TLS handshake with %s failed: %s", client_address, exc)
                return
        with self.connections_lock:
            self.connections.add(conn)
        try:
            self.RequestHandlerClass(conn, client_address, self)  # type: ignore[arg-type]
        finally:
            with self.connections_lock:
                self.connections.discard(conn)
            if conn is not request:
                conn.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        # a client that vanished mid-answer; nothing to tell anyone
        _log.debug("OTLP/HTTP connection from %s failed", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "otel-llmcost"
    sys_version = ""
    timeout = _READ_TIMEOUT_S
    # headers and body go out in two writes: without TCP_NODELAY the second waits for the
    # client's delayed ACK (40 ms per request on a keep-alive connection)
    disable_nagle_algorithm = True
    # the standard library's own error pages (unparseable request line or headers): plain text
    error_content_type = "text/plain"
    error_message_format = "%(code)d %(message)s: %(explain)s\n"

    _as_json = False
    _body = _UNREAD

    @property
    def _rx(self) -> HttpReceiver:
        return cast(_Server, self.server).receiver

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        _log.debug("OTLP/HTTP %s: " + format, self.address_string(), *args)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        # the standard library's own refusals: unreadable request line or headers, unknown method
        if code >= 400:
            self._rx.pipeline.metrics.drop(MALFORMED, 0)
        super().send_error(code, message, explain)

    def do_GET(self) -> None:
        if urlsplit(self.path).path == HEALTH_PATH:
            self._reply(200, json.dumps({"status": "ok"}).encode(), _JSON)
        else:
            self._reply(404, b"not found\n", "text/plain")

    def handle_expect_100(self) -> bool:
        # a client that waits for "100 Continue" is refused before it sends the body
        if self.command == "POST":
            self._as_json, self._body = self._wants_json(), _BROKEN
            try:
                self._check_headers()
                self._body_length()
            except Refusal as refusal:
                count_refusal(self._rx.pipeline, refusal)
                self._refuse(refusal)
                return False
        return super().handle_expect_100()

    def do_POST(self) -> None:
        rx = self._rx
        rx.request_started()
        try:
            self._as_json, self._body = self._wants_json(), _UNREAD
            try:
                response = guarded(rx.pipeline, self._export)
            except Refusal as refusal:
                self._refuse(refusal)
                return
            if self._as_json:
                self._reply(200, json_format.MessageToJson(response, indent=None).encode(), _JSON)
            else:
                self._reply(200, response.SerializeToString(), _PROTOBUF)
        finally:
            if rx.stopping:
                self.close_connection = True
            rx.request_finished()

    def _export(self) -> ExportTraceServiceResponse:
        encoding = self._check_headers()
        body = self._read_body(self._body_length())
        if encoding is not None:
            body = inflate(body, encoding, self._rx.max_body_bytes)
        request = decode_json(body) if self._as_json else decode_protobuf(body)
        return submit(self._rx.pipeline, request)

    def _wants_json(self) -> bool:
        """Whether the request is OTLP/JSON: its answers, errors included, are JSON too."""
        return self.headers.get_content_type() == _JSON

    def _check_headers(self) -> str | None:
        """Check path, token, content type and encoding; return the content encoding."""
        rx = self._rx
        path = urlsplit(self.path).path
        if path != TRACES_PATH:
            raise Refusal(NOT_FOUND, f"POST {path}: this collector receives OTLP traces at {TRACES_PATH}")
        if rx.auth is not None and not rx.auth.allows(self.headers.get("Authorization")):
            raise Refusal(UNAUTHENTICATED, "missing or wrong bearer token (header 'Authorization: Bearer <token>')")
        if self.headers.get("Content-Type") is None:
            raise Refusal(UNSUPPORTED_MEDIA_TYPE, f"Content-Type is missing: send {_PROTOBUF} or {_JSON}")
        media = self.headers.get_content_type()
        if media != _JSON and media not in _PROTOBUF_TYPES:
            raise Refusal(
                UNSUPPORTED_MEDIA_TYPE, f"Content-Type {media!r} is not supported: send {_PROTOBUF} or {_JSON}"
            )
        encoding = (self.headers.get("Content-Encoding") or "identity").strip().lower()
        if encoding not in _ENCODINGS:
            raise Refusal(
                UNSUPPORTED_MEDIA_TYPE, f"Content-Encoding {encoding!r} is not supported: send gzip, deflate or none"
            )
        return _ENCODINGS[encoding]

    def _body_length(self) -> int | None:
        """Return the declared body length, ``None`` for a chunked body."""
        limit = self._rx.max_body_bytes
        transfer = self.headers.get("Transfer-Encoding")
        if transfer is not None:
            if transfer.strip().lower() != "chunked":
                self._body = _BROKEN
                raise Refusal(MALFORMED, f"Transfer-Encoding {transfer!r} is not supported")
            return None
        values = {value.strip() for value in self.headers.get_all("Content-Length") or ()}
        if not values:
            return 0  # HTTP/1.1: a request without a length has no body
        value = values.pop()
        if values or not value.isdigit() or not value.isascii():
            self._body = _BROKEN
            raise Refusal(MALFORMED, "invalid Content-Length")
        length = int(value)
        if length > limit:
            self._body = _BROKEN
            raise Refusal(TOO_LARGE, f"body of {length} bytes is larger than the limit of {limit} bytes")
        return length

    def _read_body(self, length: int | None) -> bytes:
        self._body = _BROKEN  # until it has all been read
        try:
            if length is None:
                data = self._read_chunked()
            else:
                data = self.rfile.read(length) if length else b""
                if len(data) < length:
                    raise Refusal(INCOMPLETE, f"body ended after {len(data)} of {length} bytes")
        except OSError as exc:  # timed out, or the client went away
            raise Refusal(INCOMPLETE, f"reading the body failed: {exc}") from exc
        self._body = _READ
        return data

    def _read_chunked(self) -> bytes:
        limit = self._rx.max_body_bytes
        out = bytearray()
        while True:
            line = self.rfile.readline(_MAX_CHUNK_LINE)
            size_text = line.split(b";", 1)[0].strip()
            if not line.endswith(b"\n") or not _CHUNK_SIZE.fullmatch(size_text):
                raise Refusal(MALFORMED, "invalid chunked body: bad chunk size line")
            size = int(size_text, 16)
            if size == 0:
                break
            if len(out) + size > limit:
                raise Refusal(TOO_LARGE, f"chunked body is larger than the limit of {limit} bytes")
            chunk = self.rfile.read(size)
            if len(chunk) < size or self.rfile.readline(_MAX_CHUNK_LINE).strip():
                raise Refusal(INCOMPLETE, "invalid chunked body: a chunk is short or not followed by CRLF")
            out += chunk
        for _ in range(_MAX_TRAILERS):
            if self.rfile.readline(_MAX_CHUNK_LINE).strip() == b"":
                return bytes(out)
        raise Refusal(MALFORMED, "invalid chunked body: too many trailer lines")

    def _refuse(self, refusal: Refusal) -> None:
        """Answer *refusal* with an OTLP ``Status`` body, keeping the connection usable if possible."""
        if self._body == _UNREAD:
            with contextlib.suppress(Refusal):  # small enough to read: discard it, keep the connection
                self._read_body(self._body_length())
        if self._body != _READ:
            self.close_connection = True
        status = status_pb2.Status(code=refusal.rpc_code, message=refusal.message)
        headers: list[tuple[str, str]] = []
        if refusal.retry_after_s is not None:
            headers.append(("Retry-After", retry_after_header(refusal.retry_after_s)))
        if refusal.reason == UNAUTHENTICATED:
            headers.append(("WWW-Authenticate", "Bearer"))
        if self._as_json:
            self._reply(refusal.http_status, json_format.MessageToJson(status, indent=None).encode(), _JSON, headers)
        else:
            self._reply(refusal.http_status, status.SerializeToString(), _PROTOBUF, headers)
        if self._body != _READ:
            self._linger()

    def _reply(self, status: int, body: bytes, content_type: str, headers: list[tuple[str, str]] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers or ():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def _linger(self) -> None:
        # Closing a socket with unread input makes the kernel send a reset, which can destroy the
        # answer before the client reads it: stop writing, then discard input for a moment.
        deadline = time.monotonic() + _LINGER_S
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_WR)
            while (left := deadline - time.monotonic()) > 0:
                self.connection.settimeout(left)
                if not self.connection.recv(65536):
                    break
        except (OSError, ValueError):
            pass


class HttpReceiver:
    """OTLP/HTTP trace receiver: ``POST /v1/traces`` and ``GET /health``."""

    def __init__(
        self,
        pipeline: Pipeline,
        host: str,
        port: int,
        *,
        tls: TlsFiles | None = None,
        bearer_token: str | None = None,
        max_body_bytes: int = DEFAULT_HTTP_MAX_BODY_BYTES,
    ) -> None:
        """Create the receiver; :meth:`start` binds and serves.

        Args:
            pipeline: where accepted requests go.
            host: interface to listen on.
            port: TCP port; 0 picks a free one (read :attr:`port` after :meth:`start`).
            tls: PEM certificate chain and private key files; ``None`` serves plaintext.
            bearer_token: when set, requests must carry ``Authorization: Bearer <token>``.
            max_body_bytes: largest body accepted, measured after decompression.

        Raises:
            ConfigError: a value is invalid or the TLS files cannot be loaded.
        """
        check_port(port)
        if max_body_bytes < 1:
            raise ConfigError("max_body_bytes", max_body_bytes, "must be at least 1")
        self.pipeline = pipeline
        self.max_body_bytes = max_body_bytes
        self.auth = BearerAuth(bearer_token) if bearer_token is not None else None
        self.ssl_context: ssl.SSLContext | None = server_ssl_context(tls) if tls is not None else None
        warn_cleartext_token(host, bearer_token is not None and tls is None, "HTTP")
        self._host = host
        self._port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._in_flight = 0
        self._idle = threading.Condition()
        self.stopping = False

    @property
    def port(self) -> int:
        """The bound port once started (the requested one before)."""
        return self._port

    def request_started(self) -> None:
        """Count a request in flight (for a graceful stop)."""
        with self._idle:
            self._in_flight += 1

    def request_finished(self) -> None:
        """Count a request answered."""
        with self._idle:
            self._in_flight -= 1
            self._idle.notify_all()

    def start(self) -> HttpReceiver:
        """Bind and start serving; return self.

        Raises:
            OSError: the address cannot be bound.
        """
        if self._server is not None:
            return self
        family = socket.AF_INET6 if ":" in self._host else socket.AF_INET
        server = _Server((self._host.strip("[]"), self._port), self, family)
        self.stopping = False
        self._server, self._port = server, int(server.server_address[1])
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="otlp-http", daemon=True
        )
        self._thread.start()
        _log.info("otel-llmcost collector: OTLP/HTTP receiver on %s:%d", self._host, self._port)
        return self

    def stop(self, grace_s: float = 5.0) -> None:
        """Stop accepting connections; let requests in flight finish within *grace_s*, then disconnect."""
        server, thread = self._server, self._thread
        if server is None:
            return
        self._server = self._thread = None
        self.stopping = True
        server.shutdown()
        server.server_close()
        deadline = time.monotonic() + max(grace_s, 0.0)
        with self._idle:
            while self._in_flight and (left := deadline - time.monotonic()) > 0:
                self._idle.wait(left)
        with server.connections_lock:
            connections = list(server.connections)
        for conn in connections:  # idle keep-alive connections, and requests past the grace period
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if thread is not None:
            thread.join(timeout=1.0)

    def __enter__(self) -> HttpReceiver:
        """Start the receiver."""
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Stop the receiver."""
        self.stop()
