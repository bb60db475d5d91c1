"""Helpers shared by the benchmarks: timing, memory, profiling and the result record.

Every figure is measured in the run that prints it, with :func:`time.perf_counter`: a workload is
warmed up, then timed over several rounds, and the median round is reported.
"""

from __future__ import annotations

import cProfile
import gc
import io
import pstats
import statistics
import sysconfig
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["GENAI_CALLS", "Result", "median_per_op", "print_profile", "rss_mb", "time_rounds"]

GENAI_CALLS = (
    ("openai", "gpt-4o-mini", "gpt-4o-mini-2024-07-18", "api.openai.com", 1200, 300),
    ("anthropic", "claude-sonnet-4-5", "claude-sonnet-4-5-20250929", "api.anthropic.com", 5300, 800),
    ("gcp.gemini", "gemini-2.5-flash", "gemini-2.5-flash", "generativelanguage.googleapis.com", 2200, 640),
    (
        "aws.bedrock",
        "us.anthropic.claude-haiku-4-5-20251001-v1:0",
        "us.anthropic.claude-haiku-4-5-20251001-v1:0",
        "bedrock-runtime.us-east-1.amazonaws.com",
        900,
        120,
    ),
)
"""The GenAI calls the processor and collector benchmarks send: provider, request model, response
model, server address, input and output tokens."""

# Path prefixes cut from profile lines so that they stay readable.
_PREFIXES = (sysconfig.get_paths()["purelib"] + "/", str(Path(__file__).resolve().parent.parent) + "/")


@dataclass(frozen=True, slots=True)
class Result:
    """One target of the summary table.

    Attributes:
        name: what was measured.
        target: the target in words (``<= 5 us/call``).
        measured: the figure measured in this run, formatted.
        passed: whether the target was met; ``None`` for a figure given for information only.
    """

    name: str
    target: str
    measured: str
    passed: bool | None

    @property
    def verdict(self) -> str:
        """``PASS``, ``MISS`` or ``info``."""
        if self.passed is None:
            return "info"
        return "PASS" if self.passed else "MISS"


def time_rounds(run: Callable[[], float], rounds: int, warmup: int = 1) -> list[float]:
    """Call *run* ``warmup`` times untimed, then ``rounds`` times; return what each timed call returned.

    *run* times its own work with :func:`time.perf_counter` and returns seconds, so that set-up
    and tear-down (flushing, building inputs) stay outside the figure. The garbage collector is
    run between rounds, never inside one.
    """
    for _ in range(warmup):
        run()
    out = []
    for _ in range(rounds):
        gc.collect()
        out.append(run())
    return out


def median_per_op(seconds: list[float], ops: int) -> float:
    """Return the median round, in microseconds per operation, of rounds of *ops* operations."""
    return statistics.median(seconds) / ops * 1e6


def rss_mb() -> float:
    """Return this process's resident set size (``VmRSS`` of ``/proc/self/status``) in MiB."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("VmRSS not found in /proc/self/status")


def print_profile(title: str, work: Callable[[], object], top: int = 18) -> None:
    """Run *work* under :mod:`cProfile` and print the *top* functions by own time."""
    profiler = cProfile.Profile()
    profiler.enable()
    work()
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats(pstats.SortKey.TIME).print_stats(top)
    lines = out.getvalue().splitlines()
    # Drop pstats' preamble (blank lines and "Ordered by"), keep the totals line and the table.
    body = [ln for ln in lines if ln.strip() and not ln.strip().startswith(("Ordered by", "List reduced"))]
    print(f"\n--- cProfile: {title} (top {top} by own time) ---")
    for line in body:
        for prefix in _PREFIXES:
            line = line.replace(prefix, "")
        print(line)
