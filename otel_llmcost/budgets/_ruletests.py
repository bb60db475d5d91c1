"""promtool unit tests for the generated rules, with the expected alerts worked out here.

For every budget: one test per threshold (spend jumps into the band above it: exactly the
alerts at or below fire, with the severity of their rank), a counter reset in the middle of the
spend (``increase()`` must count both sides), and an absent series (spend reads $0, nothing
fires, even when calls outside the budget's filter spend). For every error-rate alert: above,
below, no error series, no traffic. The metrics-absent alert: fires without the catalog gauge,
not with it. Per-user budgets: the tracker's gauges at every threshold, and absent.

promtool compares every firing alert of a rule name, annotations included, and all budgets share
the rule name: so the expected alerts of *every* budget are computed for each test's input by a
small model of the PromQL (``increase()`` as Prometheus computes it, the month-to-date pieces,
``for:``). Test inputs are step series of dyadic values (multiples of a power of two), so every
sum Prometheus does is exact and the rendered percentages and dollars match to the character.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from .. import semconv as sc
from . import _promql as r
from .spec import (
    LABEL_BUDGET,
    LABEL_SEVERITY,
    LABEL_THRESHOLD,
    LABEL_USER,
    LABEL_WINDOW,
    METRIC_BUDGET_LIMIT_USD,
    METRIC_BUDGET_USER_UTILIZATION,
    METRIC_BUDGET_USERS_OVER_THRESHOLD,
    Budget,
    BudgetsFile,
    ErrorRateAlert,
    parse_duration_s,
)

__all__ = ["humanize", "render_template", "render_tests"]

STEP_S = 60
_BASE_LABELS = {sc.PROVIDER: "openai", sc.MODEL: "gpt-4o", sc.OPERATION: "chat"}


# --- Prometheus template functions, as Go formats them ---------------------------------------


def _g4(v: float) -> str:
    # Go's %.4g and Python's agree (shortest correctly rounded, trailing zeros dropped, e+XX form).
    return f"{v:.4g}"


def humanize(v: float) -> str:
    """Prometheus' ``humanize`` template function."""
    if v == 0 or math.isnan(v) or math.isinf(v):
        return _g4(v)
    prefix = ""
    if abs(v) >= 1:
        for p in ("k", "M", "G", "T", "P", "E", "Z", "Y"):
            if abs(v) < 1000:
                break
            prefix, v = p, v / 1000
        return _g4(v) + prefix
    for p in ("m", "u", "n", "p", "f", "a", "z", "y"):
        if abs(v) >= 1:
            break
        prefix, v = p, v * 1000
    return _g4(v) + prefix


_QUERY = re.compile(r'\{\{ with query `[^`]*` \}\}\{\{ \. \| first \| value \| printf "%\.2f" \}\}\{\{ end \}\}')


def render_template(text: str, *, value: float, labels: Mapping[str, str], query: float | None = None) -> str:
    """Expand the few template constructs the generated annotations use."""
    if query is not None:
        text = _QUERY.sub(lambda _: f"{query:.2f}", text)
    text = text.replace("{{ $value | humanizePercentage }}", _g4(value * 100) + "%")
    text = text.replace("{{ $value | humanize }}", humanize(value))
    text = re.sub(r"\{\{ \$labels\.(\w+) \}\}", lambda m: labels[m.group(1)], text)
    text = text.replace('{{ "{{" }}', "{{")
    return text


# --- a model of the PromQL the rules use -------------------------------------------------------


