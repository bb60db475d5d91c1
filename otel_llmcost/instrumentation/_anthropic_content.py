"""Message content of Anthropic Messages calls in the GenAI conventions' shape (only when capture is opted in).

Shared by the ``anthropic`` SDK instrumentation and Bedrock's ``InvokeModel`` with an Anthropic
payload: the request body (``system`` -> system instructions, ``messages`` with their content
blocks, ``tools``), the response ``Message`` (an SDK model or the decoded JSON), and a stream's
events (SDK event objects or decoded JSON) assembled block by block. See :mod:`._content`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ._content import (
    Part,
    RequestContent,
    blob_part,
    function_tool,
    json_arguments,
    message,
    output_message,
    text_part,
    tool_call_part,
    tool_response_part,
)

__all__ = ["DELTA_TEXT", "MessageStreamContent", "message_output", "messages_request"]


def _get(obj: Any, key: str) -> Any:
    return obj.get(key) if isinstance(obj, Mapping) else getattr(obj, key, None)


def _list(value: Any) -> Sequence[Any]:
    return value if isinstance(value, (list, tuple)) else ()


def _source(block: Any, modality: str) -> Part:
    """An image or document block's ``source``: inline data, a URL, or an uploaded file."""
    source = _get(block, "source")
    kind = _get(source, "type")
    if kind == "base64":
        return blob_part(_get(source, "data"), _get(source, "media_type"), modality)
    if kind == "url":
        return {"type": "uri", "mime_type": None, "modality": modality, "uri": _get(source, "url")}
    if kind == "file":
        return {"type": "file", "mime_type": None, "modality": modality, "file_id": _get(source, "file_id")}
    if kind == "text" and isinstance(_get(source, "data"), str):  # a plain-text document
        return text_part(_get(source, "data"))
    return {"type": modality}


def _result(content: Any) -> Any:
    """A tool result's content: its text when it is all text, else its parts."""
    if isinstance(content, str):
        return content
    parts = [_block(b) for b in _list(content)]
    if parts and all(p["type"] == "text" for p in parts):
        return "".join(p["content"] for p in parts)
    return parts


def _block(block: Any) -> Part:
    """One content block as a part."""
    if isinstance(block, str):
        return text_part(block)
    kind = _get(block, "type")
    if kind == "text":
        text = _get(block, "text")
        return text_part(text if isinstance(text, str) else "")
    if kind in ("tool_use", "server_tool_use", "mcp_tool_use"):
        return tool_call_part(_get(block, "id"), _get(block, "name"), _get(block, "input"))
    if kind in ("tool_result", "mcp_tool_result"):
        return tool_response_part(_get(block, "tool_use_id"), _result(_get(block, "content")))
    if kind == "thinking":
        thinking = _get(block, "thinking")
        return {"type": "reasoning", "content": thinking if isinstance(thinking, str) else ""}
    if kind == "image":
        return _source(block, "image")
    if kind == "document":
        return _source(block, "document")
    return {"type": kind if isinstance(kind, str) else "unknown"}


def _parts(content: Any) -> list[Part]:
    if isinstance(content, str):
        return [text_part(content)]
    return [_block(b) for b in _list(content)]


def messages_request(body: Mapping[str, Any]) -> RequestContent:
    """The content of a Messages request body."""
    tools = []
    for tool in _list(body.get("tools")):
        kind = _get(tool, "type")
        tools.append(
            function_tool(
                _get(tool, "name"),
                _get(tool, "description"),
                _get(tool, "input_schema"),
                kind if isinstance(kind, str) and kind != "custom" else "function",
            )
        )
    return RequestContent(
        messages=[message(_get(m, "role"), _parts(_get(m, "content"))) for m in _list(body.get("messages"))],
        system=_parts(body.get("system")),
        tools=tools,
    )


def message_output(msg: Any) -> list[dict[str, Any]]:
    """The output of a Messages response: one assistant message."""
    parts = _parts(_get(msg, "content"))
    reason = _get(msg, "stop_reason")
    if not parts and not reason:
        return []
    return [output_message(parts, reason)]


DELTA_TEXT: Mapping[Any, str] = {"text_delta": "text", "thinking_delta": "thinking", "input_json_delta": "partial_json"}
"""The field that holds the generated text of each kind of Anthropic ``content_block_delta``."""


class MessageStreamContent:
    """Assembles the output message of a Messages event stream (SDK events or decoded JSON)."""

    __slots__ = ("_blocks", "_stop")

    def __init__(self) -> None:
        self._blocks: dict[int, tuple[Any, list[str]]] = {}  # index -> (the block as started, deltas)
        self._stop: Any = None

    def feed(self, event: Any) -> None:
        """Take one stream event."""
        kind = _get(event, "type")
        if kind == "content_block_start":
            self._blocks[_get(event, "index")] = (_get(event, "content_block"), [])
        elif kind == "content_block_delta":
            delta = _get(event, "delta")
            field = DELTA_TEXT.get(_get(delta, "type"))
            piece = _get(delta, field) if field else None
            block = self._blocks.get(_get(event, "index"))
            if block is not None and isinstance(piece, str):
                block[1].append(piece)
        elif kind == "message_delta":
            self._stop = _get(_get(event, "delta"), "stop_reason") or self._stop

    def messages(self) -> list[dict[str, Any]]:
        """The output message streamed so far."""
        parts = []
        for _, (block, pieces) in sorted(self._blocks.items()):
            part = _block(block)
            streamed = "".join(pieces)
            if part["type"] == "tool_call":
                part["arguments"] = json_arguments(streamed) if streamed else part["arguments"]
            elif part["type"] in ("text", "reasoning"):
                part["content"] += streamed
            parts.append(part)
        if not parts and not self._stop:
            return []
        return [output_message(parts, self._stop)]
