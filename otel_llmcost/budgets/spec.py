"""The budgets file: its schema, and a loader that names file, line and key for every mistake.

A budgets file is YAML with four top-level keys, all optional except that the file must not be
empty::

    dimensions: [environment, feature]   # the metric label allow-list (OTEL_LLMCOST_DIMENSIONS)

    budgets:
      - name: production-daily           # [A-Za-z0-9][A-Za-z0-9_.-]*, unique
        filter: {environment: production}   # omitted: the budget covers every call (global)
        window: 1d                       # 1h, 1d, 7d, 30d (any Nm/Nh/Nd/Nw, at least 5m) or month
        limit_usd: 100
        thresholds: [0.5, 0.8, 0.95]     # the default; each 0 < t <= 1
        for: 5m                          # how long a threshold must hold before its alert fires
                                         # (default 5m; 1m for windows under 30m)
        action: log                      # raise | log: what the guard does; omitted: alerts only
        title: production                # the words alerts use for the scope ("Daily LLM spend
                                         # for production is at ..."); default: the filter
      - name: per-user-daily
        per: user                        # one budget per end user (tracked in process)
        window: 1d
        limit_usd: 5

    alerts:                              # error-rate alerts on llm_requests_total
      - name: production-errors
        error_rate_above: 0.05           # 0 <= r < 1: fires when errors / requests > r
        window: 15m                      # at least 1m, no calendar month
        filter: {environment: production}
        for: 5m
        severity: warning                # info | warning | critical
        min_requests: 20                 # optional: ignore windows with fewer calls (default 0)

    rate_limits:                         # for the guards: quota;w=seconds;u=request|cents;s=scope
      - name: per-user-requests
        policy: "60;w=60;u=request;s=user"
        action: raise                    # raise (default) | log
      - "500;w=3600;u=cents"             # shorthand: the policy alone, named after itself
                                         # (a mapping may also have a 'filter', as budgets do)

Keys and their meaning:

``dimensions``
    The allow-list of extra metric labels the application records (same meaning and rules as
    ``OTEL_LLMCOST_DIMENSIONS``; a list or a comma-separated string). When absent, the
    environment variable (or its default) is used. A ``filter`` may only name these labels or
    ``provider``, ``model``, ``operation``: a filter on anything else could never match a series,
    so it is refused rather than generating rules that silently never fire.

``budgets[]``
    ``name`` and ``window`` and ``limit_usd`` are required. The scope is global unless the budget
    has ``filter`` (label -> value, or a list of values) or ``per: user``. ``window: month`` is the
    calendar month in UTC; the others are rolling windows ending now in the rules, while guards
    count fixed UTC windows (see :mod:`otel_llmcost.budgets.limits` for why an alert fires before a
    guard refuses, and may still fire after the guard's window reset). A ``per: user`` budget may
    also have a ``filter`` (the in-process tracker applies it). ``thresholds`` entries are
    numbers or ``{at: 0.9, severity: critical}``; without an explicit severity the highest
    threshold is ``critical``, the next ``warning`` and the rest ``info``.

``alerts[]``
    ``name``, ``error_rate_above`` and ``window`` are required; ``filter`` as for budgets,
    ``title`` as for budgets, ``for`` defaults like a budget's.

``rate_limits[]``
    The policy ``QUOTA;w=SECONDS;u=UNIT;s=SCOPE``: ``QUOTA`` a whole number > 0; ``w`` the window
    in seconds (required); ``u`` is ``request`` (default) or ``cents`` of spend; ``s`` is ``user``
    or an allow-listed dimension (one counter per value), omitted for one shared counter.

Every mistake raises :class:`BudgetsError` naming the file, the line and the key: an unknown key
(with the closest valid one), a bad window or duration, a threshold outside (0, 1], a filter on a
label that is not allow-listed, a malformed rate-limit policy, a duplicate name.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Final, Literal

from .. import semconv as sc
from ..config import ConfigError

__all__ = [
    "ACTIONS",
    "BUILTIN_LABELS",
    "DEFAULT_FOR",
    "DEFAULT_THRESHOLDS",
    "LABEL_BUDGET",
    "LABEL_SEVERITY",
    "LABEL_THRESHOLD",
    "LABEL_USER",
    "LABEL_WINDOW",
    "METRIC_BUDGET_LIMIT_USD",
    "METRIC_BUDGET_USERS_OVER_THRESHOLD",
    "METRIC_BUDGET_USER_UTILIZATION",
    "SEVERITIES",
    "Budget",
    "BudgetsError",
    "BudgetsFile",
    "ErrorRateAlert",
    "RateLimit",
    "Threshold",
    "Window",
    "load_budgets",
    "parse_budgets",
    "parse_duration_s",
    "parse_rate_limit_policy",
    "parse_window",
    "threshold_label",
]

Action = Literal["raise", "log"]
Severity = Literal["info", "warning", "critical"]
ACTIONS: Final = ("raise", "log")
SEVERITIES: Final = ("info", "warning", "critical")
DEFAULT_THRESHOLDS: Final = (0.5, 0.8, 0.95)
DEFAULT_FOR: Final = "5m"
BUILTIN_LABELS: Final = (sc.PROVIDER, sc.MODEL, sc.OPERATION)
"""Labels every cost metric has, so a filter may use them whatever the allow-list."""

# Names of the budget metrics and labels, from the semantic-convention registry
# (semconv/budgets.yaml). The limit is written by the generated recording rules, the two per-user
# gauges by the in-process per-user tracker; the rules alert on all three. The gauges are named
# here as Prometheus shows them (the OpenTelemetry exporter turns dots into underscores).
METRIC_BUDGET_LIMIT_USD: Final = sc.METRIC_LLM_BUDGET_LIMIT_USD
"""Prometheus gauge (recording rule): the limit of each budget in USD; labels budget, window."""
METRIC_BUDGET_USER_UTILIZATION: Final = sc.METRIC_LLM_BUDGET_USER_UTILIZATION_RATIO.replace(".", "_")
"""Prometheus gauge (per-user tracker): spend / limit of the users closest to a per-user budget; labels budget, user."""
METRIC_BUDGET_USERS_OVER_THRESHOLD: Final = sc.METRIC_LLM_BUDGET_USERS_OVER_THRESHOLD.replace(".", "_")
"""Prometheus gauge (per-user tracker): how many users are over each threshold; labels budget, threshold."""
LABEL_BUDGET: Final = sc.BUDGET
LABEL_WINDOW: Final = sc.WINDOW
LABEL_THRESHOLD: Final = sc.THRESHOLD
LABEL_SEVERITY: Final = sc.SEVERITY
LABEL_USER: Final = sc.USER

PER_USER: Final = "user"
MIN_BUDGET_WINDOW_S: Final = 300
MIN_ALERT_WINDOW_S: Final = 60
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_WINDOW = re.compile(r"^([1-9][0-9]*)([mhdw])$")
_DURATION = re.compile(r"^(?:[0-9]+(?:ms|s|m|h|d|w|y))+$")
_DURATION_PART = re.compile(r"([0-9]+)(ms|s|m|h|d|w|y)")
_UNIT_S = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
_MONTH = "month"
_MONTH_MIN_S = 28 * 86400


class BudgetsError(ConfigError):
    """A budgets file is invalid; the message names the file, the line and the key."""

    def __init__(self, source: str, line: int, key: str, value: object, problem: str) -> None:
        """Create the error.

        Args:
            source: the file (path or ``<string>``).
            line: 1-based line of the offending key or value (0 when unknown).
            key: dotted path of the key, e.g. ``budgets[1].window``.
            value: the offending value.
            problem: what is wrong, in words.
        """
        super().__init__(key, value, problem)
        self.source = source
        self.line = line
        where = f"{source}:{line}" if line else source
        shown = "" if value is _NO_VALUE else f" (got {value!r})"
        self.args = (f"{where}: {key}: {problem}{shown}",)


_NO_VALUE: Final = object()


@dataclass(frozen=True, slots=True)
class Window:
    """A budget or alert window: rolling (``seconds``) or the calendar month in UTC."""

    text: str
    seconds: int | None
    """Length of a rolling window; ``None`` for the calendar month."""

    @property
    def calendar_month(self) -> bool:
        """Whether this is the calendar month (UTC) rather than a rolling window."""
        return self.seconds is None

    @property
    def min_seconds(self) -> int:
        """The shortest this window can be (28 days for a calendar month)."""
        return _MONTH_MIN_S if self.seconds is None else self.seconds

    def adjective(self) -> str:
        """Return how a person names spend over this window: ``Daily``, ``Month-to-date``, ``7-day``."""
        if self.seconds is None:
            return "Month-to-date"
        named = {3600: "Hourly", 86400: "Daily", 604800: "Weekly"}
        if self.seconds in named:
            return named[self.seconds]
        n, unit = int(self.text[:-1]), self.text[-1]
        return f"{n}-{ {'m': 'minute', 'h': 'hour', 'd': 'day', 'w': 'week'}[unit] }"

    def phrase(self) -> str:
        """Return the window as a phrase: ``in the last 24 hours``, ``since the 1st of the month (UTC)``."""
        if self.seconds is None:
            return "since the 1st of the month (UTC)"
        n, unit = int(self.text[:-1]), self.text[-1]
        if unit == "d" and n == 1:
            return "in the last 24 hours"
        words = {"m": "minute", "h": "hour", "d": "day", "w": "week"}[unit]
        return f"in the last {words}" if n == 1 else f"in the last {n} {words}s"


@dataclass(frozen=True, slots=True)
class Threshold:
    """A fraction of a budget's limit at which an alert of ``severity`` fires."""

    at: float
    severity: Severity

    @property
    def label(self) -> str:
        """The ``threshold`` label value (``0.8``); see :func:`threshold_label`."""
        return threshold_label(self.at)

    @property
    def percent(self) -> str:
        """The threshold as a percentage for people (``80%``)."""
        return f"{format((Decimal(repr(self.at)) * 100).normalize(), 'f')}%"


