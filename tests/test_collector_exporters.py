"""Collector exporters: OTLP forwarding (gRPC, HTTP) against local receivers, the disk queue, file output."""

from __future__ import annotations

import gzip
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from otel_llmcost.collector.exporters.disk_queue import DiskQueue, DiskQueueError, DiskQueueFull
from otel_llmcost.collector.exporters.file import FileExporter, MemoryExporter, to_otlp_json
from otel_llmcost.collector.exporters.otlp import OtlpForwarder
from otel_llmcost.collector.pipeline import Backpressure
from otel_llmcost.config import ConfigError

pytestmark = pytest.mark.integration

FAST = {"initial_backoff_s": 0.05, "max_backoff_s": 0.3, "timeout_s": 2.0}


# -- helpers ---------------------------------------------------------------------------------------


def make_request(i: int, spans: int = 2) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    scope = request.resource_spans.add().scope_spans.add()
    for j in range(spans):
        span = scope.spans.add()
        span.trace_id = (i + 1).to_bytes(16, "big")
        span.span_id = (j + 1).to_bytes(8, "big")
        span.name = f"batch-{i}"
    return request


def batch_index(request: ExportTraceServiceRequest) -> int:
    return int(request.resource_spans[0].scope_spans[0].spans[0].name.removeprefix("batch-"))


