"""Sessions, users and custom properties: context managers carried in OpenTelemetry baggage.

``with otel_llmcost.session("s-1", name="support-chat"):`` puts the session into the current
OpenTelemetry context. Context lives in :mod:`contextvars`, so it is safe with threads (each
thread has its own) and asyncio (each task copies its creator's context). Because it is baggage,
the W3C ``baggage`` header carries it to other services, whose processors stamp it too.

Baggage travels in plain text to every service the request reaches: put ids there, not secrets.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from opentelemetry import baggage
from opentelemetry import context as otel_context

from . import semconv as sc

__all__ = ["current_attributes", "properties", "session", "user"]

_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]{0,63}$")
_MAX_VALUE = 256
_PROPERTY_PREFIX = sc.LLM_PROPERTY + "."
_OURS = (sc.SESSION_ID, sc.LLM_SESSION_NAME, sc.LLM_SESSION_PATH, sc.USER_ID)


def _value(name: str, value: object) -> str:
    if value is None:
        raise ValueError(f"{name} must not be None")
    text = str(value)
    if not text or len(text) > _MAX_VALUE:
        raise ValueError(f"{name} must be 1 to {_MAX_VALUE} characters, got {len(text)}")
    return text


@contextmanager
def _with_baggage(values: Mapping[str, str]) -> Iterator[None]:
    ctx = otel_context.get_current()
    for key, value in values.items():
        ctx = baggage.set_baggage(key, value, ctx)
    token = otel_context.attach(ctx)
    try:
        yield
    finally:
        otel_context.detach(token)


@contextmanager
def session(id: str, name: str | None = None, path: str | None = None) -> Iterator[None]:  # noqa: A002
    """Group the LLM calls made inside the block into one session.

    Args:
        id: unique id of this session (never a metric label).
        name: the kind of session (``support-chat``); low cardinality, can be a metric label.
        path: where in the workflow the calls happen (``/triage/summarise``).

    Raises:
        ValueError: an argument is empty or longer than 256 characters.
    """
    values = {sc.SESSION_ID: _value("session id", id)}
    if name is not None:
        values[sc.LLM_SESSION_NAME] = _value("session name", name)
    if path is not None:
        values[sc.LLM_SESSION_PATH] = _value("session path", path)
    with _with_baggage(values):
        yield


@contextmanager
def user(id: str) -> Iterator[None]:  # noqa: A002
    """Attribute the LLM calls made inside the block to an end user (never a metric label).

    Raises:
        ValueError: the id is empty or longer than 256 characters.
    """
    with _with_baggage({sc.USER_ID: _value("user id", id)}):
        yield


@contextmanager
def properties(**values: object) -> Iterator[None]:
    """Attach custom properties (``feature="search"``) to the LLM calls made inside the block.

    Nested blocks add to the outer ones; an inner value wins over an outer one with the same key.
    Only properties named in the metrics allow-list become metric labels.

    Raises:
        ValueError: a key is not an identifier of up to 64 characters, or a value is empty or too long.
    """
    out: dict[str, str] = {}
    for key, value in values.items():
        if not _KEY.match(key):
            raise ValueError(f"property key {key!r} must match {_KEY.pattern}")
        out[_PROPERTY_PREFIX + key] = _value(f"property {key}", value)
    with _with_baggage(out):
        yield


def current_attributes(ctx: otel_context.Context | None = None) -> dict[str, str]:
    """Return the session, user and property attributes carried by *ctx* (default: the current context)."""
    entries = baggage.get_all(ctx)
    if not entries:
        return {}
    return {key: str(value) for key, value in entries.items() if key in _OURS or key.startswith(_PROPERTY_PREFIX)}
