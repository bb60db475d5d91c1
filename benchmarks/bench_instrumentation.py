"""Instrumentation benchmark: what ``OpenAIInstrumentor`` adds to a real ``openai`` call.

The same ``openai.OpenAI(...).chat.completions.create(...)`` call, made by the real ``openai``
client, in two arms:

* U: uninstrumented;
* I: ``OpenAIInstrumentor().instrument(tracer_provider=...)``, the provider a ``TracerProvider`` +
  ``BatchSpanProcessor(exporter that discards, big queue)``, recording into
  ``Recorder(("feature", "environment"))`` installed for our instrumentation.

Rounds of U and I alternate (U I, I U, U I...), the package being instrumented before an I round
and uninstrumented after it, outside the timing; the garbage collector runs between rounds, not
inside them; the batch processor is flushed after every I round, and at the end the exporter's
count proves that every instrumented call ended exactly one span. Three workloads:

* **Local server.** Non-streaming calls to the fake OpenAI server of ``tests/fakes`` on 127.0.0.1
  (HTTP/1.1, keep-alive, the server a thread of this process). Target: I adds at most 5% to U.
  The socket round trip dominates and varies by tens of microseconds between rounds, so the
  absolute figure is taken from the next workload.
* **In-process transport.** The same calls through ``http_client=openai.DefaultHttpxClient(
  transport=httpx2.MockTransport(...))`` replaying the server's own reply, captured once: the SDK
  builds the request and parses the response as it would, but no socket is opened. Target: I adds
  at most 25 us per call. This is the cleanest measure of what the instrumentation adds.
* **Streaming.** A streamed call (``stream_options={"include_usage": True}``) of 2,000
  ``chat.completion.chunk`` events through the in-process transport: the server's own chunks, the
  word chunks repeated, then its finish and usage chunks. Target: I adds at most 3 us per chunk
  (the call's span start and end are included, spread over the chunks).

For information: the floor, the SDK span alone in the in-process arm (``start_span`` with the
attributes ours starts with, ``set_attributes`` with the rest of ours, ``end``, on the same
provider; :mod:`._instrumentation_parts`), compared with U the same way; for scale, the official
OpenTelemetry OpenAI instrumentation on the same provider, alone and with our ``CostSpanProcessor``
(how its users get cost from us), compared the same way; the wrapper alone (the
SDK method replaced by a stub returning the parsed ``ChatCompletion``) per call, and the stream
proxy alone (iterating the parsed chunks) per chunk.
These run our code in a tight loop, its code and data hot in the CPU caches: interleaved with the
SDK's own work, as in the in-process arm, the same code costs noticeably more (about twice as
much on the development VM), so they are lower bounds, not the figure checked.
When a target is missed (or with ``--profile``), a cProfile of the instrumented arm, and a table of
the wrapper's (or proxy's) own code in microseconds per call (or chunk), show where the time goes.

Run: ``.venv/bin/python -m benchmarks.bench_instrumentation [--quick] [--profile]``.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from collections.abc import Callable
from importlib.metadata import version
from types import TracebackType
from typing import Any

import httpx2
import openai
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from otel_llmcost import Recorder, _state, default_pricer
from otel_llmcost.instrumentation._base import SCOPE
from otel_llmcost.instrumentation._wrap import sync_wrapper
from otel_llmcost.instrumentation.openai import OpenAIInstrumentor, _ChatHooks
from tests.fakes.openai_server import serve

from ._common import Result, median_per_op, print_profile, time_rounds
from ._instrumentation_parts import OfficialArm, SpanFloor, print_per_op, span_of_one_call
from .bench_processor import DiscardingExporter

__all__ = ["TARGET_CHUNK_US", "TARGET_PCT", "TARGET_US", "run"]

TARGET_PCT = 5.0
TARGET_US = 25.0
TARGET_CHUNK_US = 3.0
DIMENSIONS = ("feature", "environment")
QUEUE_SIZE = 65_536  # more spans than any round ends: nothing is dropped before the flush
API_KEY = "bench-key"
_OFFICIAL = "opentelemetry-instrumentation-genai-openai"
REQUEST: dict[str, Any] = {
    "model": "gpt-4o-mini",
    "messages": [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Summarise the quarterly report for the board in three bullet points."},
    ],
    "max_tokens": 256,
    "temperature": 0.2,
}
STREAM_REQUEST: dict[str, Any] = {**REQUEST, "stream": True, "stream_options": {"include_usage": True}}


# --- the two arms ---------------------------------------------------------------------------------


class Instrumentation:
    """``OpenAIInstrumentor`` on its own tracer provider, switched on before an I round and off after it."""

    def __init__(self) -> None:
        """Build the provider and recorder; nothing is instrumented yet."""
        self.exporter = DiscardingExporter()
        self.batch = BatchSpanProcessor(self.exporter, max_queue_size=QUEUE_SIZE)
        self.provider = TracerProvider()
        self.provider.add_span_processor(self.batch)
        self.recorder = Recorder(DIMENSIONS)
        self.instrumentor = OpenAIInstrumentor()
        self.calls = 0  # instrumented calls made: each ends one span
        self._before: tuple[Any, Any] = (None, None)

    def __enter__(self) -> Instrumentation:
        """Install our recorder for the instrumentation (the process-wide state is restored on exit)."""
        if self.instrumentor.is_instrumented_by_opentelemetry:
            raise RuntimeError("openai is already instrumented: the uninstrumented arm would not be")
        self._before = (_state._recorder, _state._pricer)
        _state.install(self.recorder)
        return self

    def on(self) -> None:
        """Instrument the ``openai`` package."""
        self.instrumentor.instrument(tracer_provider=self.provider)

    def off(self, calls: int) -> None:
        """Uninstrument it after *calls* instrumented calls, and flush their spans."""
        self.instrumentor.uninstrument()
        self.calls += calls
        self.batch.force_flush()

    def hooks(self) -> _ChatHooks:
        """Return the chat hooks the instrumentor wraps ``Completions.create`` with, on our provider."""
        return _ChatHooks(self.provider.get_tracer(SCOPE), is_async=False)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Uninstrument, shut the provider down, restore the state, check that every call ended one span."""
        if self.instrumentor.is_instrumented_by_opentelemetry:
            self.instrumentor.uninstrument()
        self.provider.shutdown()
        _state.install(*self._before)
        if exc_type is None and self.exporter.exported != self.calls:
            raise RuntimeError(f"{self.calls} instrumented calls, {self.exporter.exported} spans exported")


