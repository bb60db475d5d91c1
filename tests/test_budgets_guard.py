"""Spend guards in memory: windows, thresholds, actions, rate limits, per-user tracking, public API."""

from __future__ import annotations

import calendar
import logging
import threading
import time
from collections.abc import Iterator, Sequence
from datetime import datetime, timezone
from decimal import Decimal

import pytest

import otel_llmcost
from otel_llmcost.budgets import runtime as guard_mod
from otel_llmcost.budgets.guard import BudgetExceededError, Guard, GuardBudget, GuardRateLimit
from otel_llmcost.budgets.state import (
    Check,
    MemoryState,
    Seen,
    Settle,
    StateUnavailableError,
    decide,
    fixed_window,
)
from otel_llmcost.budgets.users import CompactCounter, UserUtilization
from otel_llmcost.config import ConfigError

D = Decimal
T0 = calendar.timegm((2025, 3, 12, 10, 30, 0))  # a Wednesday


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def at(*fields: int) -> float:
    return float(calendar.timegm((*fields, *(0,) * (6 - len(fields)))))


def utc(*fields: int) -> datetime:
    return datetime(*fields, tzinfo=timezone.utc)  # type: ignore[misc]


def spend(g: Guard, cost: str, **kw: object) -> None:
    g.admit(**kw).settle(D(cost))  # type: ignore[arg-type]


# --- windows -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("window", "now", "start", "end"),
    [
        (3600, at(2025, 3, 12, 10, 30), at(2025, 3, 12, 10), at(2025, 3, 12, 11)),
        (86400, at(2025, 3, 12, 23, 59, 59), at(2025, 3, 12), at(2025, 3, 13)),
        (7 * 86400, at(2025, 3, 12, 10), at(2025, 3, 10), at(2025, 3, 17)),  # Monday to Monday
        (7 * 86400, at(2025, 3, 10), at(2025, 3, 10), at(2025, 3, 17)),
        (None, at(2025, 3, 12, 10), at(2025, 3, 1), at(2025, 4, 1)),
        (None, at(2024, 2, 29, 23, 59, 59), at(2024, 2, 1), at(2024, 3, 1)),
        (None, at(2025, 12, 31, 23), at(2025, 12, 1), at(2026, 1, 1)),
        (None, at(2026, 1, 1), at(2026, 1, 1), at(2026, 2, 1)),
    ],
)
def test_fixed_windows_are_aligned_in_utc(window: int | None, now: float, start: float, end: float) -> None:
    assert fixed_window(window, now) == (start, end)


def test_thirty_day_windows_are_30_day_blocks() -> None:
    start, end = fixed_window(30 * 86400, T0)
    assert end - start == 30 * 86400 and start <= T0 < end and start % (30 * 86400) == 0


def test_hourly_budget_raises_with_spend_limit_and_reset() -> None:
    clock = Clock()
    g = Guard([GuardBudget("hourly", "1h", D("1.00"))], clock=clock)
    spend(g, "0.60")
    spend(g, "0.45")  # admitted below the limit, ends above it: the one in-flight call
    with pytest.raises(BudgetExceededError) as info:
        g.admit()
    err = info.value
    assert (err.budget, err.spend_usd, err.limit_usd, err.reason) == ("hourly", D("1.05"), D("1"), "budget")
    assert err.reset_at == utc(2025, 3, 12, 11)
    assert err.user is None
    assert str(err) == (
        "LLM budget 'hourly' exceeded: $1.05 of $1.00 spent (105%) this 1h window; it resets at 2025-03-12 11:00:00 UTC"
    )
    clock.now = at(2025, 3, 12, 11)  # the next window starts empty
    g.admit().settle(D("0.10"))


def test_daily_budget_resets_at_midnight_utc() -> None:
    clock = Clock(at(2025, 3, 12, 23, 59))
    g = Guard([GuardBudget("daily", "1d", D("5"))], clock=clock)
    spend(g, "5")
    with pytest.raises(BudgetExceededError) as info:
        g.admit()
    assert info.value.reset_at == utc(2025, 3, 13)
    clock.now = at(2025, 3, 13, 0, 0, 1)
    g.admit()


