"""Where guard state lives: this process's memory (default) or Redis (processes sharing budgets).

The guard asks a state two things, each answered atomically and in one step:

- :meth:`GuardState.admit` -- for every limit that applies to a call, read what was spent and
  what calls in flight have reserved, decide, and (when no ``raise`` limit is breached) reserve
  the call's amount. All or nothing: a refused call reserves nothing anywhere.
- :meth:`GuardState.settle` -- after the call, add what it cost and release its reservation.

Amounts are integers: nano-dollars for money (rounded up, so the guard never under-counts) and
plain counts for request quotas. :class:`~.redis_state.RedisState` runs both steps as Lua scripts
(EVALSHA: one round trip, atomic); integers stay exact there up to 2**53 nano-dollars (9 million
dollars a window).

Windows. Budgets use fixed windows aligned in UTC: ``1h`` and ``1d`` on the hour and midnight,
``7d`` on Monday 00:00, ``30d`` on 30-day blocks from 1970-01-01, ``month`` on the calendar month;
a breach resets at the window's end. Rate limits use a sliding window approximated by two
buckets of ``w`` seconds (the previous bucket weighted by the part of it still inside the window),
which has no burst at bucket edges and needs two counters per key.
"""

from __future__ import annotations

import calendar
import threading
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from decimal import ROUND_CEILING, Decimal
from typing import NamedTuple, Protocol

from .users import CompactCounter

__all__ = [
    "KIND_BUDGET",
    "KIND_CENTS",
    "KIND_REQUESTS",
    "UNITS_PER_CENT",
    "UNITS_PER_USD",
    "Check",
    "GuardState",
    "MemoryState",
    "Seen",
    "Settle",
    "StateUnavailableError",
    "decide",
    "expire_at",
    "fixed_window",
    "units_to_usd",
    "usd_to_units",
    "utc",
]

UNITS_PER_USD = 10**9
UNITS_PER_CENT = 10**7
_UNITS = Decimal(UNITS_PER_USD)

KIND_BUDGET = "b"  # money over a fixed window, charged after the call
KIND_CENTS = "c"  # money over a sliding window, charged after the call (a cents quota)
KIND_REQUESTS = "r"  # calls over a sliding window, charged on admission

_DAY, _WEEK = 86400, 7 * 86400
_MONDAY = 4 * _DAY  # 1970-01-05, the first Monday after the epoch
_KEY_GRACE_S = 60


def usd_to_units(usd: Decimal) -> int:
    """Return *usd* in whole nano-dollars, rounded up."""
    return int((usd * _UNITS).to_integral_value(ROUND_CEILING))


def units_to_usd(units: float) -> Decimal:
    """Return nano-dollars as a Decimal number of dollars."""
    return Decimal(int(units)) / _UNITS


def fixed_window(window_s: int | None, now: float) -> tuple[int, int]:
    """Return the ``(start, end)`` epoch seconds of the fixed window holding *now*.

    Args:
        window_s: the window length in seconds, or ``None`` for the calendar month (UTC).
        now: epoch seconds.
    """
    if window_s is None:
        t = time.gmtime(now)
        start = calendar.timegm((t.tm_year, t.tm_mon, 1, 0, 0, 0))
        year, month = (t.tm_year + 1, 1) if t.tm_mon == 12 else (t.tm_year, t.tm_mon + 1)
        return start, calendar.timegm((year, month, 1, 0, 0, 0))
    offset = _MONDAY if window_s == _WEEK else 0
    start = (int(now) - offset) // window_s * window_s + offset
    return start, start + window_s


def utc(epoch_s: float) -> datetime:
    """Return epoch seconds as an aware UTC datetime."""
    return datetime.fromtimestamp(epoch_s, tz=timezone.utc)