@dataclass
class _Series:
    labels: dict[str, str]
    values: list[float]  # one sample per STEP_S from t=0

    def samples(self, start: int, end: int) -> list[tuple[int, float]]:
        first = max(0, -(-start // STEP_S))
        last = min(len(self.values) - 1, end // STEP_S)
        return [(i * STEP_S, self.values[i]) for i in range(first, last + 1)]


def _increase(series: _Series, start: int, end: int) -> float | None:
    """Prometheus 2.x ``increase()`` (extrapolatedRate for a counter) over the closed range."""
    pts = series.samples(start, end)
    if len(pts) < 2:
        return None
    result = pts[-1][1] - pts[0][1]
    last = 0.0
    for _, v in pts:
        if v < last:
            result += last
        last = v
    to_start = float(pts[0][0] - start)
    to_end = float(end - pts[-1][0])
    sampled = float(pts[-1][0] - pts[0][0])
    average = sampled / (len(pts) - 1)
    if result > 0 and pts[0][1] >= 0:
        to_zero = sampled * (pts[0][1] / result)
        to_start = min(to_start, to_zero)
    threshold = average * 1.1
    interval = sampled
    interval += to_start if to_start < threshold else average / 2
    interval += to_end if to_end < threshold else average / 2
    return result * (interval / sampled)


def _sum_increase(series: Sequence[_Series], start: int, end: int) -> float | None:
    parts = [v for s in series if (v := _increase(s, start, end)) is not None]
    return sum(parts) if parts else None


def _matches(labels: Mapping[str, str], flt: Mapping[str, tuple[str, ...]]) -> bool:
    return all(labels.get(k) in v for k, v in flt.items())


def _spend(budget: Budget, series: Sequence[_Series], t: int) -> float:
    mine = [s for s in series if s.labels.get("__name__") == r.PROM_COST and _matches(s.labels, budget.filter)]
    w = budget.window
    if w.seconds is not None:
        v = _sum_increase(mine, t - w.seconds, t)
        return 0.0 if v is None else v
    # month-to-date: test times stay inside January 1970, so "this month" is every hour mark from 1h
    hours = [(_sum_increase(mine, m - 3600, m) or 0.0) for m in range(3600, t + 1, 3600)]
    start_of_hour = t - t % 3600
    partial = [v for p in range(start_of_hour + 300, t + 1, 300) if (v := _sum_increase(mine, p - 300, p)) is not None]
    return (sum(hours) if hours else 0.0) + (sum(partial) if partial else 0.0)


def _firing(truth: Sequence[bool], for_s: float) -> bool:
    """Whether an alert is firing after evaluations (one per STEP_S from 0) with these results."""
    active_since: int | None = None
    for i, true in enumerate(truth):
        active_since = (i * STEP_S if active_since is None else active_since) if true else None
    return active_since is not None and (len(truth) - 1) * STEP_S - active_since >= for_s


def _for_s(text: str) -> float:
    seconds = parse_duration_s(text)
    assert seconds is not None  # validated by the loader
    return seconds


def _after(start: int, for_text: str) -> int:
    return start + math.ceil(_for_s(for_text) / STEP_S) * STEP_S


# --- test inputs -------------------------------------------------------------------------------


def _dyadic_between(lo: Fraction, hi: Fraction) -> Fraction:
    """The simplest multiple of a power of two strictly between lo and hi (lo < hi)."""
    k = 0
    while True:
        q = Fraction(1, 2**k)
        n = math.floor(lo / q) + 1
        if n * q < hi:
            return n * q
        k += 1


def _spend_in_band(budget: Budget, lo: float, hi: float) -> float:
    """A dyadic dollar amount whose ratio to the limit (in float, as Prometheus divides) is in [lo, hi)."""
    limit = float(r.number(budget.limit_usd))
    a, b = Fraction(budget.limit_usd) * Fraction(repr(lo)), Fraction(budget.limit_usd) * Fraction(repr(hi))
    while True:
        v = float(_dyadic_between(a, b))
        if lo <= v / limit < hi:
            return v
        a = (a + b) / 2  # float rounding put it just outside: look nearer the middle


def _fmt(v: float) -> str:
    return repr(float(v)).removesuffix(".0") if float(v).is_integer() else repr(float(v))


def _values(values: Sequence[float]) -> str:
    """promtool's expanding notation: runs of a value as 'vxN' (N+1 samples)."""
    out: list[str] = []
    i = 0
    while i < len(values):
        j = i
        while j + 1 < len(values) and values[j + 1] == values[i]:
            j += 1
        out.append(_fmt(values[i]) if j == i else f"{_fmt(values[i])}x{j - i}")
        i = j + 1
    return " ".join(out)


def _series_text(s: _Series) -> str:
    name = s.labels["__name__"]
    inner = ", ".join(f"{k}={r.quote(v)}" for k, v in s.labels.items() if k != "__name__")
    return f"{name}{{{inner}}}"


def _input(series: Sequence[_Series]) -> list[dict[str, str]]:
    return [{"series": _series_text(s), "values": _values(s.values)} for s in series]


def _cost_labels(flt: Mapping[str, tuple[str, ...]]) -> dict[str, str]:
    labels = {"__name__": r.PROM_COST, **_BASE_LABELS}
    labels.update({k: v[0] for k, v in flt.items()})
    return labels


def _step(n: int, points: Mapping[int, float]) -> list[float]:
    """n samples, each minute holding the value of the last point at or before it (0 before any)."""
    out, current = [], 0.0
    for i in range(n):
        current = points.get(i, current)
        out.append(current)
    return out


def _minutes(seconds: int) -> str:
    return f"{seconds // 60}m"


# --- expected alerts ---------------------------------------------------------------------------


def _budget_alerts(budgets: BudgetsFile, series: Sequence[_Series], at: int) -> list[dict[str, Any]]:
    out = []
    for b in budgets.budgets:
        if b.per_user:
            continue
        limit = float(r.number(b.limit_usd))
        spend_at = {t: _spend(b, series, t) for t in range(0, at + 1, STEP_S)}
        for th in b.thresholds:
            if _firing([spend_at[t] / limit >= th.at for t in spend_at], _for_s(b.for_)):
                labels = {LABEL_BUDGET: b.name, LABEL_WINDOW: b.window.text}
                labels |= {LABEL_SEVERITY: th.severity, LABEL_THRESHOLD: th.label}
                notes = r.budget_annotations(b, th)
                value = spend_at[at] / limit
                out.append(
                    {
                        "exp_labels": labels,
                        "exp_annotations": {
                            k: render_template(v, value=value, labels=labels, query=spend_at[at])
                            for k, v in notes.items()
                        },
                    }
                )
    return out


def _budget_case(budgets: BudgetsFile, budget: Budget, name: str, series: list[_Series], at: int) -> dict[str, Any]:
    def expr_test(metric: str, value: float) -> dict[str, Any]:
        labels = {"__name__": metric, LABEL_BUDGET: budget.name, LABEL_WINDOW: budget.window.text}
        return {
            "expr": f"{metric}{{{LABEL_BUDGET}={r.quote(budget.name)}}}",
            "eval_time": _minutes(at),
            "exp_samples": [{"labels": _series_text(_Series(labels, [])), "value": value}],
        }

    return {
        "name": name,
        "interval": _minutes(STEP_S),
        "input_series": _input(series),
        "alert_rule_test": [
            {"eval_time": _minutes(at), "alertname": r.ALERT_BUDGET, "exp_alerts": _budget_alerts(budgets, series, at)}
        ],
        "promql_expr_test": [
            expr_test(r.SPEND_RECORD, _spend(budget, series, at)),
            expr_test(METRIC_BUDGET_LIMIT_USD, float(r.number(budget.limit_usd))),
        ],
    }


def _budget_cases(budgets: BudgetsFile, b: Budget) -> list[dict[str, Any]]:
    cases = []
    ths = [t.at for t in b.thresholds]
    bands = [(lo, hi) for lo, hi in zip(ths, [*ths[1:], ths[-1] + 0.1], strict=True)]
    for (lo, hi), th in zip(bands, b.thresholds, strict=True):
        v = _spend_in_band(b, lo, hi)
        at = _after(300, b.for_)
        series = [_Series(_cost_labels(b.filter), _step(at // STEP_S + 6, {5: v}))]
        pct = _g4(v / float(r.number(b.limit_usd)) * 100)
        cases.append(
            _budget_case(budgets, b, f"{b.name}: {pct}% of the limit reaches the {th.percent} threshold", series, at)
        )
    # counter reset: r1 spent, the process restarts (counter back to 0), r2 spent; increase() adds both
    lo, hi = bands[-2] if len(bands) > 1 else bands[0]
    total = Fraction(_spend_in_band(b, lo, hi))
    r1 = float(total / 2)
    r2 = float(total) - r1
    at = _after(600, b.for_)
    series = [_Series(_cost_labels(b.filter), _step(at // STEP_S + 6, {6: r1, 7: 0.0, 8: r2}))]
    cases.append(
        _budget_case(budgets, b, f"{b.name}: a counter reset in the window still counts both sides", series, at)
    )
    # absent: no series in scope; spend is 0 (not absent) and nothing fires, whatever spends outside
    at = _after(300, b.for_)
    series = []
    if b.filter:
        key, values = next(iter(b.filter.items()))
        other = "not-" + values[0]
        while other in values:
            other = "not-" + other
        labels = _cost_labels(b.filter) | {key: other}
        v = float(_dyadic_between(Fraction(b.limit_usd) * 2, Fraction(b.limit_usd) * 3))
        series.append(_Series(labels, _step(at // STEP_S + 6, {5: v})))
    cases.append(_budget_case(budgets, b, f"{b.name}: no calls in scope: spend is $0 and nothing fires", series, at))
    return cases


def _user_cases(b: Budget) -> list[dict[str, Any]]:
    cases = []
    ths = [t.at for t in b.thresholds]
    bands = [(lo, hi) for lo, hi in zip(ths, [*ths[1:], ths[-1] + 0.1], strict=True)]
    at = _after(300, b.for_)
    n = at // STEP_S + 6
    for k, ((lo, hi), th) in enumerate(zip(bands, b.thresholds, strict=True)):
        ratio = float(_dyadic_between(Fraction(repr(lo)), Fraction(repr(hi))))
        low = float(_dyadic_between(Fraction(0), Fraction(repr(ths[0]))))
        series = [
            _Series(
                {"__name__": METRIC_BUDGET_USER_UTILIZATION, LABEL_BUDGET: b.name, LABEL_USER: "user-a"},
                _step(n, {5: ratio}),
            ),
            _Series(
                {"__name__": METRIC_BUDGET_USER_UTILIZATION, LABEL_BUDGET: b.name, LABEL_USER: "user-b"},
                _step(n, {5: low}),
            ),
        ]
        series += [
            _Series(
                {"__name__": METRIC_BUDGET_USERS_OVER_THRESHOLD, LABEL_BUDGET: b.name, LABEL_THRESHOLD: t.label},
                _step(n, {5: 1.0 if j <= k else 0.0}),
            )
            for j, t in enumerate(b.thresholds)
        ]
        crossed = b.thresholds[: k + 1]
        user_alerts, count_alerts = [], []
        for t in crossed:
            labels = {LABEL_BUDGET: b.name, LABEL_USER: "user-a", LABEL_SEVERITY: t.severity, LABEL_THRESHOLD: t.label}
            notes = r.user_budget_annotations(b, t)
            user_alerts.append(
                {
                    "exp_labels": labels,
                    "exp_annotations": {k2: render_template(v, value=ratio, labels=labels) for k2, v in notes.items()},
                }
            )
            labels = {LABEL_BUDGET: b.name, LABEL_SEVERITY: t.severity, LABEL_THRESHOLD: t.label}
            notes = r.users_over_annotations(b, t)
            count_alerts.append(
                {
                    "exp_labels": labels,
                    "exp_annotations": {k2: render_template(v, value=1.0, labels=labels) for k2, v in notes.items()},
                }
            )
        cases.append(
            {
                "name": f"{b.name}: a user at {_g4(ratio * 100)}% of the limit reaches the {th.percent} threshold",
                "interval": _minutes(STEP_S),
                "input_series": _input(series),
                "alert_rule_test": [
                    {"eval_time": _minutes(at), "alertname": r.ALERT_USER_BUDGET, "exp_alerts": user_alerts},
                    {"eval_time": _minutes(at), "alertname": r.ALERT_USERS_OVER, "exp_alerts": count_alerts},
                ],
            }
        )
    cases.append(
        {
            "name": f"{b.name}: the tracker reports no user: nothing fires",
            "interval": _minutes(STEP_S),
            "input_series": [],
            "alert_rule_test": [
                {"eval_time": _minutes(at), "alertname": r.ALERT_USER_BUDGET, "exp_alerts": []},
                {"eval_time": _minutes(at), "alertname": r.ALERT_USERS_OVER, "exp_alerts": []},
            ],
        }
    )
    return cases


def _error_rate(a: ErrorRateAlert, series: Sequence[_Series], t: int) -> float | None:
    w = a.window.seconds
    assert w is not None  # error-rate windows are rolling
    mine = [s for s in series if s.labels.get("__name__") == r.PROM_REQUESTS and _matches(s.labels, a.filter)]
    total = _sum_increase(mine, t - w, t)
    if total is None or (a.min_requests and not total >= a.min_requests):
        return None
    errors = _sum_increase([s for s in mine if s.labels.get(sc.STATUS) == sc.STATUS_ERROR], t - w, t) or 0.0
    return errors / total if total else math.nan


def _error_alerts(budgets: BudgetsFile, series: Sequence[_Series], at: int) -> list[dict[str, Any]]:
    out = []
    for a in budgets.alerts:
        rates = [_error_rate(a, series, t) for t in range(0, at + 1, STEP_S)]
        if _firing([v is not None and v > a.error_rate_above for v in rates], _for_s(a.for_)):
            labels = {r.LABEL_LLM_ALERT: a.name, LABEL_SEVERITY: a.severity}
            value = rates[-1]
            assert value is not None
            notes = r.error_rate_annotations(a)
            out.append(
                {
                    "exp_labels": labels,
                    "exp_annotations": {k: render_template(v, value=value, labels=labels) for k, v in notes.items()},
                }
            )
    return out


def _error_cases(budgets: BudgetsFile, a: ErrorRateAlert) -> list[dict[str, Any]]:
    per_minute = 64 * max(1, math.ceil(a.min_requests / 64))
    above = next(k for k in range(per_minute + 1) if k / per_minute > a.error_rate_above)
    below = max(k for k in range(per_minute + 1) if k / per_minute <= a.error_rate_above)
    at = _after(STEP_S, a.for_)
    n = at // STEP_S + 6

    def requests(errors: int | None, total: int) -> list[_Series]:
        base = {"__name__": r.PROM_REQUESTS, **_BASE_LABELS, **{k: v[0] for k, v in a.filter.items()}}
        ok = total - (errors or 0)
        out = [_Series(base | {sc.STATUS: sc.STATUS_OK, sc.COST_STATUS: "priced"}, [float(ok * i) for i in range(n)])]
        if errors is not None:
            out.append(
                _Series(
                    base | {sc.STATUS: sc.STATUS_ERROR, sc.COST_STATUS: "no_usage"},
                    [float(errors * i) for i in range(n)],
                )
            )
        return out

    cases = []
    for label, series in (
        (f"{above} of {per_minute} calls a minute fail: fires", requests(above, per_minute)),
        (f"{below} of {per_minute} calls a minute fail: quiet", requests(below, per_minute)),
        ("no error series at all: the rate is 0, quiet", requests(None, per_minute)),
        ("no traffic: no rate, quiet", []),
    ):
        cases.append(
            {
                "name": f"error rate {a.name}: {label}",
                "interval": _minutes(STEP_S),
                "input_series": _input(series),
                "alert_rule_test": [
                    {
                        "eval_time": _minutes(at),
                        "alertname": r.ALERT_ERROR_RATE,
                        "exp_alerts": _error_alerts(budgets, series, at),
                    }
                ],
            }
        )
    return cases


def _health_cases() -> list[dict[str, Any]]:
    at = _after(0, r.METRICS_ABSENT_FOR) + STEP_S
    labels = {LABEL_SEVERITY: "warning"}
    info = _Series(
        {"__name__": r.PROM_CATALOG_INFO, sc.LLM_COST_PRICING_VERSION.replace(".", "_"): "test"},
        [1.0] * (at // STEP_S + 6),
    )
    return [
        {
            "name": "no otel-llmcost metrics scraped: LLMCostMetricsAbsent fires",
            "interval": _minutes(STEP_S),
            "input_series": [],
            "alert_rule_test": [
                {
                    "eval_time": _minutes(at),
                    "alertname": r.ALERT_METRICS_ABSENT,
                    "exp_alerts": [{"exp_labels": labels, "exp_annotations": r.metrics_absent_annotations()}],
                }
            ],
        },
        {
            "name": "otel-llmcost metrics present: LLMCostMetricsAbsent quiet",
            "interval": _minutes(STEP_S),
            "input_series": _input([info]),
            "alert_rule_test": [{"eval_time": _minutes(at), "alertname": r.ALERT_METRICS_ABSENT, "exp_alerts": []}],
        },
    ]


def render_tests(budgets: BudgetsFile, rules_file: str) -> dict[str, Any]:
    """Return the promtool test document for the rules generated from *budgets*."""
    tests: list[dict[str, Any]] = []
    for b in budgets.budgets:
        tests.extend(_user_cases(b) if b.per_user else _budget_cases(budgets, b))
    for a in budgets.alerts:
        tests.extend(_error_cases(budgets, a))
    tests.extend(_health_cases())
    return {"rule_files": [rules_file], "evaluation_interval": _minutes(STEP_S), "tests": tests}
