"""OpenAI image and audio calls (see :mod:`.openai`): hooks for the methods of :data:`MEDIA_TARGETS`.

``client.images.generate`` / ``edit`` / ``create_variation``, ``client.audio.transcriptions.create``,
``client.audio.translations.create`` and ``client.audio.speech.create``, sync and async, become
priced GenAI spans like the chat calls (span name ``{operation} {model}``, endpoint, raw responses
and errors as in :mod:`.openai`). The GenAI conventions (v1.41) name no operation for images or
audio: the operations are otel-llmcost's own, declared in ``semconv/registry.yaml``
(``image_generation``, ``image_edit``, ``image_variation``, ``transcription``, ``translation``,
``speech``); ``gen_ai.output.type`` says ``image``, ``text`` or ``speech``. No prompt, image or audio
ever goes on a span (content capture does not cover these calls).

- **GPT image models** (``gpt-image-*``) report token usage: input tokens (text and image, both billed
  at the catalog's input price, as the catalog notes say) and output tokens, the image tokens
  (``output_tokens_details.image_tokens`` when the response splits text and image output, else all
  of them) priced at the catalog's ``image_output`` price. ``llm.usage.images`` counts the images.
- **DALL-E** reports no usage: the call is priced per image, ``images = len(data)``. The catalog has
  one ``per_image`` price per model, for a 1024x1024 image at standard quality; a request for
  another size or quality (``dall-e-3`` HD, 1792x1024; ``dall-e-2`` 512x512...) is billed
  differently by OpenAI, so its cost is that price marked ``estimated`` (a lower bound for
  ``dall-e-3``, an upper one for small ``dall-e-2`` images): spend stays counted, and the status and
  ``llm.request.image.size`` / ``.quality`` say it is not the bill. A request without ``model``
  gets OpenAI's documented default, ``dall-e-2``, when its response reports no usage.
- **Image streams** (``stream=True``, GPT image models): the span ends with the stream; the usage is
  the sum of the ``*.completed`` events' usage (one per image). A stream that ends without one is
  ``no_usage``.
- **Transcriptions and translations**: token usage (``usage.type == "tokens"``, ``gpt-4o-*transcribe``:
  audio input tokens at the ``audio_input`` price) or seconds of audio (``usage.type == "duration"``,
  or ``duration`` of a ``verbose_json`` answer: ``whisper-1``, per minute), rounded to the nearest
  second as OpenAI bills ``whisper-1``. A response with neither (``json`` without usage, ``text``,
  ``srt``, ``vtt``) is ``no_usage``, never $0; so is a duration for a catalog model with no
  per-minute price, or an image count for one with no per-image price (a $0 that is not the bill).
  Transcription streams are priced from the ``transcript.text.done`` event's usage.
- **Speech** (TTS) answers audio bytes without usage: ``no_usage`` (``tts-1`` bills by characters,
  a unit the catalog has no price for). With ``stream_format="sse"`` the answer's
  ``speech.audio.done`` event carries token usage (text in, audio out), which is priced.
- **Limit**: an image response's ``svg_usage`` (SVG authoring by another model) is not priced.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from .. import semconv as sc
from .._state import current_pricer
from ..pricing import Usage
from ._call import Outcome
from ._openai_read import Call as _Call
from ._openai_read import model_field
from ._openai_read import number as _number
from ._openai_read import to_int as _int
from ._openai_read import to_str as _str
from .openai import _Hooks

__all__ = ["MEDIA_TARGETS"]

_NO_DURATION = (
    "the response reported no token usage and no audio duration (a response_format without them: "
    "ask for verbose_json to have whisper-1 priced)"
)
_SPEECH_NO_USAGE = (
    "speech answered audio without usage (tts-1 bills by characters, which the catalog does not "
    'price; stream_format="sse" reports token usage)'
)
# The documented default model of the image endpoints when the request names none.
_DEFAULT_IMAGE_MODEL = "dall-e-2"
# What the catalog's per-image prices are for: any other size or quality bills differently.
_PER_IMAGE_SIZES = frozenset({"1024x1024"})
_PER_IMAGE_QUALITIES = frozenset({"standard"})


def _catalog_fee(call: _Call, model: str | None, fee: str) -> bool:
    """Whether the catalog entry of *model* has the fee *fee* (``per_image``, ``per_minute``).

    An unknown model answers ``True``: its call is reported unpriced (unknown model), which says
    more than ``no_usage``.
    """
    found = current_pricer().match(call.provider, model, call.server_address)
    if found is None:
        return True
    extras = found.entry.prices_at(None).extras  # the prices in force now
    return extras is not None and getattr(extras, fee) is not None


def _seconds(value: Any) -> int | None:
    """Seconds of audio, rounded to the nearest second (half up), or ``None`` when not a number."""
    number = _number(value)
    if number is None or number < 0:
        return None
    return int(Decimal(str(number)).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _modality_attributes(usage: Usage | None) -> dict[str, Any]:
    """The ``llm.usage.*`` attributes a collector re-pricing the span needs (see :mod:`..calls`)."""
    if usage is None:
        return {}
    attrs: dict[str, Any] = {}
    for key, value in (
        (sc.LLM_USAGE_IMAGES, usage.images),
        (sc.LLM_USAGE_AUDIO_SECONDS, usage.audio_seconds),
        (sc.LLM_USAGE_IMAGE_OUTPUT_TOKENS, usage.image_output_tokens),
        (sc.LLM_USAGE_AUDIO_INPUT_TOKENS, usage.audio_input_tokens),
        (sc.LLM_USAGE_AUDIO_OUTPUT_TOKENS, usage.audio_output_tokens),
    ):
        if value:
            attrs[key] = value
    return attrs


def _outcome(usage: Usage | None, model: str | None, *, estimated: bool = False) -> Outcome:
    return Outcome(usage=usage, response_model=model, estimated=estimated, attributes=_modality_attributes(usage))


# --- images ---------------------------------------------------------------------------------------


def image_token_usage(usage: Any, images: int) -> Usage:
    """The :class:`Usage` of a GPT image model's token ``usage`` (a response's or a stream event's)."""
    out = _int(getattr(usage, "output_tokens", None))
    details = model_field(usage, "output_tokens_details")
    image_out = _int(getattr(details, "image_tokens", None)) if details is not None else out
    return Usage(
        input_tokens=_int(getattr(usage, "input_tokens", None)),
        output_tokens=out,
        cache_read_tokens=_int(model_field(model_field(usage, "input_tokens_details"), "cached_tokens")),
        image_output_tokens=image_out,
        images=images,
    )


