"""Reading Bedrock's token counts: Converse usage, Anthropic usage, invocation metrics, response headers.

Split from :mod:`.bedrock`; see there for the token semantics. Every count Bedrock reports is
exclusive of the prompt cache, so the cache counts are added to give OpenTelemetry's inclusive input.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from .. import semconv as sc
from ..pricing import Usage
from ._tokens import count_tokens

__all__ = [
    "METRICS_KEY",
    "METRICS_KEYS",
    "anthropic_usage",
    "model_chunk_text",
    "converse_usage",
    "counted_output",
    "header_usage",
    "request_id",
    "usage_of",
]

METRICS_KEY = "amazon-bedrock-invocationMetrics"
"""The key of the invocation metrics in the last chunk of an InvokeModelWithResponseStream."""

# Where each response kind keeps (input, output, cache read, cache write): all exclusive of the cache.
_Keys = tuple[str, str, str, str]
_CONVERSE_KEYS: _Keys = ("inputTokens", "outputTokens", "cacheReadInputTokens", "cacheWriteInputTokens")
_ANTHROPIC_KEYS: _Keys = ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")
METRICS_KEYS: _Keys = ("inputTokenCount", "outputTokenCount", "cacheReadInputTokenCount", "cacheWriteInputTokenCount")
_HEADER_KEYS: _Keys = (
    "x-amzn-bedrock-input-token-count",
    "x-amzn-bedrock-output-token-count",
    "x-amzn-bedrock-cache-read-input-token-count",
    "x-amzn-bedrock-cache-write-input-token-count",
)


# --- reading Bedrock's numbers -------------------------------------------------------------------


def _count(value: Any) -> int | None:
    """A token count as Bedrock sends it (int, or a header's digits); ``None`` when it is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def usage_of(source: Any, keys: _Keys, one_hour: Any = 0) -> Usage | None:
    """OpenTelemetry usage from Bedrock's exclusive counts; ``None`` without input and output counts."""
    if not isinstance(source, Mapping):
        return None
    i, o = _count(source.get(keys[0])), _count(source.get(keys[1]))
    if i is None or o is None:
        return None
    cr, cw = _count(source.get(keys[2])) or 0, _count(source.get(keys[3])) or 0
    cw1h = _count(one_hour) or 0
    # Bedrock counts input without the cache; OpenTelemetry's input count includes it.
    return Usage(input_tokens=i + cr + cw, output_tokens=o, cache_read_tokens=cr, cache_write_tokens=cw,
                 cache_write_1h_tokens=min(cw1h, cw))  # fmt: skip


def converse_usage(usage: Any) -> Usage | None:
    """Usage from a Converse ``usage`` object (``TokenUsage``; one-hour writes in ``cacheDetails``)."""
    one_hour = 0
    details = usage.get("cacheDetails") if isinstance(usage, Mapping) else None
    for detail in details or ():
        if isinstance(detail, Mapping) and detail.get("ttl") == "1h":
            one_hour += _count(detail.get("inputTokens")) or 0
    return usage_of(usage, _CONVERSE_KEYS, one_hour)


def anthropic_usage(usage: Any) -> Usage | None:
    """Usage from an Anthropic Messages ``usage`` object."""
    creation = usage.get("cache_creation") if isinstance(usage, Mapping) else None
    one_hour = creation.get("ephemeral_1h_input_tokens") if isinstance(creation, Mapping) else 0
    return usage_of(usage, _ANTHROPIC_KEYS, one_hour)


def counted_output(usage: Usage, completion: str, model: str | None) -> Usage:
    """*usage* with its output counted locally from the *completion* streamed (see :mod:`._tokens`).

    For a stream that ended after Anthropic's ``message_start`` but before its ``message_delta``:
    the input and cache counts of ``message_start`` are exact, its ``output_tokens`` (1) is a
    placeholder, as in :mod:`.anthropic`'s own stream reader.
    """
    return dataclasses.replace(usage, output_tokens=count_tokens(completion, model), reasoning_tokens=0)


def _metadata(result: Any) -> Mapping[str, Any]:
    meta = result.get("ResponseMetadata") if isinstance(result, Mapping) else None
    return meta if isinstance(meta, Mapping) else {}


def header_usage(result: Any) -> Usage | None:
    """Usage from the token-count headers Bedrock adds to an InvokeModel response (lower-cased by botocore)."""
    return usage_of(_metadata(result).get("HTTPHeaders"), _HEADER_KEYS)


def request_id(result: Any) -> dict[str, Any]:
    request_id = _metadata(result).get("RequestId")
    return {sc.AWS_REQUEST_ID: request_id} if isinstance(request_id, str) and request_id else {}


def _first_choice(data: Mapping[str, Any], key: str) -> Any:
    items = data.get(key)
    return items[0] if isinstance(items, list) and items and isinstance(items[0], Mapping) else None


def model_chunk_text(data: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """The text and stop reason of one InvokeModelWithResponseStream chunk of a non-Anthropic model.

    Each family streams its own JSON: Meta Llama ``generation``/``stop_reason``; Amazon Titan
    ``outputText``/``completionReason``; Mistral ``outputs[0].text``/``stop_reason``; Cohere
    ``text``/``finish_reason``; Amazon Nova ``contentBlockDelta.delta.text`` and
    ``messageStop.stopReason``; OpenAI-style models (AI21 Jamba, gpt-oss, DeepSeek)
    ``choices[0].delta.content`` or ``choices[0].text`` with ``finish_reason``. Read only to
    estimate a stream that ended before Bedrock's invocation metrics (see :mod:`._tokens`).
    """
    for text_key, stop_key in (("generation", "stop_reason"), ("outputText", "completionReason")):
        text = data.get(text_key)
        if isinstance(text, str):
            stop = data.get(stop_key)
            return text, stop if isinstance(stop, str) else None
    choice = _first_choice(data, "outputs") or _first_choice(data, "choices")
    if choice is not None:
        delta = choice.get("delta")
        text = delta.get("content") if isinstance(delta, Mapping) else choice.get("text")
        stop = choice.get("stop_reason") or choice.get("finish_reason")
        return (text if isinstance(text, str) else None), (stop if isinstance(stop, str) else None)
    block = data.get("contentBlockDelta")
    if isinstance(block, Mapping):
        delta = block.get("delta")
        text = delta.get("text") if isinstance(delta, Mapping) else None
        return (text if isinstance(text, str) else None), None
    stop_block = data.get("messageStop")
    if isinstance(stop_block, Mapping):
        stop = stop_block.get("stopReason")
        return None, stop if isinstance(stop, str) else None
    text = data.get("text")
    stop = data.get("finish_reason")
    return (text if isinstance(text, str) else None), (stop if isinstance(stop, str) else None)
