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
from . import state as st
from .spec import ACTIONS, BudgetsFile

__all__ = [
    "FAILURE_POLICIES",
    "RATE_UNITS",
    "FILTER_ARGS",
    "SCOPE_ALL",
    "SCOPE_PROPERTY",
    "SCOPE_USER",
    "WINDOWS",
    "BudgetExceededError",
    "GuardBudget",
    "GuardRateLimit",
    "Rule",
    "breach_error",
    "compile_filter",
    "compile_rules",
    "describe",
    "limit_usd",
    "limits_from_file",
    "usd_text",
]

WINDOWS: dict[str, int | None] = {"1h": 3600, "1d": 86400, "7d": 7 * 86400, "30d": 30 * 86400, "month": None}
"""Window names a guard budget accepts (besides a number of seconds); ``None``: the calendar month."""
FAILURE_POLICIES = (sc.POLICY_OPEN, sc.POLICY_CLOSED)
RATE_UNITS = ("request", "cents")
FILTER_ARGS = ("provider", "model", "operation")
"""Filter keys matched against the call itself (lower-cased); any other key is a custom property."""
SCOPE_ALL, SCOPE_USER, SCOPE_PROPERTY = st.SCOPE_ALL, st.SCOPE_USER, st.SCOPE_PROPERTY
"""How a :class:`Rule` keys its counters: one for all calls, one per user, one per property value."""


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


@dataclass(eq=False, slots=True)
class Rule:
    """A budget or rate limit compiled for one guard's hot path.

    Attributes:
        name: the limit's name.
        kind: :data:`.state.KIND_BUDGET`, :data:`.state.KIND_CENTS` or :data:`.state.KIND_REQUESTS`.
        limit: the limit in units (nano-dollars, or requests).
        window_s: the window in seconds (``None``: the calendar month).
        scope: :data:`SCOPE_ALL`, :data:`SCOPE_USER` or :data:`SCOPE_PROPERTY`.
        prop: the scoping property (:data:`SCOPE_PROPERTY`), else ``""``.
        filter: the compiled filter (:func:`compile_filter`).
        raise_: a breach refuses the call.
        label: the window for messages (``1d``, ``60s``).
        user_slot: the per-user budget's index in the guard's user tracker, or -1.
        window: the current window (budgets) or bucket (rate limits), kept by :meth:`bounds`.
        learned: the largest single-call spend seen in this process (units): what a call reserves.
        counters: this limit's counters in the guard's state, when it is a :class:`.state.MemoryState`.
    """

    name: str
    kind: str
    limit: int
    window_s: int | None
    scope: int
    prop: str
    filter: tuple[tuple[str, frozenset[str]], ...]
    raise_: bool
    label: str
    user_slot: int = -1
    window: tuple[int, int] = (0, 0)
    learned: int = 0
    counters: st.Counters | None = None

    def bounds(self, now: float) -> tuple[int, int, float]:
        """Return the current window (fixed) or bucket (sliding) and the previous bucket's weight.

        The window is recomputed only when *now* leaves the one kept (either way: a clock may step back).
        """
        start, end = self.window
        if not start <= now < end:
            if self.kind == st.KIND_BUDGET:
                start, end = st.fixed_window(self.window_s, now)
            else:
                size = self.window_s or 1
                start = int(now) // size * size
                end = start + size
            self.window = start, end
        if self.kind == st.KIND_BUDGET:
            return start, end, 0.0
        return start, end, 1.0 - (now - start) / (end - start)


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


