"""Checks every PromQL expression of the dashboard against the series the application exports.

Not a PromQL parser: a tokenizer that is enough for the expressions we write. It removes
comments and strings, reads label matchers (``metric{label=...}``) and label lists (``by (...)``,
``on (...)``, ``group_left (...)``), skips numbers and durations, and classifies every remaining
identifier: followed by ``(`` it must be a PromQL function, otherwise a keyword or a metric name
the application exports. Grafana variables (``$model``, ``${__range_s}``) must be defined. The
end-to-end test then has the real Prometheus parse and evaluate every expression.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from ._names import DashboardError

__all__ = ["GRAFANA_BUILTINS", "validate_expression"]

GRAFANA_BUILTINS = frozenset(
    {"__range", "__range_s", "__range_ms", "__interval", "__interval_ms", "__rate_interval", "__rate_interval_ms"}
)
_FUNCTIONS = frozenset(
    """
    abs absent absent_over_time acos acosh asin asinh atan atanh avg_over_time ceil changes clamp
    clamp_max clamp_min cos cosh count_over_time day_of_month day_of_week day_of_year days_in_month deg
    delta deriv exp floor histogram_avg histogram_count histogram_fraction histogram_quantile
    histogram_stddev histogram_stdvar histogram_sum holt_winters double_exponential_smoothing hour
    idelta increase irate label_join label_replace last_over_time ln log10 log2 mad_over_time
    max_over_time min_over_time minute month pi predict_linear present_over_time quantile_over_time rad
    rate resets round scalar sgn sin sinh sort sort_by_label sort_by_label_desc sort_desc sqrt
    stddev_over_time stdvar_over_time sum_over_time tan tanh time timestamp vector year start end sum
    min max avg group stddev stdvar count count_values bottomk topk quantile limitk limit_ratio
    """.split()  # noqa: SIM905 - a word list reads better than a 120-line list
)
_KEYWORDS = frozenset({"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring", "inf", "nan"})
_VARIABLE = re.compile(r"\$\{([A-Za-z0-9_]+)(?::[^}]*)?\}|\$([A-Za-z0-9_]+)|\[\[([A-Za-z0-9_]+)\]\]")
_COMMENT = re.compile(r"#[^\n]*")
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_SELECTOR = re.compile(r"([A-Za-z_:][A-Za-z0-9_:]*)?\s*\{([^{}]*)\}")
_MATCHER = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*__STR__\s*")
_LABEL_LIST = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^()]*)\)")
_RANGE = re.compile(r"\[[^\[\]]*\]")
_NUMBER = re.compile(r"(?<![A-Za-z0-9_:])(?:0x[0-9a-fA-F]+|[0-9]+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?[a-zA-Z]*)")
_IDENT = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")


def _labels(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def validate_expression(
    expr: str, known: Mapping[str, frozenset[str]], variables: Iterable[str], *, where: str
) -> set[str]:
    """Check one expression; return the metric names it uses.

    Args:
        expr: the PromQL, with Grafana variables.
        known: every series the application exports (or the rules record), with its label names.
        variables: the dashboard's template variable names.
        where: what the expression belongs to, for the error message (a panel title).

    Raises:
        DashboardError: an unknown metric, label, function or variable, named with *where*.
    """
    defined = set(variables) | GRAFANA_BUILTINS
    for match in _VARIABLE.finditer(expr):
        name = next(g for g in match.groups() if g)
        if name not in defined:
            raise DashboardError(f"{where}: unknown dashboard variable ${name} in {expr!r}")
    text = _COMMENT.sub(" ", expr)
    strings = [s[1:-1] for s in _STRING.findall(text)]
    text = _STRING.sub("__STR__", text)
    # A variable outside a string or range stands for a number (e.g. ${__range_s}).
    text = _VARIABLE.sub("1", _RANGE.sub(" ", text))
    all_labels = {label for labels in known.values() for label in labels}
    # Labels made inside the expression: count_values("hour", ...), label_replace(v, "dst", ...).
    made = set(strings)
    used: set[str] = set()

    def selector(match: re.Match[str]) -> str:
        metric = match.group(1)
        if metric is not None and metric not in _KEYWORDS:
            if metric not in known:
                raise DashboardError(f"{where}: unknown metric {metric!r} in {expr!r}")
            used.add(metric)
            allowed = set(known[metric]) | {"__name__"}
        else:
            allowed = all_labels | {"__name__"}
        body = match.group(2)
        if _MATCHER.sub("", body.replace(",", " ")).strip():
            raise DashboardError(f"{where}: cannot read the label matchers {{{body}}} in {expr!r}")
        for label in (m.group(1) for m in _MATCHER.finditer(body.replace(",", " "))):
            if label not in allowed:
                raise DashboardError(
                    f"{where}: metric {metric or '(any)'} has no label {label!r} in {expr!r}"
                    " (is the dimension enabled?)"
                )
        return f" {metric} " if metric is not None and metric not in _KEYWORDS else " "

    text = _SELECTOR.sub(selector, text)
    for match in _LABEL_LIST.finditer(text):
        for label in _labels(match.group(2)):
            if label not in all_labels and label not in made:
                raise DashboardError(f"{where}: no exported metric has the label {label!r} in {expr!r}")
    text = _LABEL_LIST.sub(" ", text)
    text = _NUMBER.sub(" ", text.replace("__STR__", " "))
    for match in _IDENT.finditer(text):
        word = match.group(0)
        rest = text[match.end() :].lstrip()
        if rest.startswith("("):
            if word not in _FUNCTIONS:
                raise DashboardError(f"{where}: unknown PromQL function {word!r} in {expr!r}")
        elif word in _KEYWORDS or word in ("group_left", "group_right"):
            continue
        elif word not in known:
            raise DashboardError(f"{where}: unknown metric {word!r} in {expr!r}")
        else:
            used.add(word)
    return used