class Comparison:
    """Alternating rounds of U and I, in us per operation."""

    def __init__(self, u: list[float], i: list[float]) -> None:
        """Hold the rounds; ``u[k]`` and ``i[k]`` ran back to back."""
        self.u, self.i = u, i
        self.median_u, self.median_i = statistics.median(u), statistics.median(i)
        self.added = self.median_i - self.median_u
        self.pct = self.added / self.median_u * 100
        self.paired = statistics.median(y - x for x, y in zip(u, i, strict=True))

    def spread(self, unit: str) -> str:
        """Return the fastest and slowest rounds of each arm."""
        return f"U {min(self.u):.2f}-{max(self.u):.2f}, I {min(self.i):.2f}-{max(self.i):.2f} {unit}"


def _compare(
    instr: Instrumentation | SpanFloor | OfficialArm, work: Callable[[], float], calls: int, ops: int, rounds: int
) -> Comparison:
    """Run one warm-up round of each arm, then *rounds* timed rounds of each, alternating.

    *instr* is the I arm: our instrumentation, the floor (:class:`SpanFloor`) or the official
    instrumentation (:class:`OfficialArm`).

    *work* makes *calls* API calls (*ops* operations: calls or chunks) and returns the seconds they took.
    """
    warmup = 1
    times: dict[bool, list[float]] = {False: [], True: []}
    for n in range(warmup + rounds):
        for instrumented in (False, True) if n % 2 == 0 else (True, False):
            if instrumented:
                instr.on()
            gc.collect()
            try:
                seconds = work()
            finally:
                if instrumented:
                    instr.off(calls)
            times[instrumented].append(seconds / ops * 1e6)
    return Comparison(times[False][warmup:], times[True][warmup:])


# --- clients and workloads ------------------------------------------------------------------------


def _client(base_url: str, transport: httpx2.BaseTransport | None = None) -> openai.OpenAI:
    """A real ``openai`` client on *base_url*, through *transport* when given (no socket)."""
    http = openai.DefaultHttpxClient(transport=transport) if transport is not None else None
    return openai.OpenAI(base_url=base_url, api_key=API_KEY, max_retries=0, http_client=http)


