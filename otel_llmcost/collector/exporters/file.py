"""Debug exporters: priced batches as OTLP/JSON lines in a file, or kept in memory."""

from __future__ import annotations

import base64
import json
import logging
import os
import threading
from collections import deque
from collections.abc import Callable
from typing import IO, Any

from google.protobuf import json_format  # type: ignore[import-untyped]
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from ..pipeline import span_count

__all__ = ["FileExporter", "MemoryExporter", "to_otlp_json"]

_log = logging.getLogger(__name__)


def _hex(value: Any) -> Any:
    # protobuf's JSON mapping writes bytes as base64; OTLP/JSON wants trace and span ids in hex
    return base64.b64decode(value).hex() if isinstance(value, str) else value


def _fix_ids(obj: dict[str, Any], keys: tuple[str, ...]) -> None:
    for key in keys:
        if key in obj:
            obj[key] = _hex(obj[key])


# the JSON names of the id fields (traceId...), taken from the schema
_SPAN_IDS = tuple(Span.DESCRIPTOR.fields_by_name[f].json_name for f in ("trace_id", "span_id", "parent_span_id"))
_LINK_IDS = tuple(Span.Link.DESCRIPTOR.fields_by_name[f].json_name for f in ("trace_id", "span_id"))


def to_otlp_json(request: ExportTraceServiceRequest) -> str:
    """Return *request* as one line of OTLP/JSON (ids in hex, enums as integers, camelCase keys)."""
    doc = json_format.MessageToDict(request, use_integers_for_enums=True)
    for rs in doc.get("resourceSpans", ()):
        for ss in rs.get("scopeSpans", ()):
            for span in ss.get("spans", ()):
                _fix_ids(span, _SPAN_IDS)
                for link in span.get("links", ()):
                    _fix_ids(link, _LINK_IDS)
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False)


class FileExporter:
    """Appends each batch to a file as one line of OTLP/JSON, flushed after every line.

    The file is what ``otelcol``'s file exporter writes (one ``ExportTraceServiceRequest`` per
    line), so the same tools read both. Not durable and never full: a write error is logged and
    counted, and the batch is dropped.
    """

    name = "file"

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        on_failure: Callable[[str], None] | None = None,
        on_drop: Callable[[str, int], None] | None = None,
    ) -> None:
        """Open *path* for appending (its directory must exist).

        Args:
            path: the file to append to.
            on_failure: called with :attr:`name` for each failed write (e.g. ``SelfMetrics.export_failed``).
            on_drop: called with a reason and a span count for each batch lost (e.g. ``SelfMetrics.drop``).

        Raises:
            OSError: the file cannot be opened.
        """
        self.path = os.fspath(path)
        self._on_failure = on_failure
        self._on_drop = on_drop
        self._lock = threading.Lock()
        self._file: IO[str] | None = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - closed in shutdown()
        self._warned = False
        self.failed_batches = 0

    def has_room(self) -> bool:
        """Always true: a write is immediate."""
        return True

    def export(self, request: ExportTraceServiceRequest) -> None:
        """Append *request* as one JSON line; errors are logged once, counted, and swallowed."""
        try:
            line = to_otlp_json(request) + "\n"
            with self._lock:
                if self._file is None:
                    raise ValueError("exporter shut down")
                self._file.write(line)
                self._file.flush()
        except (OSError, ValueError) as exc:
            self.failed_batches += 1
            if not self._warned:
                self._warned = True
                _log.warning("otel-llmcost file exporter %s: write failed (%s); dropping batches", self.path, exc)
            if self._on_failure is not None:
                self._on_failure(self.name)
            if self._on_drop is not None:
                self._on_drop("export_failed", span_count(request))

    def depth(self) -> int:
        """Always 0: nothing waits."""
        return 0

    def shutdown(self, timeout_s: float = 10.0) -> None:
        """Flush and close the file."""
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None


class MemoryExporter:
    """Keeps the last *max_batches* batches in memory: for tests and the default debug pipeline."""

    name = "memory"

    def __init__(self, max_batches: int | None = 10_000) -> None:
        """Create an empty exporter keeping at most *max_batches* batches (``None``: all of them)."""
        self._requests: deque[ExportTraceServiceRequest] = deque(maxlen=max_batches)
        self._lock = threading.Lock()

    @property
    def requests(self) -> list[ExportTraceServiceRequest]:
        """The batches kept, oldest first (the objects the pipeline exported, not copies)."""
        with self._lock:
            return list(self._requests)

    def spans(self) -> list[Span]:
        """Every span of the batches kept, in order."""
        return [span for r in self.requests for rs in r.resource_spans for ss in rs.scope_spans for span in ss.spans]

    def clear(self) -> None:
        """Forget every batch kept."""
        with self._lock:
            self._requests.clear()

    def has_room(self) -> bool:
        """Always true: the oldest batch makes way when *max_batches* is reached."""
        return True

    def export(self, request: ExportTraceServiceRequest) -> None:
        """Keep *request*."""
        with self._lock:
            self._requests.append(request)

    def depth(self) -> int:
        """Always 0: nothing waits."""
        return 0

    def shutdown(self, timeout_s: float = 10.0) -> None:
        """Nothing to release."""