@dataclass(frozen=True, slots=True)
class Budget:
    """One budget of a budgets file."""

    name: str
    window: Window
    limit_usd: Decimal
    thresholds: tuple[Threshold, ...]
    filter: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Label -> accepted values (one or more); empty for a global budget."""
    per: Literal["user"] | None = None
    for_: str = DEFAULT_FOR
    action: Action | None = None
    """What the guard does when the budget is spent; ``None``: the budget only alerts."""
    title: str = ""
    line: int = 0

    @property
    def per_user(self) -> bool:
        """Whether each end user has this budget (tracked in process, not in PromQL)."""
        return self.per == PER_USER

    def scope_text(self) -> str:
        """The words for the scope: the title, else the filter (``environment=production``), else all calls."""
        if self.title:
            return self.title
        if self.filter:
            return _filter_text(self.filter)
        return "all calls"

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Return whether a call with these label values (dimensions, provider, model, operation) is in scope."""
        return all(labels.get(key) in values for key, values in self.filter.items())


@dataclass(frozen=True, slots=True)
class ErrorRateAlert:
    """An alert on the share of failed LLM calls."""

    name: str
    error_rate_above: float
    window: Window
    filter: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    for_: str = DEFAULT_FOR
    severity: Severity = "warning"
    min_requests: int = 0
    title: str = ""
    line: int = 0

    def scope_text(self) -> str:
        """The words for the scope (title, filter, or all calls)."""
        if self.title:
            return self.title
        if self.filter:
            return _filter_text(self.filter)
        return "all calls"


