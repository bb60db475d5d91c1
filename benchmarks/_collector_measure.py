"""The collector benchmark's measurements: in-process rates, end-to-end throughput, soak.

Part of :mod:`benchmarks.bench_collector` (its docstring says what runs).
"""

from __future__ import annotations

import gc
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ._collector_batches import (
    DEDUP_PREFILL,
    DEDUP_WINDOW,
    SOAK_RATE,
    SPANS_PER_BATCH,
    prefill,
    stamp,
    template_batches,
)
from ._collector_procs import cpu_s, describe, percentile, rss_of, scrape_dropped
from ._collector_procs import start as start_processes

__all__ = ["InProcess", "Soak", "Throughput", "in_process", "soak", "throughput"]


class _SerializingExporter:
    """Serializes each batch, as the OTLP forwarder's sender thread does, and keeps nothing."""

    name = "serialize"

    def __init__(self) -> None:
        self.batches = 0

    def has_room(self) -> bool:
        return True

    def export(self, request: Any) -> None:
        request.SerializeToString()
        self.batches += 1

    def depth(self) -> int:
        return 0

    def shutdown(self, timeout_s: float = 10.0) -> None:
        pass


@dataclass
class InProcess:
    raw: float
    enrich: float
    submit: float
    rounds: int
    spans: int
    genai_us: float  # parse + enrich + serialize of one GenAI span, in batches of GenAI spans only
    http_us: float  # the same for an HTTP span


def in_process(templates: list[bytes], batches: int, rounds: int) -> tuple[InProcess, Callable[[], None]]:
    """Time parse+serialize, parse+enrich+serialize and parse+Pipeline.submit+serialize over fresh batches.

    Each round gets *batches* batches stamped with trace ids never seen before (outside the timing),
    so that de-duplication counts every span. Returns the median rates and a profiling workload.
    """
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    from otel_llmcost.collector.enrich import Deduplicator, enrich
    from otel_llmcost.collector.pipeline import Pipeline
    from otel_llmcost.metrics import Recorder
    from otel_llmcost.pricing import Pricer

    from_string = ExportTraceServiceRequest.FromString
    dims = ("environment", "feature", "session_name")  # CollectorConfig's default dimensions
    pricer = Pricer()
    pricer.price("openai", "gpt-4o-mini", None)
    recorder = Recorder(dims)
    dedup = Deduplicator(DEDUP_WINDOW)
    prefill(dedup, DEDUP_PREFILL)
    pipeline = Pipeline(Pricer(), Recorder(dims), [_SerializingExporter()], dedup=Deduplicator(DEDUP_WINDOW))
    prefill(pipeline.dedup, DEDUP_PREFILL)
    seq = [1 << 40]

    def fresh() -> list[bytes]:
        out = []
        for _ in range(batches):
            seq[0] += 1
            out.append(stamp(templates[seq[0] % len(templates)], seq[0]))
        return out

    def raw(data: list[bytes]) -> None:
        for item in data:
            from_string(item).SerializeToString()

    def priced(data: list[bytes]) -> None:
        for item in data:
            request = from_string(item)
            enrich(request, pricer, recorder, dedup)
            request.SerializeToString()

    def submitted(data: list[bytes]) -> None:
        for item in data:
            pipeline.submit(from_string(item))

    kinds = {"genai": template_batches(8, kind="genai"), "http": template_batches(8, kind="http")}
    kind_seq = [1 << 50]

    def fresh_of(kind_templates: list[bytes]) -> list[bytes]:
        kind_seq[0] += 1
        return [stamp(t, kind_seq[0] * 8 + n) for n, t in enumerate(kind_templates)]

    times: dict[str, list[float]] = {"raw": [], "enrich": [], "submit": [], "genai": [], "http": []}
    work = {"raw": raw, "enrich": priced, "submit": submitted}
    for i in range(rounds + 1):  # the first round warms up
        for name, fn in work.items():
            data = fresh()
            gc.collect()
            t0 = time.perf_counter()
            fn(data)
            elapsed = time.perf_counter() - t0
            if i:
                times[name].append(elapsed)
        for name, kind_templates in kinds.items():
            data = fresh_of(kind_templates)
            gc.collect()
            t0 = time.perf_counter()
            priced(data)
            elapsed = time.perf_counter() - t0
            if i:
                times[name].append(elapsed)
    spans = batches * SPANS_PER_BATCH
    rates = {name: spans / statistics.median(times[name]) for name in work}
    per_span = {name: statistics.median(times[name]) / (8 * SPANS_PER_BATCH) * 1e6 for name in kinds}
    profile_data = fresh()
    return (
        InProcess(rates["raw"], rates["enrich"], rates["submit"], rounds, spans, per_span["genai"], per_span["http"]),
        lambda: submitted(profile_data),
    )


