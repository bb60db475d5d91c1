"""From a budgets file to guard limits: what is enforced, how windows map, and what the guard does."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from otel_llmcost.budgets import parse_budgets
from otel_llmcost.budgets.guard import BudgetExceededError, Guard
from otel_llmcost.budgets.limits import limits_from_file
from otel_llmcost.budgets.state import fixed_window

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "budgets.yaml"

FILE = """\
dimensions: [feature]
budgets:
  - {name: alert-only, window: 1d, limit_usd: 1}
  - {name: daily, window: 1d, limit_usd: 2, action: raise, filter: {feature: [search, chat]}}
  - {name: weekly, window: 1w, limit_usd: 3, action: log, thresholds: [0.6, 0.9]}
  - {name: ninety, window: 90m, limit_usd: 4, action: raise, per: user}
  - {name: monthly, window: month, limit_usd: 5, action: raise}
rate_limits:
  - "10;w=60;s=user"
  - {name: spend, policy: "50;w=3600;u=cents;s=feature", action: log}
"""


def test_only_budgets_with_an_action_are_enforced_and_windows_map() -> None:
    budgets, rate_limits = limits_from_file(parse_budgets(FILE))
    by_name = {b.name: b for b in budgets}
    assert set(by_name) == {"daily", "weekly", "ninety", "monthly"}  # alert-only is left out
    assert by_name["daily"].window == "1d" and by_name["daily"].filter == {"feature": ("search", "chat")}
    assert by_name["weekly"].window == 7 * 86400 and by_name["weekly"].action == "log"
    assert by_name["weekly"].thresholds == (0.6, 0.9)
    assert by_name["ninety"].window == 90 * 60 and by_name["ninety"].per_user
    assert by_name["monthly"].window == "month" and by_name["monthly"].limit_usd == Decimal(5)
    (requests, spend) = rate_limits
    assert (requests.quota, requests.window_s, requests.unit, requests.scope, requests.action) == (
        10,
        60,
        "request",
        "user",
        "raise",  # rate limits default to raise
    )
    assert (spend.name, spend.unit, spend.scope, spend.action) == ("spend", "cents", "feature", "log")


def test_a_1w_window_is_the_same_monday_week_as_7d() -> None:
    assert fixed_window(7 * 86400, 1_741_775_400) == fixed_window(604800, 1_741_775_400)


def test_guard_from_the_example_file_refuses_by_its_raise_budgets() -> None:
    g = Guard.from_budgets(parse_budgets(EXAMPLE.read_text(), source=str(EXAMPLE)))
    props = {"environment": "production", "feature": "search"}
    # per-user-daily ($5, raise): one user's $6 call is admitted (nothing spent yet), the next refused
    g.admit(user="u1", properties=props).settle(Decimal(6))
    with pytest.raises(BudgetExceededError) as info:
        g.admit(user="u1", properties=props)
    assert info.value.budget == "per-user-daily"
    # company-monthly ($20,000) has no action: spending past it never refuses
    g.record_spend("u2", props, Decimal(25_000))
    g.admit(user="u3", properties={"environment": "staging", "feature": "chat"}).settle(Decimal("0.01"))
    assert ({"budget": "production-daily", "action": "log"}, 1) not in g.breaches()  # nothing checked it yet
    g.admit(user="u4", properties=props).release()  # production-daily ($500) is spent: action log lets it through
    assert ({"budget": "production-daily", "action": "log"}, 1) in g.breaches()