def test_calendar_month_budget_resets_on_the_first() -> None:
    clock = Clock(at(2025, 1, 31, 22))
    g = Guard([GuardBudget("monthly", "month", D("100"))], clock=clock)
    spend(g, "100")
    with pytest.raises(BudgetExceededError) as info:
        g.admit()
    assert info.value.reset_at == utc(2025, 2, 1)
    assert "this month window" in str(info.value)
    clock.now = at(2025, 2, 28, 23)  # February: 28 days, still one window
    spend(g, "100")
    with pytest.raises(BudgetExceededError) as info:
        g.admit()
    assert info.value.reset_at == utc(2025, 3, 1)
    clock.now = at(2025, 3, 1)
    g.admit()


def test_a_call_estimated_to_exceed_is_refused_before_it_starts() -> None:
    g = Guard([GuardBudget("b", "1d", D("1"))], clock=Clock())
    spend(g, "0.70")
    with pytest.raises(BudgetExceededError) as info:
        g.admit(estimated_cost_usd=D("0.40"))
    assert "estimated $0.4 would exceed it" in str(info.value)
    assert info.value.spend_usd == D("0.7")
    g.admit(estimated_cost_usd=D("0.30")).settle(D("0.25"))  # fits exactly


def test_reservations_of_calls_in_flight_count_until_settled() -> None:
    g = Guard([GuardBudget("b", "1d", D("1"))], clock=Clock())
    first = g.admit(estimated_cost_usd=D("0.6"))
    with pytest.raises(BudgetExceededError):
        g.admit(estimated_cost_usd=D("0.6"))  # 0.6 reserved + 0.6 > 1
    first.settle(D("0.1"))  # cheaper than estimated: the rest is released
    g.admit(estimated_cost_usd=D("0.6")).release()
    g.admit(estimated_cost_usd=D("0.9")).settle(D("0.9"))
    with pytest.raises(BudgetExceededError):
        g.admit()


def test_overshoot_is_at_most_one_in_flight_call_per_process() -> None:
    # 8 threads, one process: near the limit only one call may be admitted without its
    # reservation (the largest cost seen) fitting, so the overshoot is below one call.
    cost = D("0.07")
    g = Guard([GuardBudget("b", "1d", D("1"))])
    g.admit().settle(cost)  # the guard learns what a call costs
    admitted = [1]
    lock = threading.Lock()

    def worker() -> None:
        refusals = 0
        while refusals < 30:
            try:
                permit = g.admit()
            except BudgetExceededError:
                refusals += 1
                time.sleep(0.001)
                continue
            time.sleep(0.002)
            permit.settle(cost)
            with lock:
                admitted[0] += 1

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    total = admitted[0] * cost
    assert D("1") - cost <= total <= D("1") + cost


