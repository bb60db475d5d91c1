"""OpenAI image and audio calls (``_openai_media``), with real ``openai`` clients against the fake server.

Expected costs are computed here from the catalog entries' prices (per token, per image, per
minute) and the counts the fake server reports (:mod:`.fakes.openai_media`), never hard-coded; the
pricer's own answer is checked against them too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import AbstractContextManager, nullcontext
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import openai
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode

from otel_llmcost import Usage
from otel_llmcost.calls import extract_call
from otel_llmcost.instrumentation._openai_media import speech_sse_usage
from otel_llmcost.instrumentation.openai import OpenAIInstrumentor
from otel_llmcost.pricing.catalog import Prices
from otel_llmcost.processor import price_call

from .fakes.openai_media import (
    TRANSCRIPT,
    audio_seconds,
    image_usage,
    speech_audio,
    speech_usage,
    transcription_usage,
)
from .fakes.openai_server import ERROR_MODELS, FakeOpenAIServer, serve
from .fakes.stack import InstrumentedStack, instrumented_stack, strings, usd

pytestmark = pytest.mark.integration
API_KEY = "sk-test-DO-NOT-LEAK-media"
PROMPT = "A watercolour lighthouse at dusk, SECRET-PROMPT-7"
SPEECH = "Welcome to the SECRET-SPEECH-9 quarterly review"
AUDIO = ("meeting.mp3", b"\x00" * 8470)  # 8.47 s of audio for the fake: rounds to 8 s
IMAGE = ("photo.png", b"\x89PNG" + b"\x00" * 996)  # 1,000 bytes: 10 image input tokens for the fake


class Stack(InstrumentedStack):
    server: FakeOpenAIServer

    def client(self) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.server.base_url, api_key=API_KEY, max_retries=0)

    def async_client(self) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(base_url=self.server.base_url, api_key=API_KEY, max_retries=0)

    def requests(self) -> list[tuple[dict[str, Any], int]]:
        return [(dict(p.attributes), p.value) for p in self.metrics().get("llm.requests", [])]

    def last_body(self) -> dict[str, Any]:
        return self.server.requests[-1].body


@pytest.fixture()
def server() -> Iterator[FakeOpenAIServer]:
    with serve() as s:
        yield s


def _make(server: FakeOpenAIServer, **fields: Any) -> Stack:
    stack = Stack(**fields)
    stack.server = server
    return stack


@pytest.fixture()
def stack(server: FakeOpenAIServer) -> Iterator[Stack]:
    with instrumented_stack(lambda **f: _make(server, **f), OpenAIInstrumentor()) as s:
        yield s


# --- expectations from the catalog -------------------------------------------------------------------


def prices(stack: Stack, model: str) -> Prices:
    found = stack.pricer.match("openai", model)
    assert found is not None, model
    return found.entry.periods[-1].prices


def image_usage_of(body: dict[str, Any], images: int) -> Usage:
    """The fake's image usage as :class:`Usage`: output image tokens split out where reported."""
    u = image_usage(body)
    assert u is not None
    details = u.get("output_tokens_details")
    image_out = details["image_tokens"] if details else u["output_tokens"]
    return Usage(u["input_tokens"], u["output_tokens"], image_output_tokens=image_out, images=images)


def token_cost(p: Prices, usage: Usage) -> Decimal:
    """The catalog's token prices applied by hand: audio input and image/audio output at their own prices."""
    ex = p.extras
    assert ex is not None
    audio_in_price = ex.audio_input if ex.audio_input is not None else p.input
    image_price = ex.image_output if ex.image_output is not None else p.output
    audio_out_price = ex.audio_output if ex.audio_output is not None else p.output
    text_in = usage.input_tokens - usage.audio_input_tokens
    text_out = usage.output_tokens - usage.image_output_tokens - usage.audio_output_tokens
    return (
        text_in * p.input
        + usage.audio_input_tokens * audio_in_price
        + text_out * p.output
        + usage.image_output_tokens * image_price
        + usage.audio_output_tokens * audio_out_price
    )


def deprecated_if(deprecated: bool) -> AbstractContextManager[Any]:
    """The SDK warns on its deprecated methods (translations, image variations): still wrapped and priced."""
    return pytest.deprecated_call() if deprecated else nullcontext()


