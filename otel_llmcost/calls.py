"""Call extraction: a mapping of span attributes -> :class:`LLMCall`. Pure: no OpenTelemetry import.

This is the one normalising step at the edge. It reads every spelling DESIGN.md lists (current
and older GenAI names, OpenLLMetry's, OpenLIT's, OpenInference's), numbers given as strings,
and returns token counts in OpenTelemetry semantics: input includes cache reads and writes,
output includes reasoning.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from . import semconv as sc
from .pricing import Usage

__all__ = ["LLMCall", "extract_call", "is_priced"]

# Each fact, with the attribute names that carry it, newest convention first.
_PROVIDER = (sc.GEN_AI_PROVIDER_NAME, sc.GEN_AI_SYSTEM, sc.VARIANT_LLM_PROVIDER, sc.VARIANT_LLM_SYSTEM)
_RESPONSE_MODEL = (sc.GEN_AI_RESPONSE_MODEL,)
_REQUEST_MODEL = (sc.GEN_AI_REQUEST_MODEL, sc.VARIANT_LLM_MODEL_NAME)
_OPERATION = (sc.GEN_AI_OPERATION_NAME, sc.VARIANT_LLM_REQUEST_TYPE)
_INPUT = (sc.GEN_AI_USAGE_INPUT_TOKENS, sc.VARIANT_GEN_AI_USAGE_PROMPT_TOKENS, sc.VARIANT_LLM_TOKEN_COUNT_PROMPT)
_OUTPUT = (
    sc.GEN_AI_USAGE_OUTPUT_TOKENS,
    sc.VARIANT_GEN_AI_USAGE_COMPLETION_TOKENS,
    sc.VARIANT_LLM_TOKEN_COUNT_COMPLETION,
)
_CACHE_READ = (
    sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,
    sc.VARIANT_GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,
    sc.VARIANT_GEN_AI_USAGE_PROMPT_TOKENS_DETAILS_CACHE_READ,
    sc.VARIANT_LLM_TOKEN_COUNT_PROMPT_DETAILS_CACHE_READ,
)
_CACHE_WRITE = (
    sc.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS,
    sc.VARIANT_GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS,
    sc.VARIANT_GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS,
    sc.VARIANT_GEN_AI_USAGE_PROMPT_TOKENS_DETAILS_CACHE_WRITE,
    sc.VARIANT_LLM_TOKEN_COUNT_PROMPT_DETAILS_CACHE_WRITE,
)
_CACHE_WRITE_1H = (sc.LLM_USAGE_CACHE_CREATION_1H_INPUT_TOKENS,)
_REASONING = (
    sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS,
    sc.VARIANT_GEN_AI_USAGE_REASONING_TOKENS,
    sc.VARIANT_GEN_AI_USAGE_COMPLETION_TOKENS_DETAILS_REASONING,
    sc.VARIANT_LLM_TOKEN_COUNT_COMPLETION_DETAILS_REASONING,
)
_SESSION = (sc.SESSION_ID, sc.GEN_AI_CONVERSATION_ID)
_USER = (sc.USER_ID, sc.ENDUSER_ID)
_PROPERTY_PREFIX = sc.LLM_PROPERTY + "."
_COST_KEYS = (sc.LLM_COST_STATUS, sc.LLM_COST_TOTAL_USD)
_GENAI_MARKERS = _PROVIDER + _RESPONSE_MODEL + _REQUEST_MODEL


class _BadCount(ValueError):
    """A token attribute holds something that is not a whole number."""


@dataclass(frozen=True, slots=True)
class LLMCall:
    """One LLM call as read from span attributes.

    Attributes:
        provider: provider name as the span gives it (any spelling).
        model: the model to price: the response model when present, else the request model.
        request_model: the model the request asked for.
        operation: the GenAI operation name (chat, embeddings...).
        usage: token counts in OpenTelemetry semantics, ``None`` when the span reports none.
        usage_error: why token counts could not be read (``usage`` is then ``None``).
        usage_error_code: short code of ``usage_error`` for metrics.
        server_address: the endpoint host.
        error_type: ``error.type`` of a failed call.
        session_id: the session (``session.id``, else ``gen_ai.conversation.id``).
        session_name: the kind of session.
        session_path: where in the session the call happened.
        user_id: the end user.
        properties: custom properties (``llm.property.<key>``), by key.
    """

    provider: str | None
    model: str | None
    request_model: str | None = None
    operation: str | None = None
    usage: Usage | None = None
    usage_error: str | None = None
    usage_error_code: str | None = None
    server_address: str | None = None
    error_type: str | None = None
    session_id: str | None = None
    session_name: str | None = None
    session_path: str | None = None
    user_id: str | None = None
    properties: Mapping[str, str] = field(default_factory=dict)


def _first(attrs: Mapping[str, Any], keys: tuple[str, ...]) -> Any:
    for key in keys:
        value = attrs.get(key)
        if value is not None and value != "":
            return value
    return None


def _text(attrs: Mapping[str, Any], keys: tuple[str, ...]) -> str | None:
    value = _first(attrs, keys)
    return None if value is None else str(value)


def _count(attrs: Mapping[str, Any], keys: tuple[str, ...]) -> int | None:
    """Read a token count; numbers given as strings (``"120"``, ``"120.0"``) are accepted."""
    value = _first(attrs, keys)
    if value is None:
        return None
    if type(value) is int:
        return value
    if isinstance(value, bool):
        raise _BadCount(f"{keys[0]} is a boolean, not a token count: {value!r}")
    if isinstance(value, str):
        text = value.strip()
        try:
            return int(text)
        except ValueError:
            try:
                value = float(text)
            except ValueError:
                raise _BadCount(f"{keys[0]} is not a number: {value[:40]!r}") from None
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")) or not value.is_integer():
            raise _BadCount(f"{keys[0]} is not a whole number: {value!r}")
        return int(value)
    if isinstance(value, int):
        return int(value)
    raise _BadCount(f"{keys[0]} is not a number: {type(value).__name__}")


def is_priced(attrs: Mapping[str, Any]) -> bool:
    """Return True when the attributes already carry a cost (written by us, here or upstream)."""
    return any(key in attrs for key in _COST_KEYS)


def _usage(attrs: Mapping[str, Any]) -> tuple[Usage | None, str | None, str | None]:
    try:
        inp = _count(attrs, _INPUT)
        out = _count(attrs, _OUTPUT)
        cache_read = _count(attrs, _CACHE_READ) or 0
        cache_write = _count(attrs, _CACHE_WRITE) or 0
        cache_write_1h = _count(attrs, _CACHE_WRITE_1H) or 0
        reasoning = _count(attrs, _REASONING) or 0
    except _BadCount as exc:
        return None, str(exc), "non_numeric_tokens"
    if inp is None and out is None:
        return None, None, None
    inp = inp or 0
    out = out or 0
    # The spec counts cache reads/writes inside input and reasoning inside output. Some
    # instrumentations pass Anthropic's exclusive input or Gemini's exclusive candidate count
    # through unchanged; when the parts exceed the total, exclusive is the only consistent reading.
    if cache_read >= 0 and cache_write >= 0 and inp >= 0 and cache_read + cache_write > inp:
        inp += cache_read + cache_write
    if reasoning > out >= 0:
        out += reasoning
    return (
        Usage(
            input_tokens=inp,
            output_tokens=out,
            cache_read_tokens=cache_read,
            cache_write_tokens=cache_write,
            cache_write_1h_tokens=cache_write_1h,
            reasoning_tokens=reasoning,
        ),
        None,
        None,
    )


def extract_call(attrs: Mapping[str, Any]) -> LLMCall | None:
    """Read an :class:`LLMCall` from span attributes.

    Args:
        attrs: the span's attributes (values may be strings where numbers are expected).

    Returns:
        The call, or ``None`` when the attributes do not describe a GenAI call (no provider,
        no model and no token counts).
    """
    usage, usage_error, usage_code = _usage(attrs)
    if usage is None and usage_error is None and _first(attrs, _GENAI_MARKERS) is None:
        return None
    request_model = _text(attrs, _REQUEST_MODEL)
    properties = {
        key[len(_PROPERTY_PREFIX) :]: str(value)
        for key, value in attrs.items()
        if key.startswith(_PROPERTY_PREFIX) and value is not None
    }
    return LLMCall(
        provider=_text(attrs, _PROVIDER),
        model=_text(attrs, _RESPONSE_MODEL) or request_model,
        request_model=request_model,
        operation=_text(attrs, _OPERATION),
        usage=usage,
        usage_error=usage_error,
        usage_error_code=usage_code,
        server_address=_text(attrs, (sc.SERVER_ADDRESS,)),
        error_type=_text(attrs, (sc.ERROR_TYPE,)),
        session_id=_text(attrs, _SESSION),
        session_name=_text(attrs, (sc.LLM_SESSION_NAME,)),
        session_path=_text(attrs, (sc.LLM_SESSION_PATH,)),
        user_id=_text(attrs, _USER),
        properties=properties,
    )