def compile_rules(budgets: Sequence[GuardBudget], rate_limits: Sequence[GuardRateLimit]) -> list[Rule]:
    """Return the rules a guard checks: the budgets', then the rate limits'.

    Per-user budgets get ``user_slot`` 0, 1... in their order.

    Raises:
        ConfigError: two budgets or rate limits have the same name.
    """
    rules: list[Rule] = []
    per_user = 0
    for b in budgets:
        rule = Rule(
            name=b.name,
            kind=st.KIND_BUDGET,
            limit=st.usd_to_units(b.limit_usd),
            window_s=b.window_s,
            scope=SCOPE_USER if b.per_user else SCOPE_ALL,
            prop="",
            filter=compile_filter(b.filter),
            raise_=b.action == "raise",
            label=b.window if isinstance(b.window, str) else f"{b.window}s",
        )
        if b.per_user:
            rule.user_slot, per_user = per_user, per_user + 1
        rules.append(rule)
    for r in rate_limits:
        cents = r.unit == "cents"
        scope = SCOPE_ALL if not r.scope else SCOPE_USER if r.scope == "user" else SCOPE_PROPERTY
        rules.append(
            Rule(
                name=r.name,
                kind=st.KIND_CENTS if cents else st.KIND_REQUESTS,
                limit=r.quota * st.UNITS_PER_CENT if cents else r.quota,
                window_s=r.window_s,
                scope=scope,
                prop=r.scope or "" if scope == SCOPE_PROPERTY else "",
                filter=compile_filter(r.filter),
                raise_=r.action == "raise",
                label=f"{r.window_s}s",
            )
        )
    names = [r.name for r in rules]
    for name in names:
        if names.count(name) > 1:
            raise ConfigError("budgets.name", name, "two budgets or rate limits have the same name")
    return rules


def describe(r: Rule) -> str:
    """``budget 'name'`` or ``rate limit 'name'``, for messages."""
    return f"rate limit '{r.name}'" if r.kind != st.KIND_BUDGET else f"budget '{r.name}'"


def limit_usd(r: Rule) -> Decimal | None:
    """A rule's limit in dollars (``None`` for a request quota)."""
    return None if r.kind == st.KIND_REQUESTS else st.units_to_usd(r.limit)


def breach_error(r: Rule, c: st.Check, s: st.Seen, now: float) -> BudgetExceededError:
    """Return the error for a breach of *r*: what was spent of what limit, and when it resets.

    Args:
        r: the rule breached.
        c: the check the state decided.
        s: what the state saw.
        now: epoch seconds.
    """
    who = f" for user '{c.key}'" if r.scope == SCOPE_USER else f" for {r.prop}='{c.key}'" if r.prop else ""
    used = s.spent + s.previous * c.weight
    reset: float
    spend: Decimal | None
    if r.kind == st.KIND_BUDGET:
        reset = c.end
        spend = st.units_to_usd(used)
        limit = st.units_to_usd(r.limit)
        usd = usd_text
        head = f"{usd(spend)} of {usd(limit)} spent ({100 * used / r.limit:.0f}%) this {r.label} window"
    else:
        # sliding window: when the previous bucket's weight (or this bucket, once it is the
        # previous one) has decayed enough for this call to fit
        need, size, room = max(c.amount, 1), c.end - c.start, r.limit - s.spent - max(c.amount, 1)
        if room >= 0:
            reset = c.start + size * (1 - room / s.previous) if s.previous else now
        elif s.spent:
            reset = c.end + size * (1 - max(r.limit - need, 0) / s.spent)
        else:  # the call alone is over the limit (an estimate): it never fits; say when all has decayed
            reset = c.end + size
        reset = min(max(reset, now), c.end + size)
        spend = None if r.kind == st.KIND_REQUESTS else st.units_to_usd(used)
        if r.kind == st.KIND_REQUESTS:
            head = f"{used:.0f} of {r.limit} requests in the last {r.label}"
        else:
            head = f"{used / st.UNITS_PER_CENT:.2f} of {r.limit // st.UNITS_PER_CENT} cents in the last {r.label}"
    if used >= r.limit or r.kind == st.KIND_REQUESTS:
        tail = ""
    elif c.explicit:
        tail = f"; this call's estimated {usd_text(st.units_to_usd(c.amount))} would exceed it"
    else:
        tail = f", and {usd_text(st.units_to_usd(s.reserved))} is reserved by calls in flight"
    when = st.utc(reset).strftime("%Y-%m-%d %H:%M:%S UTC")
    return BudgetExceededError(
        f"LLM {describe(r)} exceeded{who}: {head}{tail}; it resets at {when}",
        budget=r.name,
        spend_usd=spend,
        limit_usd=limit_usd(r),
        reset_at=st.utc(reset),
        reason="budget" if r.kind == st.KIND_BUDGET else "rate_limit",
        user=c.key if r.scope == SCOPE_USER else None,
    )