def seconds(body: dict[str, Any]) -> int:
    return int(Decimal(str(audio_seconds(body))).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def assert_cost(
    stack: Stack, span: ReadableSpan, model: str, usage: Usage, total: Decimal, status: str = "priced"
) -> None:
    """The span is priced at *total* (computed from the catalog), which is also the pricer's price of *usage*."""
    a = span.attributes or {}
    assert total > 0
    cost = stack.pricer.price("openai", model, usage, at_ns=span.start_time, server_address="127.0.0.1")
    assert cost.status == "priced" and cost.total_usd == total, (cost, total)
    assert a["llm.cost.status"] == status
    assert usd(a["llm.cost.total_usd"]) == total
    assert a["llm.cost.pricing.model"] == model
    for key, value in (
        ("llm.usage.images", usage.images),
        ("llm.usage.audio_seconds", usage.audio_seconds),
        ("llm.usage.image.output_tokens", usage.image_output_tokens),
        ("llm.usage.audio.input_tokens", usage.audio_input_tokens),
        ("llm.usage.audio.output_tokens", usage.audio_output_tokens),
    ):
        assert a.get(key, 0) == value, key


def assert_span(span: ReadableSpan, operation: str, model: str | None, output_type: str) -> dict[str, Any]:
    a = dict(span.attributes or {})
    assert span.name == (f"{operation} {model}" if model else operation)
    assert span.kind is SpanKind.CLIENT and span.status.status_code is not StatusCode.ERROR
    assert a["gen_ai.operation.name"] == operation and a["gen_ai.provider.name"] == "openai"
    assert a.get("gen_ai.request.model") == model and a["gen_ai.output.type"] == output_type
    assert a["server.address"] == "127.0.0.1"
    return a


# --- images ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "kwargs"),
    [("gpt-image-1", {"quality": "high"}), ("gpt-image-1-mini", {}), ("gpt-image-1.5", {"n": 2, "quality": "low"})],
)
def test_gpt_image_generation_is_priced_by_tokens(stack: Stack, model: str, kwargs: dict[str, Any]) -> None:
    with stack.client() as client:
        result = client.images.generate(model=model, prompt=PROMPT, **kwargs)
    body = stack.last_body()
    usage = image_usage_of(body, len(result.data or ()))
    span = stack.only_span()
    a = assert_span(span, "image_generation", model, "image")
    assert (
        a["gen_ai.usage.input_tokens"] == usage.input_tokens and a["gen_ai.usage.output_tokens"] == usage.output_tokens
    )
    assert a.get("gen_ai.request.choice.count") == kwargs.get("n")
    assert a.get("llm.request.image.quality") == kwargs.get("quality")
    assert_cost(stack, span, model, usage, token_cost(prices(stack, model), usage))
    if model == "gpt-image-1.5":  # its text output is priced apart from its image output
        assert 0 < usage.image_output_tokens < usage.output_tokens


@pytest.mark.parametrize(
    ("model", "n"), [("dall-e-3", 1), ("dall-e-2", 3), (None, 2)], ids=["dall-e-3", "dall-e-2", "default-model"]
)
def test_dalle_is_priced_per_image(stack: Stack, model: str | None, n: int) -> None:
    kwargs = {"model": model} if model else {}
    with stack.client() as client:
        result = client.images.generate(prompt=PROMPT, n=n, size="1024x1024", **kwargs)
    assert len(result.data or ()) == n
    span = stack.only_span()
    a = assert_span(span, "image_generation", model, "image")
    billed = model or "dall-e-2"  # OpenAI's documented default
    assert a["gen_ai.response.model"] == billed if not model else True
    extras = prices(stack, billed).extras
    assert extras is not None and extras.per_image is not None
    assert_cost(stack, span, billed, Usage(images=n), extras.per_image * n)
    assert usd(a["llm.cost.request_usd"]) == extras.per_image * n


