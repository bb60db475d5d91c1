"""Message content of Bedrock Runtime calls in the GenAI conventions' shape (only when capture is opted in).

Converse / ConverseStream: ``messages`` (text, images, documents, ``toolUse``, ``toolResult``,
reasoning blocks), ``system`` (the system instructions), ``toolConfig.tools``, and the output
``message`` (a stream's assembled from its ``contentBlock*`` events). InvokeModel with an Anthropic
payload reuses :mod:`._anthropic_content`; other payloads' formats are not read. See :mod:`._content`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from ._anthropic_content import DELTA_TEXT, messages_request
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

__all__ = [
    "ConverseStreamContent",
    "anthropic_delta_text",
    "converse_delta_text",
    "converse_output",
    "converse_request",
    "invoke_request",
]

_MEDIA = (("image", "image"), ("document", "document"), ("video", "video"), ("audio", "audio"))


def _list(value: Any) -> Sequence[Any]:
    return value if isinstance(value, (list, tuple)) else ()


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _media(block: Mapping[str, Any], modality: str) -> Part:
    fmt = block.get("format")
    source = _map(block.get("source"))
    mime = f"{modality}/{fmt}" if isinstance(fmt, str) else None
    if "bytes" in source:
        return blob_part(source["bytes"], mime, modality)
    location = _map(source.get("s3Location"))
    if isinstance(location.get("uri"), str):
        return {"type": "uri", "mime_type": mime, "modality": modality, "uri": location["uri"]}
    if isinstance(source.get("text"), str):  # a plain-text document
        return text_part(source["text"])
    return {"type": modality}


def _result(content: Any) -> Any:
    """A tool result's content: its text when it is all text, the JSON when it is one JSON block."""
    blocks = _list(content)
    if len(blocks) == 1 and isinstance(_map(blocks[0]).get("json"), (Mapping, list)):
        return blocks[0]["json"]
    parts = [_block(b) for b in blocks]
    if parts and all(p["type"] == "text" for p in parts):
        return "".join(p["content"] for p in parts)
    return parts


def _block(block: Any) -> Part:
    """One Converse content block as a part."""
    b = _map(block)
    if isinstance(b.get("text"), str):
        return text_part(b["text"])
    if "toolUse" in b:
        use = _map(b["toolUse"])
        return tool_call_part(use.get("toolUseId"), use.get("name"), use.get("input"))
    if "toolResult" in b:
        result = _map(b["toolResult"])
        return tool_response_part(result.get("toolUseId"), _result(result.get("content")))
    if "reasoningContent" in b:
        text = _map(_map(b["reasoningContent"]).get("reasoningText")).get("text")
        return {"type": "reasoning", "content": text if isinstance(text, str) else ""}
    for key, modality in _MEDIA:
        if key in b:
            return _media(_map(b[key]), modality)
    if "json" in b:
        return text_part(json.dumps(b["json"], default=str))
    return {"type": next(iter(b), "unknown")}  # cachePoint, guardContent...


def _parts(content: Any) -> list[Part]:
    # cache points mark a prompt-cache boundary: not content
    return [_block(b) for b in _list(content) if not (isinstance(b, Mapping) and "cachePoint" in b)]


def converse_request(params: Mapping[str, Any]) -> RequestContent:
    """The content of a Converse / ConverseStream request."""
    tools = []
    for tool in _list(_map(params.get("toolConfig")).get("tools")):
        spec = _map(_map(tool).get("toolSpec"))
        if spec:
            schema = _map(spec.get("inputSchema")).get("json")
            tools.append(function_tool(spec.get("name"), spec.get("description"), schema))
    messages = [message(_map(m).get("role"), _parts(_map(m).get("content"))) for m in _list(params.get("messages"))]
    return RequestContent(messages=messages, system=_parts(params.get("system")), tools=tools)


def converse_output(result: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The output of a Converse response: its one message."""
    msg = _map(_map(result.get("output")).get("message"))
    if not msg:
        return []
    return [output_message(_parts(msg.get("content")), result.get("stopReason"))]


def invoke_request(body: Any) -> RequestContent | None:
    """The content of an InvokeModel request with an Anthropic payload (``None`` for a file-like body)."""
    if isinstance(body, (bytes, bytearray, str)):
        payload = json.loads(body)
        if isinstance(payload, Mapping):
            return messages_request(payload)
    return None


# --- generated text of stream deltas (always read: an estimate counts it when a stream sends no usage) ---


def converse_delta_text(delta: Mapping[str, Any]) -> str | None:
    """The generated text of a ConverseStream ``contentBlockDelta.delta``: text, reasoning or tool input."""
    text = delta.get("text")
    if text is None:
        text = _map(delta.get("reasoningContent")).get("text")
        if text is None:
            text = _map(delta.get("toolUse")).get("input")
    return text if isinstance(text, str) else None


def anthropic_delta_text(delta: Mapping[str, Any]) -> str | None:
    """The generated text of an Anthropic ``content_block_delta``'s delta: text, thinking or tool input."""
    kind = delta.get("type")
    field = DELTA_TEXT.get(kind) if isinstance(kind, str) else None
    text = delta.get(field) if field else None
    return text if isinstance(text, str) else None


class ConverseStreamContent:
    """Assembles the output message of a ConverseStream from its events."""

    __slots__ = ("_blocks", "_stop")

    def __init__(self) -> None:
        # index -> (contentBlockStart's start, text, reasoning, tool input pieces)
        self._blocks: dict[int, tuple[Mapping[str, Any], list[str], list[str], list[str]]] = {}
        self._stop: Any = None

    def _at(self, event: Mapping[str, Any]) -> tuple[Mapping[str, Any], list[str], list[str], list[str]]:
        index = event.get("contentBlockIndex", 0)
        return self._blocks.setdefault(index if isinstance(index, int) else 0, ({}, [], [], []))

    def feed(self, event: Mapping[str, Any]) -> None:
        """Take one parsed event."""
        if "contentBlockDelta" in event:
            delta_event = _map(event["contentBlockDelta"])
            _, text, reasoning, tool_input = self._at(delta_event)
            delta = _map(delta_event.get("delta"))
            for pieces, piece in (
                (text, delta.get("text")),
                (reasoning, _map(delta.get("reasoningContent")).get("text")),
                (tool_input, _map(delta.get("toolUse")).get("input")),
            ):
                if isinstance(piece, str):
                    pieces.append(piece)
        elif "contentBlockStart" in event:
            start_event = _map(event["contentBlockStart"])
            index = start_event.get("contentBlockIndex", 0)
            self._blocks[index if isinstance(index, int) else 0] = (_map(start_event.get("start")), [], [], [])
        elif "messageStop" in event:
            self._stop = _map(event["messageStop"]).get("stopReason")

    def messages(self) -> list[dict[str, Any]]:
        """The output message streamed so far."""
        parts: list[Part] = []
        for _, (start, text, reasoning, tool_input) in sorted(self._blocks.items()):
            use = _map(start.get("toolUse"))
            if use:
                parts.append(tool_call_part(use.get("toolUseId"), use.get("name"), json_arguments("".join(tool_input))))
            if reasoning:
                parts.append({"type": "reasoning", "content": "".join(reasoning)})
            if text:
                parts.append(text_part("".join(text)))
        if not parts and not self._stop:
            return []
        return [output_message(parts, self._stop)]
