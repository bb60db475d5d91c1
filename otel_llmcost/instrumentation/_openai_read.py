"""Reading ``openai`` requests and responses: usage, prompt texts for estimates, stream accumulators.

Split from :mod:`.openai` (the hooks and the instrumentor); see there for what is read and why.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from ..pricing import Usage
from ._call import LLMCallSpan, Outcome
from ._content import ContentCapture
from ._openai_content import ChatStreamContent, responses_stream_output
from ._tokens import estimate_usage

__all__ = [
    "Call",
    "answer_in_traceback",
    "ChatStream",
    "ResponsesStream",
    "chat_prompt",
    "chat_usage",
    "estimated",
    "get",
    "model_field",
    "number",
    "responses_prompt",
    "responses_usage",
    "to_int",
    "to_str",
]


# --- reading requests and responses ---------------------------------------------------------------


def get(obj: Any, key: str) -> Any:
    """A field of a request part, given as a dict or as an SDK model."""
    return obj.get(key) if isinstance(obj, Mapping) else getattr(obj, key, None)


def number(value: Any) -> float | int | None:
    if value is None:  # an unset request option: most of them
        return None
    kind = type(value)
    if kind is int or kind is float:  # the usual case, without two isinstance checks
        return value  # type: ignore[no-any-return]
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def to_int(value: Any) -> int:
    if type(value) is int:
        return value  # type: ignore[no-any-return]
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def to_str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


_MISSING: Any = object()


def model_field(obj: Any, name: str) -> Any:
    """``getattr(obj, name, None)`` for a data field an SDK (pydantic) model may not declare.

    A pydantic model answers a missing attribute through ``__getattr__`` and an exception, ~2 us;
    fields another provider adds (DeepSeek's ``prompt_cache_hit_tokens``, OpenRouter's ``cost``),
    or that an older SDK does not declare, are missing on most calls. A model keeps its declared
    fields in ``__dict__`` and undeclared ones in ``__pydantic_extra__``: both are read directly.
    Only for data fields: properties and private attributes are not looked for.
    """
    extra = getattr(obj, "__pydantic_extra__", _MISSING)
    if extra is _MISSING:  # not a pydantic model
        return getattr(obj, name, None)
    value = getattr(obj, "__dict__", {}).get(name, _MISSING)
    if value is not _MISSING:
        return value
    return extra.get(name) if extra else None


def _texts(content: Any) -> list[str]:
    """The text of a message's content: a string, or a list of parts carrying ``text``."""
    if isinstance(content, str):
        return [content]
    if isinstance(content, Sequence):
        return [t for part in content if isinstance(t := get(part, "text"), str)]
    return []


def _tool_texts(message: Any) -> list[str]:
    out = []
    for call in get(message, "tool_calls") or ():
        function = get(call, "function")
        out += [t for key in ("name", "arguments") if isinstance(t := get(function, key), str)]
    return out


def _json_text(value: Any) -> list[str]:
    if not isinstance(value, (Mapping, list, tuple)):
        return []
    try:
        return [json.dumps(value, default=str)]
    except (TypeError, ValueError):
        return []


def answer_in_traceback(exc: BaseException, kind: type) -> Any:
    """The answer of type *kind* (with usage) that the ``openai`` SDK held when it raised *exc*, or ``None``.

    ``parse()`` validates the answer after reading it: a pydantic ``ValidationError`` from its
    parser carries nothing of the (billed) answer, but the SDK's frames that raised it, kept by the
    exception's traceback, still hold it as a local. Only frames of ``openai`` modules are looked
    in (the module name is read first, the locals only then); nothing is kept. Run only for a call
    that raised, so it costs a successful call nothing.
    """
    tb = exc.__traceback__
    while tb is not None:
        frame = tb.tb_frame
        module = frame.f_globals.get("__name__")
        if isinstance(module, str) and module.startswith("openai."):
            for value in frame.f_locals.values():
                if isinstance(value, kind) and getattr(value, "usage", None) is not None:
                    return value
        tb = tb.tb_next
    return None