@pytest.mark.parametrize(
    ("model", "size", "quality"),
    [("dall-e-3", None, "hd"), ("dall-e-3", "1792x1024", None), ("dall-e-2", "256x256", None)],
)
def test_dalle_sizes_and_qualities_the_catalog_cannot_tell_are_estimated(
    stack: Stack, model: str, size: str | None, quality: str | None
) -> None:
    kwargs = {k: v for k, v in (("size", size), ("quality", quality)) if v}
    with stack.client() as client:
        client.images.generate(model=model, prompt=PROMPT, **kwargs)
    span = stack.only_span()
    a = assert_span(span, "image_generation", model, "image")
    assert a.get("llm.request.image.size") == size and a.get("llm.request.image.quality") == quality
    extras = prices(stack, model).extras
    assert extras is not None and extras.per_image is not None
    # the catalog's one per-image price, marked as not the bill
    assert_cost(stack, span, model, Usage(images=1), extras.per_image, status="estimated")
    assert [(p["cost_status"], n) for p, n in stack.requests()] == [("estimated", 1)]


def test_image_edits_and_variations(stack: Stack) -> None:
    with stack.client() as client:
        client.images.edit(model="gpt-image-1", prompt=PROMPT, image=IMAGE)
        edit_body = stack.last_body()
        with pytest.deprecated_call():  # deprecated by the SDK, still wrapped and priced
            client.images.create_variation(image=IMAGE, n=2)
    edit, variation = stack.spans()
    usage = image_usage_of(edit_body, 1)
    assert usage.input_tokens > 10 + len(PROMPT)  # the uploaded image's input tokens are in it
    assert_span(edit, "image_edit", "gpt-image-1", "image")
    assert_cost(stack, edit, "gpt-image-1", usage, token_cost(prices(stack, "gpt-image-1"), usage))
    assert_span(variation, "image_variation", None, "image")
    extras = prices(stack, "dall-e-2").extras
    assert extras is not None and extras.per_image is not None
    assert_cost(stack, variation, "dall-e-2", Usage(images=2), extras.per_image * 2)


@pytest.mark.parametrize("method", ["generate", "edit"])
def test_image_streams_are_priced_from_the_completed_event(stack: Stack, method: str) -> None:
    model = "gpt-image-1-mini"
    with stack.client() as client:
        if method == "generate":
            stream = client.images.generate(model=model, prompt=PROMPT, stream=True, partial_images=2)
        else:
            stream = client.images.edit(model=model, prompt=PROMPT, image=IMAGE, stream=True, partial_images=1)
        events = [e.type for e in stream]
    assert events[-1].endswith(".completed") and len(events) == (3 if method == "generate" else 2)
    usage = image_usage_of(stack.last_body(), 1)
    span = stack.only_span()
    a = assert_span(span, "image_generation" if method == "generate" else "image_edit", model, "image")
    assert a["gen_ai.request.stream"] is True
    assert_cost(stack, span, model, usage, token_cost(prices(stack, model), usage))


def test_an_image_stream_closed_before_its_image_ends_its_span_without_usage(stack: Stack) -> None:
    with stack.client() as client:
        stream = client.images.generate(model="gpt-image-1", prompt=PROMPT, stream=True, partial_images=2)
        first = next(iter(stream))
        assert first.type == "image_generation.partial_image"
        stream.close()
    a = stack.only_span().attributes or {}
    assert a["llm.cost.status"] == "no_usage" and "llm.cost.total_usd" not in a
    assert [(p["cost_status"], n) for p, n in stack.requests()] == [("no_usage", 1)]


def test_raw_image_responses_are_priced_from_the_parsed_body(stack: Stack) -> None:
    with stack.client() as client:
        raw = client.images.with_raw_response.generate(model="gpt-image-1", prompt=PROMPT)
        result = raw.parse()
    usage = image_usage_of(stack.last_body(), len(result.data or ()))
    assert_cost(stack, stack.only_span(), "gpt-image-1", usage, token_cost(prices(stack, "gpt-image-1"), usage))


