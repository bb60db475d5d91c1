"""The content-capture core (:mod:`otel_llmcost.instrumentation._content`) and the per-SDK converters.

The setting's vocabulary, the size cap (valid JSON, a marker, ``llm.content.truncated``), never
failing the call, and each SDK's tool calls, tool results, media and reasoning parts, built from the
SDKs' own response types (and their streams' chunk types), the shapes the fakes do not send.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import anthropic.types as at
import openai
import pytest
from google.genai import types as gt
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.responses import Response
from pydantic import TypeAdapter

from otel_llmcost import semconv as sc
from otel_llmcost.config import ConfigError
from otel_llmcost.instrumentation import _content, _openai_content
from otel_llmcost.instrumentation._anthropic_content import MessageStreamContent, message_output, messages_request
from otel_llmcost.instrumentation._bedrock_content import ConverseStreamContent, converse_output, converse_request
from otel_llmcost.instrumentation._content import ContentCapture, content_capture, finish_reason
from otel_llmcost.instrumentation._google_genai_content import (
    GenerateStreamContent,
    candidates_output,
    generate_request,
)
from otel_llmcost.instrumentation._openai_content import ChatStreamContent, chat_output, responses_output
from otel_llmcost.instrumentation.openai import OpenAIInstrumentor
from otel_llmcost.metrics import Recorder

from .fakes import openai_server
from .fakes.stack import InstrumentedStack, installed, instrumented_stack

ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
ARGS = {"city": "Paris", "units": "metric"}


# --- the setting -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "on"),
    [
        ("", False),
        ("false", False),
        ("FALSE", False),
        ("0", False),
        ("no_content", False),
        ("EVENT_ONLY", False),  # we emit no events: nothing goes on the span
        ("true", True),
        ("True", True),
        ("1", True),
        ("SPAN_ONLY", True),
        (" span_and_event ", True),
    ],
)
def test_the_setting_accepts_both_vocabularies(raw: str, on: bool) -> None:
    capture = content_capture(environ={ENV: raw})
    assert (capture is not None) is on
    assert content_capture(environ={}) is None  # unset: off


def test_a_bad_setting_names_the_variable_and_the_value() -> None:
    with pytest.raises(ConfigError, match=f"{ENV}='sometimes'"):
        content_capture(environ={ENV: "sometimes"})
    with pytest.raises(ConfigError, match="capture_content='yes'"):
        content_capture("yes", environ={})  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="OTEL_LLMCOST_CONTENT_MAX_LENGTH='12'"):
        content_capture(environ={ENV: "true", "OTEL_LLMCOST_CONTENT_MAX_LENGTH": "12"})


def test_the_cap_defaults_and_stays_under_the_sdk_attribute_limit() -> None:
    assert content_capture(True, environ={}) == ContentCapture(32768)
    assert content_capture(True, environ={"OTEL_LLMCOST_CONTENT_MAX_LENGTH": "1000"}) == ContentCapture(1000)
    limited = {"OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT": "4096", "OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT": "2048"}
    assert content_capture(True, environ=limited) == ContentCapture(2048)
    assert content_capture(True, max_length=500, environ={}) == ContentCapture(500)


def test_the_instrumentor_refuses_a_bad_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, "maybe")
    with pytest.raises(ConfigError, match=ENV):
        OpenAIInstrumentor().targets(None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("end_turn", "stop"), ("tool_calls", "tool_call"), ("MAX_TOKENS", "length"), ("SAFETY", "content_filter"),
     ("guardrail_intervened", "content_filter"), ("a_new_reason", "a_new_reason"), (None, "")],
)  # fmt: skip
def test_finish_reasons_are_normalised(raw: Any, expected: str) -> None:
    assert finish_reason(raw) == expected


# --- the size cap ----------------------------------------------------------------------------------


def _messages(n: int, size: int) -> list[dict[str, Any]]:
    return [
        _content.message("user", [_content.text_part(f"{i}:" + "é" * size), _content.tool_call_part("c", "f", ARGS)])
        for i in range(n)
    ]


@pytest.mark.parametrize(("n", "size", "cap"), [(1, 10_000, 1000), (5, 3000, 4000), (3000, 5, 2000)])
def test_content_over_the_cap_stays_valid_json_with_markers(n: int, size: int, cap: int) -> None:
    capture = ContentCapture(cap)
    content = _content.RequestContent(messages=_messages(n, size))
    attrs = capture.request_attributes(lambda: content)
    raw = attrs[sc.GEN_AI_INPUT_MESSAGES]
    assert len(raw) <= cap
    kept = json.loads(raw)
    assert attrs[sc.LLM_CONTENT_TRUNCATED] == (sc.GEN_AI_INPUT_MESSAGES,)
    assert 1 <= len(kept) <= n
    # the newest messages are kept (the oldest dropped), each still a message with its parts
    last = kept[-1]["parts"][0]["content"]
    assert last.startswith(f"{n - 1}:")
    if "…[truncated " in last:
        head, _, tail = last.partition("…[truncated ")
        assert tail == f"{len(f'{n - 1}:') + size - len(head)} chars]"
    assert kept[-1]["parts"][1] == {"type": "tool_call", "id": "c", "name": "f", "arguments": ARGS}


def test_content_under_the_cap_is_untouched() -> None:
    content = _content.RequestContent(messages=_messages(2, 50), system=[_content.text_part("sys")])
    attrs = ContentCapture(10_000).request_attributes(lambda: content)
    assert json.loads(attrs[sc.GEN_AI_INPUT_MESSAGES]) == json.loads(json.dumps(content.messages))
    assert json.loads(attrs[sc.GEN_AI_SYSTEM_INSTRUCTIONS]) == [{"type": "text", "content": "sys"}]
    assert sc.LLM_CONTENT_TRUNCATED not in attrs and sc.GEN_AI_TOOL_DEFINITIONS not in attrs


def test_a_failing_converter_costs_the_content_not_the_call(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any) -> Any:
        raise RuntimeError("converter bug")

    recorder = Recorder()
    with installed(recorder):
        assert ContentCapture(1000).request_attributes(broken) == {}
    assert recorder.snapshot().skipped == [({"reason": "instrumentation_error"}, 1)]

    # through a real call: the request and response converters both fail; the call and its price do not
    monkeypatch.setattr("otel_llmcost.instrumentation.openai.chat_request", broken)
    monkeypatch.setattr("otel_llmcost.instrumentation.openai.chat_output", broken)
    with (
        openai_server.serve() as server,
        instrumented_stack(InstrumentedStack, OpenAIInstrumentor(), capture_content=True) as stack,
        openai.OpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0) as client,
    ):
        result = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
        assert result.choices[0].message.content == openai_server.REPLY_TEXT
        attrs = stack.only_span().attributes or {}
        assert attrs[sc.LLM_COST_STATUS] == "priced"
        assert sc.GEN_AI_INPUT_MESSAGES not in attrs and sc.GEN_AI_OUTPUT_MESSAGES not in attrs
        assert stack.recorder.snapshot().skipped == [({"reason": "instrumentation_error"}, 2)]


# --- OpenAI ----------------------------------------------------------------------------------------

PIXEL = base64.b64encode(b"\x89PNG fake").decode()


def test_openai_chat_request_with_tools_media_and_results() -> None:
    openai_request = {
        "messages": [
            {"role": "developer", "content": "Use tools."},
            {"role": "user", "name": "ann", "content": [
                {"type": "text", "text": "What is here?"},
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PIXEL}"}},
                {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
            ]},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": json.dumps(ARGS)}}
            ]},
            {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
        ],
        "tools": [{"type": "function", "function": {"name": "weather", "description": "d", "parameters": {"type": "object"}}}],
    }  # fmt: skip
    content = _openai_content.chat_request(openai_request)
    assert content.messages == [
        {"role": "developer", "parts": [{"type": "text", "content": "Use tools."}]},
        {"role": "user", "name": "ann", "parts": [
            {"type": "text", "content": "What is here?"},
            {"type": "blob", "mime_type": "image/png", "modality": "image", "content": PIXEL},
            {"type": "uri", "mime_type": None, "modality": "image", "uri": "https://example.com/a.png"},
        ]},
        {"role": "assistant", "parts": [{"type": "tool_call", "id": "call_1", "name": "weather", "arguments": ARGS}]},
        {"role": "tool", "parts": [{"type": "tool_call_response", "id": "call_1", "response": "sunny"}]},
    ]  # fmt: skip
    assert content.tools == [
        {"type": "function", "name": "weather", "description": "d", "parameters": {"type": "object"}}
    ]


def test_openai_chat_output_with_tool_calls() -> None:
    completion = ChatCompletion.model_validate(
        {
            "id": "c", "object": "chat.completion", "created": 1, "model": "gpt-4o",
            "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
                "role": "assistant", "content": None,
                "tool_calls": [{"id": "call_9", "type": "function", "function": {"name": "weather", "arguments": '{"city": "Paris", "units": "metric"}'}}],
            }}],
        }
    )  # fmt: skip
    assert chat_output(completion) == [
        {"role": "assistant", "parts": [{"type": "tool_call", "id": "call_9", "name": "weather", "arguments": ARGS}],
         "finish_reason": "tool_call"}
    ]  # fmt: skip


def test_openai_chat_stream_assembles_tool_call_deltas() -> None:
    arguments = json.dumps(ARGS)
    pieces = [arguments[:7], arguments[7:20], arguments[20:]]
    base = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o"}
    chunks = [
        {"choices": [{"index": 0, "delta": {"role": "assistant", "content": "Checking"}}]},
        {"choices": [{"index": 0, "delta": {"content": " now."}}]},
        {"choices": [{"index": 0, "delta": {"tool_calls": [
            {"index": 0, "id": "call_1", "type": "function", "function": {"name": "weather", "arguments": ""}}]}}]},
        *[{"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": p}}]}}]} for p in pieces],
        {"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]},
    ]  # fmt: skip
    stream = ChatStreamContent()
    for chunk in chunks:
        stream.feed(ChatCompletionChunk.model_validate({**base, **chunk}))
    assert stream.messages() == [
        {"role": "assistant", "finish_reason": "tool_call", "parts": [
            {"type": "text", "content": "Checking now."},
            {"type": "tool_call", "id": "call_1", "name": "weather", "arguments": ARGS},
        ]}
    ]  # fmt: skip


def test_openai_responses_items_both_ways() -> None:
    request = {
        "instructions": "Be brief.",
        "input": [
            {"role": "user", "content": [{"type": "input_text", "text": "Weather?"}, {"type": "input_image", "file_id": "file-1"}]},
            {"type": "function_call", "call_id": "fc_1", "name": "weather", "arguments": json.dumps(ARGS)},
            {"type": "function_call_output", "call_id": "fc_1", "output": "sunny"},
        ],
        "tools": [{"type": "function", "name": "weather", "parameters": {"type": "object"}}, {"type": "web_search"}],
    }  # fmt: skip
    content = _openai_content.responses_request(request)
    assert content.system == [{"type": "text", "content": "Be brief."}]
    assert content.messages == [
        {"role": "user", "parts": [{"type": "text", "content": "Weather?"},
                                   {"type": "file", "mime_type": None, "modality": "image", "file_id": "file-1"}]},
        {"role": "assistant", "parts": [{"type": "tool_call", "id": "fc_1", "name": "weather", "arguments": ARGS}]},
        {"role": "tool", "parts": [{"type": "tool_call_response", "id": "fc_1", "response": "sunny"}]},
    ]  # fmt: skip
    assert content.tools == [
        {"type": "function", "name": "weather", "parameters": {"type": "object"}},
        {"type": "web_search", "name": "web_search"},
    ]
    response = Response.model_validate(
        {
            "id": "r", "object": "response", "created_at": 1, "model": "o4-mini", "status": "completed",
            "parallel_tool_calls": True, "tool_choice": "auto", "tools": [],
            "output": [
                {"type": "reasoning", "id": "rs", "summary": [{"type": "summary_text", "text": "Need weather."}]},
                {"type": "function_call", "id": "fc", "call_id": "fc_2", "name": "weather", "arguments": json.dumps(ARGS)},
            ],
        }
    )  # fmt: skip
    assert responses_output(response) == [
        {"role": "assistant", "finish_reason": "tool_call", "parts": [
            {"type": "reasoning", "content": "Need weather."},
            {"type": "tool_call", "id": "fc_2", "name": "weather", "arguments": ARGS},
        ]}
    ]  # fmt: skip


# --- Anthropic (and Bedrock InvokeModel) -----------------------------------------------------------


def test_anthropic_blocks_both_ways() -> None:
    body = {
        "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
        "messages": [
            {"role": "user", "content": [
                {"type": "text", "text": "Weather?"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PIXEL}},
            ]},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "tu_1", "name": "weather", "input": ARGS}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "tu_1", "content": [{"type": "text", "text": "sunny"}]}]},
        ],
        "tools": [{"name": "weather", "description": "d", "input_schema": {"type": "object"}}],
    }  # fmt: skip
    content = messages_request(body)
    assert content.system == [{"type": "text", "content": "Be brief."}]
    assert content.messages == [
        {"role": "user", "parts": [{"type": "text", "content": "Weather?"},
                                   {"type": "blob", "mime_type": "image/png", "modality": "image", "content": PIXEL}]},
        {"role": "assistant", "parts": [{"type": "tool_call", "id": "tu_1", "name": "weather", "arguments": ARGS}]},
        {"role": "user", "parts": [{"type": "tool_call_response", "id": "tu_1", "response": "sunny"}]},
    ]  # fmt: skip
    assert content.tools == [
        {"type": "function", "name": "weather", "description": "d", "parameters": {"type": "object"}}
    ]
    message = at.Message.model_validate(
        {
            "id": "m", "type": "message", "role": "assistant", "model": "claude-haiku-4-5", "stop_reason": "tool_use",
            "usage": {"input_tokens": 1, "output_tokens": 1},
            "content": [{"type": "thinking", "thinking": "Need weather.", "signature": "s"},
                        {"type": "tool_use", "id": "tu_2", "name": "weather", "input": ARGS}],
        }
    )  # fmt: skip
    expected = [
        {"role": "assistant", "finish_reason": "tool_call", "parts": [
            {"type": "reasoning", "content": "Need weather."},
            {"type": "tool_call", "id": "tu_2", "name": "weather", "arguments": ARGS},
        ]}
    ]  # fmt: skip
    assert message_output(message) == expected
    assert message_output(message.model_dump(mode="json")) == expected  # a decoded body (Bedrock) alike


def test_anthropic_stream_assembles_blocks_from_sdk_events_and_json() -> None:
    arguments = json.dumps(ARGS)
    events: list[dict[str, Any]] = [
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Let me "}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "check."}},
        {"type": "content_block_start", "index": 1, "content_block": {"type": "tool_use", "id": "tu_3", "name": "weather", "input": {}}},
        {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": arguments[:9]}},
        {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": arguments[9:]}},
        {"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 9}},
    ]  # fmt: skip
    expected = [
        {"role": "assistant", "finish_reason": "tool_call", "parts": [
            {"type": "text", "content": "Let me check."},
            {"type": "tool_call", "id": "tu_3", "name": "weather", "arguments": ARGS},
        ]}
    ]  # fmt: skip
    from_json, from_sdk = MessageStreamContent(), MessageStreamContent()
    adapter: TypeAdapter[Any] = TypeAdapter(at.RawMessageStreamEvent)
    for event in events:
        from_json.feed(event)
        from_sdk.feed(adapter.validate_python(event))
    assert from_json.messages() == expected
    assert from_sdk.messages() == expected


# --- Google GenAI ----------------------------------------------------------------------------------


def test_gemini_contents_and_candidates() -> None:
    contents = [
        gt.Content(role="user", parts=[gt.Part(text="Weather?"), gt.Part.from_bytes(data=b"\x89PNG", mime_type="image/png")]),
        gt.Content(role="model", parts=[gt.Part(function_call=gt.FunctionCall(id="f1", name="weather", args=ARGS))]),
        gt.Content(role="user", parts=[gt.Part(function_response=gt.FunctionResponse(id="f1", name="weather", response={"sky": "sunny"}))]),
        "and tomorrow?",
    ]  # fmt: skip
    config = gt.GenerateContentConfig(
        system_instruction="Be brief.",
        tools=[gt.Tool(function_declarations=[gt.FunctionDeclaration(name="weather", description="d")])],
    )
    content = generate_request(contents, config)
    assert content.system == [{"type": "text", "content": "Be brief."}]
    assert content.messages == [
        {"role": "user", "parts": [{"type": "text", "content": "Weather?"},
                                   {"type": "blob", "mime_type": "image/png", "modality": "image",
                                    "content": base64.b64encode(b"\x89PNG").decode()}]},
        {"role": "assistant", "parts": [{"type": "tool_call", "id": "f1", "name": "weather", "arguments": ARGS}]},
        {"role": "user", "parts": [{"type": "tool_call_response", "id": "f1", "response": {"sky": "sunny"}}]},
        {"role": "user", "parts": [{"type": "text", "content": "and tomorrow?"}]},
    ]  # fmt: skip
    assert content.tools == [{"type": "function", "name": "weather", "description": "d"}]
    response = gt.GenerateContentResponse(
        candidates=[gt.Candidate(index=0, finish_reason=gt.FinishReason.STOP, content=gt.Content(role="model", parts=[
            gt.Part(text="Thinking it over.", thought=True), gt.Part(function_call=gt.FunctionCall(name="weather", args=ARGS)),
        ]))]
    )  # fmt: skip
    assert candidates_output(response) == [
        {"role": "assistant", "finish_reason": "stop", "parts": [
            {"type": "reasoning", "content": "Thinking it over."},
            {"type": "tool_call", "id": None, "name": "weather", "arguments": ARGS},
        ]}
    ]  # fmt: skip
    stream = GenerateStreamContent()
    for text, reason in (("Sun", None), ("ny.", gt.FinishReason.MAX_TOKENS)):
        candidate = gt.Candidate(
            index=0, finish_reason=reason, content=gt.Content(role="model", parts=[gt.Part(text=text)])
        )
        stream.feed(gt.GenerateContentResponse(candidates=[candidate]))
    assert stream.messages() == [
        {"role": "assistant", "finish_reason": "length", "parts": [{"type": "text", "content": "Sunny."}]}
    ]


# --- Bedrock Converse ------------------------------------------------------------------------------


def test_bedrock_converse_both_ways() -> None:
    params = {
        "system": [{"text": "Be brief."}, {"cachePoint": {"type": "default"}}],
        "messages": [
            {"role": "user", "content": [{"text": "Weather?"}, {"image": {"format": "png", "source": {"bytes": b"\x89PNG"}}}]},
            {"role": "assistant", "content": [{"toolUse": {"toolUseId": "t1", "name": "weather", "input": ARGS}}]},
            {"role": "user", "content": [{"toolResult": {"toolUseId": "t1", "content": [{"json": {"sky": "sunny"}}]}}]},
        ],
        "toolConfig": {"tools": [{"toolSpec": {"name": "weather", "description": "d", "inputSchema": {"json": {"type": "object"}}}}]},
    }  # fmt: skip
    content = converse_request(params)
    assert content.system == [{"type": "text", "content": "Be brief."}]
    assert content.messages == [
        {"role": "user", "parts": [{"type": "text", "content": "Weather?"},
                                   {"type": "blob", "mime_type": "image/png", "modality": "image",
                                    "content": base64.b64encode(b"\x89PNG").decode()}]},
        {"role": "assistant", "parts": [{"type": "tool_call", "id": "t1", "name": "weather", "arguments": ARGS}]},
        {"role": "user", "parts": [{"type": "tool_call_response", "id": "t1", "response": {"sky": "sunny"}}]},
    ]  # fmt: skip
    assert content.tools == [
        {"type": "function", "name": "weather", "description": "d", "parameters": {"type": "object"}}
    ]
    result = {"output": {"message": {"role": "assistant", "content": [{"toolUse": {"toolUseId": "t2", "name": "weather", "input": ARGS}}]}},
              "stopReason": "tool_use"}  # fmt: skip
    tool_call = {"type": "tool_call", "id": "t2", "name": "weather", "arguments": ARGS}
    assert converse_output(result) == [{"role": "assistant", "finish_reason": "tool_call", "parts": [tool_call]}]
    arguments = json.dumps(ARGS)
    stream = ConverseStreamContent()
    for event in (
        {"messageStart": {"role": "assistant"}},
        {"contentBlockDelta": {"contentBlockIndex": 0, "delta": {"text": "Checking."}}},
        {"contentBlockStart": {"contentBlockIndex": 1, "start": {"toolUse": {"toolUseId": "t2", "name": "weather"}}}},
        {"contentBlockDelta": {"contentBlockIndex": 1, "delta": {"toolUse": {"input": arguments[:5]}}}},
        {"contentBlockDelta": {"contentBlockIndex": 1, "delta": {"toolUse": {"input": arguments[5:]}}}},
        {"messageStop": {"stopReason": "tool_use"}},
    ):
        stream.feed(event)
    assert stream.messages() == [
        {
            "role": "assistant",
            "finish_reason": "tool_call",
            "parts": [{"type": "text", "content": "Checking."}, tool_call],
        }
    ]
