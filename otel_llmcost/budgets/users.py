"""Per-user spend in bounded memory, and the few users worth showing on a dashboard.

User ids must never become Prometheus labels in bulk, yet a per-user budget needs each user's spend
in the current window. Two pieces:

- :class:`CompactCounter` holds one integer per key (a user id, or a property value) in two flat
  ``array('q')`` columns with open addressing: the key is stored as its 64-bit ``hash()``, never
  as a string, so a key costs 16 bytes a slot. At the 0.7 maximum load, 1,000,000 users fit
  2**21 slots: 32 MiB. It is exact up to 64-bit hash collisions (about 3e-8 for a million users).
  Past ``max_keys`` new keys go to a count-min sketch (4 x 65,536 counters, 2 MiB) with
  conservative update: it over-estimates, so a guard reading it errs towards refusing, never
  towards letting a user overspend (a hash collision likewise adds two users' spend together).
  Growing doubles the columns and rehashes them in Python, under the state's lock: about 0.2 s
  once, at 730,000 keys (half that at the size before); a window rolling over keeps the size.
- :class:`UserUtilization` keeps, per per-user budget, only the top ``max_exposed`` users at or
  above ``expose_above`` of their limit (with their id strings), and counts of users over each
  threshold. Those become ``llm_budget_user_utilization_ratio{budget,user}`` (at most
  ``max_exposed`` series per budget) and ``llm_budget_users_over_threshold{budget,threshold}``.

Spend is an integer number of nano-dollars here (see :mod:`.state`); windows are whole, so both
structures are cleared when a budget's window rolls over.
"""

from __future__ import annotations

import threading
from array import array
from collections.abc import Sequence
from dataclasses import dataclass

from .spec import LABEL_BUDGET, LABEL_THRESHOLD, LABEL_USER, threshold_label

__all__ = [
    "CompactCounter",
    "UserUtilization",
]

_MAX_LOAD = 0.7
_SKETCH_DEPTH = 4
_SKETCH_BITS = 16
# Odd 64-bit multipliers: one multiply-shift hash per sketch row.
_SKETCH_SEEDS = (0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9, 0xD6E8FEB86659FD93)
_U64 = (1 << 64) - 1


def _zeros(n: int) -> array[int]:
    return array("q", [0]) * n


def _key_hash(key: str) -> int:
    # hash() of a str is cached on the object and 64-bit; 0 marks an empty slot.
    h = hash(key)
    return h if h != 0 else 1


class _CountMin:
    """A count-min sketch with conservative update, for keys past a counter's capacity."""

    __slots__ = ("_rows", "used")

    def __init__(self) -> None:
        self._rows = [_zeros(1 << _SKETCH_BITS) for _ in range(_SKETCH_DEPTH)]
        self.used = False

    @staticmethod
    def _slots(h: int) -> list[int]:
        u = h & _U64
        return [((u * seed) & _U64) >> (64 - _SKETCH_BITS) for seed in _SKETCH_SEEDS]

    def get(self, h: int) -> int:
        return min(row[i] for row, i in zip(self._rows, self._slots(h), strict=True))

    def add(self, h: int, amount: int) -> int:
        self.used = True
        slots = self._slots(h)
        target = min(row[i] for row, i in zip(self._rows, slots, strict=True)) + amount
        for row, i in zip(self._rows, slots, strict=True):
            if row[i] < target:  # conservative update: raise only the counters below the new estimate
                row[i] = target
        return target

    def nbytes(self) -> int:
        return sum(row.itemsize * len(row) for row in self._rows)