class _ImageHooks(_Hooks):
    """``images.generate`` (and, in subclasses, ``edit`` and ``create_variation``)."""

    operation = sc.GEN_AI_OPERATION_NAME_IMAGE_GENERATION

    def request_attributes(self, kwargs: Mapping[str, Any]) -> dict[str, Any]:
        return {
            sc.GEN_AI_OUTPUT_TYPE: sc.GEN_AI_OUTPUT_TYPE_IMAGE,
            sc.GEN_AI_REQUEST_CHOICE_COUNT: _number(kwargs.get("n")),
            sc.LLM_REQUEST_IMAGE_SIZE: _str(kwargs.get("size")),
            sc.LLM_REQUEST_IMAGE_QUALITY: _str(kwargs.get("quality")),
        }

    def read(self, call: _Call, result: Any) -> Outcome:
        images = len(getattr(result, "data", None) or ())
        usage = getattr(result, "usage", None)
        model = call.request_model
        if usage is not None:
            return _outcome(image_token_usage(usage, images), model)
        model = model or _DEFAULT_IMAGE_MODEL
        if not images:
            return Outcome(response_model=model, reason="the response reported no usage and no image")
        if not _catalog_fee(call, model, "per_image"):  # nothing to count: no_usage, never a made-up $0
            return Outcome(response_model=model, reason=f"{images} image(s), but no per-image price for {model!r}")
        request = call.request
        size, quality = _str(request.get("size")), _str(request.get("quality"))
        other = (size is not None and size not in _PER_IMAGE_SIZES) or (
            quality is not None and quality not in _PER_IMAGE_QUALITIES
        )
        return _outcome(Usage(images=images), model, estimated=other)

    def accumulator(self, call: _Call) -> ImageStream:
        return ImageStream(call)