# --- audio -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("response_format", ["json", "verbose_json"])
@pytest.mark.parametrize("api", ["transcriptions", "translations"])
def test_whisper_is_priced_per_minute_of_audio(stack: Stack, api: str, response_format: str) -> None:
    with stack.client() as client, deprecated_if(api == "translations"):
        getattr(client.audio, api).create(model="whisper-1", file=AUDIO, response_format=response_format)
    span = stack.only_span()
    operation = "transcription" if api == "transcriptions" else "translation"
    a = assert_span(span, operation, "whisper-1", "text")
    if api == "translations" and response_format == "json":  # no usage, no duration: never a made-up $0
        assert a["llm.cost.status"] == "no_usage" and "llm.cost.total_usd" not in a
        assert [(p["cost_status"], n) for p, n in stack.requests()] == [("no_usage", 1)]
        return
    secs = seconds(stack.last_body())
    assert secs == 8
    extras = prices(stack, "whisper-1").extras
    assert extras is not None and extras.per_minute is not None
    assert_cost(stack, span, "whisper-1", Usage(audio_seconds=secs), extras.per_minute * secs / 60)


@pytest.mark.parametrize("response_format", ["text", "srt", "vtt"])
def test_transcripts_without_usage_or_duration_are_no_usage(stack: Stack, response_format: str) -> None:
    with stack.client() as client:
        text = client.audio.transcriptions.create(model="whisper-1", file=AUDIO, response_format=response_format)
    assert text.strip() == TRANSCRIPT
    a = stack.only_span().attributes or {}
    assert a["llm.cost.status"] == "no_usage" and "llm.cost.total_usd" not in a
    assert "no audio duration" in str(a["llm.cost.reason"])  # says why, and what to ask for instead


def test_a_duration_for_a_model_billed_by_tokens_is_not_priced_at_zero(stack: Stack) -> None:
    with stack.client() as client:  # the fake answers verbose_json with a duration and no token usage
        client.audio.transcriptions.create(model="gpt-4o-transcribe", file=AUDIO, response_format="verbose_json")
    a = stack.only_span().attributes or {}
    assert a["llm.cost.status"] == "no_usage" and "llm.cost.total_usd" not in a
    assert "no per-minute price for 'gpt-4o-transcribe'" in str(a["llm.cost.reason"])


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("model", ["gpt-4o-transcribe", "gpt-4o-mini-transcribe"])
def test_token_billed_transcriptions(stack: Stack, model: str, stream: bool) -> None:
    with stack.client() as client:
        if stream:
            events = list(client.audio.transcriptions.create(model=model, file=AUDIO, prompt="Acme", stream=True))
            assert events[-1].type == "transcript.text.done"
        else:
            client.audio.transcriptions.create(model=model, file=AUDIO, prompt="Acme")
    u = transcription_usage(stack.last_body())
    usage = Usage(u["input_tokens"], u["output_tokens"], audio_input_tokens=u["input_token_details"]["audio_tokens"])
    assert 0 < usage.audio_input_tokens < usage.input_tokens  # the prompt's text tokens are priced apart
    span = stack.only_span()
    assert_span(span, "transcription", model, "text")
    assert_cost(stack, span, model, usage, token_cost(prices(stack, model), usage))


def test_speech(stack: Stack) -> None:
    with stack.client() as client:
        ours = client.audio.speech.create(model="tts-1", input=SPEECH, voice="alloy").content
        audio = speech_audio(stack.last_body())
        client.audio.speech.create(model="gpt-4o-mini-tts", input=SPEECH, voice="alloy")
        sse = client.audio.speech.create(model="gpt-4o-mini-tts", input=SPEECH, voice="alloy", stream_format="sse")
    assert ours == audio  # the application's bytes, untouched
    assert b"speech.audio.done" in sse.content
    tts1, mp3, sse_span = stack.spans()
    for span, model in ((tts1, "tts-1"), (mp3, "gpt-4o-mini-tts")):  # audio bytes report no usage
        a = assert_span(span, "speech", model, "speech")
        assert a["llm.cost.status"] == "no_usage" and "llm.cost.total_usd" not in a
        assert "bills by characters" in str(a["llm.cost.reason"])
    u = speech_usage(stack.last_body())
    usage = Usage(u["input_tokens"], u["output_tokens"], audio_output_tokens=u["output_tokens"])
    assert_span(sse_span, "speech", "gpt-4o-mini-tts", "speech")
    model = "gpt-4o-mini-tts"
    assert_cost(stack, sse_span, model, usage, token_cost(prices(stack, model), usage))


