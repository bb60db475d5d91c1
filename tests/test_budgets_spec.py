"""The budgets file: schema, defaults, and errors that name file, line and key."""

from __future__ import annotations

import re
import textwrap
from decimal import Decimal
from pathlib import Path

import pytest

from otel_llmcost.budgets import (
    BudgetsError,
    load_budgets,
    parse_budgets,
    parse_rate_limit_policy,
    threshold_label,
)
from otel_llmcost.config import ConfigError

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "budgets.yaml"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "budgets.yaml"
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def error_of(tmp_path: Path, text: str) -> BudgetsError:
    path = write(tmp_path, text)
    with pytest.raises(BudgetsError) as info:
        load_budgets(path)
    return info.value


def test_the_example_loads() -> None:
    b = load_budgets(EXAMPLE)
    assert b.dimensions == ("environment", "feature", "session_name")
    by_name = {x.name: x for x in b.budgets}
    monthly = by_name["company-monthly"]
    assert monthly.window.calendar_month and monthly.window.seconds is None
    assert monthly.limit_usd == Decimal(20000) and not monthly.filter and not monthly.per_user
    assert [(t.at, t.severity) for t in monthly.thresholds] == [(0.5, "info"), (0.8, "warning"), (0.95, "critical")]
    assert monthly.action is None and monthly.for_ == "5m"
    prod = by_name["production-daily"]
    assert prod.filter == {"environment": ("production",)} and prod.window.seconds == 86400
    assert prod.action == "log" and prod.scope_text() == "production"
    search = by_name["search-weekly"]
    assert search.filter == {"feature": ("search",), "environment": ("production", "staging")}
    assert [(t.at, t.severity) for t in search.thresholds] == [(0.75, "warning"), (0.9, "critical")]
    assert search.matches({"feature": "search", "environment": "staging", "model": "x"})
    assert not search.matches({"feature": "search", "environment": "dev"})
    assert not search.matches({"environment": "production"})
    assert by_name["per-user-daily"].per_user and by_name["per-user-daily"].action == "raise"
    (alert,) = b.alerts
    assert (alert.error_rate_above, alert.window.seconds, alert.min_requests, alert.severity) == (
        0.05,
        900,
        20,
        "critical",
    )
    users, feature = b.rate_limits
    assert (users.quota, users.window_s, users.unit, users.scope, users.action) == (60, 60, "request", "user", "raise")
    assert (feature.quota, feature.unit, feature.scope, feature.action) == (500, "cents", "feature", "log")
    assert feature.quota_usd == Decimal(5) and users.quota_usd is None


