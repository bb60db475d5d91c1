"""The collector as users run it: a separate process between an instrumented app and a backend.

The client is the official OTLPSpanExporter in its own process; downstream, a second OTLP receiver
records what arrives. Faults: the downstream down for 30 s then back, and ``kill -9`` of the
collector with its on-disk queue, then a restart: every acknowledged span arrives and the money
matches the exact Decimal sum after de-duplication.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from concurrent import futures
from decimal import Decimal
from pathlib import Path
from typing import Any

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from otel_llmcost import default_pricer
from otel_llmcost.pricing import Usage

pytestmark = pytest.mark.integration

CLIENT = """
import sys, time
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
endpoint, first, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
provider = TracerProvider(resource=Resource.create({"service.name": "client", "session.id": "s-client"}))
provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint, insecure=True, timeout=60), max_export_batch_size=50))
tracer = provider.get_tracer("client")
for n in range(first, first + count):
    tracer.start_span("chat gpt-4o-mini", attributes={
        "gen_ai.provider.name": "openai", "gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.usage.input_tokens": 1000 + n, "gen_ai.usage.output_tokens": 100}).end()
ok = provider.force_flush(120_000)
provider.shutdown()
print("flushed" if ok else "not flushed", flush=True)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Downstream(trace_service_pb2_grpc.TraceServiceServicer):
    """A backend that records every span it receives."""

    def __init__(self) -> None:
        self.spans: list[Any] = []
        self.lock = threading.Lock()
        self.server: Any = None

    def Export(self, request: Any, context: Any) -> Any:
        with self.lock:
            for rs in request.resource_spans:
                for ss in rs.scope_spans:
                    self.spans.extend(ss.spans)
        return trace_service_pb2.ExportTraceServiceResponse()

    def start(self, port: int) -> None:
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(self, self.server)
        self.server.add_insecure_port(f"127.0.0.1:{port}")
        self.server.start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop(0)

    def costs(self) -> dict[bytes, Decimal]:
        """Money per distinct span id (redelivered copies counted once)."""
        with self.lock:
            out = {}
            for span in self.spans:
                for kv in span.attributes:
                    if kv.key == "llm.cost.total_usd":
                        out[span.span_id] = Decimal(repr(kv.value.double_value))
            return out


def expected_total(first: int, count: int) -> Decimal:
    pricer = default_pricer()
    return sum(
        (pricer.price("openai", "gpt-4o-mini", Usage(1000 + n, 100)).total_usd for n in range(first, first + count)),
        Decimal(0),
    )


class CollectorProcess:
    def __init__(self, tmp: Path, downstream_port: int, queue_dir: Path | None) -> None:
        self.grpc_port, self.prom_port, self.health_port = free_port(), free_port(), free_port()
        args = [
            sys.executable, "-m", "otel_llmcost", "collector",
            "--otlp-grpc", f"127.0.0.1:{self.grpc_port}", "--otlp-http", f"127.0.0.1:{free_port()}",
            "--prometheus", f"127.0.0.1:{self.prom_port}", "--health", f"127.0.0.1:{self.health_port}",
            "--forward-to", f"127.0.0.1:{downstream_port}",
        ]  # fmt: skip
        if queue_dir is not None:
            args += ["--queue-dir", str(queue_dir)]
        self.log = (tmp / f"collector-{self.grpc_port}.log").open("w")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT)
        self._wait_healthy()

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.health_port}/health", timeout=1).read()
                return
            except OSError:
                assert self.proc.poll() is None, "collector exited at start"
                time.sleep(0.1)
        raise AssertionError("collector not healthy in 30 s")

    def metrics(self) -> str:
        return urllib.request.urlopen(f"http://127.0.0.1:{self.prom_port}/metrics", timeout=5).read().decode()

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self.log.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.log.close()


def run_client(port: int, first: int, count: int) -> None:
    out = subprocess.run(
        [sys.executable, "-c", CLIENT, f"127.0.0.1:{port}", str(first), str(count)],
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert out.returncode == 0 and "flushed" in out.stdout, out.stderr


def wait_for(predicate: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    assert predicate()


@pytest.fixture()
def downstream() -> Iterator[tuple[Downstream, int]]:
    d = Downstream()
    port = free_port()
    yield d, port
    d.stop()


def test_priced_spans_flow_through_and_metrics_add_up(tmp_path: Path, downstream: tuple[Downstream, int]) -> None:
    down, port = downstream
    down.start(port)
    collector = CollectorProcess(tmp_path, port, None)
    try:
        run_client(collector.grpc_port, 0, 120)
        wait_for(lambda: len(down.costs()) == 120, 30)
        assert sum(down.costs().values()) == expected_total(0, 120)
        text = collector.metrics()
        value = float(re.search(r'^llm_cost_usd_total\{[^}]*model="gpt-4o-mini"[^}]*\} (\S+)$', text, re.M).group(1))  # type: ignore[union-attr]
        assert Decimal(repr(value)) == expected_total(0, 120)
        assert re.search(r'^llm_collector_spans_total\{[^}]*outcome="priced"[^}]*\} 120\.0$', text, re.M)
    finally:
        collector.stop()


def test_downstream_down_for_30_s_then_back_loses_nothing(tmp_path: Path, downstream: tuple[Downstream, int]) -> None:
    down, port = downstream
    collector = CollectorProcess(tmp_path, port, None)
    try:
        run_client(collector.grpc_port, 0, 200)  # acknowledged by the collector while the backend is down
        time.sleep(30)
        assert down.costs() == {}
        down.start(port)
        wait_for(lambda: len(down.costs()) == 200, 60)
        assert sum(down.costs().values()) == expected_total(0, 200)
    finally:
        collector.stop()


def test_kill_9_with_the_disk_queue_loses_no_acknowledged_span(
    tmp_path: Path, downstream: tuple[Downstream, int]
) -> None:
    down, port = downstream
    queue = tmp_path / "queue"
    first = CollectorProcess(tmp_path, port, queue)
    run_client(first.grpc_port, 0, 300)  # every span acknowledged; the backend is down, so all are queued
    first.kill()
    down.start(port)
    second = CollectorProcess(tmp_path, port, queue)
    try:
        run_client(second.grpc_port, 300, 50)
        wait_for(lambda: len(down.costs()) == 350, 60)
        # at-least-once: some spans may arrive twice; by span id the money is exact
        assert sum(down.costs().values()) == expected_total(0, 350)
    finally:
        second.stop()
    assert os.path.isdir(queue)


def test_two_collectors_scaled_out_sum_to_the_total(tmp_path: Path, downstream: tuple[Downstream, int]) -> None:
    # Scale-out on one machine: clients split across two collectors (as a load balancer keyed by
    # trace id would); Prometheus sums llm_cost_usd_total across instances.
    down, port = downstream
    down.start(port)
    a, b = CollectorProcess(tmp_path, port, None), CollectorProcess(tmp_path, port, None)
    try:
        run_client(a.grpc_port, 0, 70)
        run_client(b.grpc_port, 70, 50)
        wait_for(lambda: len(down.costs()) == 120, 30)

        def scraped(c: CollectorProcess) -> Decimal:
            text = c.metrics()
            values = re.findall(r"^llm_cost_usd_total\{[^}]*\} (\S+)$", text, re.M)
            return sum((Decimal(repr(float(v))) for v in values), Decimal(0))

        assert scraped(a) == expected_total(0, 70) and scraped(b) == expected_total(70, 50)
        assert scraped(a) + scraped(b) == expected_total(0, 120) == sum(down.costs().values())
    finally:
        a.stop()
        b.stop()