def wait_for(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class GrpcDownstream:
    """A downstream OTLP/gRPC receiver that records requests; can fail the next calls with given codes."""

    def __init__(
        self, port: int = 0, fail_with: tuple[grpc.StatusCode, ...] = (), retry_delay_s: int | None = None
    ) -> None:
        self.requests: list[ExportTraceServiceRequest] = []
        self.times: list[float] = []
        self.retry_delay_s = retry_delay_s
        self.metadata: list[dict[str, str]] = []
        self.fail_with = deque(fail_with)
        self.server = grpc.server(ThreadPoolExecutor(max_workers=4))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(_Servicer(self), self.server)
        self.port = self.server.add_insecure_port(f"127.0.0.1:{port}")
        self.server.start()

    def stop(self) -> None:
        self.server.stop(None).wait()


class _Servicer(trace_service_pb2_grpc.TraceServiceServicer):  # type: ignore[misc]
    def __init__(self, owner: GrpcDownstream) -> None:
        self.owner = owner

    def Export(self, request: ExportTraceServiceRequest, context: Any) -> ExportTraceServiceResponse:
        self.owner.times.append(time.monotonic())
        if self.owner.fail_with:
            code = self.owner.fail_with.popleft()
            if self.owner.retry_delay_s is not None:  # a google.rpc.RetryInfo hint, as the OTLP spec describes
                info = error_details_pb2.RetryInfo()
                info.retry_delay.seconds = self.owner.retry_delay_s
                status = status_pb2.Status(code=code.value[0], message="busy")
                status.details.add().Pack(info)
                context.set_trailing_metadata([("grpc-status-details-bin", status.SerializeToString())])
            context.abort(code, "test failure")
        self.owner.metadata.append(dict(context.invocation_metadata()))
        self.owner.requests.append(request)
        return ExportTraceServiceResponse()


class HttpDownstream:
    """A downstream OTLP/HTTP receiver that records bodies; scripted responses come first."""

    def __init__(self, port: int = 0, responses: tuple[tuple[int, dict[str, str]], ...] = ()) -> None:
        self.posts: list[tuple[str, dict[str, str], bytes, float]] = []
        self.responses = deque(responses)
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as real receivers do

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                owner.posts.append((self.path, dict(self.headers), body, time.monotonic()))
                status, headers = owner.responses.popleft() if owner.responses else (200, {})
                reply = ExportTraceServiceResponse().SerializeToString() if status == 200 else b"no"
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    @property
    def requests(self) -> list[ExportTraceServiceRequest]:
        return [ExportTraceServiceRequest.FromString(body) for _, _, body, _ in self.posts]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture()
def cleanup() -> Iterator[list[Any]]:
    """Things with a stop() or shutdown() to call at the end of the test, newest first."""
    things: list[Any] = []
    yield things
    for thing in reversed(things):
        if isinstance(thing, OtlpForwarder):
            thing.shutdown(0.5)
        else:
            thing.stop()


def start_downstream(protocol: str, port: int = 0, **kwargs: Any) -> GrpcDownstream | HttpDownstream:
    return GrpcDownstream(port, **kwargs) if protocol == "grpc" else HttpDownstream(port, **kwargs)


def endpoint(protocol: str, port: int) -> str:
    return f"127.0.0.1:{port}" if protocol == "grpc" else f"http://127.0.0.1:{port}"


# -- forwarding ------------------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", ["grpc", "http"])
@pytest.mark.parametrize("compression", [None, "gzip"])
def test_forwards_batches_in_order(protocol: str, compression: Any, cleanup: list[Any]) -> None:
    down = start_downstream(protocol)
    cleanup.append(down)
    fwd = OtlpForwarder(
        endpoint(protocol, down.port),
        protocol=protocol,  # type: ignore[arg-type]
        headers={"Authorization": "Bearer t0ken"},
        compression=compression,
        **FAST,
    )
    cleanup.append(fwd)
    assert fwd.name == ("otlp" if protocol == "grpc" else "otlphttp")
    for i in range(5):
        assert fwd.has_room()
        fwd.export(make_request(i))
    wait_for(lambda: len(down.requests) == 5)
    assert [batch_index(r) for r in down.requests] == [0, 1, 2, 3, 4]
    assert down.requests[0] == make_request(0)
    wait_for(lambda: fwd.depth() == 0)
    assert fwd.stats.sent_batches == 5 and fwd.stats.failed_attempts == 0
    if isinstance(down, HttpDownstream):
        path, headers, _, _ = down.posts[0]
        assert path == "/v1/traces"
        assert headers["Authorization"] == "Bearer t0ken"
        assert headers["Content-Type"] == "application/x-protobuf"
    else:
        assert down.metadata[0]["authorization"] == "Bearer t0ken"


def test_http_endpoint_with_full_path_is_used_as_is(cleanup: list[Any]) -> None:
    down = HttpDownstream()
    cleanup.append(down)
    fwd = OtlpForwarder(f"http://127.0.0.1:{down.port}/prefix/v1/traces", protocol="http", **FAST)
    cleanup.append(fwd)
    fwd.export(make_request(0))
    wait_for(lambda: len(down.posts) == 1)
    assert down.posts[0][0] == "/prefix/v1/traces"


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_downstream_down_then_back_loses_nothing(protocol: str, cleanup: list[Any]) -> None:
    port = free_port()
    failures: list[str] = []
    fwd = OtlpForwarder(endpoint(protocol, port), protocol=protocol, on_failure=failures.append, **FAST)  # type: ignore[arg-type]
    cleanup.append(fwd)
    for i in range(20):
        fwd.export(make_request(i))
    time.sleep(2.0)
    assert fwd.depth() == 20
    assert failures and set(failures) == {fwd.name}
    down = start_downstream(protocol, port)
    cleanup.append(down)
    wait_for(lambda: len(down.requests) >= 20)
    time.sleep(0.1)
    assert [batch_index(r) for r in down.requests] == list(range(20))
    assert fwd.depth() == 0
    assert fwd.stats.dropped_batches == 0


def test_http_400_drops_the_batch_and_counts_it(cleanup: list[Any]) -> None:
    down = HttpDownstream(responses=((400, {}),))
    cleanup.append(down)
    failures: list[str] = []
    drops: list[tuple[str, int]] = []
    fwd = OtlpForwarder(
        f"http://127.0.0.1:{down.port}",
        protocol="http",
        on_failure=failures.append,
        on_drop=lambda reason, spans: drops.append((reason, spans)),
        **FAST,
    )
    cleanup.append(fwd)
    fwd.export(make_request(0, spans=3))
    fwd.export(make_request(1))
    wait_for(lambda: len(down.posts) == 2)
    wait_for(lambda: fwd.depth() == 0)
    assert [batch_index(r) for r in down.requests] == [0, 1]  # batch 0 was not retried
    assert failures == ["otlphttp"]
    assert drops == [("rejected", 3)]
    assert (fwd.stats.dropped_batches, fwd.stats.dropped_spans, fwd.stats.sent_batches) == (1, 3, 1)


def test_http_503_retry_after_is_honoured(cleanup: list[Any]) -> None:
    down = HttpDownstream(responses=((503, {"Retry-After": "1"}),))
    cleanup.append(down)
    fwd = OtlpForwarder(f"http://127.0.0.1:{down.port}", protocol="http", initial_backoff_s=0.01, max_backoff_s=0.05)
    cleanup.append(fwd)
    fwd.export(make_request(0))
    wait_for(lambda: len(down.posts) == 2)
    first, second = down.posts[0][3], down.posts[1][3]
    assert second - first >= 0.9
    wait_for(lambda: fwd.depth() == 0)
    assert (fwd.stats.sent_batches, fwd.stats.failed_attempts, fwd.stats.dropped_batches) == (1, 1, 0)


def test_grpc_retryable_codes_are_retried_and_invalid_argument_dropped(cleanup: list[Any]) -> None:
    codes = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.INVALID_ARGUMENT)
    down = GrpcDownstream(fail_with=codes)
    cleanup.append(down)
    drops: list[tuple[str, int]] = []
    fwd = OtlpForwarder(f"127.0.0.1:{down.port}", on_drop=lambda r, n: drops.append((r, n)), **FAST)
    cleanup.append(fwd)
    fwd.export(make_request(0))  # UNAVAILABLE, RESOURCE_EXHAUSTED, then INVALID_ARGUMENT: dropped
    fwd.export(make_request(1))
    wait_for(lambda: len(down.requests) == 1)
    wait_for(lambda: fwd.depth() == 0)
    assert batch_index(down.requests[0]) == 1
    assert drops == [("rejected", 2)]
    assert (fwd.stats.failed_attempts, fwd.stats.dropped_batches, fwd.stats.sent_batches) == (3, 1, 1)


