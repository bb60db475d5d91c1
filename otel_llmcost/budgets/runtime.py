"""The process-wide guard, and the public functions that use it: ``guard()``, ``record_spend()``.

``configure(budgets=...)`` (or :func:`install_guard`) installs one :class:`~.guard.Guard` for the
process. Our instrumentation asks it before every LLM call (:func:`admit_call`) and settles the
permit with the call's priced cost after; code that calls a provider some other way uses
:func:`guard` before and :func:`record_spend` after. Without an installed guard each of them is
one read of a module global and returns.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar
from decimal import Decimal

from .. import semconv as sc
from ..context import current_attributes
from .guard import Guard, Permit

__all__ = [
    "admit_call",
    "current_guard",
    "guard",
    "guard_properties",
    "install_guard",
    "record_spend",
]

_PROPERTY_PREFIX = sc.LLM_PROPERTY + "."
_SESSION_NAME = "session_name"  # the dimension that reads the session's name (see metrics.Recorder)
_NO_PERMIT = Permit(None, [], done=True)

_installed: Guard | None = None
"""The installed guard; instrumentation reads this global directly (its whole cost when ``None``)."""
_pending: ContextVar[Permit | None] = ContextVar("otel_llmcost_pending_permit", default=None)


def install_guard(g: Guard | None) -> None:
    """Make *g* the guard that :func:`guard` and instrumented calls use (``None``: no guard)."""
    global _installed
    _installed = g
    _pending.set(None)


def current_guard() -> Guard | None:
    """Return the installed guard, if any."""
    return _installed


def guard_properties(attrs: Mapping[str, str]) -> dict[str, str]:
    """Return the properties a guard matches filters and scopes on, from a call's context attributes.

    The custom properties (``llm.property.<key>`` as ``key``), and ``session_name`` from the
    session's name, as the metric dimension of that name reads it.
    """
    n = len(_PROPERTY_PREFIX)
    props = {k[n:]: v for k, v in attrs.items() if k.startswith(_PROPERTY_PREFIX)}
    name = attrs.get(sc.LLM_SESSION_NAME)
    if name:
        props[_SESSION_NAME] = name
    return props


def _from_context(user: str | None, properties: Mapping[str, str] | None) -> tuple[str | None, Mapping[str, str]]:
    if user is not None and properties is not None:
        return user, properties
    attrs = current_attributes()
    if user is None:
        user = attrs.get(sc.USER_ID)
    if properties is None:
        properties = guard_properties(attrs)
    return user, properties


def guard(
    *,
    provider: str | None = None,
    model: str | None = None,
    user: str | None = None,
    properties: Mapping[str, str] | None = None,
    estimated_cost_usd: Decimal | None = None,
    operation: str | None = None,
) -> Permit:
    """Check the budgets and rate limits that apply to the next LLM call, before making it.

    The user and properties default to those of the current context (``otel_llmcost.user(...)``,
    ``otel_llmcost.properties(...)``). The returned permit is also kept in the current context:
    the next call through otel-llmcost's instrumentation, or the next :func:`record_spend`, settles
    it with the call's cost; a later ``guard()`` in the same context releases it if still unused.
    Without an installed guard (``configure(budgets=...)``) it does nothing.

    Args:
        provider: the provider (matched by ``provider`` filters).
        model: the model (matched by ``model`` filters).
        user: the end user; default the context's.
        properties: the call's custom properties; default the context's.
        estimated_cost_usd: what the call is expected to cost; reserved, and refused if it does not fit.
        operation: the operation (``chat``...).

    Returns:
        The permit; :meth:`Permit.settle` it with the cost (or let instrumentation or
        :func:`record_spend` do it), or :meth:`Permit.release` it if the call is not made.

    Raises:
        BudgetExceededError: a limit with ``action: raise`` is breached (or the state is down and
            the failure policy is ``closed``).
    """
    g = _installed
    if g is None:
        return _NO_PERMIT
    user, props = _from_context(user, properties)
    previous = _pending.get()
    if previous is not None:
        _pending.set(None)
        previous.release()
    permit = g.admit(
        provider=provider,
        model=model,
        user=user,
        properties=props,
        estimated_cost_usd=estimated_cost_usd,
        operation=operation,
    )
    if not permit.done:
        _pending.set(permit)
    return permit


def record_spend(
    cost_usd: Decimal,
    *,
    user: str | None = None,
    properties: Mapping[str, str] | None = None,
    provider: str | None = None,
    model: str | None = None,
    operation: str | None = None,
) -> None:
    """Record what an LLM call cost, for calls not made through otel-llmcost's instrumentation.

    Settles the permit of the last :func:`guard` in this context if there is one; else the spend
    is added to every budget that applies (user and properties default to the context's). Never
    raises; without an installed guard it does nothing.

    Args:
        cost_usd: what the call cost.
        user: the end user.
        properties: the call's custom properties.
        provider: the provider (for ``provider`` filters).
        model: the model (for ``model`` filters).
        operation: the operation (for ``operation`` filters).
    """
    g = _installed
    if g is None:
        return
    permit = _pending.get()
    if permit is not None:
        _pending.set(None)
        if not permit.done:
            permit.settle(cost_usd)
            return
    user, props = _from_context(user, properties)
    g.record_spend(user, props, cost_usd, provider=provider, model=model, operation=operation)


def admit_call(
    provider: str | None,
    model: str | None,
    user: str | None,
    properties: Mapping[str, str],
    operation: str | None = None,
) -> Permit | None:
    """For instrumentation: adopt the pending permit of :func:`guard`, or check the call now.

    Returns ``None`` when no guard is installed (nothing to settle).

    Raises:
        BudgetExceededError: as :func:`guard`.
    """
    g = _installed
    if g is None:
        return None
    permit = _pending.get()
    if permit is not None:
        _pending.set(None)
        if not permit.done:
            return permit
    return g.admit(provider=provider, model=model, user=user, properties=properties, operation=operation)
