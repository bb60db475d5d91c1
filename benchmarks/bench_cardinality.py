"""Cardinality benchmark: a million GenAI spans with a million sessions and users stay in bounded metrics.

Every span is a real SDK span (``TracerProvider`` -> ``CostSpanProcessor`` with no inner
processor, so spans are priced and counted, then dropped) and carries:

* a distinct ``session.id``, ``user.id`` and ``llm.property.customer`` (not a dimension);
* ``llm.property.feature`` out of 200 values (the cap is 50) and ``llm.property.environment``
  out of 3, both metric dimensions;
* one of eight known models, or every 50th span a distinct unknown fine-tune (the model cap is 500);
* every 97th span an ``error.type`` out of 300 (the cap is 50).

Checks: no id is ever a label; each label keeps at most its cap of values (plus ``other``); the
number of series stops growing once the caps are full (the same at half-way and at the end); and
the process's resident memory grows by less than 50 MiB over the run. The quick run sends
200,000 spans instead of a million.

Run: ``.venv/bin/python -m benchmarks.bench_cardinality [--quick] [--profile]``.
"""

from __future__ import annotations

import argparse
import gc
import time
from typing import Any

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import SpanKind, Tracer

from otel_llmcost import CostSpanProcessor, Recorder, default_pricer
from otel_llmcost.metrics import OTHER, Snapshot

from ._common import Result, print_profile, rss_mb

__all__ = ["MEMORY_BUDGET_MB", "run"]

MEMORY_BUDGET_MB = 50.0
DIMENSIONS = ("feature", "environment")
# Label name -> the most values it may keep besides ``other`` (the GenAI histograms' labels included).
CAPS = {
    "feature": 50,
    "environment": 50,
    "model": 500,
    "provider": 50,
    "operation": 50,
    "gen_ai.request.model": 500,
    "gen_ai.provider.name": 50,
    "gen_ai.operation.name": 50,
    "error.type": 50,
}
_ENVIRONMENTS = ("prod", "staging", "dev")
_MODELS = (
    ("openai", "gpt-4o-mini"),
    ("openai", "gpt-4o-2024-08-06"),
    ("anthropic", "claude-sonnet-4-5-20250929"),
    ("anthropic", "claude-haiku-4-5-20251001"),
    ("gcp.gemini", "gemini-2.5-flash"),
    ("aws.bedrock", "us.anthropic.claude-sonnet-4-5-20250929-v1:0"),
    ("mistral_ai", "mistral-large-2411"),
    ("groq", "llama-3.3-70b-versatile"),
)
_ID_PREFIXES = ("sess-", "user-", "cust-")
_ID_LABELS = frozenset({"session.id", "session_id", "user.id", "user_id", "customer"})


def _attributes(i: int) -> dict[str, Any]:
    """Return the attributes of the *i*-th span."""
    provider, model = _MODELS[i % len(_MODELS)]
    attrs: dict[str, Any] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": provider,
        "gen_ai.request.model": model,
        "gen_ai.response.model": f"acme-ft-{i:07d}" if i % 50 == 0 else model,
        "gen_ai.usage.input_tokens": 200 + i % 5000,
        "gen_ai.usage.output_tokens": 50 + i % 700,
        "session.id": f"sess-{i:07d}",
        "user.id": f"user-{i:07d}",
        "llm.property.feature": f"feature-{i % 200}",
        "llm.property.environment": _ENVIRONMENTS[i % 3],
        "llm.property.customer": f"cust-{i:07d}",
    }
    if i % 97 == 0:
        attrs["error.type"] = f"Error{i % 300}"
    return attrs


def _send(tracer: Tracer, first: int, last: int) -> None:
    """Create and end the spans numbered *first* to *last* (exclusive)."""
    start_span = tracer.start_span
    client = SpanKind.CLIENT
    for i in range(first, last):
        start_span("chat", kind=client, attributes=_attributes(i)).end()


def _pipeline() -> tuple[TracerProvider, CostSpanProcessor]:
    recorder = Recorder(
        DIMENSIONS,
        max_values_per_dimension=CAPS["feature"],
        max_models=CAPS["model"],
        max_providers=CAPS["provider"],
    )
    processor = CostSpanProcessor(None, pricer=default_pricer(), recorder=recorder)
    provider = TracerProvider()
    provider.add_span_processor(processor)
    return provider, processor