def test_grpc_retry_info_is_honoured(cleanup: list[Any]) -> None:
    down = GrpcDownstream(fail_with=(grpc.StatusCode.RESOURCE_EXHAUSTED,), retry_delay_s=1)
    cleanup.append(down)
    fwd = OtlpForwarder(f"127.0.0.1:{down.port}", initial_backoff_s=0.01, max_backoff_s=0.05)
    cleanup.append(fwd)
    fwd.export(make_request(0))
    wait_for(lambda: len(down.requests) == 1)
    assert len(down.times) == 2 and down.times[1] - down.times[0] >= 0.9
    assert (fwd.stats.failed_attempts, fwd.stats.sent_batches) == (1, 1)


def test_full_queue_has_no_room_and_shutdown_counts_what_is_left(cleanup: list[Any]) -> None:
    drops: list[tuple[str, int]] = []
    fwd = OtlpForwarder(
        f"127.0.0.1:{free_port()}", max_queue_batches=3, on_drop=lambda r, n: drops.append((r, n)), **FAST
    )
    for i in range(3):
        assert fwd.has_room()
        fwd.export(make_request(i))
    assert not fwd.has_room()
    assert fwd.depth() == 3
    with pytest.raises(Backpressure):
        fwd.export(make_request(3))
    started = time.monotonic()
    fwd.shutdown(0.3)
    assert time.monotonic() - started < 2.0
    assert drops == [("shutdown", 6)]
    assert not fwd.has_room()
    with pytest.raises(Backpressure):
        fwd.export(make_request(4))


def test_max_elapsed_drops_a_batch_that_keeps_failing(cleanup: list[Any]) -> None:
    drops: list[tuple[str, int]] = []
    fwd = OtlpForwarder(
        f"127.0.0.1:{free_port()}", max_elapsed_s=0.3, on_drop=lambda r, n: drops.append((r, n)), **FAST
    )
    cleanup.append(fwd)
    fwd.export(make_request(0))
    wait_for(lambda: fwd.depth() == 0)
    assert drops == [("retries_exhausted", 2)]


def test_disk_queue_keeps_undelivered_batches_across_restarts(tmp_path: Path, cleanup: list[Any]) -> None:
    port = free_port()
    fwd = OtlpForwarder(f"127.0.0.1:{port}", queue=DiskQueue(tmp_path / "q"), **FAST)
    for i in range(5):
        fwd.export(make_request(i))
    assert fwd.depth() == 5
    fwd.shutdown(0.2)  # downstream is down: everything stays on disk
    with DiskQueue(tmp_path / "q") as queue:
        assert len(queue) == 5
    down = GrpcDownstream(port)
    cleanup.append(down)
    fwd2 = OtlpForwarder(f"127.0.0.1:{port}", queue=DiskQueue(tmp_path / "q"), **FAST)
    cleanup.append(fwd2)
    fwd2.export(make_request(5))
    wait_for(lambda: len(down.requests) == 6)
    assert [batch_index(r) for r in down.requests] == list(range(6))
    wait_for(lambda: fwd2.depth() == 0)
    fwd2.shutdown(1.0)
    with DiskQueue(tmp_path / "q") as queue:
        assert len(queue) == 0


