"""The in-memory guard's fast path (``MemoryState.admit_rules``/``settle_rules``) decides as the general one.

A guard whose state is exactly a :class:`MemoryState` binds its rules to the state's counters and
checks them without building a ``Check`` per limit; any other state (a subclass included) goes
through ``GuardState.admit(checks)``/``settle(entries)``. The same seeded traffic -- users,
properties, models, estimates, calls left in flight, windows rolling over, the clock stepping
back -- must produce the same admissions, refusals (message for message), breach counts and
per-user figures on both.
"""

from __future__ import annotations

import calendar
import random
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import pytest

from otel_llmcost.budgets.guard import BudgetExceededError, Guard, GuardBudget, GuardRateLimit, Permit
from otel_llmcost.budgets.state import Check, MemoryState, Seen

D = Decimal
T0 = calendar.timegm((2025, 3, 12, 22, 30, 0))  # rolls over midnight, and past hours, during the run

BUDGETS = [
    GuardBudget("global-hourly", "1h", D("0.40")),
    GuardBudget("production-daily", "1d", D("0.25"), filter={"environment": "production"}, action="log"),
    GuardBudget("per-user-daily", "1d", D("0.06"), per_user=True, thresholds=(0.5, 0.9)),
    GuardBudget("gpt-4o-hourly", "1h", D("0.15"), filter={"model": "gpt-4o"}),
]
RATE_LIMITS = [
    GuardRateLimit(2, 60, "request", "user"),
    GuardRateLimit(5, 30, "request", "feature", action="log"),
    GuardRateLimit(3, 120, "cents", "feature", action="log"),
    GuardRateLimit(9, 600, "cents", "feature"),
]
PROPERTIES: list[dict[str, str]] = [
    {},
    {"environment": "production"},
    {"environment": "production", "feature": "search"},
    {"feature": "chat"},
]


class Clock:
    def __init__(self) -> None:
        self.now = float(T0)

    def __call__(self) -> float:
        return self.now


class GeneralPath(MemoryState):
    """Memory state the guard does not bind to (not exactly ``MemoryState``); counts its checks."""

    def __init__(self) -> None:
        super().__init__()
        self.checks = 0

    def admit(self, checks: Sequence[Check]) -> tuple[bool, list[Seen]]:
        self.checks += 1
        return super().admit(checks)


def traffic(state: MemoryState, seed: int, steps: int = 2500) -> list[Any]:
    """Run seeded traffic through a guard on *state*; return every outcome and the final figures."""
    rng = random.Random(seed)
    clock = Clock()
    g = Guard(BUDGETS, RATE_LIMITS, state=state, clock=clock)
    outcomes: list[Any] = []
    flying: list[Permit] = []
    for _ in range(steps):
        clock.now += rng.choice([0.0, 0.0, 0.4, 2.5, 11.0, 45.0]) if rng.random() > 0.02 else -90.0
        kwargs: dict[str, Any] = {
            "user": rng.choice([None, "ann", "bob", "cy", "dee"]),
            "properties": rng.choice(PROPERTIES),
            "model": rng.choice([None, "gpt-4o", "gpt-4o-mini"]),
        }
        if rng.random() < 0.2:
            kwargs["estimated_cost_usd"] = D(rng.choice(["0", "0.001", "0.02", "0.3"]))
        try:
            permit = g.admit(**kwargs)
        except BudgetExceededError as err:
            outcomes.append(("refused", err.budget, str(err)))
        else:
            outcomes.append(("admitted", permit.done, [(r.name, key, amount) for r, key, amount, _ in permit.entries]))
            flying.append(permit)
        while flying and rng.random() < 0.6:  # settled in any order; a few are released unused
            p = flying.pop(rng.randrange(len(flying)))
            if rng.random() < 0.1:
                p.release()
            else:
                p.settle(D(rng.choice(["0.0005", "0.003", "0.008", "0.02"])))
    return [outcomes, g.breaches(), g.user_utilization(), g.users_over_threshold(), state.nbytes(), g.errors()]


@pytest.mark.parametrize("seed", range(4))
def test_the_fast_path_decides_as_the_general_path(seed: int) -> None:
    fast_state, general_state = MemoryState(), GeneralPath()
    fast = traffic(fast_state, seed)
    general = traffic(general_state, seed)
    assert fast == general
    # what was compared: refusals by several limits, admissions, logged breaches, per-user figures
    refused_by = {o[1] for o in fast[0] if o[0] == "refused"}
    assert len(refused_by) >= 3
    assert sum(o[0] == "admitted" and not o[1] for o in fast[0]) > 200
    assert {labels["action"] for labels, _ in fast[1]} == {"raise", "log"}
    assert fast[2] and any(n for _, n in fast[3])
    assert general_state.checks > 2000  # the general path really ran every check there
    assert fast[5] == []  # and no check failed inside the guard (a failure would admit the call)


def test_the_fast_path_is_taken_in_memory_and_falls_back_only_on_a_breach() -> None:
    class Counting(MemoryState):
        """Exactly MemoryState's behaviour; only used to count general checks below."""

    plain = MemoryState()
    general_calls: list[int] = []
    original = MemoryState.admit

    def counting(self: MemoryState, checks: Sequence[Check]) -> tuple[bool, list[Seen]]:
        general_calls.append(len(checks))
        return original(self, checks)

    g = Guard([GuardBudget("daily", "1d", D("1"))], state=plain, clock=Clock())
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(MemoryState, "admit", counting)
        for _ in range(3):
            g.admit().settle(D("0.3"))  # 0.9 spent: admitted by the fast path
        g.admit().settle(D("0.2"))  # the sole call in flight is admitted while not spent: 1.1
        assert general_calls == []
        with pytest.raises(BudgetExceededError) as info:
            g.admit()  # spent: the fast path backs off, the general path refuses with the figures
        assert general_calls == [1]
        assert info.value.spend_usd == D("1.1")
    assert Counting is not MemoryState  # a subclass is never bound (it may override admit)
    assert Guard([GuardBudget("b", "1d", D("1"))], state=Counting())._memory is None


def test_an_estimate_above_a_cents_quota_is_refused_not_an_internal_error() -> None:
    # an empty bucket, and a call estimated above the whole quota: it can never fit
    clock = Clock()
    clock.now = float(calendar.timegm((2025, 3, 12, 10, 0, 0)))
    g = Guard(rate_limits=[GuardRateLimit(50, 3600, "cents", "feature")], clock=clock)
    with pytest.raises(BudgetExceededError) as info:
        g.admit(properties={"feature": "search"}, estimated_cost_usd=D("0.60"))
    err = info.value
    assert (err.reason, err.spend_usd, err.limit_usd) == ("rate_limit", D("0"), D("0.5"))
    assert "estimated $0.6 would exceed it" in str(err)
    assert err.reset_at.timestamp() == clock.now + 2 * 3600  # when this bucket has left the window
    assert g.errors() == []
    g.admit(properties={"feature": "search"}, estimated_cost_usd=D("0.50")).release()  # one that fits