def _label_values(snapshot: Snapshot) -> dict[str, set[str]]:
    """Return every label name used by the snapshot's series with the set of its values."""
    values: dict[str, set[str]] = {}
    everything = (
        snapshot.cost_usd,
        snapshot.requests,
        snapshot.tokens,
        snapshot.request_cost,
        snapshot.token_usage,
        snapshot.duration,
    )
    for series in everything:
        for labels, _ in series:
            for name, value in labels.items():
                values.setdefault(name, set()).add(value)
    return values


def _sizes(snapshot: Snapshot) -> str:
    names = ("cost_usd", "requests", "tokens", "request_cost", "token_usage", "duration", "skipped", "overflow")
    return ", ".join(f"{name} {len(getattr(snapshot, name))}" for name in names)


def run(quick: bool = False, profile: bool = False) -> list[Result]:
    """Run the cardinality benchmark, print its figures and return the summary rows."""
    total = 200_000 if quick else 1_000_000
    print(
        f"== Cardinality: {total:,} SDK spans -> CostSpanProcessor.on_end -> Recorder, "
        f"{total:,} distinct sessions, users and customers"
    )
    warm_provider, _ = _pipeline()  # loads the catalog and warms the SDK's and our code paths
    _send(warm_provider.get_tracer("warm-up"), 10**8, 10**8 + 5_000)
    warm_provider.shutdown()
    del warm_provider

    provider, processor = _pipeline()
    recorder = processor.recorder
    tracer = provider.get_tracer("bench.cardinality")
    gc.collect()
    rss_before = rss_mb()
    checkpoints = sorted({total // 10, total // 2, total})
    series_at: dict[int, int] = {}
    done = 0
    t0 = time.perf_counter()
    for checkpoint in checkpoints:
        _send(tracer, done, checkpoint)
        done = checkpoint
        series_at[done] = recorder.series_count()
        print(f"  after {done:>9,} spans: {series_at[done]:5,} series, RSS {rss_mb() - rss_before:+6.1f} MiB")
    elapsed = time.perf_counter() - t0
    gc.collect()
    growth = rss_mb() - rss_before

    t1 = time.perf_counter()
    snapshot = recorder.snapshot()
    snapshot_ms = (time.perf_counter() - t1) * 1e3
    values = _label_values(snapshot)
    print(f"  time: {elapsed:.1f} s, {elapsed / total * 1e6:.1f} us/span (span creation included)")
    print(f"  snapshot(): {snapshot_ms:.1f} ms; sizes: {_sizes(snapshot)}")
    print("  distinct values per label: " + ", ".join(f"{k} {len(v)}" for k, v in sorted(values.items())))
    overflow = {labels["dimension"]: n for labels, n in snapshot.overflow}
    print(
        "  folded into 'other' (llm_cost_dimension_overflow_total): "
        + ", ".join(f"{k} {n:,}" for k, n in overflow.items())
    )

    over_cap = {k: len(v) for k, v in values.items() if k in CAPS and len(v) > CAPS[k] + (OTHER in v)}
    leaked = sorted(
        {v for vs in values.values() for v in vs if v.startswith(_ID_PREFIXES)} | (_ID_LABELS & set(values))
    )
    plateau = series_at[total // 2] == series_at[total]
    bounded = not over_cap and not leaked and plateau
    print(
        f"  labels over their cap: {over_cap or 'none'}; ids as labels or label values: {len(leaked)}; "
        f"series flat from half-way: {plateau}"
    )
    print(f"  memory: RSS grew {growth:+.1f} MiB over {total:,} spans (budget {MEMORY_BUDGET_MB:g} MiB)")

    if profile:
        print_profile("10,000 spans", lambda: _send(tracer, total, total + 10_000))
    provider.shutdown()
    return [
        Result(
            f"cardinality: series after {total:,} spans",
            "flat at caps, no ids",
            f"{series_at[total]:,} series",
            bounded,
        ),
        Result(
            f"cardinality: RSS growth over {total:,} spans",
            f"< {MEMORY_BUDGET_MB:g} MiB",
            f"{growth:+.1f} MiB",
            growth < MEMORY_BUDGET_MB,
        ),
        Result(
            "cardinality: time per span (span creation incl.)", "(info)", f"{elapsed / total * 1e6:.1f} us/span", None
        ),
    ]


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200,000 spans instead of a million")
    parser.add_argument("--profile", action="store_true", help="print a cProfile of 10,000 more spans")
    args = parser.parse_args()
    run(quick=args.quick, profile=args.profile)


if __name__ == "__main__":
    main()