def test_disk_queue_full_applies_backpressure(tmp_path: Path) -> None:
    queue = DiskQueue(tmp_path / "q", max_bytes=10)
    fwd = OtlpForwarder(f"127.0.0.1:{free_port()}", queue=queue, **FAST)
    try:
        fwd.export(make_request(0))  # crosses max_bytes: accepted (soft limit)
        assert not fwd.has_room()
        with pytest.raises(Backpressure):
            fwd.export(make_request(1))
        assert fwd.depth() == 1
    finally:
        fwd.shutdown(0.1)


def test_bad_configuration_names_the_key() -> None:
    with pytest.raises(ConfigError, match="protocol"):
        OtlpForwarder("127.0.0.1:4317", protocol="udp")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="endpoint"):
        OtlpForwarder("127.0.0.1:4318", protocol="http")
    with pytest.raises(ConfigError, match="timeout_s"):
        OtlpForwarder("127.0.0.1:4317", timeout_s=0)
    with pytest.raises(ConfigError, match="compression"):
        OtlpForwarder("127.0.0.1:4317", compression="zstd")  # type: ignore[arg-type]


# -- the disk queue --------------------------------------------------------------------------------


def drain(queue: DiskQueue) -> list[bytes]:
    out = []
    while (record := queue.peek()) is not None:
        token, data = record
        out.append(data)
        queue.commit(token)
    return out


def segments(directory: Path) -> list[Path]:
    return sorted(directory.glob("segment-*.log"))


def test_disk_queue_put_peek_commit_reopen(tmp_path: Path) -> None:
    with DiskQueue(tmp_path) as queue:
        assert queue.peek() is None
        for data in (b"a", b"bb", b"ccc"):
            queue.put(data)
        assert (len(queue), queue.bytes_pending) == (3, 6)
        token, data = queue.peek()  # type: ignore[misc]
        assert data == b"a"
        assert queue.peek() == (token, b"a")  # the same record until committed
        queue.commit(token)
        queue.commit(token)  # committing twice is harmless
        assert (len(queue), queue.bytes_pending) == (2, 5)
        assert queue.peek()[1] == b"bb"  # type: ignore[index]
    with DiskQueue(tmp_path) as queue:
        assert len(queue) == 2
        assert drain(queue) == [b"bb", b"ccc"]
        queue.put(b"dddd")
    with DiskQueue(tmp_path) as queue:
        assert drain(queue) == [b"dddd"]
        assert len(queue) == 0 and queue.bytes_pending == 0
    with pytest.raises(DiskQueueError):
        queue.put(b"closed")


def test_disk_queue_is_one_process_at_a_time(tmp_path: Path) -> None:
    with DiskQueue(tmp_path), pytest.raises(DiskQueueError, match="in use"):
        DiskQueue(tmp_path)


@pytest.mark.parametrize("cut", [1, 7, 8, 30, 107])
def test_torn_last_record_is_discarded_and_earlier_records_survive(tmp_path: Path, cut: int) -> None:
    with DiskQueue(tmp_path) as queue:
        for i in range(3):
            queue.put(bytes([i]) * 100)  # each record: 8 header bytes + 100
    (segment,) = segments(tmp_path)
    size = segment.stat().st_size
    with open(segment, "r+b") as f:
        f.truncate(size - 108 + cut)  # keep only *cut* bytes of the last record
    with DiskQueue(tmp_path) as queue:
        assert len(queue) == 2
        assert segment.stat().st_size == size - 108  # the torn bytes are gone
        queue.put(b"after")
    with DiskQueue(tmp_path) as queue:
        assert drain(queue) == [b"\0" * 100, b"\1" * 100, b"after"]


def test_corrupt_last_record_is_discarded(tmp_path: Path) -> None:
    with DiskQueue(tmp_path) as queue:
        queue.put(b"first")
        queue.put(b"second")
    (segment,) = segments(tmp_path)
    data = bytearray(segment.read_bytes())
    data[-1] ^= 0xFF
    segment.write_bytes(bytes(data))
    with DiskQueue(tmp_path) as queue:
        assert drain(queue) == [b"first"]


