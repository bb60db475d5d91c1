"""One instrumented LLM call: its span, its price and its metrics, written at the call site.

Every SDK instrumentation builds an :class:`LLMCallSpan` when a call starts and ends it with an
:class:`Outcome` (or an exception). The span gets the GenAI attributes and its ``llm.cost.*``
attributes *before* it ends (the SDK freezes it at ``end()``), and the metrics are recorded here,
for every call, whether or not the span is sampled. The span processor sees the cost on the span
and neither prices nor counts it again.

When a spend guard is installed (``configure(budgets=...)``), :meth:`LLMCallSpan.admit` asks it
before the SDK call and the call's priced cost settles the permit when the span ends. A refused
call never reaches the provider: its span ends at once with ``error.type``
``otel_llmcost.BudgetExceededError``, ERROR status and no cost (``llm.cost.status`` ``no_usage``, so
no processor or collector counts it), and it is not counted in ``llm_requests_total`` -- a guard
doing its job must not trip error-rate alerts; ``llm_budget_guard_breaches_total`` counts it.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from opentelemetry import trace
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.context import Context, get_current
from opentelemetry.sdk.trace import Span as _SDKSpan
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer

from .. import semconv as sc
from .._spans import add_amount_attributes, add_cost_attributes, call_plans, record_priced, span_attributes
from .._state import IN_LLM_CALL, current_pricer, current_recorder, span_hex
from ..budgets import runtime as _guards
from ..budgets.guard import Permit
from ..budgets.limits import BudgetExceededError
from ..calls import LLMCall
from ..context import current_attributes
from ..pricing import STATUS_ESTIMATED, STATUS_NO_USAGE, STATUS_PRICED, STATUS_PROVIDER_REPORTED, Cost, Usage

__all__ = ["LLMCallSpan", "Outcome", "error_type_of", "set_span_attributes"]

_PROPERTY_PREFIX = sc.LLM_PROPERTY + "."
_SESSION_ID = sc.SESSION_ID
# llm_requests_total's (status, cost status) of a call priced from the catalog, by (failed, estimated)
_REQUEST_KEYS = {
    (error, estimated): (sc.STATUS_ERROR if error else sc.STATUS_OK, STATUS_ESTIMATED if estimated else STATUS_PRICED)
    for error in (False, True)
    for estimated in (False, True)
}


@dataclass(slots=True)
class Outcome:
    """What a finished call reported, as one SDK instrumentation reads it from the response.

    Attributes:
        usage: token counts in OpenTelemetry semantics (input includes cache, output reasoning);
            ``None`` when the provider reported none.
        response_model: the model that answered.
        response_id: the provider's id of the response.
        finish_reasons: why generation stopped, one per choice.
        estimated: the usage was counted locally, not reported by the provider.
        provider_cost: a cost the provider itself reported (USD), used as the price.
        attributes: further span attributes to set (e.g. ``gen_ai.response.*`` extras).
        reason: why the call reported nothing to price, in words, when the instrumentation knows
            better than "no usage" (``llm.cost.reason`` of a ``no_usage`` call).
    """

    usage: Usage | None = None
    response_model: str | None = None
    response_id: str | None = None
    finish_reasons: Sequence[str] = ()
    estimated: bool = False
    provider_cost: Decimal | None = None
    attributes: Mapping[str, Any] = field(default_factory=dict)
    reason: str | None = None


# Namespace packages shared by many libraries: the library is their second part.
_NAMESPACE_PACKAGES = frozenset({"google", "azure"})


def error_type_of(exc: BaseException) -> str:
    """Return the ``error.type`` of an exception: its library and class (``openai.RateLimitError``).

    The library is the top-level package, or its first two parts for namespace packages
    (``google.genai.ClientError``).
    """
    cls = type(exc)
    parts = cls.__module__.split(".")
    if parts[0] == "builtins":
        return cls.__qualname__
    package = ".".join(parts[:2]) if parts[0] in _NAMESPACE_PACKAGES and len(parts) > 1 else parts[0]
    return f"{package}.{cls.__qualname__}"


def _is_other_genai_span(span: trace.Span) -> bool:
    """Whether *span* is another instrumentation's open GenAI span, not priced nor covered yet."""
    if not span.is_recording():
        return False
    attrs = span_attributes(span)
    return sc.GEN_AI_OPERATION_NAME in attrs and sc.LLM_COST_STATUS not in attrs and sc.LLM_COST_COVERED_BY not in attrs


# The context key the API keeps the current span under, found through the API itself.
(_SPAN_KEY,) = trace.set_span_in_context(trace.INVALID_SPAN, Context())

# Value types the SDK stores as they are (its cleaning returns them unchanged).
_PLAIN_VALUES = frozenset({str, int, float, bool})


