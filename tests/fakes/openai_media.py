"""The OpenAI image and audio routes of the fake OpenAI server (mixed into its handler).

* ``POST /v1/images/generations`` (JSON), ``/v1/images/edits`` and ``/v1/images/variations``
  (multipart): GPT image models (``gpt-image-*``) answer with token ``usage`` (:func:`image_usage`),
  DALL-E models (the default when the request names none: ``dall-e-2``) without; ``n`` images as
  URLs. With ``stream`` (GPT image models) a ``text/event-stream`` of ``partial_images`` partial
  image events, then one ``*.completed`` event carrying the usage.
* ``POST /v1/audio/transcriptions`` and ``/v1/audio/translations`` (multipart, a ``file`` part):
  the audio lasts :func:`audio_seconds` (its size in bytes / :data:`AUDIO_BYTES_PER_SECOND`).
  ``whisper-1`` (and any model not ``gpt-*``) transcriptions report ``usage`` of type ``duration``
  (seconds as a float), translations none; ``verbose_json`` answers carry ``duration``; ``text`` /
  ``srt`` / ``vtt`` answer the bare transcript. ``gpt-*`` models report token usage
  (:func:`transcription_usage`), and with ``stream`` send ``transcript.text.delta`` events then
  ``transcript.text.done`` with the usage.
* ``POST /v1/audio/speech`` (JSON): audio bytes (:func:`speech_audio`), or with
  ``stream_format: "sse"`` ``speech.audio.delta`` events then ``speech.audio.done`` carrying
  :func:`speech_usage`.

Every count is a pure function of the request, so a test computes the bill from the same inputs.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

__all__ = [
    "AUDIO_BYTES_PER_SECOND",
    "IMAGE_OUTPUT_TOKENS",
    "MEDIA_ROUTES",
    "TRANSCRIPT",
    "MediaRoutes",
    "audio_seconds",
    "image_usage",
    "speech_audio",
    "speech_usage",
    "transcription_usage",
]

MEDIA_ROUTES = frozenset(
    {
        "/v1/images/generations",
        "/v1/images/edits",
        "/v1/images/variations",
        "/v1/audio/transcriptions",
        "/v1/audio/translations",
        "/v1/audio/speech",
    }
)
"""The routes :class:`MediaRoutes` answers."""

TRANSCRIPT = "The quarterly numbers are up by four percent."
"""The text of every transcription and translation."""

AUDIO_BYTES_PER_SECOND = 1000
"""How many bytes of an uploaded audio file make one second of audio."""

IMAGE_OUTPUT_TOKENS: Mapping[str, int] = {"low": 272, "medium": 1056, "high": 4160}
"""Image output tokens per image by ``quality`` (any other, or none: medium)."""

_IMAGE_TEXT_OUTPUT_TOKENS = 24  # gpt-image-1.5 splits its output: some text tokens beside the image ones
_IMAGE_URL = "https://images.invalid/fake.png"
_PIXEL = base64.b64encode(b"\x89PNG fake").decode()


def _int(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def image_model(body: Mapping[str, Any]) -> str:
    """The model that answers an image request: the one named, else OpenAI's default, ``dall-e-2``."""
    return str(body.get("model") or "dall-e-2")


