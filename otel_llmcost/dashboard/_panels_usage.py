"""Dashboard panels on usage: tokens and caching, peaks, data quality, budgets and guards, errors, latency."""

from __future__ import annotations

from .. import semconv as sc
from ..budgets._promql import SPEND_RECORD
from ..budgets.spec import DEFAULT_THRESHOLDS, LABEL_BUDGET, LABEL_WINDOW, METRIC_BUDGET_LIMIT_USD
from ._grafana import Panel, Query, Row
from ._names import label_name
from ._query import Names, inc

__all__ = ["usage_panels"]

_HOURS = "hour"  # labels made by count_values() in the peak-usage panels
_DAYS = "day"
_WEEKDAYS = ("Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat")  # day_of_week(): 0 is Sunday
_NO_GUARD = "the demo runs no spend guard (configure(budgets=...) with a budget that has an action)"


def _peak(n: Names, label: str, function: str) -> str:
    # Spend in each step of the range, labelled with the hour (or weekday) the step's window falls in
    # (time() - 1: the step's window ends at time(), so its last second says which hour it covered),
    # then summed per label over the range. count_values turns that number into a label.
    return (
        f"sum by ({label}) (sum_over_time((\n"
        f"  sum({inc(n.cost + n.f(), '$__interval')})\n"
        f'  * on() group_left({label}) count_values("{label}", {function}(vector(time() - 1)))\n'
        f")[$__range:$__interval]))"
    )


def _sorted_by(label: str) -> tuple[dict[str, object], ...]:
    # count_values() makes the label a string ("10" sorts before "2"): sort numerically, then
    # back to a string so the bar chart uses it as its x axis.
    def convert(to: str) -> dict[str, object]:
        return {"id": "convertFieldType", "options": {"conversions": [{"targetField": label, "destinationType": to}]}}

    return (
        convert("number"),
        {"id": "sortBy", "options": {"sort": [{"field": label, "desc": False}]}},
        convert("string"),
        {"id": "organize", "options": {"excludeByName": {"Time": True}, "renameByName": {"Value": "Spend (USD)"}}},
    )


def _tokens(n: Names) -> list[Panel | Row]:
    token = sc.TOKEN_TYPE
    read = f'{token}="{sc.TOKEN_TYPE_CACHE_READ}"'
    inputs = f'{token}=~"{"|".join((sc.TOKEN_TYPE_INPUT, sc.TOKEN_TYPE_CACHE_READ, sc.TOKEN_TYPE_CACHE_WRITE))}"'
    by_model = f"sum by ({sc.PROVIDER}, {sc.MODEL})"
    hit = f"{by_model} ({inc(n.tokens + n.f(read))}) / {by_model} ({inc(n.tokens + n.f(inputs))})"
    panels: list[Panel | Row] = [
        Row("Tokens and caching"),
        Panel(
            "Tokens by type",
            "How many tokens do we use, by type: uncached input, output, cache read, cache write, reasoning"
            " (reasoning is also counted in output)?",
            "timeseries",
            (Query(f"sum by ({token}) ({inc(n.tokens + n.f(), '$__interval')})", "{{token_type}}"),),
            unit="short",
            interval="5m",
        ),
        Panel(
            "Cache hit ratio by model",
            "What share of each model's input tokens was served from the prompt cache in the selected range?",
            "bargauge",
            (Query(hit, "{{provider}} {{model}}", instant=True),),
            unit="percentunit",
            defaults={"min": 0, "max": 1},
        ),
    ]
    saved = f"sum({inc(n.savings + n.f())})"
    premium = f"sum({inc(n.premium + n.f())})"
    by = f"sum by ({sc.PROVIDER}, {sc.MODEL})"
    read_by = f"{by} ({inc(n.savings + n.f(), '$__interval')})"
    write_by = f"{by} ({inc(n.premium + n.f(), '$__interval')})"
    # a model may have cache reads and no writes in a step, or the reverse: each side defaults to 0
    net_by_model = f"({read_by} or 0 * {write_by}) - ({write_by} or 0 * {read_by})"
    panels += [
        Panel(
            "Cache savings",
            "How much did prompt caching save, net: cache reads billed below the input price, minus the premium"
            " cache writes cost above it (Anthropic: 1.25x or 2x the input price)?",
            "stat",
            (
                Query(f"({saved} or vector(0)) - ({premium} or vector(0))", "net saved", instant=True),
                Query(saved, "saved on cache reads", instant=True),
                Query(premium, "cache-write premium", instant=True),
            ),
            width=8,
            options={"textMode": "value_and_name"},
        ),
        Panel(
            "Net cache savings by model",
            "Which models does caching save money on, net of the cache-write premium, over time?",
            "timeseries",
            (Query(net_by_model, "{{provider}} {{model}}"),),
            width=16,
            interval="5m",
        ),
    ]
    return panels