@dataclass(frozen=True, slots=True)
class RateLimit:
    """A parsed rate-limit policy (``quota;w=seconds;u=request|cents;s=scope``) for the guards."""

    name: str
    quota: int
    window_s: int
    unit: Literal["request", "cents"]
    scope: str | None
    """``user``, an allow-listed dimension (one counter per value), or ``None`` (one shared counter)."""
    policy: str
    action: Action = "raise"
    filter: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    line: int = 0

    @property
    def quota_usd(self) -> Decimal | None:
        """The quota in USD when the unit is cents of spend, else ``None``."""
        return Decimal(self.quota) / 100 if self.unit == "cents" else None


@dataclass(frozen=True, slots=True)
class BudgetsFile:
    """A loaded, validated budgets file."""

    source: str
    dimensions: tuple[str, ...]
    budgets: tuple[Budget, ...] = ()
    alerts: tuple[ErrorRateAlert, ...] = ()
    rate_limits: tuple[RateLimit, ...] = ()


def threshold_label(at: float) -> str:
    """Return the canonical ``threshold`` label value of a fraction: ``0.8``, ``0.95``, ``1``.

    The generated rules and the in-process per-user tracker must spell thresholds alike.
    """
    return format(Decimal(repr(float(at))).normalize(), "f")


def parse_duration_s(text: str) -> float | None:
    """Return a Prometheus duration (``90s``, ``5m``, ``1h30m``) in seconds, or ``None`` if malformed."""
    if not _DURATION.match(text):
        return None
    return sum(int(n) * _UNIT_S[unit] for n, unit in _DURATION_PART.findall(text))