def image_usage(body: Mapping[str, Any]) -> dict[str, Any] | None:
    """The ``usage`` of an image request (``None`` for a DALL-E model, which reports none).

    Input: 10 + the prompt's characters of text, and for each uploaded image its size in bytes /
    100 image tokens. Output: :data:`IMAGE_OUTPUT_TOKENS` per image; ``gpt-image-1.5`` also
    reports 24 text output tokens, split out in ``output_tokens_details``.
    """
    model = image_model(body)
    if not model.startswith("gpt-image"):
        return None
    n = _int(body.get("n"), 1)
    text = 10 + len(str(body.get("prompt") or ""))
    images = sum(len(f["content"]) // 100 for f in body.get("_files", ()) if f["name"].startswith("image"))
    image_out = IMAGE_OUTPUT_TOKENS.get(str(body.get("quality")), IMAGE_OUTPUT_TOKENS["medium"]) * n
    usage: dict[str, Any] = {
        "input_tokens": text + images,
        "input_tokens_details": {"text_tokens": text, "image_tokens": images},
        "output_tokens": image_out,
        "total_tokens": text + images + image_out,
    }
    if model.startswith("gpt-image-1.5"):
        usage["output_tokens"] += _IMAGE_TEXT_OUTPUT_TOKENS
        usage["total_tokens"] += _IMAGE_TEXT_OUTPUT_TOKENS
        usage["output_tokens_details"] = {"image_tokens": image_out, "text_tokens": _IMAGE_TEXT_OUTPUT_TOKENS}
    return usage


def audio_seconds(body: Mapping[str, Any]) -> float:
    """How long the uploaded audio of a transcription or translation request lasts, in seconds."""
    files = [f for f in body.get("_files", ()) if f["name"] == "file"]
    return sum(len(f["content"]) for f in files) / AUDIO_BYTES_PER_SECOND


def transcription_usage(body: Mapping[str, Any]) -> dict[str, Any]:
    """The token usage a ``gpt-*`` transcription reports: 10 audio tokens a second, prompt characters
    as text tokens, 2 output tokens per word of :data:`TRANSCRIPT`."""
    audio = int(audio_seconds(body) * 10)
    text = len(str(body.get("prompt") or ""))
    out = 2 * len(TRANSCRIPT.split())
    return {
        "type": "tokens",
        "input_tokens": audio + text,
        "input_token_details": {"audio_tokens": audio, "text_tokens": text},
        "output_tokens": out,
        "total_tokens": audio + text + out,
    }


def speech_usage(body: Mapping[str, Any]) -> dict[str, int]:
    """The usage of a speech request: 5 + its words as input tokens, 50 audio tokens per word out."""
    words = len(str(body.get("input") or "").split())
    return {"input_tokens": 5 + words, "output_tokens": 50 * words, "total_tokens": 5 + 51 * words}


def speech_audio(body: Mapping[str, Any]) -> bytes:
    """The audio bytes a speech request gets: a fake MP3 of 10 bytes per character of input."""
    return b"ID3" + b"\x00" * (10 * len(str(body.get("input") or "")))


def _event(data: Mapping[str, Any]) -> bytes:
    return b"event: " + str(data["type"]).encode() + b"\ndata: " + json.dumps(data).encode() + b"\n\n"


class MediaRoutes:
    """The media routes, for the fake server's handler (which provides the JSON and stream plumbing)."""

    # The handler the routes are mixed into provides the plumbing they call: _read_json,
    # _send_json, _send_bytes, _start_stream, _chunk, and the request's headers and rfile.
    headers: Any
    rfile: Any
    _read_json: Any
    _send_json: Any
    _send_bytes: Any
    _start_stream: Any
    _chunk: Any

    def _read_media_body(self) -> dict[str, Any]:
        """The request's body: its JSON object, or its multipart form fields (files under ``_files``,
        each ``{"name", "filename", "content"}``)."""
        content_type = self.headers.get("Content-Type") or ""
        if not content_type.startswith("multipart/form-data"):
            return self._read_json()
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        message = BytesParser(policy=HTTP).parsebytes(b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + raw)
        body: dict[str, Any] = {"_files": []}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True) or b""
            if part.get_filename() is not None:
                body["_files"].append({"name": name, "filename": part.get_filename(), "content": payload})
            elif isinstance(name, str):
                body[name] = payload.decode()
        return body

    def _media(self, route: str, body: dict[str, Any]) -> None:
        """Answer one media request (the handler has recorded it and answered the error models)."""
        if route.startswith("/v1/images/"):
            self._images(route, body)
        elif route == "/v1/audio/speech":
            self._speech(body)
        else:
            self._audio_text(route, body)

    def _images(self, route: str, body: dict[str, Any]) -> None:
        usage = image_usage(body)
        if str(body.get("stream")).lower() == "true" and usage is not None:
            prefix = "image_edit" if route.endswith("/edits") else "image_generation"
            base = {"b64_json": _PIXEL, "created_at": 1_700_000_000, "size": "1024x1024", "quality": "medium"}
            base |= {"background": "opaque", "output_format": "png"}
            self._start_stream()
            for index in range(_int(body.get("partial_images"), 0)):
                self._chunk(_event({"type": f"{prefix}.partial_image", **base, "partial_image_index": index}))
            self._chunk(_event({"type": f"{prefix}.completed", **base, "usage": usage}))
            self._chunk(b"")
            return
        data = [{"url": _IMAGE_URL} for _ in range(_int(body.get("n"), 1))]
        payload: dict[str, Any] = {"created": 1_700_000_000, "data": data}
        if usage is not None:
            payload["usage"] = usage
        self._send_json(200, payload)

    def _audio_text(self, route: str, body: dict[str, Any]) -> None:
        model = str(body.get("model", ""))
        fmt = str(body.get("response_format") or "json")
        tokens = model.startswith("gpt-")
        if tokens and str(body.get("stream")).lower() == "true":
            self._start_stream()
            for i, word in enumerate(TRANSCRIPT.split()):
                delta = {"type": "transcript.text.delta", "delta": word if i == 0 else " " + word, "logprobs": None}
                self._chunk(b"data: " + json.dumps(delta).encode() + b"\n\n")
            done = {"type": "transcript.text.done", "text": TRANSCRIPT, "usage": transcription_usage(body)}
            self._chunk(b"data: " + json.dumps(done).encode() + b"\n\n")
            self._chunk(b"")
            return
        if fmt in ("text", "srt", "vtt"):
            self._send_bytes(200, TRANSCRIPT.encode(), "text/plain; charset=utf-8")
            return
        payload: dict[str, Any] = {"text": TRANSCRIPT}
        if fmt == "verbose_json":
            task = "translate" if route.endswith("/translations") else "transcribe"
            payload |= {"task": task, "language": "english", "duration": audio_seconds(body), "segments": []}
        elif tokens:
            payload["usage"] = transcription_usage(body)
        elif route.endswith("/transcriptions"):
            payload["usage"] = {"type": "duration", "seconds": audio_seconds(body)}
        self._send_json(200, payload)

    def _speech(self, body: dict[str, Any]) -> None:
        audio = speech_audio(body)
        if body.get("stream_format") != "sse":
            self._send_bytes(200, audio, "audio/mpeg")
            return
        half = len(audio) // 2
        events = [
            {"type": "speech.audio.delta", "audio": base64.b64encode(part).decode()}
            for part in (audio[:half], audio[half:])
        ]
        events.append({"type": "speech.audio.done", "usage": speech_usage(body)})
        data = b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events)
        self._send_bytes(200, data, "text/event-stream")