class _ImageEditHooks(_ImageHooks):
    operation = sc.GEN_AI_OPERATION_NAME_IMAGE_EDIT


class _ImageVariationHooks(_ImageHooks):
    operation = sc.GEN_AI_OPERATION_NAME_IMAGE_VARIATION


class ImageStream:
    """Reads an image stream's events: the usage of each ``*.completed`` event, summed."""

    __slots__ = ("call", "usage")

    def __init__(self, call: _Call) -> None:
        self.call = call
        self.usage: Usage | None = None

    def feed(self, event: Any) -> None:
        """Take one stream event."""
        kind = getattr(event, "type", None)
        if not (isinstance(kind, str) and kind.endswith(".completed")):
            return
        usage = getattr(event, "usage", None)
        if usage is None:
            return
        one = image_token_usage(usage, 1)
        total = self.usage
        if total is None:
            self.usage = one
            return
        for name in ("input_tokens", "output_tokens", "cache_read_tokens", "image_output_tokens", "images"):
            setattr(total, name, getattr(total, name) + getattr(one, name))

    def outcome(self) -> Outcome:
        """What the stream reported so far (no usage before a completed image)."""
        return _outcome(self.usage, self.call.request_model)


# --- audio ----------------------------------------------------------------------------------------


def audio_token_usage(usage: Any) -> tuple[Usage, bool]:
    """The :class:`Usage` of a transcription's token usage, and whether its audio part is estimated.

    Without ``input_token_details`` all the input is taken as audio (the input of a transcription
    is its audio and an optional prompt) and the cost is marked estimated.
    """
    inp = _int(getattr(usage, "input_tokens", None))
    details = model_field(usage, "input_token_details")
    audio = _int(getattr(details, "audio_tokens", None)) if details is not None else inp
    out = _int(getattr(usage, "output_tokens", None))
    return Usage(input_tokens=inp, output_tokens=out, audio_input_tokens=audio), details is None


class _TranscriptionHooks(_Hooks):
    """``audio.transcriptions.create``: tokens, or seconds of audio (see the module documentation)."""

    operation = sc.GEN_AI_OPERATION_NAME_TRANSCRIPTION

    def request_attributes(self, kwargs: Mapping[str, Any]) -> dict[str, Any]:
        return {
            sc.GEN_AI_OUTPUT_TYPE: sc.GEN_AI_OUTPUT_TYPE_TEXT,  # a transcript, in any response_format
            sc.GEN_AI_REQUEST_TEMPERATURE: _number(kwargs.get("temperature")),
        }

    def read(self, call: _Call, result: Any) -> Outcome:
        model = call.request_model
        if isinstance(result, str):  # text, srt, vtt: the SDK returns the body, nothing else
            return Outcome(response_model=model, reason=_NO_DURATION)
        usage = model_field(result, "usage")
        kind = getattr(usage, "type", None) if usage is not None else None
        if kind == "tokens":
            tokens, estimated = audio_token_usage(usage)
            return _outcome(tokens, model, estimated=estimated)
        seconds = _seconds(getattr(usage, "seconds", None)) if kind == "duration" else None
        if seconds is None:
            seconds = _seconds(model_field(result, "duration"))  # verbose_json, diarized_json
        if seconds is None:
            return Outcome(response_model=model, reason=_NO_DURATION)
        if not _catalog_fee(call, model, "per_minute"):
            return Outcome(response_model=model, reason=f"{seconds} s of audio, but no per-minute price for {model!r}")
        return _outcome(Usage(audio_seconds=seconds), model)

    def accumulator(self, call: _Call) -> TranscriptionStream:
        return TranscriptionStream(call)