class Check(NamedTuple):
    """One limit applied to one call, as the guard asks a state to decide it.

    Attributes:
        name: the limit's name (part of the Redis key).
        kind: :data:`KIND_BUDGET`, :data:`KIND_CENTS` or :data:`KIND_REQUESTS`.
        key: the scope value: ``""`` (global or filtered), the user id, or the property value.
        start: start of the window (fixed) or of the current bucket (sliding), epoch seconds.
        end: its end.
        weight: weight of the previous bucket (sliding windows; 0 for fixed ones).
        limit: the limit in units.
        amount: what to reserve (money) or charge (requests) when admitted.
        explicit: *amount* is the caller's estimate (so it must fit), not a learned one.
        raise_: a breach refuses the call (``action: raise``) rather than only logging.
    """

    name: str
    kind: str
    key: str
    start: int
    end: int
    weight: float
    limit: int
    amount: int
    explicit: bool
    raise_: bool


class Seen(NamedTuple):
    """What a state saw for one :class:`Check`: spend in the current and previous bucket, reservations."""

    spent: int
    previous: int
    reserved: int
    breach: bool


class Settle(NamedTuple):
    """One limit's share of a finished call.

    Attributes:
        name, kind, key: as in :class:`Check`.
        start, end: the window (or bucket) current when the call ended, which gets the spend.
        amount: what the call cost, in units.
        reserved: what its admission reserved, released now.
        reserved_start: the window (or bucket) that holds that reservation.
        admitted: the call was admitted by this state (so it was counted in flight).
    """

    name: str
    kind: str
    key: str
    start: int
    end: int
    amount: int
    reserved: int
    reserved_start: int
    admitted: bool


def decide(kind: str, used: float, reserved: int, limit: int, amount: int, explicit: bool, sole: bool) -> bool:
    """Return whether a call breaches a limit (the same rule runs in Lua for Redis).

    A request quota is breached when one more call would exceed it. A money limit is breached when
    it is spent; or when the amount reserved for this call does not fit beside what is spent and
    reserved -- always for an explicit estimate, and for a learned one unless this is the only
    call of the process in flight on the limit. That exception is what bounds the overshoot to
    one in-flight call per process while keeping the last of a budget usable.
    """
    if kind == KIND_REQUESTS:
        return used + amount > limit
    if used >= limit:
        return True
    return (explicit or not sole) and used + reserved + amount > limit


def expire_at(kind: str, start: int, end: int) -> int:
    """Return when a bucket's state can be forgotten (epoch seconds): sliding buckets serve one more window."""
    return end + (end - start if kind != KIND_BUDGET else 0) + _KEY_GRACE_S


class StateUnavailableError(Exception):
    """The shared state could not be reached; *reason* is ``unreachable``, ``timeout`` or ``redis_error``."""

    def __init__(self, reason: str, detail: str) -> None:
        """Create the error with a metric-friendly *reason* and a human *detail*."""
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class GuardState(Protocol):
    """Atomic check-and-reserve and settle over the limits of one call.

    A state also counts this process's calls in flight per limit and key: a check is *sole* when
    none is, which :func:`decide` needs.
    """

    def admit(self, checks: Sequence[Check]) -> tuple[bool, list[Seen]]:
        """Decide every check; reserve (or charge) their amounts unless a ``raise`` check is breached.

        Returns:
            whether a ``raise`` check was breached (then nothing was reserved), and, when any check was
            breached, what was seen per check (else an empty list: the common case costs nothing more).

        Raises:
            StateUnavailableError: shared state is unreachable (nothing was reserved).
        """

    def settle(self, entries: Sequence[Settle]) -> list[int]:
        """Add each entry's amount to its current bucket, release its reservation; return the new spends.

        Raises:
            StateUnavailableError: shared state is unreachable (the call is no longer in flight all the same).
        """


class _Buckets:
    """One limit's counters in memory: the current window or bucket, and the previous bucket."""

    __slots__ = ("cur", "prev", "start")

    def __init__(self) -> None:
        self.start = -1
        self.cur = CompactCounter()
        self.prev: CompactCounter | None = None

    def roll(self, kind: str, start: int, end: int) -> CompactCounter | None:
        """Move to the window or bucket starting at *start*; return its counter (None: a past one)."""
        if start == self.start:
            return self.cur
        if start < self.start:
            return None
        if kind != KIND_BUDGET:
            if start == self.start + (end - start):  # the next bucket: current becomes previous
                old = self.prev
                self.prev = self.cur
                if old is None:
                    old = CompactCounter()
                else:
                    old.clear()
                self.cur = old
                self.start = start
                return self.cur
            if self.prev is not None:
                self.prev.clear()
        self.cur.clear()
        self.start = start
        return self.cur


