"""Message content of Google GenAI calls in the GenAI conventions' shape (only when capture is opted in).

``contents`` (a string, ``Content``, ``Part``, their dict forms, or a list of them: consecutive
parts that are not in a ``Content`` form one user message, as the SDK sends them), the config's
``system_instruction`` (the system instructions) and ``tools``; the output is one message per
candidate, a stream's assembled from its chunks. Gemini's ``model`` role is the conventions'
``assistant``. See :mod:`._content`.
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

__all__ = ["GenerateStreamContent", "candidates_output", "generate_request"]

_ROLES = {"model": "assistant"}


def _get(obj: Any, snake: str, camel: str | None = None) -> Any:
    """A field of an SDK object or of its dict form (snake_case, or the wire's camelCase)."""
    if obj is None:
        return None
    if isinstance(obj, Mapping):
        value = obj.get(snake)
        return obj.get(camel) if value is None and camel else value
    return getattr(obj, snake, None)


def _list(value: Any) -> Sequence[Any]:
    return value if isinstance(value, (list, tuple)) else ()


def _modality(mime: Any) -> str:
    kind = mime.partition("/")[0] if isinstance(mime, str) else ""
    return kind if kind in ("image", "audio", "video") else "document"


def _part(part: Any) -> Part:
    """One ``Part`` (or a plain string) as a conventions part."""
    if isinstance(part, str):
        return text_part(part)
    text = _get(part, "text")
    if isinstance(text, str):
        return {"type": "reasoning", "content": text} if _get(part, "thought") is True else text_part(text)
    call = _get(part, "function_call", "functionCall")
    if call is not None:
        return tool_call_part(_get(call, "id"), _get(call, "name"), _get(call, "args"))
    response = _get(part, "function_response", "functionResponse")
    if response is not None:
        return tool_response_part(_get(response, "id"), _get(response, "response"))
    inline = _get(part, "inline_data", "inlineData")
    if inline is not None:
        mime = _get(inline, "mime_type", "mimeType")
        return blob_part(_get(inline, "data"), mime, _modality(mime))
    file = _get(part, "file_data", "fileData")
    if file is not None:
        mime = _get(file, "mime_type", "mimeType")
        uri = _get(file, "file_uri", "fileUri")
        return {"type": "uri", "mime_type": mime, "modality": _modality(mime), "uri": uri}
    for field, camel in (("executable_code", "executableCode"), ("code_execution_result", "codeExecutionResult")):
        if _get(part, field, camel) is not None:
            return {"type": field}
    return {"type": type(part).__name__ if not isinstance(part, Mapping) else "unknown"}


def _is_content(item: Any) -> bool:
    return _get(item, "parts") is not None or isinstance(_get(item, "role"), str)


def _messages(contents: Any) -> list[dict[str, Any]]:
    items = list(contents) if isinstance(contents, (list, tuple)) else [contents]
    out: list[dict[str, Any]] = []
    pending: list[Part] = []  # loose parts: one user message, as the SDK sends them
    for item in items:
        if item is None:
            continue
        if _is_content(item):
            if pending:
                out.append(message("user", pending))
                pending = []
            role = _get(item, "role")
            out.append(message(_ROLES.get(role, role) if isinstance(role, str) else "user", _parts(item)))
        else:
            pending.append(_part(item))
    if pending:
        out.append(message("user", pending))
    return out


def _parts(content: Any) -> list[Part]:
    return [_part(p) for p in _list(_get(content, "parts"))]


def _system(instruction: Any) -> list[Part]:
    if instruction is None:
        return []
    if isinstance(instruction, (list, tuple)):
        return [p for item in instruction for p in _system(item)]
    if _is_content(instruction):
        return _parts(instruction)
    return [_part(instruction)]


def _tools(tools: Any) -> list[dict[str, Any]]:
    out = []
    for tool in _list(tools):
        if callable(tool) and not isinstance(tool, Mapping):  # a Python function (automatic calling)
            out.append(function_tool(getattr(tool, "__name__", None), getattr(tool, "__doc__", None)))
            continue
        declarations = _list(_get(tool, "function_declarations", "functionDeclarations"))
        for d in declarations:
            parameters = _get(d, "parameters") or _get(d, "parameters_json_schema", "parametersJsonSchema")
            dump = getattr(parameters, "model_dump", None)  # a Schema model: its JSON form
            if callable(dump):
                parameters = dump(mode="json", exclude_none=True)
            out.append(function_tool(_get(d, "name"), _get(d, "description"), parameters))
        if not declarations:  # a built-in tool (google_search, code_execution...)
            fields = tool.items() if isinstance(tool, Mapping) else getattr(tool, "__dict__", {}).items()
            out += [function_tool(k, kind=k) for k, v in fields if v is not None and not k.startswith("_")]
    return out


def generate_request(contents: Any, config: Any) -> RequestContent:
    """The content of a ``generate_content`` request."""
    return RequestContent(
        messages=_messages(contents),
        system=_system(_get(config, "system_instruction", "systemInstruction")),
        tools=_tools(_get(config, "tools")),
    )


def _reason(candidate: Any) -> Any:
    value = _get(candidate, "finish_reason", "finishReason")
    raw = getattr(value, "value", value)
    return raw.lower().removeprefix("finish_reason_") if isinstance(raw, str) else None


def candidates_output(response: Any) -> list[dict[str, Any]]:
    """The output of a response: one message per candidate."""
    out = []
    for candidate in _list(_get(response, "candidates")):
        content = _get(candidate, "content")
        role = _get(content, "role")
        out.append(output_message(_parts(content), _reason(candidate), _ROLES.get(role, "assistant")))
    return out


class GenerateStreamContent:
    """Assembles the output messages of a ``generate_content_stream`` from its chunks, per candidate."""

    __slots__ = ("_candidates",)

    def __init__(self) -> None:
        self._candidates: dict[int, list[Any]] = {}  # index -> [parts, finish reason]

    def feed(self, chunk: Any) -> None:
        """Take one streamed response."""
        for position, candidate in enumerate(_list(_get(chunk, "candidates"))):
            index = _get(candidate, "index")
            state = self._candidates.setdefault(index if isinstance(index, int) else position, [[], None])
            state[1] = _reason(candidate) or state[1]
            parts: list[Part] = state[0]
            for part in _parts(_get(candidate, "content")):
                last = parts[-1] if parts else None
                if last is not None and last["type"] == part["type"] and part["type"] in ("text", "reasoning"):
                    last["content"] += part["content"]  # a text streamed in pieces
                else:
                    parts.append(part)

    def messages(self) -> list[dict[str, Any]]:
        """The output messages streamed so far."""
        return [output_message(parts, reason) for _, (parts, reason) in sorted(self._candidates.items())]
