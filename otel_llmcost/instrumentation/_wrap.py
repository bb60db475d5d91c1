"""Wrapping SDK methods so that instrumentation never breaks the application's call.

An SDK module describes each method it wraps with a :class:`CallHooks`: how to start the call's
span from the arguments, how to read the :class:`Outcome` from the response, and, for a stream,
the accumulator that reads it chunk by chunk. The wrappers here do the rest, the same way for
every SDK: the wrapped method's own result and exceptions pass through unchanged; a failure in our
code is logged once, counted in ``llm_cost_spans_skipped_total{reason="instrumentation_error"}``
and swallowed -- except the spend guard's :class:`BudgetExceededError`, which is the point: it reaches
the application before the SDK is called (see :func:`admit`).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

from opentelemetry import context as otel_context

from .._state import current_recorder
from ..budgets import runtime as _guards
from ..budgets.limits import BudgetExceededError
from ._call import LLMCallSpan, Outcome

__all__ = [
    "CallHooks",
    "FailedOutcome",
    "StreamAccumulator",
    "Wrapper",
    "admit",
    "async_wrapper",
    "fail",
    "finish",
    "guarded",
    "log_once",
    "sync_wrapper",
]

_log = logging.getLogger("otel_llmcost.instrumentation")
_logged: set[str] = set()
ERROR_REASON = "instrumentation_error"


def log_once(what: str, exc: BaseException) -> None:
    """Log a failure of our own code once per kind, and count it."""
    current_recorder().record_skip(ERROR_REASON)
    if what not in _logged:
        _logged.add(what)
        _log.warning("otel-llmcost: %s failed (%s: %s); the call itself is unaffected", what, type(exc).__name__, exc)


def guarded(what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run our own code; on failure log once, count, and return ``None``."""
    try:
        return fn(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - telemetry never breaks the application
        log_once(what, exc)
        return None


class StreamAccumulator(Protocol):
    """Reads a streamed response chunk by chunk."""

    def feed(self, item: Any) -> None:
        """Take one chunk (or event) of the stream."""

    def outcome(self) -> Outcome:
        """Return what the stream reported so far (usage, model, finish reasons...)."""


class CallHooks(Protocol):
    """What an SDK instrumentation provides for one wrapped method.

    Hooks may also define :class:`FailedOutcome`'s ``failed_outcome``, to price a call that raised.
    """

    def start(self, instance: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> LLMCallSpan | None:
        """Start the call's span from the method's arguments (``None``: do not trace this call)."""

    def outcome(self, call: LLMCallSpan, result: Any) -> Outcome:
        """Read the outcome of a call that returned *result*."""

    def stream(self, call: LLMCallSpan, result: Any) -> Any:
        """If *result* is a stream, return it wrapped (see :mod:`._stream`); else ``None``."""


class FailedOutcome(Protocol):
    """An optional hook of :class:`CallHooks`: what a call that raised was billed for.

    Some SDK methods raise *after* a billed answer (``openai``'s ``parse()`` when the completion
    stopped on its length limit or failed to parse): ``failed_outcome(call, exc)`` returns the
    outcome the exception (or the SDK) still carries, so the failed call is priced, or ``None``.
    The wrappers look it up only when the method raised: a successful call costs nothing more.
    """

    def failed_outcome(self, call: LLMCallSpan, exc: BaseException) -> Outcome | None:
        """Return the billed outcome of a call that raised *exc* (``None``: nothing was billed)."""


def finish(call: LLMCallSpan, read: Callable[[], Outcome]) -> None:
    """End *call* with the outcome *read* returns; an unreadable response still ends the span."""
    outcome = guarded("reading the response", read)
    guarded("ending the span", call.finish, outcome if outcome is not None else Outcome())
    _ensure_ended(call)


def fail(call: LLMCallSpan, exc: BaseException, outcome: Outcome | None = None) -> None:
    """End *call* as failed with *exc*."""
    guarded("recording an error", call.fail, exc, outcome=outcome)
    _ensure_ended(call)


def _failed(hooks: CallHooks, call: LLMCallSpan, exc: BaseException) -> None:
    """End *call* as failed with *exc*, priced with what the hooks' ``failed_outcome`` finds billed."""
    read = getattr(hooks, "failed_outcome", None)  # optional (see FailedOutcome)
    fail(call, exc, guarded("reading a failed call", read, call, exc) if read is not None else None)


def _ensure_ended(call: LLMCallSpan) -> None:
    if not call.done:  # our own code failed half-way: never leave the span open
        guarded("ending the span", call.span.end)
    if call.permit is not None:  # nor a reservation held (a no-op once settled)
        guarded("releasing a budget reservation", call.release)


def admit(call: LLMCallSpan) -> None:
    """Ask the installed spend guard about *call* before the SDK is called.

    Raises:
        BudgetExceededError: the guard refused the call; its span is ended as refused. Any other
            failure of the guard is ours: logged once, counted, and the call goes ahead.
    """
    try:
        call.admit()
    except BudgetExceededError as exc:
        guarded("recording a refused call", call.refuse, exc)
        _ensure_ended(call)
        raise
    except Exception as exc:  # noqa: BLE001 - telemetry never breaks the application
        log_once("checking budgets", exc)


Wrapper = Callable[[Callable[..., Any], Any, tuple[Any, ...], dict[str, Any]], Any]
"""The signature ``wrapt.wrap_function_wrapper`` expects."""


def _start(hooks: CallHooks, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> LLMCallSpan | None:
    try:
        return hooks.start(instance, args, kwargs)
    except Exception as exc:  # noqa: BLE001 - telemetry never breaks the application
        log_once("starting a span", exc)
        return None


def _finish(hooks: CallHooks, call: LLMCallSpan, result: Any) -> Any:
    """Wrap *result* if it is a stream, else end *call* with it; return what the application gets.

    The same as ``guarded(hooks.stream)`` then :func:`finish`, without their frames: this runs on
    every call.
    """
    try:
        streamed = hooks.stream(call, result)
    except Exception as exc:  # noqa: BLE001 - telemetry never breaks the application
        log_once("wrapping a stream", exc)
        streamed = None
    if streamed is not None:
        return streamed
    try:
        outcome = hooks.outcome(call, result)
    except Exception as exc:  # noqa: BLE001
        log_once("reading the response", exc)
        outcome = None
    try:
        call.finish(outcome if outcome is not None else Outcome())
    except Exception as exc:  # noqa: BLE001
        log_once("ending the span", exc)
    if not call.done or call.permit is not None:
        _ensure_ended(call)
    return result


def sync_wrapper(hooks: CallHooks) -> Wrapper:
    """Return a ``wrapt`` wrapper tracing a synchronous SDK method with *hooks*."""

    def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        call = _start(hooks, instance, args, kwargs)
        if call is None:
            return wrapped(*args, **kwargs)
        if _guards._installed is not None:  # without a guard, this read is all budgets cost
            admit(call)
        token = otel_context.attach(call.context)
        try:
            result = wrapped(*args, **kwargs)
        except BaseException as exc:
            _failed(hooks, call, exc)
            raise
        finally:
            otel_context.detach(token)
        return _finish(hooks, call, result)

    return wrapper


def async_wrapper(
    hooks: CallHooks,
) -> Callable[[Callable[..., Awaitable[Any]], Any, tuple[Any, ...], dict[str, Any]], Any]:
    """Return a ``wrapt`` wrapper tracing an ``async`` SDK method with *hooks*."""

    async def wrapper(
        wrapped: Callable[..., Awaitable[Any]], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        call = _start(hooks, instance, args, kwargs)
        if call is None:
            return await wrapped(*args, **kwargs)
        if _guards._installed is not None:
            admit(call)
        token = otel_context.attach(call.context)
        try:
            result = await wrapped(*args, **kwargs)
        except BaseException as exc:
            _failed(hooks, call, exc)
            raise
        finally:
            otel_context.detach(token)
        return _finish(hooks, call, result)

    return wrapper
