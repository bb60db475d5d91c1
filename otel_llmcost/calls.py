"""Call extraction: a mapping of span attributes -> :class:`LLMCall`. Pure: no OpenTelemetry import.

This is the one normalising step at the edge. It reads every spelling DESIGN.md lists (current
and older GenAI names, OpenLLMetry's, OpenLIT's, OpenInference's), numbers given as strings,
and returns token counts in OpenTelemetry semantics: input includes cache reads and writes,
output includes reasoning.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

from . import semconv as sc
from .pricing import PriceOptions, Usage

__all__ = ["ATTRIBUTES_READ", "LLMCall", "extract_call", "is_priced"]

# Each fact, with the attribute names that carry it, newest convention first.
_FIELDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("provider", (sc.GEN_AI_PROVIDER_NAME, sc.GEN_AI_SYSTEM, sc.VARIANT_LLM_PROVIDER, sc.VARIANT_LLM_SYSTEM)),
    ("response_model", (sc.GEN_AI_RESPONSE_MODEL,)),
    ("request_model", (sc.GEN_AI_REQUEST_MODEL, sc.VARIANT_LLM_MODEL_NAME)),
    ("operation", (sc.GEN_AI_OPERATION_NAME, sc.VARIANT_LLM_REQUEST_TYPE)),
    ("input", (sc.GEN_AI_USAGE_INPUT_TOKENS, sc.VARIANT_GEN_AI_USAGE_PROMPT_TOKENS, sc.VARIANT_LLM_TOKEN_COUNT_PROMPT)),
    (
        "output",
        (
            sc.GEN_AI_USAGE_OUTPUT_TOKENS,
            sc.VARIANT_GEN_AI_USAGE_COMPLETION_TOKENS,
            sc.VARIANT_LLM_TOKEN_COUNT_COMPLETION,
        ),
    ),
    (
        "cache_read",
        (
            sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,
            sc.VARIANT_GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,
            sc.VARIANT_GEN_AI_USAGE_PROMPT_TOKENS_DETAILS_CACHE_READ,
            sc.VARIANT_LLM_TOKEN_COUNT_PROMPT_DETAILS_CACHE_READ,
        ),
    ),
    (
        "cache_write",
        (
            sc.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS,
            sc.VARIANT_GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS,
            sc.VARIANT_GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS,
            sc.VARIANT_GEN_AI_USAGE_PROMPT_TOKENS_DETAILS_CACHE_WRITE,
            sc.VARIANT_LLM_TOKEN_COUNT_PROMPT_DETAILS_CACHE_WRITE,
        ),
    ),
    ("cache_write_1h", (sc.LLM_USAGE_CACHE_CREATION_1H_INPUT_TOKENS,)),
    (
        "reasoning",
        (
            sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS,
            sc.VARIANT_GEN_AI_USAGE_REASONING_TOKENS,
            sc.VARIANT_GEN_AI_USAGE_COMPLETION_TOKENS_DETAILS_REASONING,
            sc.VARIANT_LLM_TOKEN_COUNT_COMPLETION_DETAILS_REASONING,
        ),
    ),
    ("server_address", (sc.SERVER_ADDRESS,)),
    ("error_type", (sc.ERROR_TYPE,)),
    ("session_id", (sc.SESSION_ID, sc.GEN_AI_CONVERSATION_ID)),
    ("session_name", (sc.LLM_SESSION_NAME,)),
    ("session_path", (sc.LLM_SESSION_PATH,)),
    ("user_id", (sc.USER_ID, sc.ENDUSER_ID)),
)
(_PROVIDER, _RESPONSE_MODEL, _REQUEST_MODEL, _OPERATION, _INPUT, _OUTPUT, _CACHE_READ, _CACHE_WRITE, _CACHE_WRITE_1H,
 _REASONING, _SERVER, _ERROR, _SESSION_ID, _SESSION_NAME, _SESSION_PATH, _USER) = range(len(_FIELDS))  # fmt: skip
_TEXT_SLOTS = (
    _PROVIDER,
    _RESPONSE_MODEL,
    _REQUEST_MODEL,
    _OPERATION,
    _SERVER,
    _ERROR,
    _SESSION_ID,
    _SESSION_NAME,
    _SESSION_PATH,
    _USER,
)
_TEXT_OF = itemgetter(*_TEXT_SLOTS)
_TOKEN_SLOTS = (_INPUT, _OUTPUT, _CACHE_READ, _CACHE_WRITE, _CACHE_WRITE_1H, _REASONING)
_PRIMARY = tuple(keys[0] for _, keys in _FIELDS)
# Names other conventions use; a span with none of them (the usual case) takes the fast path.
_VARIANTS = frozenset(key for _, keys in _FIELDS for key in keys[1:])
_PROPERTY_PREFIX = sc.LLM_PROPERTY + "."
# Schema-v2 facts: rare, so looked up only when a span has one of these names at all.
_V2_USAGE = (
    ("audio_input_tokens", sc.LLM_USAGE_AUDIO_INPUT_TOKENS),
    ("audio_output_tokens", sc.LLM_USAGE_AUDIO_OUTPUT_TOKENS),
    ("image_output_tokens", sc.LLM_USAGE_IMAGE_OUTPUT_TOKENS),
    ("images", sc.LLM_USAGE_IMAGES),
    ("audio_seconds", sc.LLM_USAGE_AUDIO_SECONDS),
    ("web_search_calls", sc.LLM_USAGE_WEB_SEARCH_CALLS),
)
_V2_OPTIONS = (
    sc.OPENAI_REQUEST_SERVICE_TIER,
    sc.LLM_REQUEST_BATCH,
    sc.CLOUD_REGION,
    sc.LLM_REQUEST_SEARCH_CONTEXT_SIZE,
)
_V2_KEYS = frozenset([key for _, key in _V2_USAGE] + list(_V2_OPTIONS))
_RARE = _VARIANTS | _V2_KEYS
_PLAN_SLOTS = (_PROVIDER, _RESPONSE_MODEL, _REQUEST_MODEL, _OPERATION, _SERVER, _ERROR, _SESSION_NAME)
PLAN_NAMES = tuple(_PRIMARY[slot] for slot in _PLAN_SLOTS)
"""The current names of the facts that choose a call's price and metric series (with ``llm.property.*``)."""
PLAN_NAMES_ALL = tuple(key for slot in _PLAN_SLOTS for key in _FIELDS[slot][1])
"""The same facts under every name :func:`extract_call` reads for them."""
PLAIN_TOKEN_NAMES = _PRIMARY[_INPUT : _REASONING + 1]
"""The current names of the token counts, in :func:`plain_counts`'s order."""
ANY_VARIANT_NAMES = _RARE
"""Names that are not the current convention's (any fact), or schema-v2 facts."""
NOT_PLAIN_NAMES = frozenset(key for slot in _TOKEN_SLOTS for key in _FIELDS[slot][1][1:]) | _V2_KEYS
"""Names that make a price depend on more than the :data:`PLAN_NAMES_ALL` facts and the
:func:`plain_counts` of :data:`PLAIN_TOKEN_NAMES`: other names of token counts, schema-v2 facts."""
_STR_OR_NONE = frozenset({str, type(None)})
_INT_OR_NONE = frozenset({int, type(None)})
# property keys -> (keys, attribute names), for the few tuples of dimensions a process uses
_PROPERTY_READERS: dict[tuple[str, ...], tuple[tuple[str, ...], tuple[str, ...]]] = {}
_COST_KEYS = (sc.LLM_COST_STATUS, sc.LLM_COST_TOTAL_USD)
ATTRIBUTES_READ = frozenset(key for _, keys in _FIELDS for key in keys) | _V2_KEYS | frozenset(_COST_KEYS)
"""Every attribute name :func:`extract_call` and :func:`is_priced` read, besides ``llm.property.*``."""