def test_streamed_speech_bodies_stay_the_applications(stack: Stack) -> None:
    with stack.client() as client:
        kwargs: dict[str, Any] = {"model": "gpt-4o-mini-tts", "input": SPEECH, "voice": "alloy", "stream_format": "sse"}
        with client.audio.speech.with_streaming_response.create(**kwargs) as response:
            body = response.read()
    assert b"speech.audio.done" in body
    a = stack.only_span().attributes or {}
    assert a["llm.cost.status"] == "no_usage"


def test_speech_sse_usage_reads_only_a_well_formed_done_event() -> None:
    good = b'data: {"type": "speech.audio.done", "usage": {"input_tokens": 3, "output_tokens": 40}}\n\n'
    assert speech_sse_usage(good) == Usage(3, 40, audio_output_tokens=40)
    assert speech_sse_usage(b'data: {"type": "speech.audio.done", "usage": [\n\n') is None
    assert speech_sse_usage(b'data: {"type": "speech.audio.done"}\n\n') is None
    assert speech_sse_usage(b"ID3\x00\x00") is None


# --- async -----------------------------------------------------------------------------------------


def test_async_media_calls_are_priced_as_the_sync_ones(stack: Stack) -> None:
    async def run() -> list[dict[str, Any]]:
        bodies = []
        async with stack.async_client() as client:
            await client.images.generate(model="gpt-image-1", prompt=PROMPT)
            bodies.append(stack.last_body())
            await client.images.generate(model="dall-e-3", prompt=PROMPT)
            stream = await client.images.edit(model="gpt-image-1-mini", prompt=PROMPT, image=IMAGE, stream=True)
            assert [e.type async for e in stream][-1] == "image_edit.completed"
            bodies.append(stack.last_body())
            await client.audio.transcriptions.create(model="whisper-1", file=AUDIO)
            with pytest.deprecated_call():
                await client.audio.translations.create(model="whisper-1", file=AUDIO, response_format="verbose_json")
            stream = await client.audio.transcriptions.create(model="gpt-4o-mini-transcribe", file=AUDIO, stream=True)
            assert [e.type async for e in stream][-1] == "transcript.text.done"
            bodies.append(stack.last_body())
            await client.audio.speech.create(model="gpt-4o-mini-tts", input=SPEECH, voice="alloy", stream_format="sse")
            bodies.append(stack.last_body())
        return bodies

    gen_body, edit_body, transcribe_body, speech_body = asyncio.run(run())
    spans = stack.spans()
    assert [s.name for s in spans] == [
        "image_generation gpt-image-1",
        "image_generation dall-e-3",
        "image_edit gpt-image-1-mini",
        "transcription whisper-1",
        "translation whisper-1",
        "transcription gpt-4o-mini-transcribe",
        "speech gpt-4o-mini-tts",
    ]
    per_minute = prices(stack, "whisper-1").extras.per_minute  # type: ignore[union-attr]
    per_image = prices(stack, "dall-e-3").extras.per_image  # type: ignore[union-attr]
    assert per_minute is not None and per_image is not None
    u = transcription_usage(transcribe_body)
    s = speech_usage(speech_body)
    expected: list[tuple[str, Usage]] = [
        ("gpt-image-1", image_usage_of(gen_body, 1)),
        ("dall-e-3", Usage(images=1)),
        ("gpt-image-1-mini", image_usage_of(edit_body, 1)),
        ("whisper-1", Usage(audio_seconds=8)),
        ("whisper-1", Usage(audio_seconds=8)),
        ("gpt-4o-mini-transcribe", Usage(u["input_tokens"], u["output_tokens"], audio_input_tokens=u["input_tokens"])),
        ("gpt-4o-mini-tts", Usage(s["input_tokens"], s["output_tokens"], audio_output_tokens=s["output_tokens"])),
    ]
    for span, (model, usage) in zip(spans, expected, strict=True):
        if model.startswith("dall-e"):
            total = per_image * usage.images
        elif model.startswith("whisper"):
            total = per_minute * usage.audio_seconds / 60
        else:
            total = token_cost(prices(stack, model), usage)
        assert_cost(stack, span, model, usage, total)


# --- errors, unknown models, what goes on spans ----------------------------------------------------


