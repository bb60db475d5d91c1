"""Run every benchmark and print a summary table of targets, measured figures and PASS/MISS.

Run by hand from the repository root, never in CI::

    .venv/bin/python -m benchmarks.run            # full run, a few minutes
    .venv/bin/python -m benchmarks.run --quick    # shorter rounds, 200k spans for cardinality (~1 min)
    .venv/bin/python -m benchmarks.run --profile  # also print cProfile hotspots of every benchmark

Figures are measured in this run on this machine; the header says which machine, code and load.
A benchmark prints a cProfile of its workload by itself when it misses its target. The exit
status is 0 whatever the verdicts: a benchmark reports, it does not gate.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path

from . import (
    bench_cardinality,
    bench_collector,
    bench_guard,
    bench_instrumentation,
    bench_pricing,
    bench_processor,
    bench_startup,
)
from ._common import Result

__all__ = ["main"]

BENCHMARKS: dict[str, Callable[..., list[Result]]] = {
    "pricing": bench_pricing.run,
    "processor": bench_processor.run,
    "cardinality": bench_cardinality.run,
    "instrumentation": bench_instrumentation.run,
    "startup": bench_startup.run,
    "collector": bench_collector.run,
    "guard": bench_guard.run,
}


def _code_state() -> str:
    """Return the git commit of the checkout, marked when there are uncommitted changes."""
    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.check_output(["git", "rev-parse", "--short", "HEAD"], cwd=root, text=True).strip()
        dirty = subprocess.check_output(
            ["git", "status", "--porcelain", "--", "otel_llmcost", "pricing"], cwd=root, text=True
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return f"{commit}{' + uncommitted changes to otel_llmcost/ or pricing/' if dirty.strip() else ''}"


def _header(quick: bool) -> None:
    load = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"otel-llmcost benchmarks ({'quick' if quick else 'full'} run), {time.strftime('%Y-%m-%d %H:%M:%S')}")
    print(
        f"  Python {platform.python_version()} on {platform.machine()} {platform.system()}, {os.cpu_count()} CPUs; "
        f"load average {load} (1/5/15 min)"
    )
    print(
        f"  otel-llmcost {version('otel-llmcost')} at {_code_state()}; opentelemetry-sdk {version('opentelemetry-sdk')}"
    )
    print()


def _summary(results: list[Result]) -> None:
    rows = [
        ("benchmark", "target", "measured", "verdict"),
        *((r.name, r.target, r.measured, r.verdict) for r in results),
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    rule = "  ".join("-" * w for w in widths)
    print("\n== Summary")
    for n, row in enumerate(rows):
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
        if n == 0:
            print(rule)


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter rounds; about a minute")
    parser.add_argument("--profile", action="store_true", help="print cProfile hotspots of every benchmark")
    parser.add_argument(
        "--only", choices=sorted(BENCHMARKS), action="append", help="run only this benchmark (repeatable)"
    )
    args = parser.parse_args(argv)
    _header(args.quick)
    results: list[Result] = []
    started = time.perf_counter()
    for name, bench in BENCHMARKS.items():
        if args.only and name not in args.only:
            continue
        t0 = time.perf_counter()
        results.extend(bench(quick=args.quick, profile=args.profile))
        print(f"  ({name}: {time.perf_counter() - t0:.0f} s)\n")
    _summary(results)
    load = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"\n  total {time.perf_counter() - started:.0f} s; load average at the end {load}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