def test_damage_after_open_skips_the_segment_and_counts_the_loss(tmp_path: Path) -> None:
    with DiskQueue(tmp_path, segment_bytes=256) as queue:
        for i in range(4):
            queue.put(bytes([i]) * 100)  # segments 1 and 2, two records each
        first = segments(tmp_path)[0]
        data = bytearray(first.read_bytes())
        data[20] ^= 0xFF
        first.write_bytes(bytes(data))
        assert drain(queue) == [b"\2" * 100, b"\3" * 100]
        assert queue.lost_records == 2 and len(queue) == 0
        queue.put(b"write segment")
        last = segments(tmp_path)[-1]
        last.write_bytes(last.read_bytes()[:-1] + b"?")
        assert queue.peek() is None and queue.lost_records == 3
        queue.put(b"next")  # written to a fresh segment
        assert drain(queue) == [b"next"]


def test_segment_created_but_never_written_is_recovered(tmp_path: Path) -> None:
    with DiskQueue(tmp_path) as queue:
        queue.put(b"kept")
    (tmp_path / "segment-00000000000000000002.log").write_bytes(b"OLC")  # killed while writing the magic
    with DiskQueue(tmp_path) as queue:
        assert len(queue) == 1
        queue.put(b"appended")
    (tmp_path / "segment-00000000000000000003.log").write_bytes(b"")
    (tmp_path / "segment-00000000000000000004.log").write_bytes(b"")
    with DiskQueue(tmp_path) as queue:
        assert drain(queue) == [b"kept", b"appended"]
    assert [p.name for p in segments(tmp_path)] == ["segment-00000000000000000004.log"]


def test_foreign_segment_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "segment-00000000000000000001.log").write_bytes(b"not a queue segment")
    with pytest.raises(DiskQueueError, match="bad magic"):
        DiskQueue(tmp_path)
    (tmp_path / "segment-00000000000000000001.log").unlink()
    DiskQueue(tmp_path).close()  # the directory lock was released on the failure path


def test_segments_roll_over_and_are_deleted_once_delivered(tmp_path: Path) -> None:
    queue = DiskQueue(tmp_path, segment_bytes=256)
    for i in range(20):
        queue.put(bytes([i]) * 100)  # two records per segment
    assert len(segments(tmp_path)) == 10
    for _ in range(5):
        token, _data = queue.peek()  # type: ignore[misc]
        queue.commit(token)
    assert len(segments(tmp_path)) == 8  # the third segment holds records 4 and 5
    queue.close()
    queue = DiskQueue(tmp_path, segment_bytes=256)
    assert drain(queue) == [bytes([i]) * 100 for i in range(5, 20)]
    assert len(segments(tmp_path)) == 1  # the write segment stays
    queue.put(b"x" * 200)
    queue.put(b"y")
    assert drain(queue) == [b"x" * 200, b"y"]
    queue.close()


def test_unreadable_commit_file_means_redelivery_not_loss(tmp_path: Path) -> None:
    with DiskQueue(tmp_path) as queue:
        for data in (b"a", b"b", b"c"):
            queue.put(data)
        token, _ = queue.peek()  # type: ignore[misc]
        queue.commit(token)
    (tmp_path / "committed.json").write_text("{not json")
    with DiskQueue(tmp_path) as queue:
        assert drain(queue) == [b"a", b"b", b"c"]


def test_disk_queue_max_bytes(tmp_path: Path) -> None:
    with DiskQueue(tmp_path, max_bytes=250) as queue:
        for _ in range(3):
            queue.put(b"x" * 100)  # the third crosses max_bytes and is accepted
        assert not queue.has_room()
        with pytest.raises(DiskQueueFull):
            queue.put(b"x")
        token, _ = queue.peek()  # type: ignore[misc]
        queue.commit(token)
        assert queue.has_room()


def test_disk_queue_one_producer_one_consumer(tmp_path: Path) -> None:
    n = 2000
    got: list[bytes] = []
    with DiskQueue(tmp_path, segment_bytes=4096) as queue:

        def consume() -> None:
            while len(got) < n:
                record = queue.peek()
                if record is None:
                    time.sleep(0.0005)
                    continue
                got.append(record[1])
                queue.commit(record[0])

        consumer = threading.Thread(target=consume)
        consumer.start()
        for i in range(n):
            queue.put(b"%d" % i)
        consumer.join(20)
        assert got == [b"%d" % i for i in range(n)]
        assert len(queue) == 0
    assert len(segments(tmp_path)) == 1