def test_rate_limited_media_calls_raise_unchanged_and_count_as_errors(stack: Stack) -> None:
    status = ERROR_MODELS["rate-limited"][0]
    with stack.client() as client:
        calls = [
            lambda: client.images.generate(model="rate-limited", prompt=PROMPT),
            lambda: client.images.edit(model="rate-limited", prompt=PROMPT, image=IMAGE),
            lambda: client.audio.transcriptions.create(model="rate-limited", file=AUDIO),
            lambda: client.audio.speech.create(model="rate-limited", input=SPEECH, voice="alloy"),
        ]
        for call in calls:
            with pytest.raises(openai.RateLimitError) as info:
                call()
            assert info.value.status_code == status
    spans = stack.spans()
    assert len(spans) == len(calls)
    for span in spans:
        a = span.attributes or {}
        assert span.status.status_code is StatusCode.ERROR and a["error.type"] == "openai.RateLimitError"
        assert a["llm.cost.status"] == "no_usage" and not any(k.endswith("_usd") for k in a)
    assert sorted((p["operation"], p["status"], p["cost_status"], n) for p, n in stack.requests()) == [
        ("image_edit", "error", "no_usage", 1),
        ("image_generation", "error", "no_usage", 1),
        ("speech", "error", "no_usage", 1),
        ("transcription", "error", "no_usage", 1),
    ]


def test_unknown_models_are_unpriced_and_counted(stack: Stack) -> None:
    with stack.client() as client:
        client.images.generate(model="gpt-image-9", prompt=PROMPT)
        client.images.generate(model="dall-e-9", prompt=PROMPT)
        client.audio.transcriptions.create(model="whisper-9", file=AUDIO)
    for span in stack.spans():
        a = span.attributes or {}
        assert a["llm.cost.status"] == "unpriced" and "llm.cost.total_usd" not in a
        assert "no price for model" in a["llm.cost.reason"]
    assert sorted((p["model"], p["cost_status"], n) for p, n in stack.requests()) == [
        ("dall-e-9", "unpriced", 1),
        ("gpt-image-9", "unpriced", 1),
        ("whisper-9", "unpriced", 1),
    ]


def test_a_collector_reprices_media_spans_from_their_attributes(stack: Stack) -> None:
    with stack.client() as client:
        client.images.generate(model="gpt-image-1.5", prompt=PROMPT, n=2)
        client.images.generate(model="dall-e-2", prompt=PROMPT, n=3)
        client.audio.transcriptions.create(model="whisper-1", file=AUDIO)
        client.audio.transcriptions.create(model="gpt-4o-transcribe", file=AUDIO)
        client.audio.speech.create(model="gpt-4o-mini-tts", input=SPEECH, voice="alloy", stream_format="sse")
    for span in stack.spans():
        attrs = {k: v for k, v in (span.attributes or {}).items() if not k.startswith("llm.cost.")}
        call = extract_call(attrs)
        assert call is not None and call.usage is not None
        cost = price_call(stack.pricer, call, span.start_time)
        assert cost.total_usd == usd((span.attributes or {})["llm.cost.total_usd"]), span.name


def test_no_prompt_audio_image_or_key_on_spans_even_with_content_capture(server: FakeOpenAIServer) -> None:
    with (
        instrumented_stack(lambda **f: _make(server, **f), OpenAIInstrumentor(), capture_content=True) as stack,
        stack.client() as client,
    ):
        client.images.generate(model="gpt-image-1", prompt=PROMPT)
        client.images.edit(model="gpt-image-1", prompt=PROMPT, image=IMAGE)
        client.audio.transcriptions.create(model="gpt-4o-transcribe", file=AUDIO, prompt=PROMPT)
        client.audio.speech.create(model="gpt-4o-mini-tts", input=SPEECH, voice="alloy", instructions=PROMPT)
        spans = stack.spans()
        seen = [s for span in spans for s in strings(dict(span.attributes or {}))]
        seen += [s for p, _ in stack.requests() for s in strings(p)]
    assert len(spans) == 4
    assert not [s for s in seen if "SECRET" in s or TRANSCRIPT in s or API_KEY in s or "photo.png" in s]
    assert not [
        k for s in spans for k in (s.attributes or {}) if k in ("gen_ai.input.messages", "gen_ai.output.messages")
    ]
