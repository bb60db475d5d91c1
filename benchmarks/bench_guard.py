"""Spend-guard benchmark: a guard check in memory and in Redis, and per-user tracking memory.

Measures, in one run, with the guard built from ``examples/budgets.yaml`` (a monthly, a daily
filtered, a weekly filtered, an hourly model budget, a per-user daily budget, a per-user request
quota and a per-feature cents quota) the way ``configure(budgets=...)`` builds it:

* in memory: ``Guard.admit()`` of a call (users cycling over 100,000, production traffic of one
  feature), and ``admit()`` + ``settle()`` -- everything a call pays;
* in Redis (a ``redis-server`` this benchmark starts on 127.0.0.1, when installed): the same, plus
  round trips per check and per settle, counted by the server (``INFO commandstats``);
* per-user tracking of 1,000,000 users in one day: how much the process grew (RSS) after each
  user's call was admitted and settled (a per-user budget and a per-user request quota).

Targets: a check <= 5 us in memory and <= 1 Redis round trip; 1,000,000 users < 100 MB.

Run: ``.venv/bin/python -m benchmarks.bench_guard [--quick] [--profile]``.
"""

from __future__ import annotations

import argparse
import gc
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

from otel_llmcost.budgets import load_budgets
from otel_llmcost.budgets.guard import Guard, GuardBudget
from otel_llmcost.budgets.limits import limits_from_file
from otel_llmcost.budgets.state import MemoryState
from otel_llmcost.pricing import default_pricer
from tests._redis_server import Server, calls_by_command, free_port, have_redis_server

from ._common import Result, median_per_op, print_profile, rss_mb, time_rounds

__all__ = ["TARGET_CHECK_US", "TARGET_MEMORY_MB", "TARGET_ROUND_TRIPS", "run"]

TARGET_CHECK_US = 5.0
TARGET_ROUND_TRIPS = 1.0
TARGET_MEMORY_MB = 100.0
BUDGETS_FILE = Path(__file__).resolve().parent.parent / "examples" / "budgets.yaml"
COST = Decimal("0.000002")  # a tiny call: a million of them stay far from every limit (no breach path)
PROPS = {"environment": "production", "feature": "search"}


def _guard(**kwargs: Any) -> Guard:
    pricer = default_pricer()

    def labels(provider: str | None, model: str | None) -> tuple[str | None, str | None]:
        cost = pricer.price(provider or "", model or "", None)
        return cost.provider, cost.model

    return Guard.from_budgets(load_budgets(BUDGETS_FILE), labels=labels, **kwargs)


def _checks(g: Guard, loops: int, users: list[str], *, settle: bool) -> Callable[[], float]:
    """Admit and settle *loops* calls; time the admissions only (``settle=False``) or both."""
    admit, clock = g.admit, time.perf_counter

    def run() -> float:
        n = len(users)
        if settle:
            t0 = clock()
            for i in range(loops):
                admit(provider="openai", model="gpt-4o-mini", user=users[i % n], properties=PROPS).settle(COST)
            return clock() - t0
        took = 0.0  # settled untimed, so that reservations do not pile up (two clock reads: ~0.1 us)
        for i in range(loops):
            t0 = clock()
            permit = admit(provider="openai", model="gpt-4o-mini", user=users[i % n], properties=PROPS)
            took += clock() - t0
            permit.settle(COST)
        return took

    return run


def _in_memory(loops: int, rounds: int, profile: bool) -> tuple[float, float, float]:
    one = Guard([GuardBudget("daily", "1d", Decimal(500), filter={"environment": "production"})])
    single = median_per_op(time_rounds(_checks(one, loops, ["u"], settle=False), rounds), loops)
    g = _guard()
    users = [f"user-{i}" for i in range(100_000)]  # under the 60-a-minute per-user quota
    g.admit(user="warm", properties=PROPS).settle(COST)  # every limit has learned a call's cost
    check = median_per_op(time_rounds(_checks(g, loops, users, settle=False), rounds), loops)
    full = median_per_op(time_rounds(_checks(g, loops, users, settle=True), rounds), loops)
    if profile or check > TARGET_CHECK_US:
        print_profile("guard check in memory", _checks(_guard(), loops, users, settle=True))
    return check, full, single


@contextmanager
def _redis_server() -> Iterator[int]:
    """The tests' redis-server (nothing written to disk) on a free port, for the benchmark's run."""
    with tempfile.TemporaryDirectory() as workdir:
        server = Server(free_port(), Path(workdir))
        server.start()
        try:
            yield server.port
        finally:
            server.stop()


def _evalsha(client: Any) -> int:
    """EVALSHA calls the server has run (INFO commandstats; commands inside scripts count apart)."""
    return calls_by_command(client).get("evalsha", 0)