Counts = tuple[int, int, int, int, int, int]
"""Token counts in :class:`Usage`'s order: input, output, cache read, cache write, one-hour cache write, reasoning."""


class _BadCount(ValueError):
    """A token attribute holds something that is not a whole number."""


@dataclass(slots=True)
class LLMCall:
    """One LLM call as read from span attributes. A value object: treat it as read-only.

    (Not a frozen dataclass: building a frozen one costs ~2 us more, on every GenAI span.)

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
        options: billing options that change the price (batch, service tier, region, search
            context), ``None`` when the span names none.
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
    options: PriceOptions | None = None


def _count(value: Any, key: str) -> int:
    """Read a token count; numbers given as strings (``"120"``, ``"120.0"``) are accepted."""
    if type(value) is int:
        return value
    if isinstance(value, bool):
        raise _BadCount(f"{key} is a boolean, not a token count: {value!r}")
    if isinstance(value, str):
        text = value.strip()
        try:
            return int(text)
        except ValueError:
            try:
                value = float(text)
            except ValueError:
                raise _BadCount(f"{key} is not a number: {value[:40]!r}") from None
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")) or not value.is_integer():
            raise _BadCount(f"{key} is not a whole number: {value!r}")
        return int(value)
    if isinstance(value, int):
        return int(value)
    raise _BadCount(f"{key} is not a number: {type(value).__name__}")


def is_priced(attrs: Mapping[str, Any]) -> bool:
    """Return True when the attributes already carry a cost (written by us, here or upstream)."""
    return any(key in attrs for key in _COST_KEYS)


def _first(get: Callable[[str], Any], keys: tuple[str, ...]) -> Any:
    """Return the first present, non-empty value among *keys* (newest convention first)."""
    for key in keys:
        value = get(key)
        if value is not None and value != "":
            return value
    return None


def plain_counts(
    inp: Any, out: Any, cache_read: Any, cache_write: Any, cache_write_1h: Any, reasoning: Any
) -> Counts | None:
    """Return the token counts of the current names' values when each is a whole ``int`` or absent.

    The counts are in OpenTelemetry semantics, in :class:`Usage`'s order. ``None`` when none is
    there or one is of another type (a string, a float...): the general path reads those.
    """
    if (
        type(inp) is int and type(out) is int
        and cache_read is None and cache_write is None and cache_write_1h is None and reasoning is None
    ):  # fmt: skip
        return _consistent(inp, out, 0, 0, 0, 0)  # the usual span: input and output only
    if not _INT_OR_NONE.issuperset(
        (type(inp), type(out), type(cache_read), type(cache_write), type(cache_write_1h), type(reasoning))
    ) or (inp is None and out is None and cache_read is None and cache_write is None and cache_write_1h is None
          and reasoning is None):  # fmt: skip
        return None
    return _consistent(inp or 0, out or 0, cache_read or 0, cache_write or 0, cache_write_1h or 0, reasoning or 0)


def _usage_slow(found: list[Any]) -> tuple[Usage | None, str | None, str | None]:
    values = found[_INPUT : _REASONING + 1]
    if all(v is None or v == "" for v in values):
        return None, None, None
    try:
        counts = [0 if v is None or v == "" else _count(v, _FIELDS[_INPUT + i][1][0]) for i, v in enumerate(values)]
    except _BadCount as exc:
        return None, str(exc), "non_numeric_tokens"
    return Usage(*_consistent(*counts)), None, None


def _consistent(inp: int, out: int, cache_read: int, cache_write: int, cache_write_1h: int, reasoning: int) -> Counts:
    # The spec counts cache reads/writes inside input and reasoning inside output. Some
    # instrumentations pass Anthropic's exclusive input or Gemini's exclusive candidate count
    # through unchanged; when the parts exceed the total, exclusive is the only consistent reading.
    if cache_read + cache_write > inp >= 0 and cache_read >= 0 and cache_write >= 0:
        inp += cache_read + cache_write
    if reasoning > out >= 0:
        out += reasoning
    return inp, out, cache_read, cache_write, cache_write_1h, reasoning


def _str(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return value if type(value) is str else str(value)


def _property_reader(property_keys: Iterable[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Return the property keys and their attribute names (memoised per tuple of keys)."""
    if type(property_keys) is tuple:
        reader = _PROPERTY_READERS.get(property_keys)
        if reader is not None:
            return reader
    keys = tuple(property_keys)
    reader = keys, tuple(_PROPERTY_PREFIX + key for key in keys)
    if type(property_keys) is tuple and len(_PROPERTY_READERS) < 64:
        _PROPERTY_READERS[property_keys] = reader
    return reader


