"""What a guard enforces: budgets and rate limits as the guard needs them, and the error it raises.

:func:`limits_from_file` maps a loaded budgets file onto these:

- a budget with ``action: raise`` or ``action: log`` becomes a :class:`GuardBudget`; a budget
  without ``action`` only alerts (Prometheus rules) and is not enforced by guards;
- every rate limit becomes a :class:`GuardRateLimit` (its action defaults to ``raise``).

Windows. A guard budget counts spend in *fixed* UTC windows (``1h`` from the hour, ``1d`` from
midnight, ``7d`` from Monday 00:00, ``30d`` in 30-day blocks from 1970-01-01, ``month`` from the 1st;
other lengths in blocks of that length from 1970-01-01): a refused call can say when its budget
resets. The generated Prometheus rules measure the same budget over a *rolling* window ending now
(``increase(...[1d])``), except ``month``, which both read month-to-date in UTC. A rolling window of
the same length always contains the fixed window that ends at the same moment, so the alert reads
at least what the guard reads: the alert fires first, the guard refuses later, and just after a
fixed window resets the guard admits calls while a rolling alert may still be firing.
Per-user budgets agree exactly: their alerts read the guard's own per-user gauges.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from .. import semconv as sc
from ..config import ConfigError
from .spec import ACTIONS, BudgetsFile

__all__ = [
    "FAILURE_POLICIES",
    "RATE_UNITS",
    "FILTER_ARGS",
    "WINDOWS",
    "BudgetExceededError",
    "GuardBudget",
    "GuardRateLimit",
    "compile_filter",
    "limits_from_file",
    "usd_text",
]

WINDOWS: dict[str, int | None] = {"1h": 3600, "1d": 86400, "7d": 7 * 86400, "30d": 30 * 86400, "month": None}
"""Window names a guard budget accepts (besides a number of seconds); ``None``: the calendar month."""
FAILURE_POLICIES = (sc.POLICY_OPEN, sc.POLICY_CLOSED)
RATE_UNITS = ("request", "cents")
FILTER_ARGS = ("provider", "model", "operation")
"""Filter keys matched against the call itself (lower-cased); any other key is a custom property."""


@dataclass(frozen=True)
class GuardBudget:
    """A spending limit as the guard needs it (the budgets file maps onto this).

    Attributes:
        name: the budget's name (a metric label and part of the state's keys).
        window: ``1h``, ``1d``, ``7d``, ``30d``, ``month`` (calendar month, UTC), or seconds.
        limit_usd: the limit per window.
        filter: the calls it covers: property name (or ``provider``, ``model``, ``operation``) to one
            accepted value or several; empty: every call.
        per_user: the limit applies to each user separately (calls without a user are not covered).
        action: ``raise`` refuses calls once breached; ``log`` only logs (once per window).
        thresholds: fractions of the limit counted in ``llm_budget_users_over_threshold``.
    """

    name: str
    window: str | int
    limit_usd: Decimal
    filter: Mapping[str, str | Sequence[str]] = field(default_factory=dict, hash=False)
    per_user: bool = False
    action: str = "raise"
    thresholds: tuple[float, ...] = (0.5, 0.8, 0.95)

    def __post_init__(self) -> None:
        """Validate the budget.

        Raises:
            ConfigError: a bad window, limit, action or threshold.
        """
        where = f"budgets.{self.name}"
        if not self.name:
            raise ConfigError("budgets.name", self.name, "a budget needs a name")
        if isinstance(self.window, str) and self.window not in WINDOWS:
            raise ConfigError(f"{where}.window", self.window, f"expected one of {', '.join(WINDOWS)} or seconds")
        if isinstance(self.window, int) and self.window <= 0:
            raise ConfigError(f"{where}.window", self.window, "a window is a positive number of seconds")
        if not isinstance(self.limit_usd, Decimal) or not self.limit_usd.is_finite() or self.limit_usd <= 0:
            raise ConfigError(f"{where}.limit_usd", self.limit_usd, "expected a positive Decimal")
        if self.action not in ACTIONS:
            raise ConfigError(f"{where}.action", self.action, "expected raise or log")
        if any(not 0 < t <= 1 for t in self.thresholds):
            raise ConfigError(f"{where}.thresholds", self.thresholds, "thresholds are fractions in (0, 1]")

    @property
    def window_s(self) -> int | None:
        """The window in seconds; ``None`` for the calendar month."""
        return WINDOWS[self.window] if isinstance(self.window, str) else self.window


@dataclass(frozen=True)
class GuardRateLimit:
    """A rate limit: ``quota;w=seconds;u=request|cents;s=user|<property>`` over a sliding window.

    Attributes:
        quota: requests, or cents, allowed per window.
        window_s: the window in seconds.
        unit: ``request`` (counted on admission) or ``cents`` (spend, counted after the call).
        scope: ``user``, the name of the property whose values are limited separately, or
            ``None`` for one counter shared by every call.
        name: the limit's name; default the policy string.
        action: ``raise`` or ``log``.
        filter: the calls it covers, as for :class:`GuardBudget`.
    """

    quota: int
    window_s: int
    unit: str
    scope: str | None = None
    name: str = ""
    action: str = "raise"
    filter: Mapping[str, str | Sequence[str]] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        """Validate the limit and default its name.

        Raises:
            ConfigError: a bad quota, window, unit, scope or action.
        """
        policy = f"{self.quota};w={self.window_s};u={self.unit}" + (f";s={self.scope}" if self.scope else "")
        if not self.name:
            object.__setattr__(self, "name", policy)
        for key, value, ok, problem in (
            ("quota", self.quota, isinstance(self.quota, int) and self.quota > 0, "a positive whole number"),
            ("w", self.window_s, isinstance(self.window_s, int) and self.window_s > 0, "positive seconds"),
            ("u", self.unit, self.unit in RATE_UNITS, "request or cents"),
            ("s", self.scope, self.scope is None or bool(self.scope), "user, a property name or nothing"),
            ("action", self.action, self.action in ACTIONS, "raise or log"),
        ):
            if not ok:
                raise ConfigError(f"rate_limits[{policy}].{key}", value, f"expected {problem}")


class BudgetExceededError(Exception):
    """A call was refused by a budget or rate limit whose action is ``raise``.

    Attributes:
        budget: the name of the budget or rate limit.
        spend_usd: what was spent in its window (``None`` for request quotas, or when unknown).
        limit_usd: its limit (``None`` for request quotas).
        reset_at: when the window resets (sliding windows: when the call would fit again).
        reason: ``budget``, ``rate_limit``, or ``state_unavailable`` (fail-closed, Redis down).
        user: the user the limit was applied to, if it is per user.
    """

    def __init__(
        self,
        message: str,
        *,
        budget: str,
        spend_usd: Decimal | None,
        limit_usd: Decimal | None,
        reset_at: datetime,
        reason: str = "budget",
        user: str | None = None,
    ) -> None:
        """Create the error; *message* says what happened and when it resets."""
        super().__init__(message)
        self.budget = budget
        self.spend_usd = spend_usd
        self.limit_usd = limit_usd
        self.reset_at = reset_at
        self.reason = reason
        self.user = user


def limits_from_file(budgets: BudgetsFile) -> tuple[list[GuardBudget], list[GuardRateLimit]]:
    """Return the budgets and rate limits of a budgets file that guards enforce.

    A budget without ``action`` only alerts and is left out. Windows map by name when the guard
    knows it (``1h``, ``1d``, ``7d``, ``30d``, ``month``), else by length in seconds (``1w`` is 7
    days from Monday, ``90m`` blocks of 90 minutes from 1970-01-01 UTC). Filters, thresholds,
    ``per: user`` and rate-limit scopes carry over unchanged.

    Args:
        budgets: a loaded budgets file (:func:`otel_llmcost.budgets.load_budgets`).
    """
    out_budgets: list[GuardBudget] = []
    for b in budgets.budgets:
        if b.action is None:
            continue
        text, seconds = b.window.text, b.window.seconds
        window: str | int = text if text in WINDOWS else seconds if seconds is not None else "month"
        out_budgets.append(
            GuardBudget(
                name=b.name,
                window=window,
                limit_usd=b.limit_usd,
                filter=dict(b.filter),
                per_user=b.per_user,
                action=b.action,
                thresholds=tuple(t.at for t in b.thresholds),
            )
        )
    out_limits = [
        GuardRateLimit(
            quota=r.quota,
            window_s=r.window_s,
            unit=r.unit,
            scope=r.scope,
            name=r.name,
            action=r.action,
            filter=dict(r.filter),
        )
        for r in budgets.rate_limits
    ]
    return out_budgets, out_limits


def compile_filter(spec: Mapping[str, str | Sequence[str]]) -> tuple[tuple[str, frozenset[str]], ...]:
    """Return a filter as sorted ``(key, accepted values)`` pairs, call keys lower-cased."""
    out = []
    for key, values in sorted(spec.items()):
        accepted = {values} if isinstance(values, str) else set(values)
        out.append((key, frozenset(v.lower() for v in accepted) if key in FILTER_ARGS else frozenset(accepted)))
    return tuple(out)


def usd_text(amount: Decimal) -> str:
    """Dollars for an error message: ``$1,234.50``, ``$0.0042``."""
    return f"${amount:,.2f}" if abs(amount) >= 1 else f"${amount:.6f}".rstrip("0").rstrip(".")