def _quality(n: Names) -> list[Panel | Row]:
    unpriced = f'{sc.COST_STATUS}="{sc.LLM_COST_STATUS_UNPRICED}"'
    return [
        Row("Unpriced calls and data quality"),
        Panel(
            "Unpriced calls by model",
            "Which models have no price (their calls are never counted as $0)? Add them in a pricing overrides file.",
            "bargauge",
            (
                Query(
                    f"sum by ({sc.PROVIDER}, {sc.MODEL}) ({inc(n.requests + n.f(unpriced))})",
                    "{{provider}} {{model}}",
                    instant=True,
                ),
            ),
            unit="short",
            width=8,
        ),
        Panel(
            "Calls by cost status",
            "How were the calls priced: priced, unpriced, no_usage (failed before billing), invalid_usage...?",
            "timeseries",
            (Query(f"sum by ({sc.COST_STATUS}) ({inc(n.requests + n.f(), '$__interval')})", "{{cost_status}}"),),
            unit="short",
            width=8,
            interval="5m",
        ),
        Panel(
            "Spans not priced because of bad data",
            "How many GenAI spans could not be priced because their data was bad (e.g. negative token counts),"
            " by reason?",
            "bargauge",
            (Query(f"sum by ({sc.REASON}) ({inc(n.skipped)})", "{{reason}}", instant=True),),
            unit="short",
            width=8,
        ),
        Panel(
            "Label values folded into other",
            "Did a dimension reach its cap of distinct values (later values count as 'other')? Raise the cap or"
            " drop the dimension.",
            "bargauge",
            (Query(f"sum by ({sc.DIMENSION}) ({inc(n.overflow)})", "{{dimension}}", instant=True),),
            unit="short",
            width=24,
            height=5,
            empty_for_demo="the demo's dimensions stay under the cap of distinct values",
        ),
    ]


def _budgets() -> list[Panel | Row]:
    on = f"on({LABEL_BUDGET}, {LABEL_WINDOW})"
    by = f"max by ({LABEL_BUDGET}, {LABEL_WINDOW})"
    steps = [{"color": "green", "value": None}] + [
        {"color": color, "value": 100 * at}
        for color, at in zip(("yellow", "orange", "red"), DEFAULT_THRESHOLDS, strict=True)
    ]
    return [
        Row("Budgets"),
        Panel(
            "Budget burn",
            "How much of each budget is spent in its window (from the budgets file's rules)? Budgets have their"
            " own filters: the dashboard's filters do not apply. Per-user budgets are alerted on, not shown here.",
            "bargauge",
            (
                Query(
                    f"100 * {by} ({SPEND_RECORD}) / {on} {by} ({METRIC_BUDGET_LIMIT_USD})",
                    "{{budget}} ({{window}})",
                    instant=True,
                ),
            ),
            unit="percent",
            defaults={"min": 0, "max": 100, "thresholds": {"mode": "absolute", "steps": steps}},
            options={"displayMode": "lcd"},
        ),
        Panel(
            "Budget spend and limit",
            "What has each budget spent in its window, against which limit?",
            "table",
            (
                Query(f"{by} ({SPEND_RECORD})", instant=True, table=True),
                Query(f"{by} ({METRIC_BUDGET_LIMIT_USD}) and {on} {by} ({SPEND_RECORD})", instant=True, table=True),
            ),
            transformations=(
                {"id": "merge", "options": {}},
                {
                    "id": "organize",
                    "options": {
                        "excludeByName": {"Time": True},
                        "renameByName": {"Value #A": "Spent (USD)", "Value #B": "Limit (USD)"},
                    },
                },
            ),
        ),
    ]