def chat_usage(usage: Any, provider: str) -> tuple[Usage | None, Decimal | None]:
    """Usage (OpenTelemetry semantics, which OpenAI's already are) and a provider-reported cost."""
    if usage is None:
        return None, None
    prompt_details = getattr(usage, "prompt_tokens_details", None)
    cached = to_int(getattr(prompt_details, "cached_tokens", None))
    cached = cached or to_int(model_field(usage, "prompt_cache_hit_tokens"))  # DeepSeek's spelling
    details = getattr(usage, "completion_tokens_details", None)
    result = Usage(  # positional (input, output, cache read, cache write, 1h cache write, reasoning): half the cost
        to_int(getattr(usage, "prompt_tokens", None)),
        to_int(getattr(usage, "completion_tokens", None)),
        cached,
        to_int(model_field(prompt_details, "cache_write_tokens")),
        0,
        to_int(getattr(details, "reasoning_tokens", None)) if details is not None else 0,
    )
    if provider != "openrouter":
        return result, None
    # OpenRouter bills in USD credits and reports the charge itself: that is the price
    cost = number(model_field(usage, "cost"))
    return result, Decimal(str(cost)) if cost is not None else None


def responses_usage(usage: Any) -> Usage | None:
    if usage is None:
        return None
    input_details = getattr(usage, "input_tokens_details", None)
    return Usage(
        input_tokens=to_int(getattr(usage, "input_tokens", None)),
        output_tokens=to_int(getattr(usage, "output_tokens", None)),
        cache_read_tokens=to_int(getattr(input_details, "cached_tokens", None)),
        cache_write_tokens=to_int(model_field(input_details, "cache_write_tokens")),
        reasoning_tokens=to_int(getattr(getattr(usage, "output_tokens_details", None), "reasoning_tokens", None)),
    )


class Call(LLMCallSpan):
    """An OpenAI call: its span, and what reading its response needs from the request."""

    __slots__ = ("raw", "request", "streaming")

    raw: str | None  # with_raw_response / with_streaming_response mode, from the request headers
    request: Mapping[str, Any]  # the keyword arguments, kept to estimate a stream's prompt
    streaming: bool


def estimated(call: Call, model: str | None, prompt: tuple[list[str], int], completion: str) -> Outcome:
    texts, messages = prompt
    usage = estimate_usage(model or call.request_model, texts, completion, messages=messages)
    return Outcome(usage=usage, response_model=model, estimated=True)


def chat_prompt(request: Mapping[str, Any]) -> tuple[list[str], int]:
    """The texts of a chat request (roles, contents, names, tool calls, tool definitions) and its message count."""
    messages = request.get("messages")
    if not isinstance(messages, Sequence) or isinstance(messages, str):
        return [], 0  # a one-shot iterable the SDK has already consumed
    texts: list[str] = []
    for message in messages:
        texts += [t for key in ("role", "name") if isinstance(t := get(message, key), str)]
        texts += _texts(get(message, "content")) + _tool_texts(message)
    return texts + _json_text(request.get("tools")), len(messages)