def _captured(base_url: str) -> tuple[bytes, dict[str, str], list[bytes], dict[str, str]]:
    """Ask the server once for a reply and once for a stream; return their bodies and headers.

    The stream comes back as its ``data:`` payloads (``[DONE]`` left out): the role chunk, one
    chunk per word, the finish chunk and the usage chunk.
    """
    with httpx2.Client() as http:
        reply = http.post(f"{base_url}/chat/completions", json=REQUEST)
        stream = http.post(f"{base_url}/chat/completions", json=STREAM_REQUEST)
    reply.raise_for_status()
    stream.raise_for_status()
    keep = ("content-type", "x-request-id")
    events = [
        line[len(b"data: ") :]
        for line in stream.content.split(b"\n")
        if line.startswith(b"data: ") and line != b"data: [DONE]"
    ]
    return (
        reply.content,
        {k: v for k, v in reply.headers.items() if k in keep},
        events,
        {k: v for k, v in stream.headers.items() if k in keep},
    )


def _sse(events: list[bytes], chunks: int) -> list[bytes]:
    """The server's stream lengthened to *chunks* events: its word chunks repeated, then finish and usage."""
    role, words, finish, usage = events[0], events[1:-2], events[-2], events[-1]
    body = [role, *(words[k % len(words)] for k in range(chunks - 3)), finish, usage]
    return [b"data: " + event + b"\n\n" for event in body] + [b"data: [DONE]\n\n"]


def _replaying(content: bytes | list[bytes], headers: dict[str, str]) -> httpx2.MockTransport:
    """A transport answering every request with *content* (a list is sent piece by piece, as a stream)."""

    def handler(request: httpx2.Request) -> httpx2.Response:
        body = iter(content) if isinstance(content, list) else content
        return httpx2.Response(200, headers=headers, content=body)

    return httpx2.MockTransport(handler)


def _calls(client: openai.OpenAI, n: int) -> Callable[[], float]:
    """Return a round of *n* non-streaming calls, returning its seconds."""

    def one_round() -> float:
        create = client.chat.completions.create  # looked up now: wrapped or not, as the round's arm is
        t0 = time.perf_counter()
        for _ in range(n):
            create(**REQUEST)
        return time.perf_counter() - t0

    return one_round


def _streams(client: openai.OpenAI, n: int, chunks: int) -> Callable[[], float]:
    """Return a round of *n* streamed calls of *chunks* chunks each, read to the end; it returns its seconds."""

    def one_round() -> float:
        create = client.chat.completions.create
        seen = 0
        t0 = time.perf_counter()
        for _ in range(n):
            for _chunk in create(**STREAM_REQUEST):
                seen += 1
        elapsed = time.perf_counter() - t0
        if seen != n * chunks:
            raise RuntimeError(f"expected {n * chunks} chunks, read {seen}")
        return elapsed

    return one_round


def _wrapper_alone(
    instr: Instrumentation, client: openai.OpenAI, n: int, stream: list[Any] | None = None
) -> Callable[[], float]:
    """Return a round of *n* calls of the instrumentation's wrapper around a stub of the SDK method.

    The stub returns the parsed ``ChatCompletion`` (or, given *stream*, an iterator over those
    parsed chunks, which the round reads to the end). Every call ends a span on *instr*'s provider.
    """
    wrapper = sync_wrapper(instr.hooks())
    resource = client.chat.completions
    if stream is None:
        result: Any = client.chat.completions.create(**REQUEST)
        request, stub = REQUEST, lambda *args, **kwargs: result
    else:
        request, stub = STREAM_REQUEST, lambda *args, **kwargs: iter(stream)

    def one_round() -> float:
        t0 = time.perf_counter()
        for _ in range(n):
            returned = wrapper(stub, resource, (), dict(request))
            if stream is not None:
                for _chunk in returned:
                    pass
        elapsed = time.perf_counter() - t0
        instr.calls += n
        instr.batch.force_flush()
        return elapsed

    return one_round


def _bare(n: int, stream: list[Any] | None = None) -> Callable[[], float]:
    """Return the floor of :func:`_wrapper_alone`: the same loop calling the stub directly."""
    request = REQUEST if stream is None else STREAM_REQUEST

    def stub(*args: Any, **kwargs: Any) -> Any:
        return iter(stream) if stream is not None else None

    def one_round() -> float:
        t0 = time.perf_counter()
        for _ in range(n):
            returned = stub(**dict(request))
            if stream is not None:
                for _chunk in returned:
                    pass
        return time.perf_counter() - t0

    return one_round


