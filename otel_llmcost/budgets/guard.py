"""Spend guards: check budgets and rate limits before an LLM call, record its cost after.

The limits are in :mod:`.limits`, the process-wide ``guard()``/``record_spend()`` in
:mod:`.runtime`, the state in :mod:`.state` (memory) and :mod:`.redis_state`.

``Guard.admit`` runs before a call. Every budget and rate limit that applies to the call (by its
filter, and its user or property scope) is checked and the call's share reserved, atomically, in
the state (memory, or Redis for budgets shared by several processes). A breach of a limit whose
action is ``raise`` raises :class:`BudgetExceededError` and reserves nothing; a breach of a
``log`` limit is logged once per limit per window and the call goes ahead.

Cost is known only after the call, so the guard reserves an amount per call: the caller's
``estimated_cost_usd`` when given, else the largest cost this process has seen for that limit.
A call whose reservation does not fit in what is left is refused -- except the only call of its
process in flight on that limit, which is admitted while the limit is not yet spent. Overshoot is
therefore at most one in-flight call per process (plus any call costing more than its
reservation), and the last cents of a budget stay usable.

Rate limits count requests (charged on admission) or cents (charged after the call) per user or
per property value over a sliding window (see :mod:`.state`). When the shared state is
unreachable the guard follows its failure policy: ``open`` allows the call and logs once,
``closed`` raises :class:`BudgetExceededError`; both count the failure.

Speed: the limits that apply are memoised per call shape. In memory the guard binds its rules to
the state's counters, and a check is one pass under one lock with no object per limit
(:meth:`.state.MemoryState.admit_rules`); a breach, or any other state, takes the general path
(:class:`.state.Check` per limit, :meth:`.state.GuardState.admit`), which decides it all again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from types import MappingProxyType
from typing import Any

from .. import semconv as sc
from ..config import ConfigError
from . import limits as lim
from . import state as st
from .limits import SCOPE_PROPERTY, SCOPE_USER, BudgetExceededError, GuardBudget, GuardRateLimit, Rule
from .spec import BudgetsFile
from .users import UserUtilization

__all__ = [
    "BudgetExceededError",
    "Guard",
    "GuardBudget",
    "GuardRateLimit",
    "LabelResolver",
    "Permit",
]

_log = logging.getLogger("otel_llmcost.budgets")

_NONE: frozenset[str] = frozenset()
_EMPTY: Mapping[str, str] = MappingProxyType({})
_MAX_MEMO = 4096

_MemoKey = Callable[[str | None, str | None, str | None, str | None, Mapping[str, str]], tuple[Any, ...]]

LabelResolver = Callable[[str | None, str | None], tuple[str | None, str | None]]
"""Maps a call's provider and requested model to the ``provider`` and ``model`` metric labels
(the catalog's ids): filters on them then match a call as the Prometheus rules match its series."""


@dataclass(eq=False, slots=True)
class Permit:
    """What a guard check reserved for one call; settle it with the call's cost, or release it."""

    guard: Guard | None
    entries: list[tuple[Rule, str, int, int]]  # rule, scope key, reserved, window start
    done: bool = False

    def settle(self, cost_usd: Decimal | None) -> None:
        """Record what the call cost (``None``: unknown, counted as 0) and release the reservation."""
        if self.guard is not None:
            self.guard.settle(self, cost_usd)

    def release(self) -> None:
        """Release the reservation of a call that was not made."""
        self.settle(None)


_NO_PERMIT = Permit(None, [], done=True)


class Guard:
    """Checks budgets and rate limits before calls and records spend after them."""

    def __init__(
        self,
        budgets: Sequence[GuardBudget] = (),
        rate_limits: Sequence[GuardRateLimit] = (),
        *,
        state: st.GuardState | None = None,
        failure_policy: str = "open",
        expose_above: float = 0.5,
        max_exposed_users: int = 100,
        labels: LabelResolver | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Create a guard.

        Args:
            budgets: the budgets to enforce.
            rate_limits: the rate limits to enforce.
            state: where spend is kept; default this process's memory.
            failure_policy: when the state is unreachable, ``open`` allows calls, ``closed`` refuses them.
            expose_above: fraction of a per-user budget from which a user can appear by id in metrics.
            max_exposed_users: per per-user budget, how many users can appear by id.
            labels: maps a call's provider and model to the catalog's ids, which ``provider`` and
                ``model`` filters then also match (as they match metric labels); called once per
                distinct call shape, its result memoised.
            clock: epoch seconds (tests).

        Raises:
            ConfigError: a bad policy, or two limits with the same name.
        """
        if failure_policy not in lim.FAILURE_POLICIES:
            raise ConfigError("failure_policy", failure_policy, "expected open or closed")
        self.failure_policy = failure_policy
        self._state: st.GuardState = state if state is not None else st.MemoryState()
        self._clock = clock
        self._labels = labels
        self._rules = lim.compile_rules(budgets, rate_limits)
        per_user = [(b.name, st.usd_to_units(b.limit_usd), b.thresholds) for b in budgets if b.per_user]
        self._filter_keys = tuple(sorted({k for r in self._rules for k, _ in r.filter if k not in lim.FILTER_ARGS}))
        self._scope_keys = tuple(sorted({r.prop for r in self._rules if r.scope == SCOPE_PROPERTY}))
        self._memo: dict[tuple[Any, ...], tuple[Rule, ...]] = {}
        self._memo_key = _memo_key_function(self._filter_keys, self._scope_keys)
        self._lock = threading.Lock()
        self._users = UserUtilization(per_user, expose_above=expose_above, max_exposed=max_exposed_users)
        self._errors: dict[tuple[str, str], int] = {}
        self._breaches: dict[tuple[str, str], int] = {}
        self._logged: dict[str, int] = {}
        # in memory, the rules are bound to their counters and checked without a Check per limit
        # (a subclass may override admit() or settle(): it gets the general path)
        self._memory = self._state if type(self._state) is st.MemoryState else None
        for r in self._rules:
            r.counters = self._memory.counters(r.name) if self._memory is not None else None

    @classmethod
    def from_budgets(cls, budgets: BudgetsFile, **kwargs: Any) -> Guard:
        """Return a guard enforcing a budgets file (see :func:`.limits.limits_from_file`).

        Budgets without ``action`` only alert and are not enforced; rate limits default to ``raise``.

        Args:
            budgets: a loaded budgets file.
            kwargs: the other arguments of :class:`Guard` (``state``, ``failure_policy``...).

        Raises:
            ConfigError: as :class:`Guard`.
        """
        found, rate_limits = lim.limits_from_file(budgets)
        return cls(found, rate_limits, **kwargs)

    @property
    def enforces(self) -> bool:
        """Whether the guard has any budget or rate limit to enforce."""
        return bool(self._rules)

    @property
    def state(self) -> st.GuardState:
        """Where the guard keeps spend (memory, or Redis)."""
        return self._state

    def _resolve(self, provider: str | None, model: str | None) -> tuple[str | None, str | None]:
        try:
            return self._labels(provider, model) if self._labels is not None else (None, None)
        except Exception as exc:  # noqa: BLE001 - a pricing problem must not stop the call
            self._count_error("internal_error", f"resolving labels: {type(exc).__name__}: {exc}")
            return None, None

    # --- before the call ---------------------------------------------------------------------

    def _applicable(
        self,
        provider: str | None,
        model: str | None,
        operation: str | None,
        user: str | None,
        properties: Mapping[str, str],
    ) -> tuple[Rule, ...]:
        memo_key = self._memo_key(provider, model, operation, user, properties)
        rules = self._memo.get(memo_key)
        if rules is None:
            raw = {"provider": provider, "model": model, "operation": operation}
            call = {k: {v.lower()} for k, v in raw.items() if v}
            if self._labels is not None and (provider or model):
                for k, v in zip(("provider", "model"), self._resolve(provider, model), strict=True):
                    if v:
                        call.setdefault(k, set()).add(v.lower())
            rules = tuple(
                r
                for r in self._rules
                if all(
                    (not call.get(k, _NONE).isdisjoint(v)) if k in lim.FILTER_ARGS else properties.get(k) in v
                    for k, v in r.filter
                )
                and (r.scope != SCOPE_USER or user is not None)
                and (r.scope != SCOPE_PROPERTY or properties.get(r.prop) is not None)
            )
            if len(self._memo) >= _MAX_MEMO:
                self._memo.clear()
            self._memo[memo_key] = rules
        return rules

    def admit(
        self,
        *,
        provider: str | None = None,
        model: str | None = None,
        user: str | None = None,
        properties: Mapping[str, str] | None = None,
        estimated_cost_usd: Decimal | None = None,
        operation: str | None = None,
    ) -> Permit:
        """Check every applicable limit and reserve the call's share.

        Args:
            provider: the provider called (matched by ``provider`` filters, lower-cased).
            model: the model requested (matched by ``model`` filters, lower-cased).
            operation: the operation (``chat``...; matched by ``operation`` filters).
            user: the end user; per-user limits apply only when given.
            properties: the call's custom properties (``environment``, ``feature``...).
            estimated_cost_usd: what the call is expected to cost; reserved and required to fit.

        Returns:
            the reservation, to :meth:`Permit.settle` with the call's cost.

        Raises:
            BudgetExceededError: a ``raise`` limit is breached, or the state is unreachable and the
                failure policy is ``closed``.
        """
        if properties is None:
            properties = _EMPTY
        try:
            rules = self._memo.get(self._memo_key(provider, model, operation, user, properties))
            if rules is None:
                rules = self._applicable(provider, model, operation, user, properties)
            if not rules:
                return _NO_PERMIT
            memory = self._memory
            if memory is not None:
                est = estimated_cost_usd
                units = None if est is None else st.usd_to_units(est) if est > 0 else 0
                entries = memory.admit_rules(rules, user, properties, self._clock(), units)
                if entries is not None:
                    return Permit(self, entries)
                # a breach: decided again, with what the state saw, by the general path
            return self._admit(rules, user, properties, estimated_cost_usd)
        except BudgetExceededError:
            raise
        except Exception as exc:  # noqa: BLE001 - a bug in the guard must not stop the application
            self._count_error("internal_error", f"{type(exc).__name__}: {exc}")
            return _NO_PERMIT

    def _admit(
        self, rules: tuple[Rule, ...], user: str | None, properties: Mapping[str, str], estimate: Decimal | None
    ) -> Permit:
        now = self._clock()
        explicit = estimate is not None
        est = st.usd_to_units(estimate) if estimate is not None and estimate > 0 else 0
        checks: list[st.Check] = []
        entries: list[tuple[Rule, str, int, int]] = []
        new, check, requests = tuple.__new__, st.Check, st.KIND_REQUESTS
        for r in rules:
            kind = r.kind
            key = _scope_key(r, user, properties)
            start, end, weight = r.bounds(now)
            if kind == requests:
                checks.append(new(check, (r.name, kind, key, start, end, weight, r.limit, 1, True, r.raise_)))
            else:
                amount = est if explicit else r.learned
                checks.append(new(check, (r.name, kind, key, start, end, weight, r.limit, amount, explicit, r.raise_)))
                entries.append((r, key, amount, start))
        try:
            blocked, seen = self._state.admit(checks)
        except st.StateUnavailableError as exc:
            self._count_error(exc.reason, exc.detail)
            if self.failure_policy == "closed":
                first = next((r for r in rules if r.raise_), None)
                if first is not None:
                    r = first
                    _, end, _ = r.bounds(now)
                    raise BudgetExceededError(
                        f"LLM {lim.describe(r)} could not be checked: its shared state is unavailable "
                        f"({exc}); the guard's failure policy is 'closed', so the call is refused",
                        budget=r.name,
                        spend_usd=None,
                        limit_usd=lim.limit_usd(r),
                        reset_at=st.utc(end),
                        reason="state_unavailable",
                        user=user if r.scope == SCOPE_USER else None,
                    ) from None
            return _NO_PERMIT
        if not seen:  # the common case: nothing breached
            return Permit(self, entries)
        error: BudgetExceededError | None = None
        for r, c, s in zip(rules, checks, seen, strict=True):
            if s.breach:
                action = sc.ACTION_RAISE if r.raise_ else sc.ACTION_LOG
                with self._lock:
                    self._breaches[(r.name, action)] = self._breaches.get((r.name, action), 0) + 1
                # the message is built only when it is used: a flood of logged breaches stays cheap
                if r.raise_:
                    error = error or lim.breach_error(r, c, s, now)
                elif self._logged.get(r.name) != c.start:  # once per limit per window
                    self._logged[r.name] = c.start
                    _log.warning("otel-llmcost: %s (action: log, the call goes ahead)", lim.breach_error(r, c, s, now))
        if error is not None:  # a state blocks (reserving nothing) exactly when a raise limit is breached
            raise error
        return _NO_PERMIT if blocked else Permit(self, entries)

    # --- after the call ----------------------------------------------------------------------

    def settle(self, permit: Permit, cost_usd: Decimal | None) -> None:
        """Record a permitted call's cost and release its reservation (idempotent; never raises)."""
        if permit.done:
            return
        permit.done = True
        try:
            self._spend(permit.entries, cost_usd, admitted=True)
        except Exception as exc:  # noqa: BLE001 - the call already happened; never raise after it
            self._count_error("internal_error", f"{type(exc).__name__}: {exc}")

    def record_spend(
        self,
        user: str | None,
        properties: Mapping[str, str] | None,
        cost_usd: Decimal,
        *,
        provider: str | None = None,
        model: str | None = None,
        operation: str | None = None,
    ) -> None:
        """Record the cost of a call made without a permit (never raises)."""
        try:
            rules = self._applicable(provider, model, operation, user, properties or {})
            props = properties or {}
            entries = [(r, _scope_key(r, user, props), 0, 0) for r in rules if r.kind != st.KIND_REQUESTS]
            self._spend(entries, cost_usd, admitted=False)
        except Exception as exc:  # noqa: BLE001 - recording spend must not break the application
            self._count_error("internal_error", f"{type(exc).__name__}: {exc}")

    def _spend(self, entries: list[tuple[Rule, str, int, int]], cost_usd: Decimal | None, *, admitted: bool) -> None:
        if not entries:
            return
        units = st.usd_to_units(cost_usd) if cost_usd is not None and cost_usd > 0 else 0
        now = self._clock()
        if self._memory is not None:
            totals = self._memory.settle_rules(entries, units, now, admitted)
            for (r, key, _, _), (total, start, end) in zip(entries, totals, strict=True):
                if units > r.learned:
                    r.learned = units
                if r.user_slot >= 0:
                    self._users.observe(r.user_slot, key, total - units, total, (start, end))
            return
        settles: list[st.Settle] = []
        windows: list[tuple[int, int]] = []
        new, settle = tuple.__new__, st.Settle
        for r, key, reserved, rstart in entries:
            start, end, _ = r.bounds(now)
            windows.append((start, end))
            settles.append(new(settle, (r.name, r.kind, key, start, end, units, reserved, rstart, admitted)))
            if units > r.learned:
                r.learned = units
        try:
            after = self._state.settle(settles)
        except st.StateUnavailableError as exc:
            self._count_error(exc.reason, exc.detail)
            return
        for (r, key, _, _), total, window in zip(entries, after, windows, strict=True):
            if r.user_slot >= 0:
                self._users.observe(r.user_slot, key, total - units, total, window)

    # --- telemetry ---------------------------------------------------------------------------

    def _count_error(self, reason: str, detail: str) -> None:
        with self._lock:
            key = (self.failure_policy, reason)
            first = key not in self._errors
            self._errors[key] = self._errors.get(key, 0) + 1
        if first:
            allow = "calls go ahead unguarded" if self.failure_policy == "open" else "calls are refused"
            _log.warning(
                "otel-llmcost: budget guard: %s (%s); policy %s: %s", reason, detail, self.failure_policy, allow
            )

    def user_utilization(self) -> list[tuple[dict[str, str], float]]:
        """Points of ``llm_budget_user_utilization_ratio{budget,user}``: top users of per-user budgets."""
        return self._users.utilization(self._clock())

    def users_over_threshold(self) -> list[tuple[dict[str, str], int]]:
        """Points of ``llm_budget_users_over_threshold{budget,threshold}`` (this process's share, summable)."""
        return self._users.over_threshold(self._clock())

    def errors(self) -> list[tuple[dict[str, str], int]]:
        """Points of the counter ``llm_budget_guard_errors_total{policy,reason}``."""
        with self._lock:
            return [({sc.POLICY: p, sc.REASON: r}, n) for (p, r), n in self._errors.items()]

    def breaches(self) -> list[tuple[dict[str, str], int]]:
        """Points of the counter ``llm_budget_guard_breaches_total{budget,action}``: checks that found a breach."""
        with self._lock:
            return [({sc.BUDGET: b, sc.ACTION: a}, n) for (b, a), n in self._breaches.items()]


def _scope_key(r: Rule, user: str | None, properties: Mapping[str, str]) -> str:
    # _applicable() keeps only the rules whose user or property is present
    if r.scope == SCOPE_USER:
        return user or ""
    return properties.get(r.prop) or "" if r.scope == SCOPE_PROPERTY else ""


def _memo_key_function(filter_keys: Sequence[str], scope_keys: Sequence[str]) -> _MemoKey:
    """Return ``(provider, model, operation, user, properties) -> memo key`` for these property keys.

    The key is what decides which limits apply: the call, whether it has a user, the values of the
    filtered properties and whether each scoping property is present (its values are many: they must
    not multiply the memo). It is computed on every check, so the function is generated with the
    property names as constants, as :mod:`dataclasses` generates ``__init__``: three times faster
    than mapping over them. ``repr()`` of a ``str`` is always a plain string literal.
    """
    parts = [f"p.get({k!r})" for k in filter_keys] + [f"{k!r} in p" for k in scope_keys]
    args = "provider, model, operation, user, p"
    fn: _MemoKey = eval(f"lambda {args}: (provider, model, operation, user is not None, {', '.join(parts)})", {})
    return fn
