"""Start-up costs: a cold ``otel-llmcost price`` process, ``import otel_llmcost``, the catalog's load and memory.

Targets (issue 4): cold ``otel-llmcost price ...`` process ≤ 0.3 s; ``import otel_llmcost`` ≤ 150 ms;
catalog memory ≤ 30 MiB. Each process figure is the median of several fresh interpreters, measured
beside a bare ``python -c pass`` so the interpreter's own start-up is visible.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

from otel_llmcost.pricing import load_catalog

from ._common import Result

__all__ = ["run"]

CLI = [sys.executable, "-m", "otel_llmcost", "price", "openai", "gpt-4o-2024-08-06", "--input-tokens", "1200",
       "--output-tokens", "300", "--json"]  # fmt: skip


def _process_seconds(argv: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True, cwd=Path(__file__).resolve().parent.parent)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def run(quick: bool = False, profile: bool = False) -> list[Result]:
    """Measure and print; return the summary rows."""
    runs = 5 if quick else 11
    print(f"== Start-up: fresh interpreters, median of {runs}")
    bare = _process_seconds([sys.executable, "-c", "pass"], runs)
    imported = _process_seconds([sys.executable, "-c", "import otel_llmcost"], runs)
    cli = _process_seconds(CLI, runs)
    print(f"  python -c pass                 : {bare * 1000:7.1f} ms")
    print(
        f"  python -c 'import otel_llmcost': {imported * 1000:7.1f} ms  (import alone {(imported - bare) * 1000:.1f} ms)"
    )
    print(f"  otel-llmcost price ... --json  : {cli * 1000:7.1f} ms  (catalog loaded, one call priced)")
    t0 = time.perf_counter()
    load_catalog()
    load_ms = (time.perf_counter() - t0) * 1000  # timed apart: tracemalloc slows loading tenfold
    tracemalloc.start()
    catalog = load_catalog()
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    size = len(catalog.models())
    print(f"  catalog: {size} models, {len(catalog.providers())} providers; load {load_ms:.1f} ms, "
          f"{current / 2**20:.1f} MiB retained ({peak / 2**20:.1f} MiB peak)")  # fmt: skip
    del profile  # nothing here is worth a cProfile: the figures are whole processes
    return [
        Result("startup: cold `otel-llmcost price` process", "<= 0.3 s", f"{cli:.3f} s", cli <= 0.3),
        Result(
            "startup: import otel_llmcost", "<= 150 ms", f"{(imported - bare) * 1000:.1f} ms", imported - bare <= 0.15
        ),
        Result(
            "startup: catalog memory", "<= 30 MiB", f"{current / 2**20:.1f} MiB ({size} models)", current <= 30 * 2**20
        ),
    ]


if __name__ == "__main__":
    run(quick="--quick" in sys.argv)