def test_action_log_logs_once_per_window_and_lets_calls_through(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    g = Guard([GuardBudget("soft", "1h", D("1"), action="log")], clock=clock)
    spend(g, "2")
    with caplog.at_level(logging.WARNING, logger="otel_llmcost.budgets"):
        for _ in range(3):
            spend(g, "1")
        clock.now += 3600
        spend(g, "5")
        spend(g, "1")
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2, messages
    assert "budget 'soft' exceeded" in messages[0] and "action: log, the call goes ahead" in messages[0]
    assert ({"budget": "soft", "action": "log"}, 4) in g.breaches()


def test_raise_and_log_limits_together() -> None:
    g = Guard(
        [GuardBudget("soft", "1d", D("1"), action="log"), GuardBudget("hard", "1d", D("3"))],
        clock=Clock(),
    )
    spend(g, "2")
    g.admit().release()  # soft breached: only logged
    spend(g, "1")
    with pytest.raises(BudgetExceededError) as info:
        g.admit()
    assert info.value.budget == "hard"


def test_filters_pick_the_calls_a_budget_covers() -> None:
    g = Guard(
        [
            GuardBudget("prod-search", "1d", D("1"), filter={"environment": "prod", "feature": "search"}),
            GuardBudget("gpt4o", "1d", D("1"), filter={"provider": "openai", "model": "gpt-4o"}),
        ],
        clock=Clock(),
    )
    prod_search = {"environment": "prod", "feature": "search"}
    spend(g, "1", properties=prod_search)
    with pytest.raises(BudgetExceededError):
        g.admit(properties=prod_search)
    g.admit(properties={"environment": "dev", "feature": "search"})
    g.admit(properties={"environment": "prod"})
    spend(g, "1", provider="OpenAI", model="gpt-4o")
    with pytest.raises(BudgetExceededError) as info:
        g.admit(provider="openai", model="gpt-4o")
    assert info.value.budget == "gpt4o"
    g.admit(provider="openai", model="gpt-4o-mini")


def test_filters_accept_several_values_and_the_operation() -> None:
    g = Guard(
        [GuardBudget("chat-prod", "1d", D("1"), filter={"environment": ["prod", "staging"], "operation": "chat"})],
        clock=Clock(),
    )
    spend(g, "1", properties={"environment": "staging"}, operation="chat")
    with pytest.raises(BudgetExceededError):
        g.admit(properties={"environment": "prod"}, operation="Chat")
    g.admit(properties={"environment": "prod"}, operation="embeddings")
    g.admit(properties={"environment": "dev"}, operation="chat")


def test_per_user_budgets_apply_to_each_user_separately() -> None:
    g = Guard([GuardBudget("per-user", "1d", D("1"), per_user=True)], clock=Clock())
    spend(g, "1", user="alice")
    with pytest.raises(BudgetExceededError) as info:
        g.admit(user="alice")
    assert info.value.user == "alice"
    assert "for user 'alice'" in str(info.value)
    g.admit(user="bob")
    g.admit()  # no user: not covered by a per-user budget


# --- rate limits -------------------------------------------------------------------------------


def test_request_quota_over_a_sliding_window() -> None:
    clock = Clock(at(2025, 3, 12, 10, 0, 0))
    g = Guard(rate_limits=[GuardRateLimit(3, 60, "request", "user")], clock=clock)
    for _ in range(3):
        g.admit(user="u")
    with pytest.raises(BudgetExceededError) as info:
        g.admit(user="u")
    err = info.value
    assert (err.budget, err.reason, err.spend_usd, err.limit_usd) == (
        "3;w=60;u=request;s=user",
        "rate_limit",
        None,
        None,
    )
    assert "3 of 3 requests in the last 60s" in str(err)
    # all 3 in the current bucket: they must have decayed to 2 -> 1/3 into the next bucket
    assert err.reset_at == utc(2025, 3, 12, 10, 1, 20)
    g.admit(user="other")  # per user
    g.admit()  # no user: not covered
    clock.now = at(2025, 3, 12, 10, 1, 10)  # previous bucket weighs 5/6: 2.5 + 1 > 3
    with pytest.raises(BudgetExceededError):
        g.admit(user="u")
    clock.now = at(2025, 3, 12, 10, 1, 20)  # weighs 2/3: 2 + 1 <= 3
    g.admit(user="u")
    clock.now = at(2025, 3, 12, 10, 3)  # two buckets later: empty
    for _ in range(3):
        g.admit(user="u")


def test_a_sliding_window_has_no_burst_at_bucket_edges() -> None:
    clock = Clock(at(2025, 3, 12, 10, 0, 59))
    g = Guard(rate_limits=[GuardRateLimit(10, 60, "request", "tenant")], clock=clock)
    props = {"tenant": "acme"}
    for _ in range(10):
        g.admit(properties=props)
    clock.now = at(2025, 3, 12, 10, 1, 1)  # a fixed window would allow 10 more right now
    with pytest.raises(BudgetExceededError) as info:
        g.admit(properties=props)
    assert "for tenant='acme'" in str(info.value)
    g.admit(properties={"tenant": "globex"})


def test_a_rate_limit_without_scope_is_one_shared_counter_and_can_be_filtered() -> None:
    g = Guard(rate_limits=[GuardRateLimit(2, 60, "request", filter={"feature": "search"})], clock=Clock())
    g.admit(user="a", properties={"feature": "search"})
    g.admit(user="b", properties={"feature": "search"})
    with pytest.raises(BudgetExceededError) as info:
        g.admit(user="c", properties={"feature": "search"})
    assert info.value.budget == "2;w=60;u=request" and info.value.user is None
    g.admit(properties={"feature": "chat"})


def test_cents_quota_counts_spend_after_calls() -> None:
    clock = Clock(at(2025, 3, 12, 10))
    g = Guard(rate_limits=[GuardRateLimit(50, 3600, "cents", "feature")], clock=clock)
    props = {"feature": "search"}
    spend(g, "0.30", properties=props)
    spend(g, "0.25", properties=props)
    with pytest.raises(BudgetExceededError) as info:
        g.admit(properties=props)
    err = info.value
    assert (err.reason, err.spend_usd, err.limit_usd) == ("rate_limit", D("0.55"), D("0.5"))
    assert "55.00 of 50 cents in the last 3600s" in str(err)
    clock.now += 2 * 3600
    g.admit(properties=props)


def test_request_quota_is_charged_only_when_the_call_is_admitted() -> None:
    g = Guard([GuardBudget("b", "1d", D("1"))], [GuardRateLimit(2, 60, "request", "user")], clock=Clock())
    spend(g, "1", user="u")
    for _ in range(5):
        with pytest.raises(BudgetExceededError) as info:
            g.admit(user="u")
        assert info.value.budget == "b"  # refused by the budget: the quota is untouched


# --- failure policy and robustness ---------------------------------------------------------------


class DownState:
    def admit(self, checks: Sequence[Check]) -> tuple[bool, list[Seen]]:
        raise StateUnavailableError("unreachable", "ConnectionError: connection refused")

    def settle(self, entries: Sequence[Settle]) -> list[int]:
        raise StateUnavailableError("unreachable", "ConnectionError: connection refused")


def test_fail_open_allows_logs_once_and_counts(caplog: pytest.LogCaptureFixture) -> None:
    g = Guard([GuardBudget("b", "1d", D("1"))], state=DownState(), failure_policy="open")
    with caplog.at_level(logging.WARNING, logger="otel_llmcost.budgets"):
        for _ in range(3):
            g.admit().settle(D("1"))
    assert g.errors() == [({"policy": "open", "reason": "unreachable"}, 3)]
    assert len(caplog.records) == 1
    assert "policy open: calls go ahead unguarded" in caplog.records[0].getMessage()


def test_fail_closed_refuses_with_a_clear_reason() -> None:
    clock = Clock()
    g = Guard([GuardBudget("b", "1d", D("1"))], state=DownState(), failure_policy="closed", clock=clock)
    with pytest.raises(BudgetExceededError) as info:
        g.admit()
    err = info.value
    assert (err.budget, err.reason, err.spend_usd, err.limit_usd) == ("b", "state_unavailable", None, D("1"))
    assert "shared state is unavailable" in str(err) and "failure policy is 'closed'" in str(err)
    assert err.reset_at == utc(2025, 3, 13)
    assert g.errors() == [({"policy": "closed", "reason": "unreachable"}, 1)]


def test_fail_closed_does_not_refuse_for_log_only_limits() -> None:
    g = Guard([GuardBudget("b", "1d", D("1"), action="log")], state=DownState(), failure_policy="closed")
    g.admit()


def test_a_bug_in_the_guard_never_stops_the_call() -> None:
    class Broken(MemoryState):
        def admit(self, checks: Sequence[Check]) -> tuple[bool, list[Seen]]:
            raise RuntimeError("boom")

    g = Guard([GuardBudget("b", "1d", D("1"))], state=Broken())
    g.admit().settle(D("1"))
    assert g.errors() == [({"policy": "open", "reason": "internal_error"}, 1)]


@pytest.mark.parametrize(
    ("make", "key"),
    [
        (lambda: GuardBudget("b", "2d", D("1")), "budgets.b.window"),
        (lambda: GuardBudget("b", 0, D("1")), "budgets.b.window"),
        (lambda: GuardBudget("b", "1d", D("0")), "budgets.b.limit_usd"),
        (lambda: GuardBudget("b", "1d", 1), "budgets.b.limit_usd"),
        (lambda: GuardBudget("b", "1d", D("1"), action="stop"), "budgets.b.action"),
        (lambda: GuardBudget("b", "1d", D("1"), thresholds=(0.5, 1.2)), "budgets.b.thresholds"),
        (lambda: GuardRateLimit(0, 60, "request", "user"), "rate_limits[0;w=60;u=request;s=user].quota"),
        (lambda: GuardRateLimit(10, 0, "request", "user"), "rate_limits[10;w=0;u=request;s=user].w"),
        (lambda: GuardRateLimit(10, 60, "tokens", "user"), "rate_limits[10;w=60;u=tokens;s=user].u"),
        (lambda: GuardRateLimit(10, 60, "request", ""), "rate_limits[10;w=60;u=request].s"),
        (lambda: Guard(failure_policy="maybe"), "failure_policy"),
        (lambda: Guard([GuardBudget("b", "1d", D("1"))] * 2), "budgets.name"),
    ],
)
def test_bad_configuration_names_the_key(make: object, key: str) -> None:
    with pytest.raises(ConfigError) as info:
        make()  # type: ignore[operator]
    assert info.value.key == key


def test_decide_matches_the_documented_rule() -> None:
    assert decide("r", 2, 0, 3, 1, True, True) is False
    assert decide("r", 3, 0, 3, 1, True, True) is True
    assert decide("b", 100, 0, 100, 0, False, True) is True  # spent
    assert decide("b", 90, 5, 100, 10, False, True) is False  # sole: admitted while not spent
    assert decide("b", 90, 5, 100, 10, False, False) is True  # not sole: its reservation must fit
    assert decide("b", 90, 5, 100, 10, True, True) is True  # an explicit estimate must fit
    assert decide("b", 90, 0, 100, 10, True, True) is False


# --- per-user tracking -------------------------------------------------------------------------


def test_compact_counter_is_exact_and_grows() -> None:
    c = CompactCounter(initial_capacity=8)
    for i in range(5000):
        c.add(f"user-{i}", i)
    c.add("user-7", 3)
    assert len(c) == 5000
    assert c.get("user-7") == 10 and c.get("user-4999") == 4999 and c.get("nobody") == 0
    cap = c.nbytes()
    c.clear()
    assert len(c) == 0 and c.get("user-7") == 0 and c.nbytes() == cap  # capacity kept for the next window


def test_compact_counter_past_its_cap_over_estimates_never_under() -> None:
    c = CompactCounter(max_keys=100)
    for i in range(5000):
        c.add(f"u{i}", 1 + i % 7)
    assert len(c) == 100
    for i in range(5000):
        assert c.get(f"u{i}") >= 1 + i % 7
    exact_or_close = sum(c.get(f"u{i}") == 1 + i % 7 for i in range(5000))
    assert exact_or_close > 4500  # 4,900 keys in a 4 x 65,536 sketch: few collisions


def test_compact_counter_memory_per_user() -> None:
    c = CompactCounter()
    for i in range(200_000):
        c.add(f"user-{i:09d}", 1)
    # 16 bytes a slot at most 0.7 load: 200,000 users in 2**19 slots (8 MiB); 1,000,000 fit 2**21 (32 MiB)
    assert c.nbytes() == 16 * 2**19
    assert 1_000_000 <= 0.7 * 2**21 and 16 * 2**21 < 100 * 2**20


def test_user_utilization_exposes_only_the_top_users_above_the_fraction() -> None:
    u = UserUtilization([("pu", 1000, (0.5, 0.8, 0.95))], expose_above=0.5, max_exposed=2)
    window = (T0, T0 + 86400)
    for user, total in (("a", 400), ("b", 600), ("c", 900), ("d", 960), ("e", 200)):
        u.observe(0, user, 0, total, window)
    u.observe(0, "b", 600, 990, window)  # b climbs back into the top 2
    assert u.utilization(T0) == [({"budget": "pu", "user": "b"}, 0.99), ({"budget": "pu", "user": "d"}, 0.96)]
    assert u.over_threshold(T0) == [
        ({"budget": "pu", "threshold": "0.5"}, 3),
        ({"budget": "pu", "threshold": "0.8"}, 3),
        ({"budget": "pu", "threshold": "0.95"}, 2),
    ]
    # the window ends: nothing is exposed, counts drop to zero
    assert u.utilization(T0 + 86400) == []
    assert [n for _, n in u.over_threshold(T0 + 86400)] == [0, 0, 0]


def test_guard_feeds_per_user_metrics() -> None:
    clock = Clock()
    g = Guard(
        [GuardBudget("pu", "1d", D("10"), per_user=True, thresholds=(0.5, 0.9))],
        clock=clock,
        max_exposed_users=5,
    )
    for i in range(50):
        spend(g, "1", user=f"user-{i}")  # 10% each: not exposed
    spend(g, "5", user="user-3")
    spend(g, "4", user="user-3")
    assert g.user_utilization() == [({"budget": "pu", "user": "user-3"}, 1.0)]
    assert g.users_over_threshold() == [
        ({"budget": "pu", "threshold": "0.5"}, 1),
        ({"budget": "pu", "threshold": "0.9"}, 1),
    ]
    clock.now = at(2025, 3, 13)
    assert g.user_utilization() == []


# --- the public functions ----------------------------------------------------------------------


@pytest.fixture()
def installed() -> Iterator[Guard]:
    g = Guard([GuardBudget("pu", "1d", D("1"), per_user=True), GuardBudget("all", "1d", D("100"))])
    guard_mod.install_guard(g)
    try:
        yield g
    finally:
        guard_mod.install_guard(None)


def test_guard_reads_user_and_properties_from_context(installed: Guard) -> None:
    with otel_llmcost.user("alice"), otel_llmcost.properties(feature="chat"):
        guard_mod.guard()
        guard_mod.record_spend(D("1"))  # settles the pending permit
        with pytest.raises(BudgetExceededError) as info:
            guard_mod.guard()
    assert info.value.user == "alice"
    guard_mod.guard(user="bob")


def test_instrumentation_adopts_the_pending_permit(installed: Guard) -> None:
    permit = guard_mod.guard(user="alice", estimated_cost_usd=D("0.5"))
    adopted = guard_mod.admit_call("openai", "gpt-4o", "alice", {})
    assert adopted is permit
    assert guard_mod.admit_call("openai", "gpt-4o", "alice", {}) is not permit  # adopted once only
    assert adopted is not None
    adopted.settle(D("0.2"))


def test_an_unused_pending_permit_is_released_by_the_next_guard(installed: Guard) -> None:
    for _ in range(5):
        guard_mod.guard(user="alice", estimated_cost_usd=D("0.6"))  # would not fit twice if kept


def test_without_a_guard_everything_is_a_no_op() -> None:
    assert guard_mod.current_guard() is None
    guard_mod.guard(user="x").settle(D("1000"))
    guard_mod.record_spend(D("1000"), user="x", properties={})
    assert guard_mod.admit_call("openai", "gpt-4o", "x", {}) is None


def test_record_spend_without_a_permit_counts() -> None:
    g = Guard([GuardBudget("b", "1d", D("1"), filter={"feature": "x"})], clock=Clock())
    g.record_spend(None, {"feature": "x"}, D("1"))
    with pytest.raises(BudgetExceededError):
        g.admit(properties={"feature": "x"})
