"""Pricing benchmark: warm ``default_pricer().price(...)`` over a realistic mix of calls.

Measures, in one run:

* our warm price of one call through the built-in catalog (memoised matching included), for ten
  (provider, model) pairs: a plain id, a dated snapshot, a Bedrock ``us.`` inference profile, a
  Vertex ``@`` id, a long-context tier, reasoning tokens, cache reads and writes, and an unknown
  model;
* the floor: a plain dict lookup and two Decimal multiplications per call;
* the ``genai-prices`` package's ``calc_price`` on the same calls, when it is installed
  (a comparison only; it raises ``LookupError`` for the unknown model, which is caught);
* the cold load of the catalog (``load_catalog()``) and the memory the loaded catalog holds.

Target: at most 5 us per call.

Run: ``.venv/bin/python -m benchmarks.bench_pricing [--quick] [--profile]``.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable
from decimal import Decimal
from importlib.metadata import version
from typing import Any

from otel_llmcost import Usage, default_pricer, load_catalog

from ._common import Result, median_per_op, print_profile, time_rounds

__all__ = ["CALLS", "TARGET_US", "run"]

TARGET_US = 5.0

# (span provider name, model as the span gives it, usage, genai-prices provider id).
CALLS: tuple[tuple[str, str, Usage, str], ...] = (
    ("openai", "gpt-4o-mini", Usage(1200, 300, cache_read_tokens=256), "openai"),
    ("openai", "gpt-4o-2024-08-06", Usage(2400, 512), "openai"),
    (
        "anthropic",
        "claude-sonnet-4-5-20250929",
        Usage(5300, 800, cache_read_tokens=4000, cache_write_tokens=1000),
        "anthropic",
    ),
    ("aws.bedrock", "us.anthropic.claude-sonnet-4-5-20250929-v1:0", Usage(3000, 450), "aws"),
    ("gcp.vertex_ai", "claude-sonnet-4-5@20250929", Usage(1800, 220), "google"),
    ("gcp.gemini", "gemini-2.5-pro", Usage(250_000, 2000), "google"),  # above the 200k long-context tier
    ("openai", "gpt-5", Usage(900, 2500, reasoning_tokens=1800), "openai"),
    ("mistral_ai", "mistral-large-2411", Usage(700, 150), "mistral"),
    ("groq", "llama-3.3-70b-versatile", Usage(1500, 400), "groq"),
    ("openai", "acme-support-ft-v7", Usage(1000, 100), "openai"),  # unknown: unpriced
)


def _ours(loops: int) -> Callable[[], float]:
    price = default_pricer().price
    calls = [(provider, model, usage) for provider, model, usage, _ in CALLS]

    def run() -> float:
        t0 = time.perf_counter()
        for _ in range(loops):
            for provider, model, usage in calls:
                price(provider, model, usage)
        return time.perf_counter() - t0

    return run


def _floor(loops: int) -> Callable[[], float]:
    """A dict lookup and two Decimal multiplications per call: the least any pricer can do."""
    table = {(p, m): (Decimal("0.0000025"), Decimal("0.00001")) for p, m, _, _ in CALLS}
    calls = [((p, m), u.input_tokens, u.output_tokens) for p, m, u, _ in CALLS]

    def run() -> float:
        t0 = time.perf_counter()
        for _ in range(loops):
            for key, inp, out in calls:
                p_in, p_out = table[key]
                inp * p_in + out * p_out
        return time.perf_counter() - t0

    return run


def _genai_prices(loops: int) -> Callable[[], float] | None:
    """``genai_prices.calc_price`` on the same calls, or ``None`` when the package is not installed."""
    try:
        import genai_prices
    except ImportError:
        return None
    calc_price = genai_prices.calc_price
    calls: list[tuple[Any, str, str]] = [
        (
            genai_prices.Usage(
                input_tokens=u.input_tokens,
                output_tokens=u.output_tokens,
                cache_read_tokens=u.cache_read_tokens,
                cache_write_tokens=u.cache_write_tokens,
            ),
            model,
            gp_provider,
        )
        for _, model, u, gp_provider in CALLS
    ]

    def run() -> float:
        t0 = time.perf_counter()
        for _ in range(loops):
            for usage, model, provider in calls:
                try:  # noqa: SIM105 - contextlib.suppress would add its own cost to theirs
                    calc_price(usage, model, provider_id=provider)
                except LookupError:
                    pass
        return time.perf_counter() - t0

    return run


def _check_mix() -> None:
    """Print what each call of the mix prices to, so that the mix is seen to cover what it claims."""
    pricer = default_pricer()
    print(f"  mix of {len(CALLS)} calls (catalog {pricer.catalog.version}):")
    for provider, model, usage, _ in CALLS:
        cost = pricer.price(provider, model, usage)
        how = f"{cost.provider}/{cost.model} ${cost.total_usd}" if cost.total_usd is not None else cost.reason_code
        tier = f", tier above {cost.tier_above}" if cost.tier_above else ""
        print(f"    {provider:<14} {model:<45} -> {cost.status}: {how}{tier}")


_FRESH = (
    "import time; t0 = time.perf_counter(); from otel_llmcost import Usage, default_pricer; "
    "default_pricer().price('openai', 'gpt-4o', Usage(10, 10)); print(time.perf_counter() - t0)"
)


def _fresh_interpreter(rounds: int) -> float:
    """Return the median seconds a fresh interpreter takes to import the package and load the catalog."""
    times = [float(subprocess.check_output([sys.executable, "-c", _FRESH], text=True)) for _ in range(rounds)]
    return statistics.median(times)


def _catalog_load(rounds: int) -> tuple[float, float, float, float]:
    """Return (first load s, median load s, retained MiB, peak MiB) of ``load_catalog()``."""
    t0 = time.perf_counter()
    load_catalog()
    first = time.perf_counter() - t0
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        load_catalog()
        times.append(time.perf_counter() - t0)
    tracemalloc.start()
    catalog = load_catalog()
    retained, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del catalog
    return first, statistics.median(times), retained / 2**20, peak / 2**20


def run(quick: bool = False, profile: bool = False) -> list[Result]:
    """Run the pricing benchmark, print its figures and return the summary rows."""
    loops, rounds = (2_000, 5) if quick else (10_000, 9)
    ops = loops * len(CALLS)
    print(f"== Pricing: warm default_pricer().price(), {ops:,} calls a round, median of {rounds} rounds")

    fresh = _fresh_interpreter(3)
    first, load_s, retained_mb, peak_mb = _catalog_load(3 if quick else 7)
    catalog = default_pricer().catalog
    print(f"  catalog: {len(catalog.entries)} entries, {len(catalog.exact)} providers")
    print(f"  load_catalog(): first {first * 1e3:.1f} ms, then median {load_s * 1e3:.1f} ms (files in the OS cache)")
    print(f"  fresh interpreter: import otel_llmcost + first default_pricer() use: median {fresh * 1e3:.0f} ms")
    print(f"  catalog memory (tracemalloc): {retained_mb:.2f} MiB retained, {peak_mb:.2f} MiB peak while loading")
    _check_mix()

    ours = median_per_op(time_rounds(_ours(loops), rounds), ops)
    floor = median_per_op(time_rounds(_floor(loops), rounds), ops)
    print(f"  ours         : {ours:6.2f} us/call")
    print(
        f"  floor        : {floor:6.2f} us/call  (dict lookup + 2 Decimal multiplications)  ours/floor = {ours / floor:.1f}x"
    )
    genai_loops = loops // 10  # ~25x slower than ours: fewer calls keep the round short
    genai = _genai_prices(genai_loops)
    if genai is None:
        print("  genai-prices : not installed, no comparison")
    else:
        theirs = median_per_op(time_rounds(genai, rounds), genai_loops * len(CALLS))
        print(
            f"  genai-prices : {theirs:6.2f} us/call  (calc_price {version('genai-prices')}, "
            f"{genai_loops * len(CALLS):,} calls a round)"
            f"  genai-prices/ours = {theirs / ours:.1f}x"
        )
    if profile or ours > TARGET_US:
        print_profile("pricing mix", _ours(loops))
    return [
        Result(
            "pricing: warm price() of one call", f"<= {TARGET_US:g} us/call", f"{ours:.2f} us/call", ours <= TARGET_US
        ),
        Result("pricing: cold load_catalog()", "(info)", f"{load_s * 1e3:.1f} ms, {retained_mb:.1f} MiB", None),
    ]


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer, shorter rounds")
    parser.add_argument("--profile", action="store_true", help="print a cProfile of the measured workload")
    args = parser.parse_args()
    run(quick=args.quick, profile=args.profile)


if __name__ == "__main__":
    main()
