"""The collector benchmark's three processes (collector, downstream, client) and their CPUs.

Part of :mod:`benchmarks.bench_collector` (its docstring says what runs). The process entry points
are module-level functions so that ``multiprocessing``'s spawn context can import them.
"""

from __future__ import annotations

import contextlib
import gc
import multiprocessing
import os
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from ._collector_batches import (
    DEDUP_PREFILL,
    EXPORT,
    IN_FLIGHT,
    MIB,
    RETRY_S,
    SENT_KEY,
    SPANS_PER_BATCH,
    prefill,
    stamp,
    template_batches,
)
from ._common import rss_mb

__all__ = ["Child", "Setup", "affinity", "cpu_s", "percentile", "rss_of", "scrape_dropped", "start", "describe"]


@contextlib.contextmanager
def affinity(cpus: set[int]) -> Iterator[None]:
    """Pin the calling thread (and the processes it starts meanwhile) to *cpus*; restore afterwards."""
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cpus)
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def cpu_s(pid: int) -> float:
    """Return the user + system CPU seconds of process *pid* so far."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        fields = stat.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_of(pid: int) -> float:
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"VmRSS not found for {pid}")


def _thread_affinities(pid: int) -> tuple[int, set[int]]:
    """Return how many threads *pid* has and the union of their CPU affinities."""
    cpus: set[int] = set()
    tids = os.listdir(f"/proc/{pid}/task")
    for tid in tids:
        with contextlib.suppress(OSError):
            cpus |= os.sched_getaffinity(int(tid))
    return len(tids), cpus


def _serve(conn: Connection, stats: Callable[[], dict[str, Any]], stop: Callable[[], dict[str, Any]]) -> None:
    while True:
        command = conn.recv()
        if command == "stats":
            conn.send(stats())
        elif command == "stop":
            conn.send(stop())
            return


def _downstream_main(conn: Connection) -> None:
    """A backend that only counts spans and measures export latency from the client's send time."""
    from concurrent.futures import ThreadPoolExecutor

    import grpc
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    lock = threading.Lock()
    state: dict[str, Any] = {"spans": 0, "batches": 0, "latencies": []}

    def export(data: bytes, context: Any) -> bytes:
        arrived = time.monotonic_ns()
        request = ExportTraceServiceRequest.FromString(data)
        spans = sent = 0
        for rs in request.resource_spans:
            for kv in rs.resource.attributes:
                if kv.key == SENT_KEY:
                    sent = int(kv.value.string_value)
            for ss in rs.scope_spans:
                spans += len(ss.spans)
        with lock:
            state["spans"] += spans
            state["batches"] += 1
            state["latencies"].append((arrived, arrived - sent))
        return b""  # an empty ExportTraceServiceResponse: full success

    server = grpc.server(ThreadPoolExecutor(max_workers=4), options=[("grpc.so_reuseport", 0)])
    handler = grpc.unary_unary_rpc_method_handler(export)  # bytes in, bytes out
    service, method = EXPORT.rsplit("/", 1)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service.strip("/"), {method: handler}),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    conn.send({"port": port})

    def stats() -> dict[str, Any]:
        with lock:
            out = {"spans": state["spans"], "batches": state["batches"], "latencies": state["latencies"]}
            state["latencies"] = []
            out["at_ns"] = time.monotonic_ns()
        return out

    def stop() -> dict[str, Any]:
        server.stop(1).wait(2)
        return stats()

    _serve(conn, stats, stop)


def _collector_main(conn: Connection, downstream_port: int, prefill_ids: int) -> None:
    """The collector under test, built from its Python API; answers "stats" and "stop" on *conn*."""
    from otel_llmcost.collector.config import CollectorConfig, ExporterConfig, ReceiverConfig
    from otel_llmcost.collector.server import Collector

    config = CollectorConfig(
        grpc=ReceiverConfig("127.0.0.1", 0, 4 * MIB),
        http=None,
        prometheus=("127.0.0.1", 0),
        exporters=[ExporterConfig("otlp", endpoint=f"127.0.0.1:{downstream_port}")],
    )
    collector = Collector(config)
    collector.pricer.price("openai", "gpt-4o-mini", None)  # the catalog loads before the clock starts
    pipeline = collector.pipeline
    gc.collect()
    rss_before = rss_mb()
    if prefill_ids and pipeline.dedup is not None:
        prefill(pipeline.dedup, prefill_ids)
    gc.collect()
    rss_prefilled = rss_mb()
    collector.start()
    conn.send(
        {
            "grpc": collector.addresses["otlp_grpc"][1],
            "prometheus": collector.addresses["prometheus"][1],
            "rss_before_prefill": rss_before,
            "rss_prefilled": rss_prefilled,
            "window": pipeline.dedup.capacity if pipeline.dedup is not None else 0,
            "prefill": prefill_ids,
        }
    )
    forwarder: Any = pipeline.exporters[0]  # the OtlpForwarder

    def stats() -> dict[str, Any]:
        metrics = pipeline.metrics
        return {
            "counts": dict(metrics.counts),
            "dropped": dict(metrics.dropped),
            "export_failures": dict(metrics.export_failures),
            "queue": sum(pipeline.queue_depth().values()),
            "forwarder_dropped_spans": forwarder.stats.dropped_spans,
            "at_ns": time.monotonic_ns(),
        }

    def stop() -> dict[str, Any]:
        collector.stop(10.0)
        return stats()

    _serve(conn, stats, stop)