def _guards(n: Names) -> list[Panel | Row]:
    budget, user = sc.BUDGET, sc.USER
    return [
        Row("Guards"),
        Panel(
            "Per-user budget utilisation (top users)",
            "Which users are closest to their per-user budget (spend / limit in the window; the guard exposes only"
            " users above a share of it, and a capped number)?",
            "bargauge",
            (
                Query(
                    f"topk(10, max by ({budget}, {user}) ({n.user_utilization}))", "{{budget}} {{user}}", instant=True
                ),
            ),
            unit="percentunit",
            width=8,
            defaults={"min": 0, "max": 1},
            empty_for_demo=_NO_GUARD,
        ),
        Panel(
            "Users over threshold",
            "How many users of each per-user budget are over each threshold of it now (summed over processes)?",
            "bargauge",
            (
                Query(
                    f"sum by ({budget}, {sc.THRESHOLD}) ({n.users_over})",
                    "{{budget}} over {{threshold}}",
                    instant=True,
                ),
            ),
            unit="short",
            width=8,
            empty_for_demo=_NO_GUARD,
        ),
        Panel(
            "Guard breaches",
            "How often did the guard find a budget or rate limit breached (raise: refused, log: allowed)?",
            "bargauge",
            (Query(f"sum by ({budget}, {sc.ACTION}) ({inc(n.breaches)})", "{{budget}} ({{action}})", instant=True),),
            unit="short",
            width=8,
            empty_for_demo=_NO_GUARD,
        ),
        Panel(
            "Guard state errors",
            "Could the guard not reach its state (Redis...)? Calls then went ahead unguarded (policy open) or were"
            " refused (closed).",
            "timeseries",
            (
                Query(
                    f"sum by ({sc.POLICY}, {sc.REASON}) ({inc(n.guard_errors, '$__interval')})", "{{policy}} {{reason}}"
                ),
            ),
            unit="short",
            width=24,
            height=6,
            interval="5m",
            empty_for_demo=_NO_GUARD,
        ),
    ]


def _peaks(n: Names) -> list[Panel | Row]:
    weekday_names = {str(i): {"text": day, "index": i} for i, day in enumerate(_WEEKDAYS)}
    return [
        Row("When are the peaks"),
        Panel(
            "Spend by hour of day (UTC)",
            "At which hours of the day (UTC) do we spend, summed over the selected range? Set a week or more.",
            "barchart",
            (Query(_peak(n, _HOURS, "hour"), instant=True, table=True),),
            options={"xField": _HOURS},
            transformations=_sorted_by(_HOURS),
            max_data_points=2000,
            interval="5m",
        ),
        Panel(
            "Spend by day of week (UTC)",
            "On which days of the week do we spend, summed over the selected range? Set a few weeks.",
            "barchart",
            (Query(_peak(n, _DAYS, "day_of_week"), instant=True, table=True),),
            options={"xField": _DAYS},
            overrides=(
                {
                    "matcher": {"id": "byName", "options": _DAYS},
                    "properties": [{"id": "mappings", "value": [{"type": "value", "options": weekday_names}]}],
                },
            ),
            transformations=_sorted_by(_DAYS),
            max_data_points=2000,
            interval="5m",
        ),
    ]


def _reliability(n: Names) -> list[Panel | Row]:
    by = f"sum by ({sc.PROVIDER}, {sc.MODEL})"
    rate_all = f"rate({n.requests}{n.f()}[$__rate_interval])"
    error = f'{sc.STATUS}="{sc.STATUS_ERROR}"'
    rate_err = f"rate({n.requests}{n.f(error)}[$__rate_interval])"
    model = label_name(sc.GEN_AI_REQUEST_MODEL)
    buckets = f'{n.duration}_bucket{{{model}=~"${sc.MODEL}"}}'

    def latency(q: str) -> str:
        return f"histogram_quantile({q}, sum by (le, {model}) (rate({buckets}[$__rate_interval])))"

    return [
        Row("Errors and latency"),
        Panel(
            "Error rate by model",
            "What share of the calls to each model fail (0 when none do)?",
            "timeseries",
            (Query(f"({by} ({rate_err}) or 0 * {by} ({rate_all})) / {by} ({rate_all})", "{{provider}} {{model}}"),),
            unit="percentunit",
            defaults={"custom": {"drawStyle": "line", "stacking": {"mode": "none"}, "fillOpacity": 10}},
        ),
        Panel(
            "Latency (p50, p95) by model",
            "How long do calls to each model take? (GenAI semconv histogram: filtered by model only, its"
            " provider names follow the GenAI conventions)",
            "timeseries",
            (
                Query(latency("0.5"), "p50 {{" + model + "}}"),
                Query(latency("0.95"), "p95 {{" + model + "}}"),
            ),
            unit="s",
            defaults={"custom": {"drawStyle": "line", "stacking": {"mode": "none"}, "fillOpacity": 0}},
        ),
    ]


def usage_panels(n: Names) -> list[Panel | Row]:
    """Return the rows and panels on tokens, peaks, data quality, budgets and guards, errors and latency."""
    return [*_tokens(n), *_peaks(n), *_quality(n), *_budgets(), *_guards(n), *_reliability(n)]