class _Flight:
    """Calls in flight on one limit and key: how many, and what they reserved in window *start*."""

    __slots__ = ("count", "reserved", "start")

    def __init__(self) -> None:
        self.count = 0
        self.reserved = 0
        self.start = -1


class MemoryState:
    """Guard state in this process's memory, bounded per limit by :class:`CompactCounter` (thread-safe).

    Calls in flight are kept per limit and key while they last (a permit never settled keeps its
    entry: release permits of calls not made).
    """

    def __init__(self) -> None:
        """Create empty state."""
        self._lock = threading.Lock()
        self._buckets: dict[str, _Buckets] = {}
        self._flights: dict[tuple[str, str], _Flight] = {}

    def _roll(self, name: str, kind: str, start: int, end: int) -> _Buckets:
        b = self._buckets.get(name)
        if b is None:
            b = self._buckets[name] = _Buckets()
        if start != b.start:
            b.roll(kind, start, end)
        return b

    def admit(self, checks: Sequence[Check]) -> tuple[bool, list[Seen]]:
        """See :meth:`GuardState.admit`."""
        seen: list[tuple[int, int, int, bool]] = []
        charges: list[tuple[CompactCounter, str, int]] = []  # request quotas, charged on admission
        flying: list[tuple[_Flight, tuple[str, str], int, int]] = []  # money limits: count in flight, reserve
        blocked = breached = False
        buckets, flights = self._buckets, self._flights
        new = tuple.__new__
        with self._lock:
            for name, kind, key, start, end, weight, limit, amount, explicit, raise_ in checks:
                b = buckets.get(name)
                if b is None or b.start != start:
                    b = self._roll(name, kind, start, end)
                cur = b.cur
                spent = cur.get(key) if b.start == start else 0
                previous = b.prev.get(key) if weight and b.prev is not None else 0
                # decide(), inlined (a call per limit is a large share of a check): keep them in step
                if kind == KIND_REQUESTS:
                    breach = spent + previous * weight + amount > limit
                    charges.append((cur, key, amount))
                    reserved = 0
                else:
                    fkey = (name, key)
                    f = flights.get(fkey)
                    if f is None:
                        f = flights[fkey] = _Flight()
                    reserved = f.reserved if f.start == start else 0
                    used = spent + previous * weight
                    breach = used >= limit or ((explicit or f.count != 0) and used + reserved + amount > limit)
                    flying.append((f, fkey, amount, start))
                if breach:
                    breached = True
                    blocked = blocked or raise_
                seen.append((spent, previous, reserved, breach))
            if blocked:
                for f, fkey, _, _ in flying:
                    if not f.count:  # made by this check: nothing is in flight there
                        flights.pop(fkey, None)
            else:
                for cur, key, amount in charges:
                    cur.add(key, amount)
                for f, _, amount, start in flying:
                    if f.start != start:
                        f.start, f.reserved = start, 0
                    f.count += 1
                    f.reserved += amount
        return blocked, [new(Seen, s) for s in seen] if breached else []

    def settle(self, entries: Sequence[Settle]) -> list[int]:
        """See :meth:`GuardState.settle`."""
        out: list[int] = []
        flights = self._flights
        with self._lock:
            for e in entries:
                b = self._roll(e.name, e.kind, e.start, e.end)
                out.append(b.cur.add(e.key, e.amount) if b.start == e.start else 0)
                if e.admitted:
                    fkey = (e.name, e.key)
                    f = flights.get(fkey)
                    if f is not None:
                        f.count -= 1
                        if f.count <= 0:
                            del flights[fkey]
                        elif f.start == e.reserved_start:
                            f.reserved = max(f.reserved - e.reserved, 0)
        return out

    def nbytes(self) -> int:
        """Return the bytes held by the counters (not counting Python object overheads)."""
        with self._lock:
            return sum(b.cur.nbytes() + (b.prev.nbytes() if b.prev else 0) for b in self._buckets.values())