def extract_call(attrs: Mapping[str, Any], *, property_keys: Iterable[str] | None = None) -> LLMCall | None:
    """Read an :class:`LLMCall` from span attributes.

    When several names carry the same fact, the newest convention's wins. Spans that use only
    the current GenAI names take a fast path (one lookup per fact).

    Args:
        attrs: the span's attributes (values may be strings where numbers are expected).
        property_keys: read only these custom properties (the metric dimensions, a fast path for
            the span processor); ``None`` reads every ``llm.property.*`` attribute.

    Returns:
        The call, or ``None`` when the attributes do not describe a GenAI call: no token counts,
        and either no provider and no model, or no operation name and no ``error.type`` (a span
        without usage counts as a call when it names what it did, or that it failed).
    """
    get = attrs.get
    # One C-level pass over the names tells whether any other convention or schema-v2 fact is
    # there; the usual span has none and takes one lookup per fact.
    rare = not _RARE.isdisjoint(attrs)
    if rare and not _VARIANTS.isdisjoint(attrs):
        found = [_first(get, keys) for _, keys in _FIELDS]
    else:
        found = list(map(get, _PRIMARY))
    usage: Usage | None
    counts = plain_counts(*found[_INPUT : _REASONING + 1])
    if counts is not None:
        usage, usage_error, usage_code = Usage(*counts), None, None
    else:
        usage, usage_error, usage_code = _usage_slow(found)
        if (
            usage is None
            and usage_error is None
            and not (found[_PROVIDER] or found[_REQUEST_MODEL] or found[_RESPONSE_MODEL])
        ):
            return None
    options = None
    if rare and not _V2_KEYS.isdisjoint(attrs):
        usage, usage_error, usage_code, options = _v2(attrs, usage, usage_error, usage_code)
    if usage is None and usage_error is None and not (found[_OPERATION] or found[_ERROR]):
        # No usage, and neither an operation nor a failure: an SDK's span of something that is not
        # an LLM request (counting tokens, listing models...), though it names its provider.
        return None
    properties: dict[str, str]
    if property_keys is None:
        properties = {
            key[len(_PROPERTY_PREFIX) :]: str(value)
            for key, value in attrs.items()
            if key.startswith(_PROPERTY_PREFIX) and value is not None
        }
    else:
        keys, names = _property_reader(property_keys)
        values = list(map(get, names))
        if _STR_OR_NONE.issuperset(map(type, values)) and None not in values:
            properties = dict(zip(keys, values, strict=True))  # type: ignore[arg-type]  # all there, all text
        else:
            properties = {
                key: value if type(value) is str else str(value)
                for key, value in zip(keys, values, strict=True)
                if value is not None
            }
    # Attribute values are almost always str already; convert only the rare other ones.
    if not _STR_OR_NONE.issuperset(map(type, _TEXT_OF(found))):
        for slot in _TEXT_SLOTS:
            value = found[slot]
            if value is not None and type(value) is not str:
                found[slot] = _str(value)
    request_model = found[_REQUEST_MODEL] or None
    return LLMCall(
        found[_PROVIDER] or None,
        found[_RESPONSE_MODEL] or request_model,
        request_model,
        found[_OPERATION] or None,
        usage,
        usage_error,
        usage_code,
        found[_SERVER],
        found[_ERROR],
        found[_SESSION_ID],
        found[_SESSION_NAME],
        found[_SESSION_PATH],
        found[_USER],
        properties,
        options,
    )


def _v2(
    attrs: Mapping[str, Any], usage: Usage | None, error: str | None, code: str | None
) -> tuple[Usage | None, str | None, str | None, PriceOptions | None]:
    """Read the modality usage and billing options of a span that has some."""
    get = attrs.get
    if error is None:
        try:
            extra = {name: _count(get(key), key) for name, key in _V2_USAGE if get(key) is not None}
        except _BadCount as exc:
            return None, str(exc), "non_numeric_tokens", None
        if extra:
            usage = Usage(**{**(dataclasses.asdict(usage) if usage is not None else {}), **extra})
    tier, batch, region, search = (get(key) for key in _V2_OPTIONS)
    if tier is None and batch is None and region is None and search is None:
        return usage, error, code, None
    return (
        usage,
        error,
        code,
        PriceOptions(
            service_tier=_str(tier),
            batch=batch is True or str(batch).lower() == "true",
            region=_str(region),
            search_context=_str(search),
        ),
    )