def _client_main(conn: Connection, port: int, rate: float | None, in_flight: int) -> None:
    """Send stamped batches to the collector: as fast as it accepts (*rate* None) or at *rate* spans/s."""
    import grpc

    templates = template_batches()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}", options=[("grpc.max_send_message_length", 16 * MIB)])
    call = channel.unary_unary(EXPORT)  # bytes in, bytes out
    grpc.channel_ready_future(channel).result(timeout=30)
    conn.send({"templates": len(templates), "bytes": sum(map(len, templates)) // len(templates)})
    stop = threading.Event()
    lock = threading.Lock()
    totals = {"batches": 0, "spans": 0, "refused": 0, "errors": 0, "late": 0}
    retry = (grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.UNAVAILABLE)
    n_templates = len(templates)

    def send(seq: int) -> None:
        data = stamp(templates[seq % n_templates], seq, time.monotonic_ns())
        while True:
            try:
                call(data, timeout=60)
            except grpc.RpcError as exc:
                if exc.code() in retry and not stop.is_set():
                    with lock:
                        totals["refused"] += 1
                    time.sleep(RETRY_S)
                    continue
                with lock:
                    totals["errors"] += 1
                return
            with lock:
                totals["batches"] += 1
                totals["spans"] += SPANS_PER_BATCH
            return

    def flood(first: int) -> None:
        seq = first
        while not stop.is_set():
            send(seq)
            seq += in_flight

    def paced() -> None:
        interval = SPANS_PER_BATCH / float(rate or 1)
        due = time.monotonic()
        seq = 0
        while not stop.is_set():
            wait = due - time.monotonic()
            if wait > 0:
                if stop.wait(wait):
                    break
            elif wait < -interval:
                totals["late"] += 1  # behind schedule by more than one batch: caught up at once
            send(seq)
            seq += 1
            due += interval

    assert conn.recv() == "go"
    threads = (
        [threading.Thread(target=paced)]
        if rate
        else [threading.Thread(target=flood, args=(i,)) for i in range(in_flight)]
    )
    for thread in threads:
        thread.start()
    assert conn.recv() == "stop"
    stop.set()
    for thread in threads:
        thread.join(90)
    channel.close()
    conn.send(dict(totals))


class Child:
    """A benchmark process with a command pipe."""

    def __init__(self, target: Callable[..., None], *args: Any) -> None:
        ctx = multiprocessing.get_context("spawn")  # never fork a process that has loaded gRPC
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=target, args=(child, *args), daemon=True)
        self.proc.start()
        self.pid = self.proc.pid or 0
        if not self.conn.poll(60):
            raise RuntimeError(f"{target.__name__} did not start in 60 s")
        self.hello: dict[str, Any] = self.conn.recv()

    def ask(self, command: str, timeout: float = 60.0) -> Any:
        self.conn.send(command)
        if not self.conn.poll(timeout):
            raise RuntimeError(f"no answer to {command!r} in {timeout:g} s")
        return self.conn.recv()

    def close(self) -> None:
        self.proc.join(10)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join(5)


@dataclass
class Setup:
    """The three processes of one run."""

    downstream: Child
    collector: Child
    client: Child
    collector_cpus: set[int]
    other_cpus: set[int]

    def drain(self, timeout_s: float = 60.0) -> tuple[dict[str, Any], dict[str, Any]]:
        """Wait until every span the collector accepted reached the downstream; return both's stats."""
        deadline = time.monotonic() + timeout_s
        while True:
            col = self.collector.ask("stats")
            down = self.downstream.ask("stats")
            if (col["queue"] == 0 and down["spans"] >= col["counts"].get("spans", 0)) or time.monotonic() > deadline:
                return col, down
            time.sleep(0.2)

    def close(self) -> None:
        for child in (self.client, self.collector, self.downstream):
            with contextlib.suppress(Exception):
                if child.proc.is_alive():
                    child.conn.send("stop")
            child.close()


def start(rate: float | None) -> Setup:
    cpus = sorted(os.sched_getaffinity(0))
    collector_cpus = {cpus[0]}
    other_cpus = set(cpus[1:]) or collector_cpus
    with affinity(other_cpus):
        downstream = Child(_downstream_main)
    with affinity(collector_cpus):
        collector = Child(_collector_main, downstream.hello["port"], DEDUP_PREFILL)
    with affinity(other_cpus):
        client = Child(_client_main, collector.hello["grpc"], rate, IN_FLIGHT)
    return Setup(downstream, collector, client, collector_cpus, other_cpus)


def describe(setup: Setup) -> None:
    threads, cpus = _thread_affinities(setup.collector.pid)
    hello = setup.collector.hello
    print(
        f"  collector pid {setup.collector.pid}: pinned to CPU {_cpus(setup.collector_cpus)} from its start "
        f"({threads} threads, their affinities: CPU {_cpus(cpus)}); client and downstream on CPU "
        f"{_cpus(setup.other_cpus)}"
    )
    window_mib = hello["rss_prefilled"] - hello["rss_before_prefill"]
    print(
        f"  de-duplication window of {hello['window']:,} fed {hello['prefill']:,} other span ids before the start: RSS "
        f"{hello['rss_before_prefill']:.1f} -> {hello['rss_prefilled']:.1f} MiB ({window_mib:+.1f} MiB)"
    )
    print(
        f"  client: {setup.client.hello['templates']} template batches of {SPANS_PER_BATCH} spans "
        f"({setup.client.hello['bytes'] / 1024:.0f} KiB each), stamped per send"
    )


def _cpus(cpus: set[int]) -> str:
    return ",".join(map(str, sorted(cpus)))


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def scrape_dropped(port: int) -> tuple[float, list[str]]:
    """Return the sum of ``llm_collector_dropped_total`` on the collector's ``/metrics`` and its lines."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    lines = [ln for ln in text.splitlines() if ln.startswith("llm_collector_dropped_total")]
    return sum(float(ln.rsplit(" ", 1)[1]) for ln in lines), lines