def parse_window(text: str) -> Window | None:
    """Return the window ``Nm``/``Nh``/``Nd``/``Nw`` or ``month``, or ``None`` if malformed."""
    if text == _MONTH:
        return Window(_MONTH, None)
    m = _WINDOW.match(text)
    if not m:
        return None
    return Window(text, int(m.group(1)) * int(_UNIT_S[m.group(2)]))


def parse_rate_limit_policy(policy: str) -> tuple[int, int, Literal["request", "cents"], str | None]:
    """Parse ``quota;w=seconds;u=request|cents;s=scope`` into (quota, window_s, unit, scope).

    The scope is returned as written; whether it is allowed (``user`` or an allow-listed
    dimension) is checked by the loader.

    Raises:
        ValueError: the policy is malformed; the message says which part.
    """
    parts = [p.strip() for p in policy.split(";")]
    if not parts[0]:
        raise ValueError("the policy starts with the quota, a whole number > 0 (e.g. 100;w=60)")
    quota = _positive_int(parts[0], "the quota")
    params: dict[str, str] = {}
    for part in parts[1:]:
        if not part:
            raise ValueError("an empty parameter (two ';' in a row, or a trailing ';')")
        key, eq, value = part.partition("=")
        key, value = key.strip(), value.strip()
        if not eq or not value:
            raise ValueError(f"parameter {part!r} is not key=value")
        if key not in ("w", "u", "s"):
            raise ValueError(f"unknown parameter {key!r}: expected w (seconds), u (request|cents), s (scope)")
        if key in params:
            raise ValueError(f"parameter {key!r} is given twice")
        params[key] = value
    if "w" not in params:
        raise ValueError("the window w=SECONDS is required")
    window_s = _positive_int(params["w"], "w (the window in seconds)")
    unit = params.get("u", "request")
    if unit not in ("request", "cents"):
        raise ValueError(f"u={unit!r}: the unit is request or cents")
    scope = params.get("s")
    if scope is not None and not re.match(r"^[a-zA-Z_][a-zA-Z0-9_]*$", scope):
        raise ValueError(f"s={scope!r}: the scope is user or a dimension name")
    return quota, window_s, "cents" if unit == "cents" else "request", scope


def _positive_int(text: str, what: str) -> int:
    if not re.match(r"^[0-9]+$", text) or int(text) <= 0:
        raise ValueError(f"{what} must be a whole number > 0, not {text!r}")
    return int(text)


def _filter_text(flt: Mapping[str, tuple[str, ...]]) -> str:
    return ", ".join(f"{k}={'|'.join(v)}" for k, v in flt.items())


def load_budgets(path: str | Path, *, environ: Mapping[str, str] | None = None) -> BudgetsFile:
    """Load and validate a budgets file.

    Args:
        path: the YAML file.
        environ: where ``OTEL_LLMCOST_DIMENSIONS`` is read when the file has no ``dimensions``
            (default: the process environment).

    Raises:
        BudgetsError: the file cannot be read or is invalid (file, line and key named).
    """
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise BudgetsError(source, 0, "file", _NO_VALUE, f"cannot read the budgets file: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise BudgetsError(source, 0, "file", _NO_VALUE, "the budgets file is not UTF-8 text") from None
    return parse_budgets(text, source=source, environ=environ)


def parse_budgets(text: str, *, source: str = "<string>", environ: Mapping[str, str] | None = None) -> BudgetsFile:
    """Validate budgets-file text; see :func:`load_budgets`.

    Raises:
        BudgetsError: the text is invalid (source, line and key named).
    """
    from ._parser import Parser  # the parser needs this module's types

    return Parser(source, environ).parse(text)
