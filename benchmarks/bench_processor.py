"""Processor benchmark: what ``CostSpanProcessor`` adds to the SDK's own cost of a GenAI span.

Two tracer providers, identical apart from our processor:

* A: ``TracerProvider`` + ``BatchSpanProcessor(exporter that discards)``;
* B: ``TracerProvider`` + ``CostSpanProcessor(BatchSpanProcessor(same exporter),
  recorder=Recorder(("feature", "environment")))``, metrics included.

Each round creates and ends the same spans in both: a client span of 12 attributes, as a GenAI
instrumentation writes them (7 request attributes at start, 5 response attributes before the end),
rotating over four providers and models. Rounds of A and B alternate (A B, B A, A B...) to cancel
drift and order effects; the garbage collector runs between rounds, not inside them; the batch
processors are flushed between rounds, outside the timing, and their queues are big enough that
no span is dropped (the exporters' counts are checked, and that arm B priced every span). The
batch processors keep the SDK's default export batch size, so their worker thread exports during
the rounds as it would in production. Both arms' spans carry the same 12 attributes: what B adds
is the processor's own work (its 10 cost attributes are exported by a discarding exporter in
both arms' worker threads, which read one attribute of every span).

Target: B adds at most 30% to A.

A second, informational figure runs the same spans inside ``session()``, ``user()`` and
``properties()`` blocks, so that B also stamps five baggage attributes onto each span at start.
Then B's two hooks, ``on_start`` and ``on_end``, are timed alone on finished spans, and with
``--profile`` (or when the target is missed) a cProfile of ``on_end`` alone shows where the time goes.

Run: ``.venv/bin/python -m benchmarks.bench_processor [--quick] [--profile]``.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Tracer

import otel_llmcost
from otel_llmcost import CostSpanProcessor, Recorder, default_pricer
from otel_llmcost import semconv as sc

from ._common import GENAI_CALLS, Result, median_per_op, print_profile, time_rounds

__all__ = ["SPANS", "TARGET_PCT", "run"]

TARGET_PCT = 30.0
_PRICED = sc.LLM_COST_STATUS_PRICED
DIMENSIONS = ("feature", "environment")

# (span name, attributes at start, attributes set before the end): 7 + 5 = 12 attributes each.
SPANS: tuple[tuple[str, dict[str, Any], dict[str, Any]], ...] = tuple(
    (
        f"chat {request_model}",
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": provider,
            "gen_ai.request.model": request_model,
            "gen_ai.request.max_tokens": 1024,
            "gen_ai.request.temperature": 0.2,
            "server.address": address,
            "server.port": 443,
        },
        {
            "gen_ai.response.model": response_model,
            "gen_ai.response.id": "resp_01J9ZK3Q4X8V2M5N7P0R6T1W3Y",
            "gen_ai.response.finish_reasons": ("stop",),
            "gen_ai.usage.input_tokens": input_tokens,
            "gen_ai.usage.output_tokens": output_tokens,
        },
    )
    for provider, request_model, response_model, address, input_tokens, output_tokens in GENAI_CALLS
)


class DiscardingExporter(SpanExporter):
    """Accepts every batch and keeps only a count of the spans, and of the priced ones."""

    def __init__(self) -> None:
        """Create an exporter that has seen no span."""
        self.exported = 0
        self.priced = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Count *spans* and drop them."""
        self.exported += len(spans)
        # proof that arm B priced every span (a processor that failed quietly would look fast)
        self.priced += sum(1 for span in spans if (span.attributes or {}).get(sc.LLM_COST_STATUS) == _PRICED)
        return SpanExportResult.SUCCESS


class Arm:
    """One tracer provider under test, with its exporter and the spans it was asked to create."""

    def __init__(self, name: str, with_cost: bool, queue_size: int) -> None:
        """Build the provider: a batch processor, wrapped in ``CostSpanProcessor`` when *with_cost*."""
        self.name = name
        self.exporter = DiscardingExporter()
        self.batch = BatchSpanProcessor(self.exporter, max_queue_size=queue_size)
        self.processor: CostSpanProcessor | None = None
        self.provider = TracerProvider()
        if with_cost:
            self.processor = CostSpanProcessor(self.batch, recorder=Recorder(DIMENSIONS))
            self.provider.add_span_processor(self.processor)
        else:
            self.provider.add_span_processor(self.batch)
        self.tracer = self.provider.get_tracer("bench.genai")
        self.created = 0

    def round(self, n: int, scope: Callable[[], contextlib.AbstractContextManager[Any]]) -> float:
        """Create and end *n* spans inside *scope*; flush afterwards; return the seconds the spans took."""
        with scope():
            elapsed = _spans(self.tracer, n)
        self.created += n
        self.batch.force_flush()
        return elapsed

    def close(self) -> None:
        """Flush and shut the provider down, then check that the exporter saw every span, priced in arm B."""
        self.provider.shutdown()
        if self.exporter.exported != self.created:
            raise RuntimeError(f"arm {self.name}: {self.created} spans created, {self.exporter.exported} exported")
        expected = self.created if self.processor is not None else 0
        if self.exporter.priced != expected:
            raise RuntimeError(f"arm {self.name}: {self.exporter.priced} spans priced, {expected} expected")


def _spans(tracer: Tracer, n: int) -> float:
    """Create and end *n* GenAI spans; return the elapsed seconds."""
    start_span = tracer.start_span
    specs = SPANS
    count = len(specs)
    client = SpanKind.CLIENT
    t0 = time.perf_counter()
    for i in range(n):
        name, at_start, at_end = specs[i % count]
        span = start_span(name, kind=client, attributes=at_start)
        span.set_attributes(at_end)
        span.end()
    return time.perf_counter() - t0


_no_baggage = contextlib.nullcontext


