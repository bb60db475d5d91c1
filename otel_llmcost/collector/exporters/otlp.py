"""Forwarding priced batches downstream over OTLP (gRPC or HTTP): a queue, a sender thread, retries.

:meth:`OtlpForwarder.export` only queues (in memory, or durably on a :class:`DiskQueue`); one
background thread sends the oldest batch, retries it with exponential backoff and jitter while the
downstream is unavailable (honouring ``Retry-After`` and gRPC ``RetryInfo``), and removes it only
once it is delivered or permanently rejected. Batches go out in the order they came in.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from google.protobuf.message import DecodeError  # type: ignore[import-untyped]
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
)

from ...config import ConfigError
from ..pipeline import Backpressure, span_count
from ._senders import GrpcSender, HttpSender, Result
from .disk_queue import DiskQueue, DiskQueueError, Token

__all__ = ["ForwarderStats", "OtlpForwarder"]

_log = logging.getLogger(__name__)

_WARN_EVERY_S = 60.0


@dataclass
class ForwarderStats:
    """What a forwarder has done since it started."""

    sent_batches: int = 0
    failed_attempts: int = 0
    dropped_batches: int = 0
    dropped_spans: int = 0
    rejected_spans: int = 0  # refused by the downstream in a partial-success response


class OtlpForwarder:
    """Forwards batches to a downstream OTLP receiver (gRPC or HTTP) from a bounded queue.

    With a :class:`DiskQueue`, :meth:`export` returns once the batch is on disk, and what is not yet
    delivered at shutdown (or at a crash) is sent after the next start. Without one, the queue is
    in memory and what is left at shutdown is counted as dropped.
    """

    def __init__(
        self,
        endpoint: str,
        *,
        protocol: Literal["grpc", "http"] = "grpc",
        headers: Mapping[str, str] | None = None,
        timeout_s: float = 10.0,
        max_queue_batches: int = 1000,
        queue: DiskQueue | None = None,
        on_failure: Callable[[str], None] | None = None,
        on_drop: Callable[[str, int], None] | None = None,
        insecure: bool | None = None,
        ca_file: str | None = None,
        client_cert_file: str | None = None,
        client_key_file: str | None = None,
        compression: Literal["gzip"] | None = None,
        initial_backoff_s: float = 1.0,
        max_backoff_s: float = 30.0,
        max_retry_after_s: float = 300.0,
        max_elapsed_s: float | None = None,
        name: str | None = None,
    ) -> None:
        """Create the forwarder and start its sender thread.

        Args:
            endpoint: gRPC: ``host:port`` (plaintext unless TLS files are given), ``http://host:port``
                (plaintext) or ``https://host:port`` (TLS). HTTP: an ``http(s)://`` URL; ``/v1/traces``
                is appended unless the path already ends with it.
            protocol: ``"grpc"`` or ``"http"`` (protobuf body).
            headers: sent with every request (gRPC metadata keys are lower-cased).
            timeout_s: the limit of one attempt.
            max_queue_batches: the in-memory queue's bound (without ``queue``).
            queue: a durable queue to use instead of memory; the forwarder closes it at shutdown.
            on_failure: called with :attr:`name` after each failed attempt (``SelfMetrics.export_failed``).
            on_drop: called with a reason (``rejected``, ``retries_exhausted``, ``shutdown``,
                ``rejected_downstream``) and a span count when spans are lost (``SelfMetrics.drop``).
            insecure: gRPC only: ``True`` plaintext, ``False`` TLS, ``None`` decided by the endpoint.
            ca_file: PEM roots to trust instead of the system's.
            client_cert_file: PEM client certificate (mutual TLS).
            client_key_file: its PEM private key.
            compression: ``"gzip"`` or ``None``.
            initial_backoff_s: the first retry's delay; doubled each retry, with jitter.
            max_backoff_s: the longest delay between retries.
            max_retry_after_s: the longest ``Retry-After`` / ``RetryInfo`` honoured.
            max_elapsed_s: drop a batch still failing after this long; ``None`` retries until shutdown.
            name: the exporter's name in metrics; ``otlp`` (gRPC) or ``otlphttp`` (HTTP) by default.

        Raises:
            ConfigError: a bad endpoint, protocol, compression or number.
            OSError: a TLS file cannot be read.
        """
        if protocol not in ("grpc", "http"):
            raise ConfigError("protocol", protocol, "expected 'grpc' or 'http'")
        if compression not in (None, "gzip"):
            raise ConfigError("compression", compression, "expected 'gzip' or none")
        positive = {"timeout_s": timeout_s, "initial_backoff_s": initial_backoff_s, "max_backoff_s": max_backoff_s}
        for key, value in positive.items():
            if not value > 0:
                raise ConfigError(key, value, "must be positive")
        if max_queue_batches < 1:
            raise ConfigError("max_queue_batches", max_queue_batches, "must be at least 1")
        if max_elapsed_s is not None and not max_elapsed_s > 0:
            raise ConfigError("max_elapsed_s", max_elapsed_s, "must be positive or None")
        self.name = name or ("otlp" if protocol == "grpc" else "otlphttp")
        self.endpoint = endpoint
        self.timeout_s = timeout_s
        self.max_queue_batches = max_queue_batches
        self.initial_backoff_s = initial_backoff_s
        self.max_backoff_s = max_backoff_s
        self.max_retry_after_s = max_retry_after_s
        self.max_elapsed_s = max_elapsed_s
        tls_files = (ca_file, client_cert_file, client_key_file)
        self._sender: GrpcSender | HttpSender
        if protocol == "grpc":
            self._sender = GrpcSender(endpoint, headers or {}, insecure, tls_files, compression, max_backoff_s)
        else:
            self._sender = HttpSender(endpoint, headers or {}, tls_files, compression)
        self._on_failure = on_failure
        self._on_drop = on_drop
        self._queue = queue
        self._memory: deque[ExportTraceServiceRequest] = deque()
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._closing = False
        self._deadline: float | None = None
        self._failing_since: float | None = None
        self._last_warning: dict[str, float] = {}
        self.stats = ForwarderStats()
        self._thread = threading.Thread(target=self._run, name=f"otel-llmcost-{self.name}", daemon=True)
        self._thread.start()

    # -- the Exporter protocol ---------------------------------------------------------------------

    def has_room(self) -> bool:
        """Whether one more batch can be queued now."""
        if self._closing:
            return False
        if self._queue is not None:
            return self._queue.has_room()
        return len(self._memory) < self.max_queue_batches

    def export(self, request: ExportTraceServiceRequest) -> None:
        """Queue *request* (on disk, fsynced, when durable) for the sender thread.

        Raises:
            Backpressure: the queue is full or shut down, or the disk write failed; nothing was queued
                and the client should retry (the pipeline checks :meth:`has_room` first).
        """
        if self._closing:
            raise Backpressure(1.0)
        if self._queue is not None:
            try:
                self._queue.put(request.SerializeToString())
            except (DiskQueueError, OSError, ValueError) as exc:
                self._failed()
                self._warn("disk", "otel-llmcost %s: cannot queue a batch on disk (%s)", self.name, exc)
                raise Backpressure(1.0) from exc
            with self._cond:
                self._cond.notify()
            return
        with self._cond:
            if len(self._memory) >= self.max_queue_batches:
                raise Backpressure(1.0)
            self._memory.append(request)
            self._cond.notify()

    def depth(self) -> int:
        """Batches queued and not yet delivered (including the one being sent)."""
        return len(self._queue) if self._queue is not None else len(self._memory)

    def shutdown(self, timeout_s: float = 10.0) -> None:
        """Stop accepting, deliver what can be delivered within *timeout_s*, stop the thread.

        Batches left in a disk queue stay there for the next start; batches left in memory are
        counted as dropped (reason ``shutdown``).
        """
        with self._cond:
            if self._closing:
                return
            self._closing = True
            self._deadline = time.monotonic() + timeout_s
            self._cond.notify_all()
        self._thread.join(max(0.0, timeout_s))
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        self._thread.join(1.0)  # an attempt in flight was given at most the time left
        if self._thread.is_alive():
            _log.warning("otel-llmcost %s: the sender thread did not stop", self.name)
        if self._queue is not None:
            left = len(self._queue)
            self._queue.close()
            if left:
                _log.info("otel-llmcost %s: %d batches stay on disk for the next start", self.name, left)
        else:
            with self._cond:
                left_over = list(self._memory)
                self._memory.clear()
            if left_over:
                spans = sum(span_count(r) for r in left_over)
                _log.warning("otel-llmcost %s: %d spans undelivered at shutdown", self.name, spans)
                self._dropped("shutdown", len(left_over), spans)
        self._sender.close()

    # -- the sender thread -------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                item = self._next()
                if item is None:
                    return
                self._deliver(*item)
            except Exception:  # noqa: BLE001 - the sender must outlive any one bad batch
                _log.exception("otel-llmcost %s: sender error", self.name)
                self._stop.wait(self.initial_backoff_s)

    def _next(self) -> tuple[Token | None, bytes | None, ExportTraceServiceRequest | None] | None:
        with self._cond:
            while not self._stop.is_set():
                if self._queue is not None:
                    record = self._queue.peek()
                    if record is not None:
                        return record[0], record[1], None
                elif self._memory:
                    return None, None, self._memory[0]
                if self._closing:
                    return None  # drained
                self._cond.wait(1.0)
        return None

    def _deliver(self, token: Token | None, data: bytes | None, request: ExportTraceServiceRequest | None) -> None:
        if data is None:
            assert request is not None  # the in-memory queue holds messages, the disk queue bytes
            data = request.SerializeToString()
        attempt = 0
        started = time.monotonic()
        while True:
            timeout_s = self.timeout_s
            if self._deadline is not None:
                timeout_s = min(timeout_s, max(0.05, self._deadline - time.monotonic()))
            result = self._sender.send(data, timeout_s)
            if result.kind == "ok":
                self._delivered(token, result)
                return
            self._failed()
            if result.kind == "drop":
                self._warn("rejected", "otel-llmcost %s: batch rejected, dropped (%s)", self.name, result.detail)
                self._remove(token)
                self._dropped("rejected", 1, self._spans(data, request))
                return
            attempt += 1
            if self.max_elapsed_s is not None and time.monotonic() - started > self.max_elapsed_s:
                self._warn(
                    "exhausted", "otel-llmcost %s: dropped after %d attempts (%s)", self.name, attempt, result.detail
                )
                self._remove(token)
                self._dropped("retries_exhausted", 1, self._spans(data, request))
                return
            if self._failing_since is None:
                self._failing_since = time.monotonic()
                _log.warning(
                    "otel-llmcost %s: sending to %s failed (%s); retrying", self.name, self.endpoint, result.detail
                )
            if self._stop.wait(self._backoff(attempt, result.retry_after_s)):
                return  # stopping: the batch stays queued

    def _delivered(self, token: Token | None, result: Result) -> None:
        self._remove(token)
        self.stats.sent_batches += 1
        if self._failing_since is not None:
            _log.info(
                "otel-llmcost %s: delivering again after %.1f s", self.name, time.monotonic() - self._failing_since
            )
            self._failing_since = None
        if result.rejected_spans:  # partial success: the downstream refused some spans for good
            self.stats.rejected_spans += result.rejected_spans
            self._warn("partial", "otel-llmcost %s: downstream rejected spans (%s)", self.name, result.detail)
            if self._on_drop is not None:
                self._call_safely(self._on_drop, "rejected_downstream", result.rejected_spans)

    def _backoff(self, attempt: int, hint_s: float | None) -> float:
        delay = min(self.max_backoff_s, self.initial_backoff_s * 2.0 ** min(attempt - 1, 32))
        delay = random.uniform(delay / 2, delay)  # jitter: many clients must not retry in lockstep
        if hint_s is not None:
            delay = max(delay, min(hint_s, self.max_retry_after_s))
        return delay

    def _remove(self, token: Token | None) -> None:
        if self._queue is not None:
            if token is not None:
                self._queue.commit(token)
        else:
            with self._cond:
                self._memory.popleft()

    @staticmethod
    def _spans(data: bytes, request: ExportTraceServiceRequest | None) -> int:
        if request is None:
            try:
                request = ExportTraceServiceRequest.FromString(data)
            except DecodeError:
                return 0
        return span_count(request)

    def _failed(self) -> None:
        self.stats.failed_attempts += 1
        if self._on_failure is not None:
            self._call_safely(self._on_failure, self.name)

    def _dropped(self, reason: str, batches: int, spans: int) -> None:
        self.stats.dropped_batches += batches
        self.stats.dropped_spans += spans
        if self._on_drop is not None:
            self._call_safely(self._on_drop, reason, spans)

    def _call_safely(self, hook: Callable[..., None], *args: Any) -> None:
        try:
            hook(*args)
        except Exception:  # noqa: BLE001 - a metrics hook must not stop deliveries
            _log.exception("otel-llmcost %s: hook failed", self.name)

    def _warn(self, kind: str, message: str, *args: object) -> None:
        # one warning per kind per minute: an outage must not flood the log
        now = time.monotonic()
        last = self._last_warning.get(kind)
        if last is None or now - last >= _WARN_EVERY_S:
            self._last_warning[kind] = now
            _log.warning(message, *args)
