"""Message content of ``openai`` calls in the GenAI conventions' shape (used only when capture is opted in).

Chat completions: every message of ``messages`` (a ``system`` / ``developer`` message stays in the
history, as the conventions ask for instructions that are part of it), assistant ``tool_calls``,
``tool`` results, images and audio; the output is one message per choice. Responses API:
``instructions`` are the system instructions, ``input`` a string or a list of items (messages,
function calls and their outputs, reasoning); the output is one message holding every output item.
See :mod:`._content` for the shape and the size cap.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ._content import (
    Part,
    RequestContent,
    blob_part,
    function_tool,
    message,
    output_message,
    text_part,
    tool_call_part,
    tool_response_part,
)

__all__ = [
    "ChatStreamContent",
    "chat_output",
    "chat_request",
    "responses_output",
    "responses_request",
    "responses_stream_output",
]


def _get(obj: Any, key: str) -> Any:
    return obj.get(key) if isinstance(obj, Mapping) else getattr(obj, key, None)


def _list(value: Any) -> Sequence[Any]:
    # never a one-shot iterator: the SDK has consumed it already
    return value if isinstance(value, (list, tuple)) else ()


def _media(url: Any, modality: str) -> Part:
    """An image (or other media) given by URL: a ``data:`` URL is inline (blob), any other a ``uri``."""
    if not isinstance(url, str):
        return {"type": modality}
    if url.startswith("data:"):
        header, _, payload = url[5:].partition(",")
        return blob_part(payload, header.split(";", 1)[0] or None, modality)
    return {"type": "uri", "mime_type": None, "modality": modality, "uri": url}


def _content_part(part: Any) -> Part:
    """One part of a chat or Responses message's ``content`` list."""
    kind = _get(part, "type")
    text = _get(part, "text")
    if isinstance(text, str) and kind in ("text", "input_text", "output_text", None):
        return text_part(text)
    if kind in ("refusal",) and isinstance(_get(part, "refusal"), str):
        return text_part(_get(part, "refusal"))
    if kind == "image_url":
        return _media(_get(_get(part, "image_url"), "url"), "image")
    if kind == "input_image":
        file_id = _get(part, "file_id")
        if isinstance(file_id, str):
            return {"type": "file", "mime_type": None, "modality": "image", "file_id": file_id}
        return _media(_get(part, "image_url"), "image")
    if kind == "input_audio":
        audio = _get(part, "input_audio")
        fmt = _get(audio, "format")
        return blob_part(_get(audio, "data"), f"audio/{fmt}" if isinstance(fmt, str) else None, "audio")
    if kind in ("file", "input_file"):
        file = _get(part, "file") if kind == "file" else part
        file_id = _get(file, "file_id")
        if isinstance(file_id, str):
            return {"type": "file", "mime_type": None, "modality": "document", "file_id": file_id}
        return _media(_get(file, "file_data") or _get(file, "file_url"), "document")
    return {"type": kind if isinstance(kind, str) else "unknown"}


def _parts(content: Any) -> list[Part]:
    if isinstance(content, str):
        return [text_part(content)]
    return [_content_part(part) for part in _list(content)]


def _tool_calls(calls: Any) -> list[Part]:
    out = []
    for call in _list(calls):
        function = _get(call, "function")
        if function is not None:
            out.append(tool_call_part(_get(call, "id"), _get(function, "name"), _get(function, "arguments")))
        else:  # a custom tool's call
            custom = _get(call, "custom")
            out.append(tool_call_part(_get(call, "id"), _get(custom, "name"), _get(custom, "input")))
    return out


def _text(content: Any) -> Any:
    """A tool result's content: its text when it is text, else the parts."""
    if isinstance(content, str):
        return content
    parts = _parts(content)
    if parts and all(p["type"] == "text" for p in parts):
        return "".join(p["content"] for p in parts)
    return parts


def _chat_message(msg: Any) -> dict[str, Any]:
    role = _get(msg, "role")
    if role in ("tool", "function"):
        call_id = _get(msg, "tool_call_id")
        return message(role, [tool_response_part(call_id, _text(_get(msg, "content")))], name=_get(msg, "name"))
    parts = _parts(_get(msg, "content"))
    refusal = _get(msg, "refusal")
    if isinstance(refusal, str):
        parts.append(text_part(refusal))
    parts += _tool_calls(_get(msg, "tool_calls"))
    function_call = _get(msg, "function_call")  # the legacy single call
    if function_call is not None:
        parts.append(tool_call_part(None, _get(function_call, "name"), _get(function_call, "arguments")))
    return message(role, parts, name=_get(msg, "name"))


def _tools(tools: Any) -> list[dict[str, Any]]:
    out = []
    for tool in _list(tools):
        kind = _get(tool, "type")
        # chat nests the definition under "function" (or "custom"); the Responses API does not
        inner = _get(tool, kind) if isinstance(kind, str) and _get(tool, kind) is not None else tool
        name = _get(inner, "name")
        out.append(
            function_tool(
                name if isinstance(name, str) else kind,
                _get(inner, "description"),
                _get(inner, "parameters"),
                kind if isinstance(kind, str) else "function",
            )
        )
    return out