class _TranslationHooks(_TranscriptionHooks):
    operation = sc.GEN_AI_OPERATION_NAME_TRANSLATION


class TranscriptionStream:
    """Reads a transcription stream: the ``transcript.text.done`` event's usage."""

    __slots__ = ("call", "done")

    def __init__(self, call: _Call) -> None:
        self.call = call
        self.done: Outcome | None = None

    def feed(self, event: Any) -> None:
        """Take one stream event."""
        if getattr(event, "type", None) == "transcript.text.done":
            usage = getattr(event, "usage", None)
            if usage is not None:
                tokens, estimated = audio_token_usage(usage)
                self.done = _outcome(tokens, self.call.request_model, estimated=estimated)

    def outcome(self) -> Outcome:
        """What the stream reported so far (no usage before its end)."""
        return self.done if self.done is not None else Outcome(response_model=self.call.request_model)


_SPEECH_DONE = b'"speech.audio.done"'


def speech_sse_usage(body: bytes) -> Usage | None:
    """The usage of a ``stream_format="sse"`` speech answer: its last ``speech.audio.done`` event's.

    Only the end of the body is parsed (the audio deltas before it are large).
    """
    at = body.rfind(_SPEECH_DONE)
    if at < 0:
        return None
    start = body.rfind(b"data:", 0, at)
    end = body.find(b"\n", at)
    if start < 0:
        return None
    try:
        event = json.loads(body[start + 5 : end if end >= 0 else len(body)])
    except ValueError:  # not the event's data line after all: no usage to read
        return None
    usage = event.get("usage") if isinstance(event, dict) else None
    if not isinstance(usage, dict):
        return None
    out = _int(usage.get("output_tokens"))
    # speech output is audio; its input is the text to speak (and instructions)
    return Usage(input_tokens=_int(usage.get("input_tokens")), output_tokens=out, audio_output_tokens=out)


class _SpeechHooks(_Hooks):
    """``audio.speech.create``: no usage, except in an SSE answer (see the module documentation)."""

    operation = sc.GEN_AI_OPERATION_NAME_SPEECH

    def request_attributes(self, kwargs: Mapping[str, Any]) -> dict[str, Any]:
        return {sc.GEN_AI_OUTPUT_TYPE: sc.GEN_AI_OUTPUT_TYPE_SPEECH}

    def read(self, call: _Call, result: Any) -> Outcome:
        model = call.request_model
        response = getattr(result, "response", None)
        # only a body already read (never the application's stream) is looked at
        if call.request.get("stream_format") != "sse" or response is None or not response.is_closed:
            return Outcome(response_model=model, reason=_SPEECH_NO_USAGE)
        return _outcome(speech_sse_usage(response.content), model)


# --- targets --------------------------------------------------------------------------------------

MEDIA_TARGETS: tuple[tuple[str, str, tuple[str, ...], type[_Hooks]], ...] = (
    ("openai.resources.images", "Images", ("generate",), _ImageHooks),
    ("openai.resources.images", "Images", ("edit",), _ImageEditHooks),
    ("openai.resources.images", "Images", ("create_variation",), _ImageVariationHooks),
    ("openai.resources.audio.transcriptions", "Transcriptions", ("create",), _TranscriptionHooks),
    ("openai.resources.audio.translations", "Translations", ("create",), _TranslationHooks),
    ("openai.resources.audio.speech", "Speech", ("create",), _SpeechHooks),
)
"""(module, sync class, methods, hooks) as in :data:`.openai._TARGETS`; the instrumentor wraps both."""