_CHILD = """
import os, sys, threading, time, zlib
from otel_llmcost.collector.exporters.disk_queue import DiskQueue

def payload(i):
    return b"%08d" % i + bytes([i % 251]) * (i * 37 % 1500)

def say(line):
    os.write(1, (line + "\\n").encode())  # one write: lines from both threads never interleave

queue = DiskQueue(sys.argv[1], segment_bytes=8192)

def consume():
    while True:
        record = queue.peek()
        if record is None:
            time.sleep(0.001)
            continue
        token, data = record
        i = int(data[:8])
        say(f"committing {i}")
        queue.commit(token)
        say(f"committed {i}")
        time.sleep(0.003)  # slower than the producer: a backlog builds

threading.Thread(target=consume, daemon=True).start()
for i in range(1_000_000):
    queue.put(payload(i))
    say(f"put {i}")
"""


def _payload(i: int) -> bytes:
    return b"%08d" % i + bytes([i % 251]) * (i * 37 % 1500)


@pytest.mark.parametrize("kill_after", [150, 400, 777])
def test_kill_9_loses_no_acknowledged_record(tmp_path: Path, kill_after: int) -> None:
    """Every record reported as put survives SIGKILL; every one reported as committed is gone."""
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(tmp_path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert child.stdout is not None
    lines = []
    try:
        for raw in child.stdout:
            lines.append(raw.decode())
            if raw.startswith(b"put ") and int(raw.split()[1]) >= kill_after:
                break
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        rest, err = child.communicate(timeout=10)
    lines.extend(rest.decode().splitlines())
    assert child.returncode == -signal.SIGKILL, err.decode()[-2000:]
    events: dict[str, set[int]] = {"put": set(), "committing": set(), "committed": set()}
    for line in lines:
        if line.strip():
            kind, number = line.split()
            events[kind].add(int(number))
    assert max(events["put"]) >= kill_after and events["committed"]

    with DiskQueue(tmp_path, segment_bytes=8192) as queue:
        remaining = []
        while (record := queue.peek()) is not None:
            token, data = record
            i = int(data[:8])
            assert data == _payload(i)  # intact, byte for byte
            remaining.append(i)
            queue.commit(token)
    # FIFO, no gap, no duplicate
    assert remaining == list(range(remaining[0], remaining[0] + len(remaining))) if remaining else True
    acknowledged = events["put"] - events["committing"]
    assert acknowledged <= set(remaining)  # at least once: every fsynced put that was not consumed
    assert not events["committed"] & set(remaining)  # exactly once: a durable commit is never redelivered
    assert not remaining or remaining[-1] <= max(events["put"]) + 1  # at most the put in flight
    assert len(segments(tmp_path)) == 1  # delivered segments were deleted


# -- file and memory exporters ---------------------------------------------------------------------


def test_file_exporter_writes_one_otlp_json_line_per_batch(tmp_path: Path) -> None:
    path = tmp_path / "spans.jsonl"
    exporter = FileExporter(path)
    assert exporter.name == "file" and exporter.has_room() and exporter.depth() == 0
    request = make_request(0)
    request.resource_spans[0].scope_spans[0].spans[0].parent_span_id = b"\x01" * 8
    link = request.resource_spans[0].scope_spans[0].spans[0].links.add()
    link.trace_id, link.span_id = b"\x02" * 16, b"\x03" * 8
    request.resource_spans[0].scope_spans[0].spans[0].kind = 3
    exporter.export(request)
    exporter.export(make_request(1))
    lines = path.read_text().splitlines()  # flushed: readable before shutdown
    assert len(lines) == 2
    doc = json.loads(lines[0])
    span = doc["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    assert span["traceId"] == "00000000000000000000000000000001"
    assert span["spanId"] == "0000000000000001"
    assert span["parentSpanId"] == "0101010101010101"
    assert span["links"][0] == {"traceId": "02" * 16, "spanId": "03" * 8}
    assert span["kind"] == 3  # enums as integers
    assert " " not in lines[1].replace("batch-", "")  # compact
    assert lines[0] == to_otlp_json(request)
    exporter.shutdown()
    failures: list[str] = []
    exporter = FileExporter(path, on_failure=failures.append)
    exporter.shutdown()
    exporter.export(make_request(2))  # after shutdown: counted, not raised
    assert failures == ["file"] and exporter.failed_batches == 1


def test_memory_exporter_keeps_the_latest_batches() -> None:
    exporter = MemoryExporter(max_batches=2)
    for i in range(3):
        exporter.export(make_request(i))
    assert [batch_index(r) for r in exporter.requests] == [1, 2]
    assert len(exporter.spans()) == 4
    exporter.clear()
    assert exporter.requests == [] and exporter.has_room() and exporter.depth() == 0