@dataclass
class Throughput:
    delivered: float
    accepted: float
    collector_cpu: float
    others_cpu: float
    p50_ms: float
    p99_ms: float
    refused: int
    lost: int
    window_s: float


def throughput(warmup_s: float, window_s: float) -> Throughput:
    setup = start_processes(rate=None)
    try:
        describe(setup)
        before = os.sched_getaffinity(0)
        os.sched_setaffinity(0, setup.other_cpus)  # this process samples from the other core
        try:
            setup.client.conn.send("go")
            time.sleep(warmup_s)
            pids = (setup.client.pid, setup.downstream.pid)
            col0, down0 = setup.collector.ask("stats"), setup.downstream.ask("stats")
            cpu0, others0, t0 = cpu_s(setup.collector.pid), sum(map(cpu_s, pids)), time.monotonic()
            time.sleep(window_s)
            col1, down1 = setup.collector.ask("stats"), setup.downstream.ask("stats")
            cpu1, others1, t1 = cpu_s(setup.collector.pid), sum(map(cpu_s, pids)), time.monotonic()
            client = setup.client.ask("stop", 120)
            col_end, down_end = setup.drain()
        finally:
            os.sched_setaffinity(0, before)
    finally:
        setup.close()
    seconds = (down1["at_ns"] - down0["at_ns"]) / 1e9
    delivered = (down1["spans"] - down0["spans"]) / seconds
    accepted = (col1["counts"].get("spans", 0) - col0["counts"].get("spans", 0)) / (
        (col1["at_ns"] - col0["at_ns"]) / 1e9
    )
    window_lat = sorted(lat / 1e6 for _, lat in down1["latencies"])
    lost = client["spans"] - down_end["spans"]
    print(
        f"  window {seconds:.1f} s after {warmup_s:g} s of warm-up: delivered downstream {delivered:,.0f} spans/s; "
        f"accepted by the collector {accepted:,.0f} spans/s; queue {col0['queue']} -> {col1['queue']} batches"
    )
    print(
        f"  CPU over the window: collector {(cpu1 - cpu0) / (t1 - t0) * 100:.0f}% of its core; client + downstream "
        f"{(others1 - others0) / (t1 - t0) * 100:.0f}% of {len(setup.other_cpus)} core(s)"
    )
    print(
        f"  export latency under saturation (client send -> downstream arrival, {len(window_lat):,} batches "
        f"of the window): p50 {percentile(window_lat, 0.5):.1f} ms, p99 {percentile(window_lat, 0.99):.1f} ms"
    )
    print(
        f"  client: {client['spans']:,} spans acknowledged, {client['refused']:,} refusals retried (back-pressure), "
        f"{client['errors']} errors; downstream received {down_end['spans']:,} spans; lost {lost:,}; "
        f"collector drops {col_end['dropped'] or 'none'}"
    )
    return Throughput(
        delivered,
        accepted,
        (cpu1 - cpu0) / (t1 - t0),
        (others1 - others0) / (t1 - t0),
        percentile(window_lat, 0.5),
        percentile(window_lat, 0.99),
        client["refused"],
        lost,
        seconds,
    )