def set_span_attributes(span: trace.Span, attrs: Mapping[str, Any]) -> None:
    """Set *attrs* on *span*: what ``span.set_attributes(attrs)`` does, for less.

    The SDK's ``set_attributes`` cleans every value (~0.5 us each, ~15 per call at its end): the
    largest cost of our own code per call. Values our code builds are already clean: plain
    ``str``/``int``/``float``/``bool``, or tuples of ``str``. For those, on an SDK span whose
    ``set_attributes`` is the SDK's own, with no value-length limit and room under the count
    limit, they go straight into the span's attribute dict under the span's and the dict's locks:
    exactly what cleaning them would have stored. Anything else -- another span implementation, a
    limit that could truncate or drop, an ended span (the SDK warns), a key or value of another
    type -- takes the SDK's own path.
    """
    bounded = getattr(span, "_attributes", None)
    if (
        type(bounded) is BoundedAttributes
        and type(span).set_attributes is _SDKSpan.set_attributes
        and bounded.max_value_len is None
        and (bounded.maxlen is None or len(bounded._dict) + len(attrs) <= bounded.maxlen)
    ):
        plain = _PLAIN_VALUES
        for key, value in attrs.items():  # a loop, not all(...): a generator would double the cost
            kind = type(value)
            if type(key) is not str or not key or (kind not in plain and kind is not tuple):
                break
            if kind is tuple:  # a loop again: any() over a generator costs more than the rest of the check
                for item in value:
                    if type(item) is not str:
                        break
                else:
                    continue
                break
        else:
            with span._lock:  # type: ignore[attr-defined]
                if span._end_time is None and not bounded._immutable:  # type: ignore[attr-defined]
                    with bounded._lock:
                        values = bounded._dict
                        if not values.keys().isdisjoint(attrs):
                            for key in attrs:  # the SDK moves a key set again to the end
                                values.pop(key, None)
                        values.update(attrs)
                    return
    span.set_attributes(attrs)


def _outcome_attributes(outcome: Outcome) -> dict[str, Any]:
    attrs: dict[str, Any] = dict(outcome.attributes)
    if outcome.response_model:
        attrs[sc.GEN_AI_RESPONSE_MODEL] = outcome.response_model
    if outcome.response_id:
        attrs[sc.GEN_AI_RESPONSE_ID] = outcome.response_id
    if outcome.finish_reasons:
        attrs[sc.GEN_AI_RESPONSE_FINISH_REASONS] = tuple(outcome.finish_reasons)
    usage = outcome.usage
    if usage is not None:
        attrs[sc.GEN_AI_USAGE_INPUT_TOKENS] = usage.input_tokens
        attrs[sc.GEN_AI_USAGE_OUTPUT_TOKENS] = usage.output_tokens
        for key, value in (
            (sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS, usage.cache_read_tokens),
            (sc.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS, usage.cache_write_tokens),
            (sc.LLM_USAGE_CACHE_CREATION_1H_INPUT_TOKENS, usage.cache_write_1h_tokens),
            (sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS, usage.reasoning_tokens),
        ):
            if value:
                attrs[key] = value
    return attrs


