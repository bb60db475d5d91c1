"""Stream proxies: the span of a streamed call ends when the stream is exhausted, closed or fails.

The proxy is a ``wrapt.ObjectProxy``, so everything the SDK's stream object offers (``.response``,
``.close()``, helper methods) still works; iteration passes every chunk through unchanged after
handing it to the call's :class:`~._wrap.StreamAccumulator`. The span ends, with the usage the
stream reported (or an estimate), when the stream is exhausted, closed, leaves its ``with`` block,
raises, or is garbage-collected unfinished (a consumer that stopped reading).

Closing the stream's HTTP ``response`` ends the span too: the proxy's ``response`` is the SDK's,
behind a proxy whose ``close()``/``aclose()`` (and ``with`` exit) also end the span. ``openai``'s
stream helpers (``chat.completions.stream()``, ``responses.stream()``) keep ``raw_stream.response``
and close that, not the stream, when the application leaves their ``with`` block early. Only the
``response`` attribute is proxied, once per stream: iteration costs nothing more.
"""

from __future__ import annotations

from typing import Any

import wrapt
from opentelemetry import context as otel_context

from ._call import LLMCallSpan
from ._wrap import StreamAccumulator, fail, finish, guarded, log_once

__all__ = ["AsyncTracedStream", "TracedStream"]

_FEED = "reading a stream chunk"


def _end(call: LLMCallSpan, accumulator: StreamAccumulator, exc: BaseException | None) -> None:
    """End a streamed *call* with what *accumulator* read (failed with *exc* if given); once."""
    if call.done:
        return
    if exc is None:
        finish(call, accumulator.outcome)
    else:
        fail(call, exc, guarded("reading a stream", accumulator.outcome))


class _TracedResponse(wrapt.ObjectProxy):  # type: ignore[misc,type-arg]
    """A stream's HTTP response whose closing ends the stream's span (see the module documentation).

    It holds the call and the accumulator, not the stream proxy: no reference cycle, so a dropped
    stream still ends its span at once.
    """

    def __init__(self, wrapped: Any, call: LLMCallSpan, accumulator: StreamAccumulator) -> None:
        super().__init__(wrapped)
        self._self_call = call
        self._self_acc = accumulator

    def close(self) -> Any:
        """Close the response, then end the span with what was streamed."""
        try:
            return self.__wrapped__.close()
        finally:
            _end(self._self_call, self._self_acc, None)

    async def aclose(self) -> Any:
        """Close the (async) response, then end the span with what was streamed."""
        try:
            return await self.__wrapped__.aclose()
        finally:
            _end(self._self_call, self._self_acc, None)

    def __enter__(self) -> _TracedResponse:
        self.__wrapped__.__enter__()
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> Any:
        try:
            return self.__wrapped__.__exit__(exc_type, exc, tb)
        finally:
            _end(self._self_call, self._self_acc, None)

    async def __aenter__(self) -> _TracedResponse:
        await self.__wrapped__.__aenter__()
        return self

    async def __aexit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> Any:
        try:
            return await self.__wrapped__.__aexit__(exc_type, exc, tb)
        finally:
            _end(self._self_call, self._self_acc, None)


class _State:
    """What a stream proxy reads on every chunk, in one plain object.

    Reading an attribute of a ``wrapt`` proxy costs ~0.1 us (ten times a plain one): the proxy
    keeps one attribute, this, and ``__next__`` reads the rest from it.
    """

    __slots__ = ("context", "feed", "it")

    def __init__(self, context: Any, feed: Any) -> None:
        self.context = context
        self.feed = feed  # the accumulator's bound method: every chunk goes through it
        self.it: Any = None  # the iterator, for streams that are iterable but not iterators


class _Traced(wrapt.ObjectProxy):  # type: ignore[misc,type-arg]
    def __init__(self, wrapped: Any, call: LLMCallSpan, accumulator: StreamAccumulator) -> None:
        super().__init__(wrapped)
        self._self_call = call
        self._self_acc = accumulator
        self._self_state = _State(call.context, accumulator.feed)
        self._self_response: Any = None

    def _self_end(self, exc: BaseException | None) -> None:
        _end(self._self_call, self._self_acc, exc)

    @property
    def response(self) -> Any:
        """The SDK stream's HTTP response; closing it ends the span too (made on first read, then kept)."""
        traced = self._self_response
        if traced is None:
            response = self.__wrapped__.response  # a stream without one raises AttributeError, as unproxied
            if response is None:
                return None
            traced = self._self_response = _TracedResponse(response, self._self_call, self._self_acc)
        return traced

    def __del__(self) -> None:
        # the application stopped reading and dropped the stream: end with what was seen
        if not self._self_call.done:
            self._self_end(None)


class TracedStream(_Traced):
    """A synchronous stream whose call span ends with the stream."""

    def __iter__(self) -> TracedStream:
        return self

    def __next__(self) -> Any:
        # The SDK may send its request or read the network lazily, inside next(): run it in the
        # call's context so spans it starts are children of ours (and covered by it).
        state = self._self_state
        token = otel_context.attach(state.context)
        try:
            it = state.it
            if it is None:
                wrapped = self.__wrapped__
                it = state.it = wrapped if hasattr(type(wrapped), "__next__") else iter(wrapped)
            item = next(it)
        except StopIteration:
            self._self_end(None)
            raise
        except BaseException as exc:
            self._self_end(exc)
            raise
        finally:
            otel_context.detach(token)
        try:  # guarded() inline: this runs on every chunk
            state.feed(item)
        except Exception as exc:  # noqa: BLE001 - telemetry never breaks the application
            log_once(_FEED, exc)
        return item

    def close(self) -> Any:
        try:
            closer = getattr(self.__wrapped__, "close", None)
            return closer() if closer is not None else None
        finally:
            self._self_end(None)

    def __enter__(self) -> TracedStream:
        enter = getattr(self.__wrapped__, "__enter__", None)
        if enter is not None:
            enter()
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> Any:
        try:
            exit_ = getattr(self.__wrapped__, "__exit__", None)
            return exit_(exc_type, exc, tb) if exit_ is not None else None
        finally:
            self._self_end(exc)


class AsyncTracedStream(_Traced):
    """An asynchronous stream whose call span ends with the stream."""

    def __aiter__(self) -> AsyncTracedStream:
        return self

    async def __anext__(self) -> Any:
        state = self._self_state
        token = otel_context.attach(state.context)
        try:
            it = state.it
            if it is None:
                wrapped = self.__wrapped__
                it = state.it = wrapped if hasattr(type(wrapped), "__anext__") else wrapped.__aiter__()
            item = await it.__anext__()
        except StopAsyncIteration:
            self._self_end(None)
            raise
        except BaseException as exc:
            self._self_end(exc)
            raise
        finally:
            otel_context.detach(token)
        try:
            state.feed(item)
        except Exception as exc:  # noqa: BLE001 - telemetry never breaks the application
            log_once(_FEED, exc)
        return item

    async def aclose(self) -> Any:
        try:
            closer = getattr(self.__wrapped__, "aclose", None) or getattr(self.__wrapped__, "close", None)
            return await closer() if closer is not None else None
        finally:
            self._self_end(None)

    async def close(self) -> Any:
        return await self.aclose()

    async def __aenter__(self) -> AsyncTracedStream:
        enter = getattr(self.__wrapped__, "__aenter__", None)
        if enter is not None:
            await enter()
        return self

    async def __aexit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> Any:
        try:
            exit_ = getattr(self.__wrapped__, "__aexit__", None)
            return await exit_(exc_type, exc, tb) if exit_ is not None else None
        finally:
            self._self_end(exc)