class ChatStream:
    """Reads a streamed chat completion: the usage chunk, the model, finish reasons, the text.

    With content capture on, it also assembles the output messages (:class:`ChatStreamContent`).
    """

    __slots__ = ("call", "capture", "content", "finish", "id", "model", "text", "usage")

    def __init__(self, call: Call, capture: ContentCapture | None = None) -> None:
        self.call = call
        self.capture = capture
        self.content = ChatStreamContent() if capture is not None else None
        self.usage: Any = None
        self.model: str | None = None
        self.id: str | None = None
        self.finish: dict[int, str] = {}
        self.text: list[str] = []  # everything billed as output, for the estimate when no usage comes

    def feed(self, chunk: Any) -> None:
        """Take one ``chat.completion.chunk``.

        This runs on every chunk: plain attribute reads and ``str`` checks, no helper calls in
        the common case (a chunk of one choice whose delta carries text or nothing).
        """
        if self.model is None:
            self.model = to_str(getattr(chunk, "model", None))
            self.id = to_str(getattr(chunk, "id", None))
        usage = getattr(chunk, "usage", None)
        if usage is not None:
            self.usage = usage
        choices = getattr(chunk, "choices", None)
        if choices:
            text = self.text
            for choice in choices:
                try:  # an SDK choice and delta: plain attribute reads, about half what getattr() costs
                    reason = choice.finish_reason
                    delta = choice.delta
                    content = delta.content
                    refusal = delta.refusal
                    tool_calls = delta.tool_calls
                except AttributeError:  # any other shape (no delta, a dict...): field by field
                    self._feed_choice(choice)
                    continue
                if reason and isinstance(reason, str):
                    self.finish[to_int(getattr(choice, "index", 0))] = reason
                if isinstance(content, str):
                    text.append(content)
                if isinstance(refusal, str):
                    text.append(refusal)
                if tool_calls:
                    text += _tool_texts(delta)
        if self.content is not None:  # last: the usage above is read even if this fails
            self.content.feed(chunk)

    def _feed_choice(self, choice: Any) -> None:
        reason = to_str(getattr(choice, "finish_reason", None))
        if reason:
            self.finish[to_int(getattr(choice, "index", 0))] = reason
        delta = getattr(choice, "delta", None)
        if delta is None:
            return
        self.text += [t for key in ("content", "refusal") if isinstance(t := getattr(delta, key, None), str)]
        self.text += _tool_texts(delta)

    def outcome(self) -> Outcome:
        """The usage the stream reported (or an estimate), and the output content when captured."""
        call = self.call
        usage, cost = chat_usage(self.usage, call.provider)
        if usage is None:
            out = estimated(call, self.model, chat_prompt(call.request), "".join(self.text))
        else:
            out = Outcome(usage=usage, provider_cost=cost, response_model=self.model)
        out.response_id = self.id
        out.finish_reasons = tuple(reason for _, reason in sorted(self.finish.items()))
        if self.capture is not None and self.content is not None:
            out.attributes = self.capture.response_attributes(call, self.content.messages)
        return out


def responses_prompt(request: Mapping[str, Any]) -> tuple[list[str], int]:
    """The texts of a Responses API request (instructions, input items, tools) and its message count."""
    instructions = request.get("instructions")
    texts = [instructions] if isinstance(instructions, str) else []
    items = request.get("input")
    if isinstance(items, str):
        return [*texts, items, *_json_text(request.get("tools"))], len(texts) + 1
    messages = len(texts)
    for item in items if isinstance(items, Sequence) else ():
        messages += isinstance(get(item, "role"), str)
        texts += _texts(get(item, "content"))
        texts += [t for key in ("output", "arguments", "name") if isinstance(t := get(item, key), str)]
    return texts + _json_text(request.get("tools")), messages


class ResponsesStream:
    """Reads a Responses API event stream: the final response (with usage), or the text deltas."""

    __slots__ = ("call", "capture", "output_text", "read", "response", "text")

    def __init__(self, call: Call, read: Callable[[Call, Any], Outcome], capture: ContentCapture | None = None) -> None:
        self.call = call
        self.read = read
        self.capture = capture
        self.response: Any = None  # the latest snapshot (created, completed, incomplete, failed)
        self.text: list[str] = []
        self.output_text: list[str] = []  # the answer's text alone, kept only when content is captured

    def feed(self, event: Any) -> None:
        """Take one event of the stream."""
        response = getattr(event, "response", None)
        if response is not None:
            self.response = response
            return
        kind = getattr(event, "type", None)
        delta = getattr(event, "delta", None)
        # text, refusals, reasoning, tool arguments: all billed as output (audio deltas are base64)
        if isinstance(delta, str) and isinstance(kind, str) and kind.endswith(".delta") and "audio." not in kind:
            self.text.append(delta)
            if self.capture is not None and kind == "response.output_text.delta":
                self.output_text.append(delta)

    def outcome(self) -> Outcome:
        """The final response's usage (or an estimate), and the output content when captured."""
        out = self.read(self.call, self.response) if self.response is not None else Outcome()
        if out.usage is None:
            estimate = estimated(self.call, out.response_model, responses_prompt(self.call.request), "".join(self.text))
            out.usage, out.estimated = estimate.usage, True
        if self.capture is not None and not out.attributes:  # read() adds it for a final snapshot
            out.attributes = self.capture.response_attributes(
                self.call, responses_stream_output, self.response, self.output_text
            )
        return out