# --- profiles -------------------------------------------------------------------------------------


def _profile_arm(instr: Instrumentation, title: str, work: Callable[[], float], calls: int) -> None:
    """Print the cProfile of one round of the instrumented arm."""
    instr.on()
    try:
        print_profile(title, work, top=25)
    finally:
        instr.off(calls)


# --- the benchmark --------------------------------------------------------------------------------


def _print_comparison(c: Comparison, unit: str, target: str) -> None:
    print(f"     U {c.median_u:8.2f} {unit}, I {c.median_i:8.2f} {unit}")
    print(
        f"     added {c.added:6.2f} {unit} = {c.pct:+.1f}% of U ({target}); median of paired rounds {c.paired:+.2f} {unit}"
    )
    print(f"     rounds: {c.spread(unit)}")


def run(quick: bool = False, profile: bool = False) -> list[Result]:
    """Run the instrumentation benchmark, print its figures and return the summary rows."""
    net_calls, local_calls, rounds = (120, 200, 5) if quick else (350, 600, 11)
    chunks, streams, stream_rounds = (2_000, 1, 5) if quick else (2_000, 1, 15)
    alone_calls, alone_rounds = (2_000, 3) if quick else (5_000, 5)
    loops = 10 if quick else 25  # streams a round of the stream proxy alone
    profiled = 200 if quick else 500  # calls in the profiled round of the instrumented arm
    print(
        "== Instrumentation: openai chat.completions.create, uninstrumented (U) vs OpenAIInstrumentor (I), "
        "rounds alternating"
    )
    print(
        f"  openai {version('openai')}, httpx2 {version('httpx2')}; I: TracerProvider + "
        f"BatchSpanProcessor(discarding exporter), Recorder({DIMENSIONS})"
    )
    default_pricer()  # the catalog loads once, before any timing

    with Instrumentation() as instr:
        with serve() as server:
            base_url = server.base_url
            reply, reply_headers, events, stream_headers = _captured(base_url)
            net_client = _client(base_url)
            net = _compare(instr, _calls(net_client, net_calls), net_calls, net_calls, rounds)
            net_client.close()
        print(
            f"  local server (127.0.0.1, HTTP/1.1 keep-alive, a thread of this process), "
            f"{net_calls:,} calls a round, median of {rounds} rounds:"
        )
        _print_comparison(net, "us/call", f"target <= +{TARGET_PCT:g}%; <= {TARGET_US:g} us is checked in-process")

        local_client = _client(base_url, _replaying(reply, reply_headers))
        local_round = _calls(local_client, local_calls)
        local = _compare(instr, local_round, local_calls, local_calls, rounds)
        print(
            f"  in-process transport (httpx2.MockTransport replaying the server's reply, no socket), "
            f"{local_calls:,} calls a round, median of {rounds} rounds:"
        )
        _print_comparison(local, "us/call", f"target <= {TARGET_US:g} us")

        floor_arm = SpanFloor(instr, *span_of_one_call(local_client, REQUEST))
        span_floor = _compare(floor_arm, local_round, local_calls, local_calls, rounds)
        print(
            "  floor: the SDK span alone (start_span + set_attributes + end, our span's "
            f"{len(floor_arm.attributes)} attributes), in-process, same rounds:"
        )
        _print_comparison(span_floor, "us/call", "what the SDK alone charges for a span like ours")

        official: dict[bool, Comparison] = {}
        for with_processor in (False, True):
            other = OfficialArm(instr, with_processor=with_processor)
            try:
                official[with_processor] = _compare(other, local_round, local_calls, local_calls, rounds)
            finally:
                other.close()
            print(
                f"  for scale, the official OpenAI instrumentation ({_OFFICIAL} {version(_OFFICIAL)})"
                + (", with our CostSpanProcessor for cost" if with_processor else ", no cost")
                + ", in-process, same rounds:"
            )
            _print_comparison(official[with_processor], "us/call", "information")

        alone = median_per_op(time_rounds(_wrapper_alone(instr, local_client, alone_calls), alone_rounds), alone_calls)
        floor = median_per_op(time_rounds(_bare(alone_calls), alone_rounds), alone_calls)
        print(
            f"  wrapper alone (SDK method stubbed, returns the parsed ChatCompletion): {alone - floor:.2f} us/call "
            "(a hot loop; between real SDK calls the same code costs more, as above)"
        )

        stream_client = _client(base_url, _replaying(_sse(events, chunks), stream_headers))
        stream_round = _streams(stream_client, streams, chunks)
        streamed = _compare(instr, stream_round, streams, streams * chunks, stream_rounds)
        print(
            f"  streaming, in-process transport, {chunks:,} chunks a stream (usage in the last), "
            f"{streams} stream{'s' if streams > 1 else ''} a round, median of {stream_rounds} rounds:"
        )
        _print_comparison(
            streamed,
            "us/chunk",
            f"target <= {TARGET_CHUNK_US:g} us; the call's span, ~{local.added / chunks:.2f} us/chunk, included",
        )

        parsed = list(stream_client.chat.completions.create(**STREAM_REQUEST))
        proxy = median_per_op(
            time_rounds(_wrapper_alone(instr, stream_client, loops, parsed), alone_rounds), loops * chunks
        )
        proxy_floor = median_per_op(time_rounds(_bare(loops, parsed), alone_rounds), loops * chunks)
        print(f"  stream proxy alone (the wrapper's stream over the parsed chunks): {proxy - proxy_floor:.2f} us/chunk")

        call_missed = net.pct > TARGET_PCT or local.added > TARGET_US
        chunk_missed = streamed.added > TARGET_CHUNK_US
        if profile or call_missed:
            _profile_arm(
                instr,
                f"instrumented arm, in-process transport, {profiled:,} calls",
                _calls(local_client, profiled),
                profiled,
            )
            print_per_op(
                f"the wrapper alone (SDK method stubbed), {2_000:,} calls",
                _wrapper_alone(instr, local_client, 2_000),
                2_000,
                "call",
                alone - floor,
            )
        if profile or chunk_missed:
            _profile_arm(
                instr,
                f"instrumented arm, streaming, {streams * chunks:,} chunks",
                _streams(stream_client, streams, chunks),
                streams,
            )
            print_per_op(
                f"the stream proxy alone, {5 * chunks:,} chunks",
                _wrapper_alone(instr, stream_client, 5, parsed),
                5 * chunks,
                "chunk",
                proxy - proxy_floor,
            )
        local_client.close()
        stream_client.close()

    return [
        Result(
            "instrumentation: call via local server, added",
            f"<= +{TARGET_PCT:g}%",
            f"+{net.added:.1f} us/call = {net.pct:+.1f}%",
            net.pct <= TARGET_PCT,
        ),
        Result(
            "instrumentation: call in-process, added",
            f"<= {TARGET_US:g} us/call",
            f"+{local.added:.1f} us/call = {local.pct:+.1f}%",
            local.added <= TARGET_US,
        ),
        Result(
            "instrumentation: floor, SDK span alone in-process",
            "(info)",
            f"+{span_floor.added:.1f} us/call = {span_floor.pct:+.1f}%",
            None,
        ),
        Result(
            "instrumentation: official OpenAI instr., no cost",
            "(info)",
            f"+{official[False].added:.1f} us/call = {official[False].pct:+.1f}%",
            None,
        ),
        Result(
            "instrumentation: official + CostSpanProcessor",
            "(info)",
            f"+{official[True].added:.1f} us/call = {official[True].pct:+.1f}%",
            None,
        ),
        Result("instrumentation: wrapper alone", "(info)", f"{alone - floor:.1f} us/call", None),
        Result(
            "instrumentation: streaming, added per chunk",
            f"<= {TARGET_CHUNK_US:g} us/chunk",
            f"+{streamed.added:.2f} us/chunk = {streamed.pct:+.1f}%",
            streamed.added <= TARGET_CHUNK_US,
        ),
        Result("instrumentation: stream proxy alone", "(info)", f"{proxy - proxy_floor:.2f} us/chunk", None),
    ]


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer, shorter rounds")
    parser.add_argument("--profile", action="store_true", help="print cProfiles of the instrumented arms")
    args = parser.parse_args()
    run(quick=args.quick, profile=args.profile)


if __name__ == "__main__":
    main()
