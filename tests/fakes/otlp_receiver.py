"""A local OTLP/HTTP receiver: answers every export with 200 and keeps its (gunzipped) protobuf body.

Point ``OTEL_EXPORTER_OTLP_ENDPOINT`` at :attr:`OTLPReceiver.endpoint`; what arrived is
:attr:`OTLPReceiver.received`, the bodies by path (``/v1/traces``, ``/v1/metrics``, ...).
"""

from __future__ import annotations

import gzip
from contextlib import AbstractContextManager
from dataclasses import dataclass

from ._http import FakeHandler, FakeServer, serving

__all__ = ["ExportRequest", "OTLPReceiver", "serve"]


@dataclass
class ExportRequest:
    """One export as the receiver got it."""

    path: str
    body: bytes
    """The protobuf body, gunzipped if it came with ``Content-Encoding: gzip``."""


class _Handler(FakeHandler):
    protocol_version = "HTTP/1.0"  # one export per connection; the 200 has no body

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        self._record(ExportRequest(self.path, body))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.end_headers()


class OTLPReceiver(FakeServer[ExportRequest]):
    """The OTLP/HTTP receiver on 127.0.0.1, on a free port; start with :meth:`start` or ``with``."""

    handler = _Handler
    thread_name = "otlp-receiver"

    @property
    def endpoint(self) -> str:
        """The exporters' ``OTEL_EXPORTER_OTLP_ENDPOINT`` (they add ``/v1/traces`` and the like)."""
        return self.base_url

    @property
    def received(self) -> dict[str, list[bytes]]:
        """{path: bodies received on it, oldest first}."""
        out: dict[str, list[bytes]] = {}
        for request in self.requests:
            out.setdefault(request.path, []).append(request.body)
        return out


def serve() -> AbstractContextManager[OTLPReceiver]:
    """Run an :class:`OTLPReceiver` for the duration of the block."""
    return serving(OTLPReceiver)