def chat_request(kwargs: Mapping[str, Any]) -> RequestContent:
    """The content of a chat completions request."""
    return RequestContent(
        messages=[_chat_message(m) for m in _list(kwargs.get("messages"))],
        tools=_tools(kwargs.get("tools")),
    )


def _reasoning(msg: Any) -> list[Part]:
    # DeepSeek / vLLM reasoning models return the thinking apart, as an extra field
    text = _get(msg, "reasoning_content")
    return [{"type": "reasoning", "content": text}] if isinstance(text, str) and text else []


def chat_output(result: Any) -> list[dict[str, Any]]:
    """The output messages of a chat completion: one per choice."""
    out = []
    for choice in _list(_get(result, "choices")):
        msg = _get(choice, "message")
        parts = _reasoning(msg) + _chat_message(msg)["parts"]
        out.append(output_message(parts, _get(choice, "finish_reason")))
    return out


class ChatStreamContent:
    """Assembles the output messages of a streamed chat completion from its deltas, per choice."""

    __slots__ = ("_choices",)

    def __init__(self) -> None:
        # choice index -> [reasoning, text, refusal, {tool index: [id, name, [argument pieces]]}, finish]
        self._choices: dict[int, list[Any]] = {}

    def feed(self, chunk: Any) -> None:
        """Take one ``chat.completion.chunk``."""
        for choice in _list(getattr(chunk, "choices", None)):
            index = getattr(choice, "index", 0)
            state = self._choices.setdefault(index if isinstance(index, int) else 0, [[], [], [], {}, None])
            state[4] = getattr(choice, "finish_reason", None) or state[4]
            delta = getattr(choice, "delta", None)
            if delta is None:
                continue
            for slot, key in ((0, "reasoning_content"), (1, "content"), (2, "refusal")):
                piece = _get(delta, key)
                if isinstance(piece, str):
                    state[slot].append(piece)
            for call in _list(getattr(delta, "tool_calls", None)):
                entry = state[3].setdefault(getattr(call, "index", 0), [None, None, []])
                entry[0] = getattr(call, "id", None) or entry[0]
                function = getattr(call, "function", None)
                entry[1] = getattr(function, "name", None) or entry[1]
                arguments = getattr(function, "arguments", None)
                if isinstance(arguments, str):
                    entry[2].append(arguments)

    def messages(self) -> list[dict[str, Any]]:
        """The output messages seen so far."""
        out = []
        for _, (reasoning, text, refusal, calls, finish) in sorted(self._choices.items()):
            parts: list[Part] = [{"type": "reasoning", "content": "".join(reasoning)}] if reasoning else []
            parts += [text_part("".join(pieces)) for pieces in (text, refusal) if pieces and "".join(pieces)]
            parts += [tool_call_part(i, n, "".join(a)) for _, (i, n, a) in sorted(calls.items())]
            out.append(output_message(parts, finish))
        return out


# --- Responses API ----------------------------------------------------------------------------------


def _item(item: Any) -> dict[str, Any]:
    """One input (or output) item of the Responses API as a message."""
    kind = _get(item, "type")
    role = _get(item, "role")
    if kind == "function_call" or kind == "custom_tool_call":
        arguments = _get(item, "arguments") if kind == "function_call" else _get(item, "input")
        return message("assistant", [tool_call_part(_get(item, "call_id"), _get(item, "name"), arguments)])
    if kind in ("function_call_output", "custom_tool_call_output"):
        return message("tool", [tool_response_part(_get(item, "call_id"), _text(_get(item, "output")))])
    if kind == "reasoning":
        summary = "".join(t for s in _list(_get(item, "summary")) if isinstance(t := _get(s, "text"), str))
        return message("assistant", [{"type": "reasoning", "content": summary}])
    if isinstance(role, str):  # a message (its "type" is "message", or left out)
        return message(role, _parts(_get(item, "content")))
    return message("assistant", [{"type": kind if isinstance(kind, str) else "unknown"}])


def responses_request(kwargs: Mapping[str, Any]) -> RequestContent:
    """The content of a Responses API request."""
    instructions = kwargs.get("instructions")
    items = kwargs.get("input")
    messages = [message("user", [text_part(items)])] if isinstance(items, str) else [_item(i) for i in _list(items)]
    return RequestContent(
        messages=messages,
        system=[text_part(instructions)] if isinstance(instructions, str) and instructions else [],
        tools=_tools(kwargs.get("tools")),
    )


def _responses_finish(response: Any, parts: list[Part]) -> str:
    status = _get(response, "status")
    if status == "incomplete":
        reason = _get(_get(response, "incomplete_details"), "reason")
        return reason if isinstance(reason, str) else "incomplete"
    if any(p["type"] == "tool_call" for p in parts):
        return "tool_call"
    return status if isinstance(status, str) else ""


def responses_output(response: Any) -> list[dict[str, Any]]:
    """The output of a Responses API response: one message with every output item's parts."""
    parts: list[Part] = [p for item in _list(_get(response, "output")) for p in _item(item)["parts"]]
    if not parts:
        return []
    return [output_message(parts, _responses_finish(response, parts))]


def responses_stream_output(response: Any, text: Sequence[str]) -> list[dict[str, Any]]:
    """A streamed response's output: the final snapshot's, else the output text streamed before it ended."""
    out = responses_output(response) if response is not None else []
    if not out and text:
        return [output_message([text_part("".join(text))], None)]
    return out