@dataclass
class Soak:
    seconds: float
    growth_mib: float
    drift_mib: float
    dropped: float
    lost: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    achieved: float


def soak(duration_s: float, warmup_s: float, sample_s: float, print_s: float) -> Soak:
    setup = start_processes(rate=SOAK_RATE)
    samples: list[tuple[float, float]] = []
    latencies: list[float] = []
    try:
        describe(setup)
        pid = setup.collector.pid
        before = os.sched_getaffinity(0)
        os.sched_setaffinity(0, setup.other_cpus)
        try:
            start = time.monotonic()
            setup.client.conn.send("go")
            warm_ns = time.monotonic_ns() + int(warmup_s * 1e9)
            next_print = print_s
            recent: list[float] = []
            while True:
                elapsed = time.monotonic() - start
                samples.append((elapsed, rss_of(pid)))
                if elapsed >= next_print or elapsed >= duration_s:
                    col, down = setup.collector.ask("stats"), setup.downstream.ask("stats")
                    batch = [lat / 1e6 for at, lat in down["latencies"]]
                    recent.extend(batch)
                    latencies.extend(lat / 1e6 for at, lat in down["latencies"] if at >= warm_ns)
                    recent.sort()
                    print(
                        f"  t={elapsed:5.0f} s  RSS {samples[-1][1]:6.1f} MiB  delivered {down['spans']:>9,} spans  "
                        f"queue {col['queue']}  dropped {sum(col['dropped'].values())}  "
                        f"latency p50 {percentile(recent, 0.5):.1f} ms p99 {percentile(recent, 0.99):.1f} ms"
                    )
                    recent = []
                    next_print += print_s
                if elapsed >= duration_s:
                    break
                time.sleep(min(sample_s, max(0.0, duration_s - elapsed)))
            client = setup.client.ask("stop", 120)
            col_end, down_end = setup.drain()
            latencies.extend(lat / 1e6 for at, lat in down_end["latencies"] if at >= warm_ns)
            scraped, lines = scrape_dropped(setup.collector.hello["prometheus"])
        finally:
            os.sched_setaffinity(0, before)
    finally:
        setup.close()
    after = [rss for t, rss in samples if t >= warmup_s]
    at_warm = after[0]
    growth = max(after) - at_warm
    drift = after[-1] - at_warm
    latencies.sort()
    dropped = sum(col_end["dropped"].values()) + col_end["forwarder_dropped_spans"]
    lost = client["spans"] - down_end["spans"]
    achieved = client["spans"] / duration_s
    print(
        f"  RSS after the {warmup_s:g} s warm-up {at_warm:.1f} MiB; max after it {max(after):.1f} MiB "
        f"(+{growth:.1f} MiB); at the end {after[-1]:.1f} MiB ({drift:+.1f} MiB); {len(samples)} samples "
        f"every {sample_s:g} s"
    )
    print(
        f"  client: {client['spans']:,} spans sent ({achieved:,.0f} spans/s), {client['refused']} refusals, "
        f"{client['errors']} errors, {client['late']} batches late by more than one interval; downstream "
        f"received {down_end['spans']:,}; lost {lost:,}"
    )
    print(
        f"  drops: pipeline {col_end['dropped'] or 'none'}, forwarder {col_end['forwarder_dropped_spans']}, "
        f"export failures {col_end['export_failures'] or 'none'}; /metrics llm_collector_dropped_total "
        f"{scraped:g} ({len(lines)} series)"
    )
    print(
        f"  export latency after warm-up ({len(latencies):,} batches): p50 {percentile(latencies, 0.5):.1f} ms, "
        f"p99 {percentile(latencies, 0.99):.1f} ms, max {latencies[-1] if latencies else float('nan'):.1f} ms"
    )
    return Soak(
        duration_s,
        growth,
        drift,
        dropped + scraped,
        lost,
        percentile(latencies, 0.5),
        percentile(latencies, 0.99),
        latencies[-1] if latencies else float("nan"),
        achieved,
    )