@contextlib.contextmanager
def _with_baggage() -> Iterator[None]:
    """Put a session (id and name), a user and two properties into the current context's baggage."""
    with (
        otel_llmcost.session("sess-4f1c9a", name="support-chat"),
        otel_llmcost.user("user-8812"),
        otel_llmcost.properties(feature="search", environment="prod"),
    ):
        yield


class Comparison:
    """Alternating rounds of arm A and arm B, in us per span."""

    def __init__(self, a: list[float], b: list[float]) -> None:
        """Hold the rounds; ``a[i]`` and ``b[i]`` ran back to back."""
        self.a, self.b = a, b
        self.median_a, self.median_b = statistics.median(a), statistics.median(b)
        self.added = self.median_b - self.median_a
        self.pct = self.added / self.median_a * 100
        self.paired_pct = statistics.median((y - x) / x * 100 for x, y in zip(a, b, strict=True))

    def spread(self) -> str:
        """Return the fastest and slowest rounds of each arm."""
        return f"A {min(self.a):.2f}-{max(self.a):.2f}, B {min(self.b):.2f}-{max(self.b):.2f} us/span"


def _compare(n: int, rounds: int, scope: Callable[[], contextlib.AbstractContextManager[Any]]) -> Comparison:
    """Run two warm-up rounds, then *rounds* timed rounds, of *n* spans in each arm, alternating."""
    queue = n + 2048  # a whole round fits in the queue: nothing is dropped before the flush
    arm_a, arm_b = Arm("A", with_cost=False, queue_size=queue), Arm("B", with_cost=True, queue_size=queue)
    warmup = 2
    times: dict[str, list[float]] = {"A": [], "B": []}
    for i in range(warmup + rounds):
        for arm in (arm_a, arm_b) if i % 2 == 0 else (arm_b, arm_a):
            gc.collect()
            times[arm.name].append(arm.round(n, scope) / n * 1e6)
    arm_a.close()
    arm_b.close()
    return Comparison(times["A"][warmup:], times["B"][warmup:])


def _finished_spans() -> list[ReadableSpan]:
    """Return one finished SDK span per entry of :data:`SPANS`, as an inner processor receives them."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    _spans(provider.get_tracer("bench.genai"), len(SPANS))
    provider.shutdown()
    return list(exporter.get_finished_spans())


def _hook_loop(hook: str, loops: int) -> Callable[[], float]:
    """Return a round that calls ``CostSpanProcessor.<hook>`` alone (no inner processor) on the finished spans.

    ``on_start`` runs without baggage; ``on_end`` prices, records and rebuilds the spans. A round
    calls the hook ``loops`` times per span and returns the elapsed seconds.
    """
    spans = _finished_spans()
    processor = CostSpanProcessor(None, pricer=default_pricer(), recorder=Recorder(DIMENSIONS))
    call = getattr(processor, hook)

    def one_round() -> float:
        t0 = time.perf_counter()
        for _ in range(loops):
            for span in spans:
                call(span)
        return time.perf_counter() - t0

    return one_round


def run(quick: bool = False, profile: bool = False) -> list[Result]:
    """Run the processor benchmark, print its figures and return the summary rows."""
    n, rounds = (5_000, 5) if quick else (20_000, 15)
    print(
        f"== Processor: create+end a 12-attribute GenAI span, {n:,} spans a round, "
        f"A/B alternating, median of {rounds} rounds each"
    )
    default_pricer()  # the catalog loads once, before any timing
    plain = _compare(n, rounds, _no_baggage)
    print(f"  A  SDK + BatchSpanProcessor                    : {plain.median_a:6.2f} us/span")
    print(f"  B  SDK + CostSpanProcessor(BatchSpanProcessor) : {plain.median_b:6.2f} us/span")
    print(
        f"  added by CostSpanProcessor: {plain.added:5.2f} us/span = {plain.pct:+.1f}% of A "
        f"(target <= +{TARGET_PCT:g}%); median of paired rounds {plain.paired_pct:+.1f}%"
    )
    print(f"  rounds: {plain.spread()}")

    bag = _compare(n, rounds, _with_baggage)
    print("  with session + user + 2 properties in baggage (B stamps 5 more attributes at start):")
    print(
        f"     A {bag.median_a:6.2f} us/span, B {bag.median_b:6.2f} us/span, "
        f"added {bag.added:5.2f} us/span = {bag.pct:+.1f}% (paired {bag.paired_pct:+.1f}%)"
    )

    loops = 1_000 if quick else 5_000
    on_start, on_end = (
        median_per_op(time_rounds(_hook_loop(h, loops), 5), loops * len(SPANS)) for h in ("on_start", "on_end")
    )
    print(
        f"  CostSpanProcessor hooks called alone (no inner processor): on_start {on_start:.2f} us/span, "
        f"on_end {on_end:.2f} us/span, sum {on_start + on_end:.2f} us/span"
    )

    if profile or plain.pct > TARGET_PCT:
        work = _hook_loop("on_end", loops)
        work()  # warm
        print_profile(f"CostSpanProcessor.on_end alone, {loops * len(SPANS):,} spans", work, top=22)
    return [
        Result(
            "processor: added to SDK span + batch",
            f"<= +{TARGET_PCT:g}%",
            f"+{plain.added:.2f} us/span = {plain.pct:+.1f}%",
            plain.pct <= TARGET_PCT,
        ),
        Result(
            "processor: same, with session/user/properties",
            "(info)",
            f"+{bag.added:.2f} us/span = {bag.pct:+.1f}%",
            None,
        ),
    ]


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer, shorter rounds")
    parser.add_argument("--profile", action="store_true", help="print a cProfile of on_end alone")
    args = parser.parse_args()
    run(quick=args.quick, profile=args.profile)


if __name__ == "__main__":
    main()