def test_defaults_and_shorthands(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        budgets:
          - {name: tiny, window: 10m, limit_usd: "0.25"}
          - {name: one, window: 1h, limit_usd: 1, thresholds: [1]}
          - {name: four, window: 1d, limit_usd: 1, thresholds: [0.9, 0.25, 0.5, {at: 0.75, severity: critical}]}
        rate_limits:
          - "100;w=60"
        """,
    )
    b = load_budgets(path, environ={"OTEL_LLMCOST_DIMENSIONS": "team, feature"})
    assert b.dimensions == ("team", "feature")  # no 'dimensions:' in the file: the environment
    tiny, one, four = b.budgets
    assert tiny.limit_usd == Decimal("0.25") and tiny.for_ == "1m"  # short windows: shorter default 'for'
    assert [(t.at, t.severity) for t in one.thresholds] == [(1.0, "critical")]
    assert [(t.at, t.severity) for t in four.thresholds] == [
        (0.25, "info"),
        (0.5, "info"),
        (0.75, "critical"),  # explicit
        (0.9, "critical"),
    ]
    (rl,) = b.rate_limits
    assert (rl.name, rl.quota, rl.window_s, rl.unit, rl.scope, rl.action) == (
        "100;w=60",
        100,
        60,
        "request",
        None,
        "raise",
    )
    assert load_budgets(path, environ={}).dimensions == ("environment", "feature", "session_name")


def test_threshold_labels_are_canonical() -> None:
    assert [threshold_label(t) for t in (0.5, 0.8, 0.95, 1, 1.0, 0.125)] == ["0.5", "0.8", "0.95", "1", "1", "0.125"]


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        ("100;w=60", (100, 60, "request", None)),
        ("100; w=60; u=cents; s=user", (100, 60, "cents", "user")),
        ("5;s=feature;w=3600;u=request", (5, 3600, "request", "feature")),
    ],
)
def test_rate_limit_policies_parse(policy: str, expected: tuple[object, ...]) -> None:
    assert parse_rate_limit_policy(policy) == expected


@pytest.mark.parametrize(
    ("policy", "problem"),
    [
        ("", "starts with the quota"),
        ("abc;w=60", "the quota must be a whole number"),
        ("0;w=60", "the quota must be a whole number > 0"),
        ("10", "w=SECONDS is required"),
        ("10;w=0", "w (the window in seconds) must be a whole number > 0"),
        ("10;w=1.5", "whole number"),
        ("10;w=60;u=dollars", "u='dollars': the unit is request or cents"),
        ("10;w=60;x=1", "unknown parameter 'x'"),
        ("10;w=60;w=30", "given twice"),
        ("10;w=60;", "empty parameter"),
        ("10;w", "is not key=value"),
        ("10;w=60;s=a-b", "the scope is user or a dimension name"),
    ],
)
def test_malformed_rate_limit_policies(policy: str, problem: str) -> None:
    with pytest.raises(ValueError, match=re.escape(problem)):
        parse_rate_limit_policy(policy)


# Each bad file: (text, line, key, words in the problem). The key is what the error names.
BAD = {
    "unknown top-level key": (
        """
        dimensions: [environment]
        budget:
          - {name: a, window: 1d, limit_usd: 1}
        """,
        2,
        "budget",
        "unknown key 'budget'",
    ),
    "unknown budget key, with a suggestion": (
        """
        budgets:
          - name: a
            window: 1d
            limit_usdd: 10
        """,
        4,
        "budgets[0].limit_usdd",
        "did you mean 'limit_usd'",
    ),
    "scope: global is not a key": (
        """
        budgets:
          - name: a
            scope: global
            window: 1d
            limit_usd: 10
        """,
        3,
        "budgets[0].scope",
        "global unless it has 'filter:'",
    ),
    "unknown key in a threshold": (
        """
        budgets:
          - name: a
            window: 1d
            limit_usd: 10
            thresholds: [0.5, {at: 0.9, level: critical}]
        """,
        5,
        "budgets[0].thresholds[1].level",
        "unknown key 'level'",
    ),
    "bad window": (
        """
        budgets:
          - {name: a, window: 1d, limit_usd: 1}
          - {name: b, window: 1mo, limit_usd: 1}
        """,
        3,
        "budgets[1].window",
        "the calendar month is 'month'",
    ),
    "window without a unit": (
        """
        budgets:
          - {name: a, window: 30, limit_usd: 1}
        """,
        2,
        "budgets[0].window",
        "needs a unit",
    ),
    "zero window": (
        """
        budgets:
          - name: a
            limit_usd: 1
            window: 0h
        """,
        4,
        "budgets[0].window",
        "a window is a number and m/h/d/w",
    ),
    "window too short for increase()": (
        """
        budgets:
          - {name: a, window: 2m, limit_usd: 1}
        """,
        2,
        "budgets[0].window",
        "shorter than 5m",
    ),
    "threshold above 1": (
        """
        budgets:
          - name: a
            window: 1d
            limit_usd: 100
            thresholds:
              - 0.5
              - 80
        """,
        7,
        "budgets[0].thresholds[1]",
        "write 80% as 0.8",
    ),
    "threshold 0": (
        """
        budgets:
          - {name: a, window: 1d, limit_usd: 1, thresholds: [0, 0.5]}
        """,
        2,
        "budgets[0].thresholds[0]",
        "0 < t <= 1",
    ),
    "threshold in a mapping above 1": (
        """
        budgets:
          - name: a
            window: 1d
            limit_usd: 1
            thresholds:
              - at: 1.5
                severity: critical
        """,
        6,
        "budgets[0].thresholds[0].at",
        "0 < t <= 1",
    ),
    "threshold listed twice": (
        """
        budgets:
          - name: a
            window: 1d
            limit_usd: 1
            thresholds: [0.5, 0.5]
        """,
        5,
        "budgets[0].thresholds[1]",
        "listed twice",
    ),
    "bad severity": (
        """
        budgets:
          - name: a
            window: 1d
            limit_usd: 1
            thresholds:
              - {at: 0.9, severity: page}
        """,
        6,
        "budgets[0].thresholds[0].severity",
        "info, warning or critical",
    ),
    "filter on a property that is not allow-listed": (
        """
        dimensions: [environment]
        budgets:
          - name: search
            window: 1d
            limit_usd: 10
            filter:
              environment: production
              feature: search
        """,
        8,
        "budgets[0].filter.feature",
        "not a metric label, so this filter could never match",
    ),
    "filter on a user id": (
        """
        budgets:
          - {name: a, window: 1d, limit_usd: 1, filter: {user_id: u-1}}
        """,
        2,
        "budgets[0].filter.user_id",
        "OTEL_LLMCOST_DIMENSIONS",
    ),
    "filter value YAML reads as a boolean": (
        """
        dimensions: [environment]
        budgets:
          - {name: a, window: 1d, limit_usd: 1, filter: {environment: yes}}
        """,
        3,
        "budgets[0].filter.environment",
        "quote it",
    ),
    "empty filter": (
        """
        budgets:
          - {name: a, window: 1d, limit_usd: 1, filter: {}}
        """,
        2,
        "budgets[0].filter",
        "an empty filter",
    ),
    "per something other than user": (
        """
        budgets:
          - {name: a, window: 1d, limit_usd: 1, per: feature}
        """,
        2,
        "budgets[0].per",
        "only 'per: user'",
    ),
    "duplicate budget names": (
        """
        budgets:
          - name: daily
            window: 1d
            limit_usd: 1
          - name: daily
            window: 7d
            limit_usd: 5
        """,
        5,
        "budgets[1].name",
        "names must be unique",
    ),
    "missing limit": (
        """
        budgets:
          - {name: a, window: 1d}
        """,
        2,
        "budgets[0].limit_usd",
        "missing",
    ),
    "limit not above zero": (
        """
        budgets:
          - {name: a, window: 1d, limit_usd: 0}
        """,
        2,
        "budgets[0].limit_usd",
        "more than $0",
    ),
    "limit not a number": (
        """
        budgets:
          - {name: a, window: 1d, limit_usd: lots}
        """,
        2,
        "budgets[0].limit_usd",
        "expected a number",
    ),
    "bad action": (
        """
        budgets:
          - {name: a, window: 1d, limit_usd: 1, action: block}
        """,
        2,
        "budgets[0].action",
        "raise or log",
    ),
    "'for' as long as the window": (
        """
        budgets:
          - {name: a, window: 1h, limit_usd: 1, for: 1h}
        """,
        2,
        "budgets[0].for",
        "shorter than the window",
    ),
    "'for' not a duration": (
        """
        budgets:
          - {name: a, window: 1h, limit_usd: 1, for: soon}
        """,
        2,
        "budgets[0].for",
        "expected a duration",
    ),
    "bad budget name": (
        """
        budgets:
          - {name: "my budget", window: 1h, limit_usd: 1}
        """,
        2,
        "budgets[0].name",
        "letters, digits",
    ),
    "a key given twice": (
        """
        budgets:
          - name: a
            window: 1h
            window: 1d
            limit_usd: 1
        """,
        4,
        "budgets[0].window",
        "given twice",
    ),
    "budgets not a list": (
        """
        budgets:
          name: a
        """,
        2,
        "budgets",
        "expected a list",
    ),
    "forbidden dimension": (
        """
        dimensions: [environment, user_id]
        budgets:
          - {name: a, window: 1h, limit_usd: 1}
        """,
        1,
        "dimensions",
        "never labels",
    ),
    "error rate as a percentage": (
        """
        alerts:
          - name: errors
            error_rate_above: 5
            window: 15m
        """,
        3,
        "alerts[0].error_rate_above",
        "write 5% as 0.05",
    ),
    "error-rate window 'month'": (
        """
        alerts:
          - {name: errors, error_rate_above: 0.05, window: month}
        """,
        2,
        "alerts[0].window",
        "'month' is for budgets",
    ),
    "error-rate filter not allow-listed": (
        """
        dimensions: [environment]
        alerts:
          - name: errors
            error_rate_above: 0.05
            window: 15m
            filter: {tenant: acme}
        """,
        6,
        "alerts[0].filter.tenant",
        "could never match",
    ),
    "unknown alert key": (
        """
        alerts:
          - {name: errors, error_rate_above: 0.05, window: 15m, treshold: 2}
        """,
        2,
        "alerts[0].treshold",
        "unknown key 'treshold'",
    ),
    "malformed rate-limit policy": (
        """
        rate_limits:
          - name: users
            policy: "100;w=sixty;s=user"
        """,
        3,
        "rate_limits[0].policy",
        "malformed rate-limit policy: w (the window in seconds) must be a whole number",
    ),
    "malformed rate-limit shorthand": (
        """
        rate_limits:
          - "100;w=60"
          - "100;u=request"
        """,
        3,
        "rate_limits[1]",
        "w=SECONDS is required",
    ),
    "rate-limit scope not allow-listed": (
        """
        dimensions: [environment]
        rate_limits:
          - {name: tenants, policy: "100;w=60;s=tenant"}
        """,
        3,
        "rate_limits[0].policy",
        "s=tenant: the scope is one of user, environment",
    ),
    "duplicate rate-limit names": (
        """
        rate_limits:
          - {name: r, policy: "1;w=1"}
          - {name: r, policy: "2;w=1"}
        """,
        3,
        "rate_limits[1].name",
        "names must be unique",
    ),
    "YAML syntax error": (
        """
        budgets:
          - name: a
            window: [1d
        """,
        4,
        "yaml",
        "not valid YAML",
    ),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_files_name_file_line_and_key(tmp_path: Path, case: str) -> None:
    text, line, key, problem = BAD[case]
    err = error_of(tmp_path, text)
    path = tmp_path / "budgets.yaml"
    message = str(err)
    assert message.startswith(f"{path}:{line}: {key}: "), message
    assert problem in message
    assert (err.source, err.line, err.key) == (str(path), line, key)
    assert isinstance(err, ConfigError)


def test_empty_and_unreadable_files(tmp_path: Path) -> None:
    assert "is empty" in str(error_of(tmp_path, "# nothing\n"))
    assert "has none of" in str(error_of(tmp_path, "{}\n"))
    assert "expected a mapping" in str(error_of(tmp_path, "- a\n- b\n"))
    with pytest.raises(BudgetsError, match="cannot read the budgets file"):
        load_budgets(tmp_path / "missing.yaml")


def test_anchors_and_merge_keys_work(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        defaults: &daily {window: 1d, thresholds: [0.8]}
        budgets:
          - {<<: *daily, name: a, limit_usd: 1}
        """,
    )
    # 'defaults' is not a key of the file: anchors must live inside known keys
    with pytest.raises(BudgetsError, match="unknown key 'defaults'"):
        load_budgets(path)
    b = parse_budgets(
        "budgets:\n  - &x {name: a, window: 1d, limit_usd: 1, thresholds: [0.8]}\n  - {<<: *x, name: b, limit_usd: 2}\n"
    )
    assert [(x.name, x.window.text, x.limit_usd, x.thresholds[0].at) for x in b.budgets] == [
        ("a", "1d", Decimal(1), 0.8),
        ("b", "1d", Decimal(2), 0.8),
    ]


def test_parse_from_text_names_the_source() -> None:
    with pytest.raises(BudgetsError, match=r"^inline:2: budgets\[0\]\.window: "):
        parse_budgets("budgets:\n  - {name: a, window: soon, limit_usd: 1}\n", source="inline")
