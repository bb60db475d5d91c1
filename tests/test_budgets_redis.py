"""Spend guards on a real redis-server started on 127.0.0.1: one round trip, processes sharing a
budget without overshoot beyond one in-flight call each, and the failure policies when Redis dies."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from otel_llmcost.budgets.guard import BudgetExceededError, Guard, GuardBudget, GuardRateLimit
from otel_llmcost.budgets.redis_state import RedisState
from otel_llmcost.budgets.state import UNITS_PER_USD, fixed_window

from ._redis_server import REDIS_MISSING, Server, calls_by_command, free_port

redis = pytest.importorskip("redis", reason="the redis client is a test dependency (pip install redis)")

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        shutil.which("redis-server") is None,
        reason=REDIS_MISSING,
    ),
]

D = Decimal


@pytest.fixture()
def server(tmp_path: Path) -> Iterator[Server]:
    srv = Server(free_port(), tmp_path)
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


class CountingRedis(redis.Redis):  # type: ignore[misc]
    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.commands: list[str] = []

    def execute_command(self, *args, **options):  # type: ignore[no-untyped-def]
        self.commands.append(str(args[0]).lower())
        return super().execute_command(*args, **options)


def test_a_guard_check_is_one_evalsha(server: Server) -> None:
    client = CountingRedis(host="127.0.0.1", port=server.port)
    state = RedisState(client)
    g = Guard(
        [GuardBudget("all", "1d", D("10")), GuardBudget("pu", "1d", D("1"), per_user=True)],
        [GuardRateLimit(100, 60, "request", "user")],
        state=state,
    )
    g.admit(user="warm").settle(D("0.01"))  # loads the scripts
    admin = redis.Redis(host="127.0.0.1", port=server.port)
    before = calls_by_command(admin)
    client.commands.clear()
    permit = g.admit(user="alice", estimated_cost_usd=D("0.2"))
    assert client.commands == ["evalsha"]  # one round trip for three limits
    assert calls_by_command(admin)["evalsha"] - before["evalsha"] == 1
    permit.settle(D("0.15"))
    assert client.commands == ["evalsha", "evalsha"]
    start, _ = fixed_window(86400, time.time())
    assert admin.hgetall(f"{{otel_llmcost}}:guard:pu:{start}:alice") == {b"s": b"150000000", b"r": b"0"}
    admin.close()


def test_redis_state_enforces_like_memory(server: Server) -> None:
    g = Guard(
        [GuardBudget("pu", "1d", D("1"), per_user=True)],
        [GuardRateLimit(2, 60, "request", "tenant")],
        state=RedisState(url=server.url),
    )
    g.admit(user="alice").settle(D("0.6"))
    g.admit(user="alice").settle(D("0.6"))
    with pytest.raises(BudgetExceededError) as info:
        g.admit(user="alice")
    assert (info.value.budget, info.value.spend_usd, info.value.user) == ("pu", D("1.2"), "alice")
    g.admit(user="bob").release()
    with pytest.raises(BudgetExceededError):
        g.admit(user="bob", estimated_cost_usd=D("1.5"))
    props = {"tenant": "acme"}
    g.admit(properties=props)
    g.admit(properties=props)
    with pytest.raises(BudgetExceededError) as info:
        g.admit(properties=props)
    assert info.value.reason == "rate_limit"
    assert g.user_utilization() == [({"budget": "pu", "user": "alice"}, 1.2)]


WORKER = textwrap.dedent(
    """
    import json, random, sys, threading, time
    from decimal import Decimal
    from otel_llmcost.budgets.guard import BudgetExceededError, Guard, GuardBudget
    from otel_llmcost.budgets.redis_state import RedisState

    url, threads, cost = sys.argv[1], int(sys.argv[2]), Decimal(sys.argv[3])
    g = Guard([GuardBudget("shared", "1d", Decimal("1"))], state=RedisState(url=url))
    admitted = []
    lock = threading.Lock()

    def work():
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                permit = g.admit()
            except BudgetExceededError as exc:
                if exc.spend_usd >= exc.limit_usd:  # spent: stop (else calls in flight hold the rest)
                    break
                time.sleep(0.002)
                continue
            time.sleep(random.uniform(0.002, 0.01))  # the call is in flight
            permit.settle(cost)
            with lock:
                admitted.append(1)

    print("ready", flush=True)
    sys.stdin.readline()  # start together
    workers = [threading.Thread(target=work) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    print(json.dumps({"admitted": len(admitted), "errors": g.errors()}), flush=True)
    """
)


@pytest.mark.parametrize("threads", [1, 3])
def test_processes_sharing_a_budget_overshoot_by_at_most_one_call_each(
    server: Server, tmp_path: Path, threads: int
) -> None:
    processes, cost = 4, D("0.03")
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    # every process has seen a call's cost before the race (what the guard reserves per call)
    warm = Guard([GuardBudget("shared", "1d", D("1"))], state=RedisState(url=server.url))
    warm.admit().settle(cost)
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), server.url, str(threads), str(cost)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(processes)
    ]
    for p in procs:
        assert p.stdout is not None and p.stdout.readline().strip() == "ready"
    for p in procs:
        assert p.stdin is not None
        p.stdin.write("go\n")
        p.stdin.flush()
    results = []
    for p in procs:
        out, _ = p.communicate(timeout=30)
        assert p.returncode == 0
        results.append(json.loads(out.strip().splitlines()[-1]))
    assert all(r["errors"] == [] for r in results)
    admitted = 1 + sum(r["admitted"] for r in results)
    admin = redis.Redis(host="127.0.0.1", port=server.port)
    start, _ = fixed_window(86400, time.time())
    stored = admin.hgetall(f"{{otel_llmcost}}:guard:shared:{start}:")
    admin.close()
    spent = D(int(stored[b"s"])) / UNITS_PER_USD
    assert int(stored[b"r"]) == 0  # every reservation released
    assert spent == admitted * cost  # every call counted once
    assert D("1") - cost <= spent <= D("1") + processes * cost


def test_redis_down_fail_open_allows_and_counts(server: Server, caplog: pytest.LogCaptureFixture) -> None:
    g = Guard(
        [GuardBudget("b", "1d", D("1"))],
        state=RedisState(url=server.url, timeout_s=0.2, retry_after_s=0.2),
        failure_policy="open",
    )
    g.admit().settle(D("0.5"))
    in_flight = g.admit()
    server.stop()
    with caplog.at_level(logging.WARNING, logger="otel_llmcost.budgets"):
        in_flight.settle(D("0.2"))  # its cost cannot be recorded: counted, never raised
        for _ in range(5):
            g.admit().settle(D("0.5"))  # allowed: the budget cannot be checked
    assert g.errors() == [({"policy": "open", "reason": "unreachable"}, 6)]
    assert len(caplog.records) == 1 and "unreachable" in caplog.records[0].getMessage()
    server.start()  # back on the same port (empty: no persistence), used again after the retry delay
    time.sleep(0.25)
    g.admit().settle(D("1"))
    with pytest.raises(BudgetExceededError):
        g.admit()


def test_redis_down_fail_closed_refuses_and_counts(server: Server) -> None:
    g = Guard(
        [GuardBudget("b", "1d", D("1"))],
        state=RedisState(url=server.url, timeout_s=0.2, retry_after_s=5),
        failure_policy="closed",
    )
    g.admit().release()
    server.stop()
    t0 = time.monotonic()
    for _ in range(3):
        with pytest.raises(BudgetExceededError) as info:
            g.admit()
        assert info.value.reason == "state_unavailable"
        assert "unreachable" in str(info.value) and "'closed'" in str(info.value)
    assert time.monotonic() - t0 < 1  # after the first failure, calls fail fast
    assert g.errors() == [({"policy": "closed", "reason": "unreachable"}, 3)]
