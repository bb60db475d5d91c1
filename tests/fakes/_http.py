"""What the fake servers share: a threaded HTTP server on 127.0.0.1 that keeps every request it got.

A fake is a :class:`FakeServer` subclass naming its :class:`FakeHandler` subclass (the routes) and,
if it keeps more than the requests, its :class:`ServerState` subclass. The handler reaches that
state as ``self.server.state`` and keeps a request with :meth:`FakeHandler._record`; the test reads
them as :attr:`FakeServer.requests`.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar, Generic, TypeVar

__all__ = ["FakeHandler", "FakeServer", "QuietServer", "ServerState", "serving"]

R = TypeVar("R")
S = TypeVar("S", bound="FakeServer[Any]")


@dataclass
class ServerState(Generic[R]):
    """What the handler threads share with the test: every request received, oldest first."""

    requests: list[R] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True
    quiet_errors: tuple[type[BaseException], ...] = (ConnectionError,)
    state: Any

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that closes its keep-alive connection resets the handler's read; that is not an error.
        if isinstance(sys.exc_info()[1], self.quiet_errors):
            return
        super().handle_error(request, client_address)


class FakeHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 with keep-alive; the routes are the subclass's ``do_GET`` / ``do_POST``."""

    protocol_version = "HTTP/1.1"
    timeout = 10  # an idle keep-alive connection ends its thread after this
    disable_nagle_algorithm = True  # stream chunks leave at once, not after a delayed ACK

    server: QuietServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass  # keep test output clean

    def _record(self, request: Any) -> int:
        """Keep *request* in the server's state; return how many requests it has now."""
        with self.server.state.lock:
            self.server.state.requests.append(request)
            return len(self.server.state.requests)

    def _read_json(self) -> dict[str, Any]:
        """The request's JSON object body (``{}`` when empty, malformed or not an object)."""
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            data = json.loads(raw) if raw else {}
        except ValueError:
            data = {}
        return data if isinstance(data, dict) else {}

    def _send_bytes(
        self,
        status: int,
        data: bytes,
        content_type: str = "application/json",
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _start_chunked(self, content_type: str, headers: Mapping[str, str] | None = None) -> None:
        """Send a 200 whose body follows in :meth:`_chunk` calls."""
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Transfer-Encoding", "chunked")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()

    def _chunk(self, data: bytes) -> None:
        """Send one chunk of a chunked body (``b""``: the terminating zero-length chunk)."""
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def _drop_connection(self) -> None:
        """Close the socket mid-response, as a crashed upstream or a proxy timeout does."""
        self.wfile.flush()
        self.close_connection = True
        with suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)


class FakeServer(Generic[R]):
    """A fake on 127.0.0.1, on a free port; start with :meth:`start` or ``with``."""

    handler: ClassVar[type[BaseHTTPRequestHandler]]
    state_type: ClassVar[type[ServerState[Any]]] = ServerState
    thread_name: ClassVar[str] = "fake-server"
    quiet_errors: ClassVar[tuple[type[BaseException], ...]] = (ConnectionError,)

    def __init__(self) -> None:
        self._httpd = QuietServer(("127.0.0.1", 0), self.handler)
        self._httpd.quiet_errors = self.quiet_errors
        self._httpd.state = self.state_type()
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def requests(self) -> list[R]:
        """A copy of every request received so far, oldest first."""
        with self._httpd.state.lock:
            return list(self._httpd.state.requests)

    def start(self: S) -> S:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name=self.thread_name, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join()
            self._thread = None
        self._httpd.server_close()

    def __enter__(self: S) -> S:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextmanager
def serving(server_type: type[S]) -> Iterator[S]:
    """Run a *server_type* for the duration of the block."""
    with server_type() as server:
        yield server