class CompactCounter:
    """Integer counters keyed by string, in bounded memory (not thread-safe: callers lock)."""

    __slots__ = ("_count", "_keys", "_mask", "_max_keys", "_sketch", "_values")

    def __init__(self, *, initial_capacity: int = 64, max_keys: int = 1_400_000) -> None:
        """Create an empty counter.

        Args:
            initial_capacity: slots allocated at first (rounded up to a power of two).
            max_keys: keys held exactly; later keys share a count-min sketch (over-estimates).
        """
        cap = 8
        while cap < initial_capacity:
            cap *= 2
        self._keys = _zeros(cap)
        self._values = _zeros(cap)
        self._mask = cap - 1
        self._count = 0
        self._max_keys = max_keys
        self._sketch: _CountMin | None = None

    def __len__(self) -> int:
        """Return how many keys are held exactly."""
        return self._count

    def get(self, key: str) -> int:
        """Return the count of *key* (0 if never added)."""
        h = hash(key) or 1  # as _key_hash(), inlined: this is the guard's hot path
        keys = self._keys
        mask = self._mask
        i = h & mask
        while True:
            k = keys[i]
            if k == h:
                return self._values[i]
            if k == 0:
                break
            i = (i + 1) & mask
        sketch = self._sketch
        return sketch.get(h) if sketch is not None and sketch.used else 0

    def add(self, key: str, amount: int) -> int:
        """Add *amount* to the count of *key* and return the new count."""
        h = hash(key) or 1  # as _key_hash(), inlined: settling a call adds once per limit
        keys = self._keys
        mask = self._mask
        i = h & mask
        while True:
            k = keys[i]
            if k == h:
                value = self._values[i] + amount
                self._values[i] = value
                return value
            if k == 0:
                break
            i = (i + 1) & mask
        if self._count >= self._max_keys:  # full until clear(): the count never drops meanwhile
            sketch = self._sketch
            if sketch is None:
                sketch = self._sketch = _CountMin()
            return sketch.add(h, amount)
        if (self._count + 1) > _MAX_LOAD * (mask + 1):
            self._grow()
            return self.add(key, amount)
        keys[i] = h
        self._values[i] = amount
        self._count += 1
        return amount

    def _grow(self) -> None:
        old_keys, old_values = self._keys, self._values
        cap = 2 * len(old_keys)
        keys, values = _zeros(cap), _zeros(cap)
        mask = cap - 1
        for k, v in zip(old_keys, old_values, strict=True):
            if k:
                i = k & mask
                while keys[i]:
                    i = (i + 1) & mask
                keys[i] = k
                values[i] = v
        self._keys, self._values, self._mask = keys, values, mask

    def clear(self) -> None:
        """Forget every key, keeping the allocated capacity (no regrowth after a window rolls over)."""
        cap = len(self._keys)
        self._keys = _zeros(cap)
        self._values = _zeros(cap)
        self._count = 0
        self._sketch = None

    def nbytes(self) -> int:
        """Return the bytes held by the columns (and the sketch, if any)."""
        size = self._keys.itemsize * len(self._keys) + self._values.itemsize * len(self._values)
        return size + (self._sketch.nbytes() if self._sketch is not None else 0)


@dataclass(slots=True)
class _Exposed:
    name: str
    limit: int
    thresholds: tuple[float, ...]
    start: float = 0.0
    end: float = 0.0
    hot: dict[str, int] | None = None
    over: list[int] | None = None


class UserUtilization:
    """The top users of each per-user budget, and how many users are over each threshold (thread-safe)."""

    def __init__(
        self,
        budgets: Sequence[tuple[str, int, Sequence[float]]],
        *,
        expose_above: float = 0.5,
        max_exposed: int = 100,
    ) -> None:
        """Create the tracker.

        Args:
            budgets: per per-user budget, in slot order: its name, its limit (nano-dollars) and its thresholds.
            expose_above: fraction of the limit from which a user may be exposed by id.
            max_exposed: users exposed per budget at most (the highest spenders).
        """
        self._budgets = [_Exposed(name, limit, tuple(sorted(ths))) for name, limit, ths in budgets]
        self._expose_above = expose_above
        self._max_exposed = max_exposed
        self._lock = threading.Lock()

    def observe(self, slot: int, user: str, before: int, after: int, window: tuple[float, float]) -> None:
        """Note that *user*'s spend on budget *slot* went from *before* to *after* in *window* (start, end)."""
        b = self._budgets[slot]
        limit = b.limit
        if limit <= 0 or after == before:
            return
        with self._lock:
            if b.start != window[0] or b.hot is None or b.over is None:
                if window[0] < b.start:
                    return  # a late report from a window already rolled over
                b.start, b.end = window
                b.hot, b.over = {}, [0] * len(b.thresholds)
            over = b.over
            for n, threshold in enumerate(b.thresholds):
                line = threshold * limit
                if before < line <= after:
                    over[n] += 1
            if after < self._expose_above * limit:
                return
            hot = b.hot
            if user in hot:
                if after > hot[user]:  # reports of concurrent calls may arrive out of order
                    hot[user] = after
                return
            if len(hot) < self._max_exposed:
                hot[user] = after
                return
            low = min(hot, key=hot.__getitem__)  # O(max_exposed), only when a new user enters a full set
            if hot[low] < after:
                del hot[low]
                hot[user] = after

    def _current(self, now: float) -> list[_Exposed]:
        out = []
        for b in self._budgets:
            if b.hot is not None and now >= b.end:
                b.hot, b.over = None, None
            out.append(b)
        return out

    def utilization(self, now: float) -> list[tuple[dict[str, str], float]]:
        """Return ``({budget, user}, spend / limit)`` for the exposed users of windows still open at *now*."""
        out: list[tuple[dict[str, str], float]] = []
        with self._lock:
            for b in self._current(now):
                if b.hot:
                    for user, spend in sorted(b.hot.items(), key=lambda kv: -kv[1]):
                        out.append(({LABEL_BUDGET: b.name, LABEL_USER: user}, spend / b.limit))
        return out

    def over_threshold(self, now: float) -> list[tuple[dict[str, str], int]]:
        """Return ``({budget, threshold}, users)`` for every per-user budget and threshold (zeros included)."""
        out: list[tuple[dict[str, str], int]] = []
        with self._lock:
            for b in self._current(now):
                counts = b.over or [0] * len(b.thresholds)
                for threshold, n in zip(b.thresholds, counts, strict=True):
                    out.append(({LABEL_BUDGET: b.name, LABEL_THRESHOLD: threshold_label(threshold)}, n))
        return out