class LLMCallSpan:
    """The span, price and metrics of one instrumented LLM call."""

    __slots__ = (
        "_baggage",
        "_done",
        "_start",
        "context",
        "operation",
        "permit",
        "provider",
        "request_model",
        "server_address",
        "span",
    )

    def __init__(
        self,
        tracer: Tracer,
        *,
        provider: str,
        operation: str,
        request_model: str | None,
        server_address: str | None = None,
        server_port: int | None = None,
        attributes: Mapping[str, Any] | None = None,
        context: Context | None = None,
    ) -> None:
        """Start the call's span (kind CLIENT, named ``{operation} {model}``).

        Args:
            tracer: the tracer to start the span with.
            provider: the ``gen_ai.provider.name`` value (``openai``, ``aws.bedrock``...).
            operation: the ``gen_ai.operation.name`` value (``chat``, ``embeddings``...).
            request_model: the model the request asked for.
            server_address: the endpoint host (it can decide the provider that bills).
            server_port: the endpoint port.
            attributes: further request attributes (``gen_ai.request.*``); ``None`` values are left out.
            context: the current context, when the caller has read it already.
        """
        self.provider = provider
        self.operation = operation
        self.request_model = request_model
        self.server_address = server_address
        self._done = False
        self.permit: Permit | None = None
        parent = get_current() if context is None else context
        baggage: dict[str, str] = {}
        outer_span: trace.Span | None = None  # another instrumentation's span of this same call
        if parent:  # an empty context (no span, no baggage: a script's call) has nothing to read
            baggage = current_attributes(parent)
            outer = trace.get_current_span(parent)
            if outer is not parent.get(IN_LLM_CALL) and _is_other_genai_span(outer):
                outer_span = outer  # marked once ours has an id, below
        self._baggage = baggage
        # At the start, what a sampler may decide on (the conventions' sampling-relevant attributes,
        # and the session/user the processor would stamp); the rest right after, without the SDK's
        # per-value cleaning (see set_span_attributes).
        attrs: dict[str, Any] = {sc.GEN_AI_OPERATION_NAME: operation, sc.GEN_AI_PROVIDER_NAME: provider}
        if request_model:
            attrs[sc.GEN_AI_REQUEST_MODEL] = request_model
        if server_address:
            attrs[sc.SERVER_ADDRESS] = server_address
        if server_port:
            attrs[sc.SERVER_PORT] = server_port
        if baggage:
            attrs.update(baggage)
        name = f"{operation} {request_model}" if request_model else operation
        self.span = span = tracer.start_span(name, parent, kind=SpanKind.CLIENT, attributes=attrs)
        self._start = time.perf_counter()
        if attributes:
            extra = {}
            for key, value in attributes.items():
                if value is not None and key not in baggage:
                    extra[key] = value
            if extra:
                set_span_attributes(span, extra)
        if outer_span is not None:
            # another instrumentation's span wraps this same call: ours carries its cost, and the
            # mark says so to the processor and to any collector downstream (one call, one cost)
            outer_span.set_attribute(sc.LLM_COST_COVERED_BY, span_hex(span))
        # set_value(IN_LLM_CALL, span, set_span_in_context(span, parent)), in one copy; spans that
        # start inside the call are marked covered by a span processor (see otel_llmcost._state)
        self.context: Context = Context({**parent, _SPAN_KEY: span, IN_LLM_CALL: span})

    def admit(self) -> None:
        """Ask the installed guard before the SDK call; keep the permit to settle when the span ends.

        Raises:
            BudgetExceededError: the guard refused the call (end the span with :meth:`refuse`).
        """
        b = self._baggage
        self.permit = _guards.admit_call(
            self.provider, self.request_model, b.get(sc.USER_ID), _guards.guard_properties(b), self.operation
        )

    def refuse(self, exc: BudgetExceededError) -> None:
        """End the span of a call the guard refused: ERROR status, ``error.type``, no cost, no metrics."""
        if self._done:
            return
        self._done = True
        if self.span.is_recording():
            self.span.set_attributes(
                {
                    sc.ERROR_TYPE: error_type_of(exc),
                    # not priced, and no processor or collector should price or count it
                    sc.LLM_COST_STATUS: sc.LLM_COST_STATUS_NO_USAGE,
                    sc.LLM_COST_REASON: f"refused by the spend guard ({exc.reason} {exc.budget!r}); not sent",
                }
            )
            self.span.record_exception(exc)
        self.span.set_status(Status(StatusCode.ERROR, str(exc)))
        self.span.end()

    def release(self) -> None:
        """Release the guard's reservation if the call ended without settling it (idempotent)."""
        permit = self.permit
        if permit is not None:
            permit.release()

    @property
    def done(self) -> bool:
        """Whether the call has been finished or failed."""
        return self._done

    def _call(self, outcome: Outcome | None, error_type: str | None) -> LLMCall:
        model = self.request_model
        usage = None
        if outcome is not None:
            model = outcome.response_model or model
            usage = outcome.usage
        b = self._baggage
        if not b:  # most calls carry no session, user or property: nothing more to read
            return LLMCall(
                provider=self.provider,
                model=model,
                request_model=self.request_model,
                operation=self.operation,
                usage=usage,
                server_address=self.server_address,
                error_type=error_type,
            )
        return LLMCall(
            provider=self.provider,
            model=model,
            request_model=self.request_model,
            operation=self.operation,
            usage=usage,
            server_address=self.server_address,
            error_type=error_type,
            session_id=b.get(sc.SESSION_ID),
            session_name=b.get(sc.LLM_SESSION_NAME),
            session_path=b.get(sc.LLM_SESSION_PATH),
            user_id=b.get(sc.USER_ID),
            properties={k[len(_PROPERTY_PREFIX) :]: v for k, v in b.items() if k.startswith(_PROPERTY_PREFIX)},
        )

    def _price(self, call: LLMCall, outcome: Outcome | None) -> Cost:
        pricer = current_pricer()
        cost = pricer.price(call.provider, call.model, call.usage, server_address=call.server_address)
        if outcome is None:
            return cost
        if outcome.provider_cost is not None:
            return Cost(
                STATUS_PROVIDER_REPORTED,
                total_usd=outcome.provider_cost,
                provider=cost.provider,
                model=cost.model,
                catalog_version=cost.catalog_version,
            )
        if outcome.estimated and cost.status == STATUS_PRICED:
            return dataclasses.replace(cost, status=STATUS_ESTIMATED)
        if outcome.reason and cost.status == STATUS_NO_USAGE:
            return dataclasses.replace(cost, reason=outcome.reason)
        return cost

    def _end_planned(self, outcome: Outcome, usage: Usage, error_type: str | None) -> bool:
        """End the call through its kind's plan (:class:`~otel_llmcost._spans.CallPlans`).

        Returns ``False``, having done nothing, when the call must take the general path.

        What :meth:`_price` and :meth:`_end` do for a call priced from the catalog, with what
        depends only on the kind of call worked out once; tests compare both paths.
        """
        inp, out, cache_read = usage.input_tokens, usage.output_tokens, usage.cache_read_tokens
        cache_write, one_hour, reasoning = usage.cache_write_tokens, usage.cache_write_1h_tokens, usage.reasoning_tokens
        if not (
            type(inp) is int and type(out) is int and type(cache_read) is int
            and type(cache_write) is int and type(one_hour) is int and type(reasoning) is int
        ) or (
            usage.audio_input_tokens or usage.audio_output_tokens or usage.image_output_tokens
            or usage.images or usage.audio_seconds or usage.web_search_calls
        ):  # fmt: skip
            return False
        pricer = current_pricer()
        recorder = current_recorder()
        plans = call_plans(pricer, recorder)
        b = self._baggage
        key = (
            self.provider,
            outcome.response_model or self.request_model,
            self.server_address,
            self.operation,
            error_type,
            tuple(map(b.get, plans.labels)) if b else (),
        )
        try:
            plan = plans.plans[key]
        except KeyError:
            plan = plans.plan(key, self._call(outcome, error_type))
        except TypeError:  # a value that cannot be a key
            return False
        if plan is None:
            return False
        counts = (inp, out, cache_read, cache_write, one_hour, reasoning)
        priced = pricer.price_counts(plan.resolved, counts, None)
        if priced is None:  # counts out of range or inconsistent, a discount: the general path says
            return False
        error = error_type is not None
        request_key = _REQUEST_KEYS[error, outcome.estimated]
        attrs = _outcome_attributes(outcome)
        if error:
            attrs[sc.ERROR_TYPE] = error_type
            self.span.set_status(Status(StatusCode.ERROR, error_type))
        duration = time.perf_counter() - self._start
        permit = self.permit
        if permit is not None:
            permit.settle(priced[0])
        session = b.get(_SESSION_ID) if b else None
        amounts = record_priced(recorder, plan, counts, priced, duration, error, session, request_key)
        add_amount_attributes(attrs, request_key[1], plans.version, amounts, plan.model_id, plan.provider)
        span = self.span
        if span.is_recording():
            set_span_attributes(span, attrs)
        span.end()
        return True

    def finish(self, outcome: Outcome) -> None:
        """End the call successfully: usage and cost onto the span, metrics counted, span ended."""
        if self._done:
            return
        self._done = True
        usage = outcome.usage
        if usage is not None and outcome.provider_cost is None and self._end_planned(outcome, usage, None):
            return
        call = self._call(outcome, None)
        cost = self._price(call, outcome)
        attrs = _outcome_attributes(outcome)
        add_cost_attributes(attrs, cost)
        self._end(call, cost, attrs, error=False)

    def fail(self, exc: BaseException, *, outcome: Outcome | None = None, error_type: str | None = None) -> None:
        """End the call with an error: ``error.type`` and status set, the call counted as failed.

        Args:
            exc: the exception the call raised.
            outcome: what the call reported before failing (a stream cut off midway); its usage
                is priced, as the provider bills what it generated.
            error_type: the ``error.type`` to record; default :func:`error_type_of` *exc*.
        """
        if self._done:
            return
        self._done = True
        error_type = error_type or error_type_of(exc)
        if outcome is not None:
            usage = outcome.usage
            if usage is not None and outcome.provider_cost is None and self._end_planned(outcome, usage, error_type):
                return
        call = self._call(outcome, error_type)
        cost = self._price(call, outcome)
        attrs = _outcome_attributes(outcome) if outcome is not None else {}
        attrs[sc.ERROR_TYPE] = error_type
        add_cost_attributes(attrs, cost)
        self.span.set_status(Status(StatusCode.ERROR, error_type))
        self._end(call, cost, attrs, error=True)

    def _end(self, call: LLMCall, cost: Cost, attrs: dict[str, Any], *, error: bool) -> None:
        duration = time.perf_counter() - self._start
        permit = self.permit
        if permit is not None:  # first: settling never raises, and must not wait on the metrics
            permit.settle(cost.total_usd)
        # metrics first and always: a sampled-out span still costs money
        current_recorder().record(call, cost, duration_s=duration, error=error)
        span = self.span
        if span.is_recording():
            set_span_attributes(span, attrs)
        span.end()