def _in_redis(loops: int, rounds: int) -> tuple[float, float, float, float] | None:
    """(check us, check + settle us, round trips per check, per settle), or None without Redis."""
    if not have_redis_server():
        return None
    try:
        import redis
    except ImportError:
        return None
    from otel_llmcost.budgets.redis_state import RedisState

    class Counting(redis.Redis):  # type: ignore[misc]
        """Counts the requests this client sends: each is one round trip (no pipelines here)."""

        sent = 0

        def execute_command(self, *args: Any, **options: Any) -> Any:
            Counting.sent += 1
            return super().execute_command(*args, **options)

    with _redis_server() as port:
        users = [f"user-{i}" for i in range(100_000)]  # under the 60-a-minute per-user quota
        g = _guard(state=RedisState(Counting(host="127.0.0.1", port=port, socket_timeout=1.0)))
        g.admit(user="warm", properties=PROPS).settle(COST)  # loads the scripts, learns a cost
        admin = redis.Redis(host="127.0.0.1", port=port)
        n = 2_000
        sent, evals = Counting.sent, _evalsha(admin)
        permits = [g.admit(provider="openai", model="gpt-4o-mini", user=users[i], properties=PROPS) for i in range(n)]
        per_check, evals_check = (Counting.sent - sent) / n, (_evalsha(admin) - evals) / n
        sent = Counting.sent
        for p in permits:
            p.settle(COST)
        per_settle = (Counting.sent - sent) / n
        admin.close()
        if per_check != evals_check:  # the client's count and the server's must agree
            print(f"  redis : client sent {per_check:.2f} requests per check, the server ran {evals_check:.2f} EVALSHA")
        check = median_per_op(time_rounds(_checks(g, loops, users, settle=False), rounds), loops)
        full = median_per_op(time_rounds(_checks(g, loops, users, settle=True), rounds), loops)
        return check, full, per_check, per_settle


def _users_memory(users: int) -> tuple[float, float, float]:
    """After *users* distinct users each made a call today: (RSS growth MiB, counters MiB, seconds).

    The resident set's growth is the honest upper bound (it also holds the allocator's free lists
    of the per-call garbage); the counters are the compact per-user tables themselves.
    """
    g = _guard()
    names = [f"u{i}" for i in range(users)]  # made first: the application holds its user ids anyway
    gc.collect()
    before = rss_mb()
    admit = g.admit
    t0 = time.perf_counter()
    for name in names:
        admit(user=name, properties=PROPS).settle(COST)
    took = time.perf_counter() - t0
    gc.collect()
    grown = rss_mb() - before
    state = g.state
    counters = state.nbytes() / 2**20 if isinstance(state, MemoryState) else float("nan")
    assert g.users_over_threshold()  # the tracker is alive
    return grown, counters, took


def run(quick: bool = False, profile: bool = False) -> list[Result]:
    """Run the guard benchmark, print its figures and return the summary rows."""
    loops, rounds = (20_000, 5) if quick else (100_000, 7)
    budgets, rate_limits = limits_from_file(load_budgets(BUDGETS_FILE))
    print(
        f"== Spend guard: {len(budgets)} budgets and {len(rate_limits)} rate limits from {BUDGETS_FILE.name}, "
        f"{loops:,} calls a round, median of {rounds} rounds"
    )
    check, full, single = _in_memory(loops, rounds, profile)
    print(f"  memory: admit(), one budget: {single:6.2f} us/call")
    applying = len(_guard()._applicable("openai", "gpt-4o-mini", None, "u", PROPS))  # what each call is checked against
    print(f"  memory: admit()            : {check:6.2f} us/call  ({applying} of the file's limits apply to each call)")
    print(f"  memory: admit() + settle() : {full:6.2f} us/call")
    results = [
        Result(
            "guard: check in memory",
            f"<= {TARGET_CHECK_US:g} us/call",
            f"{check:.2f} us/call",
            check <= TARGET_CHECK_US,
        ),
        Result("guard: check + settle in memory", "(info)", f"{full:.2f} us/call", None),
        Result("guard: check in memory, one budget", "(info)", f"{single:.2f} us/call", None),
    ]
    redis_loops = max(loops // 20, 2_000)
    measured = _in_redis(redis_loops, 3 if quick else 5)
    if measured is None:
        print("  redis : redis-server or the redis package is not installed, not measured")
        results.append(Result("guard: Redis round trips per check", "<= 1", "not measured (no redis)", None))
    else:
        r_check, r_full, trips, settle_trips = measured
        print(f"  redis : admit()            : {r_check:6.1f} us/call, {trips:.2f} round trips per check")
        print(f"  redis : admit() + settle() : {r_full:6.1f} us/call, {settle_trips:.2f} round trips per settle")
        results += [
            Result("guard: Redis round trips per check", "<= 1", f"{trips:.2f}", trips <= TARGET_ROUND_TRIPS),
            Result("guard: check in Redis (local server)", "(info)", f"{r_check:.1f} us/call", None),
        ]
    users = 1_000_000
    mb, counters, took = _users_memory(users)
    print(
        f"  per-user tracking, {users:,} users in one day: process grew {mb:.1f} MiB"
        f" (per-user counters {counters:.1f} MiB; {took:.1f} s to feed)"
    )
    results.append(
        Result(
            "guard: per-user tracking, 1M users/day",
            f"< {TARGET_MEMORY_MB:g} MB",
            f"{mb:.1f} MiB",
            mb < TARGET_MEMORY_MB,
        )
    )
    return results


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer, shorter rounds")
    parser.add_argument("--profile", action="store_true", help="print a cProfile of the measured workload")
    args = parser.parse_args()
    run(quick=args.quick, profile=args.profile)


if __name__ == "__main__":
    main()
