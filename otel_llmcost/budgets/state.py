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
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from decimal import ROUND_CEILING, Decimal
from typing import TYPE_CHECKING, NamedTuple, Protocol

from .users import CompactCounter

if TYPE_CHECKING:
    from .limits import Rule

__all__ = [
    "KIND_BUDGET",
    "KIND_CENTS",
    "KIND_REQUESTS",
    "SCOPE_ALL",
    "SCOPE_PROPERTY",
    "SCOPE_USER",
    "UNITS_PER_CENT",
    "UNITS_PER_USD",
    "Check",
    "Counters",
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
SCOPE_ALL, SCOPE_USER, SCOPE_PROPERTY = 0, 1, 2
"""How a limit keys its counters: one for all calls, one per user, one per property value."""

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


class Counters:
    """One limit's state in memory (:class:`MemoryState`; callers hold its lock).

    Attributes:
        start: start of the current window or bucket (-1: none yet).
        cur: spend (or requests) per key in it.
        prev: per key in the previous bucket (sliding windows only).
        flights: per key, this process's calls in flight: ``[count, reserved, start of the window
            holding the reservation]``; an entry exists only while its count is positive.
    """

    __slots__ = ("cur", "flights", "prev", "start")

    def __init__(self) -> None:
        """Create empty counters."""
        self.start = -1
        self.cur = CompactCounter()
        self.prev: CompactCounter | None = None
        self.flights: dict[str, list[int]] = {}

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


class MemoryState:
    """Guard state in this process's memory, bounded per limit by :class:`CompactCounter` (thread-safe).

    Calls in flight are kept per limit and key while they last (a permit never settled keeps its
    entry: release permits of calls not made). A guard whose state is exactly a ``MemoryState``
    binds its rules to their :class:`Counters` (:meth:`counters`) and checks them with
    :meth:`admit_rules` and :meth:`settle_rules`, which decide as :meth:`admit` and :meth:`settle`
    without building a :class:`Check` or :class:`Settle` per limit.
    """

    def __init__(self) -> None:
        """Create empty state."""
        self._lock = threading.Lock()
        self._counters: dict[str, Counters] = {}

    def counters(self, name: str) -> Counters:
        """Return the counters of the limit *name* (made on first use; kept for the state's life)."""
        with self._lock:
            c = self._counters.get(name)
            if c is None:
                c = self._counters[name] = Counters()
            return c

    def _roll(self, name: str, kind: str, start: int, end: int) -> Counters:
        c = self._counters.get(name)
        if c is None:
            c = self._counters[name] = Counters()
        if start != c.start:
            c.roll(kind, start, end)
        return c

    def admit(self, checks: Sequence[Check]) -> tuple[bool, list[Seen]]:
        """See :meth:`GuardState.admit`."""
        seen: list[tuple[int, int, int, bool]] = []
        charges: list[tuple[CompactCounter, str, int]] = []  # request quotas, charged on admission
        flying: list[tuple[dict[str, list[int]], str, list[int] | None, int, int]] = []  # money: in flight, reserve
        blocked = breached = False
        new = tuple.__new__
        with self._lock:
            for name, kind, key, start, end, weight, limit, amount, explicit, raise_ in checks:
                c = self._roll(name, kind, start, end)
                cur = c.cur
                spent = cur.get(key) if c.start == start else 0
                previous = c.prev.get(key) if weight and c.prev is not None else 0
                # decide(), inlined (a call per limit is a large share of a check): keep them in step
                if kind == KIND_REQUESTS:
                    breach = spent + previous * weight + amount > limit
                    charges.append((cur, key, amount))
                    reserved = 0
                else:
                    f = c.flights.get(key)
                    reserved = f[1] if f is not None and f[2] == start else 0
                    used = spent + previous * weight
                    breach = used >= limit or ((explicit or f is not None) and used + reserved + amount > limit)
                    flying.append((c.flights, key, f, amount, start))
                if breach:
                    breached = True
                    blocked = blocked or raise_
                seen.append((spent, previous, reserved, breach))
            if not blocked:
                for cur, key, amount in charges:
                    cur.add(key, amount)
                for flights, key, f, amount, start in flying:
                    _reserve(flights, key, f, amount, start)
        return blocked, [new(Seen, s) for s in seen] if breached else []

    def admit_rules(
        self, rules: Sequence[Rule], user: str | None, properties: Mapping[str, str], now: float, estimate: int | None
    ) -> list[tuple[Rule, str, int, int]] | None:
        """Check and reserve for a guard's rules bound to this state: :meth:`admit`'s common case, fast.

        Args:
            rules: the rules that apply to the call, their ``counters`` from :meth:`counters`.
            user: the call's user (present when a per-user rule applies).
            properties: the call's properties (holding every scoping property of *rules*).
            now: epoch seconds.
            estimate: the caller's estimate in units (explicit: it must fit), or ``None`` (learned).

        Returns:
            the permit's entries (rule, key, reserved, window start) of the money rules; or
            ``None`` when a rule is breached (or the clock went back past a window), having reserved
            nothing (windows may have rolled over, as :meth:`admit` would): the caller then runs
            :meth:`admit`, which decides everything again and says what it saw.
        """
        entries: list[tuple[Rule, str, int, int]] = []
        charges: list[tuple[CompactCounter, str]] = []
        explicit = estimate is not None
        requests = KIND_REQUESTS
        lock = self._lock
        lock.acquire()  # not "with": this is the whole check's hot path, and "with" costs more
        try:
            for r in rules:
                scope = r.scope
                key = "" if scope == SCOPE_ALL else (user or "") if scope == SCOPE_USER else properties[r.prop]
                start, end = r.window
                if not start <= now < end:
                    start, end, _ = r.bounds(now)
                c = r.counters
                if c is None or (c.start != start and c.roll(r.kind, start, end) is None):
                    return None
                spent: float = c.cur.get(key)
                prev = c.prev
                if prev is not None:  # as admit(): the previous bucket weighs 1 - (now - start) / size
                    previous = prev.get(key)
                    if previous:
                        spent = spent + previous * (1.0 - (now - start) / (end - start))
                limit = r.limit
                if r.kind == requests:
                    if spent + 1 > limit:
                        return None
                    charges.append((c.cur, key))
                    continue
                if spent >= limit:
                    return None
                amount = r.learned if estimate is None else estimate
                f = c.flights.get(key)
                if f is not None:
                    if spent + (f[1] if f[2] == start else 0) + amount > limit:
                        return None
                elif explicit and spent + amount > limit:
                    return None
                entries.append((r, key, amount, start))
            for cur, key in charges:
                cur.add(key, 1)
            for r, key, amount, start in entries:
                flights = r.counters.flights  # type: ignore[union-attr]
                f = flights.get(key)
                if f is None:  # as _reserve(), inlined
                    flights[key] = [1, amount, start]
                else:
                    if f[2] != start:
                        f[1], f[2] = 0, start
                    f[0] += 1
                    f[1] += amount
        finally:
            lock.release()
        return entries

    def settle(self, entries: Sequence[Settle]) -> list[int]:
        """See :meth:`GuardState.settle`."""
        out: list[int] = []
        with self._lock:
            for e in entries:
                c = self._roll(e.name, e.kind, e.start, e.end)
                out.append(c.cur.add(e.key, e.amount) if c.start == e.start else 0)
                if e.admitted:
                    _release(c.flights, e.key, e.reserved, e.reserved_start)
        return out

    def settle_rules(
        self, entries: Sequence[tuple[Rule, str, int, int]], amount: int, now: float, admitted: bool
    ) -> list[tuple[int, int, int]]:
        """:meth:`settle` for a guard's rules bound to this state.

        Returns:
            per entry, the spend after it, and the window (or bucket) it was added to.
        """
        out: list[tuple[int, int, int]] = []
        lock = self._lock
        lock.acquire()
        try:
            for r, key, reserved, rstart in entries:
                start, end = r.window
                if not start <= now < end:
                    start, end, _ = r.bounds(now)
                c = r.counters
                if c is None:
                    raise TypeError(f"rule {r.name!r} is not bound to this state")
                if c.start != start:
                    c.roll(r.kind, start, end)
                out.append((c.cur.add(key, amount) if c.start == start else 0, start, end))
                if admitted:  # as _release(), inlined
                    f = c.flights.get(key)
                    if f is not None:
                        f[0] -= 1
                        if f[0] <= 0:
                            del c.flights[key]
                        elif f[2] == rstart:
                            f[1] = max(f[1] - reserved, 0)
        finally:
            lock.release()
        return out

    def nbytes(self) -> int:
        """Return the bytes held by the counters (not counting Python object overheads)."""
        with self._lock:
            return sum(c.cur.nbytes() + (c.prev.nbytes() if c.prev else 0) for c in self._counters.values())


def _reserve(flights: dict[str, list[int]], key: str, f: list[int] | None, amount: int, start: int) -> None:
    """Count one more call in flight on *key* and add its reservation (held in window *start*)."""
    if f is None:
        flights[key] = [1, amount, start]
        return
    if f[2] != start:
        f[1], f[2] = 0, start
    f[0] += 1
    f[1] += amount


def _release(flights: dict[str, list[int]], key: str, reserved: int, start: int) -> None:
    """Count one call in flight on *key* fewer and release its reservation (held in window *start*)."""
    f = flights.get(key)
    if f is not None:
        f[0] -= 1
        if f[0] <= 0:
            del flights[key]
        elif f[2] == start:
            f[1] = max(f[1] - reserved, 0)
