"""Guard state in Redis, shared by every process that uses the same server and key prefix.

The two steps of :class:`~.state.GuardState` run as Lua scripts, each one EVALSHA: one round trip,
atomic on the server. See :mod:`.state` for the amounts, windows and the decision rule (the Lua
copy of :func:`~.state.decide` below must stay in step with it).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from ..config import ConfigError
from .state import KIND_REQUESTS, Check, Seen, Settle, StateUnavailableError, expire_at

__all__ = ["RedisState"]

# KEYS: per check, the current bucket's hash and the previous bucket's hash.
# ARGV: per check, kind, limit, amount, explicit, sole, raise, weight, expire-at (ms).
# Returns {blocked, then per check: spent, previous, reserved, breach}.
_ADMIT_LUA = """
local n = #KEYS / 2
local out = {0}
local blocked = false
for i = 1, n do
  local b = (i - 1) * 8
  local kind = ARGV[b + 1]
  local limit = tonumber(ARGV[b + 2])
  local amount = tonumber(ARGV[b + 3])
  local weight = tonumber(ARGV[b + 7])
  local cur = redis.call('HMGET', KEYS[2 * i - 1], 's', 'r')
  local spent = tonumber(cur[1] or '0')
  local reserved = 0
  if kind ~= 'r' then reserved = tonumber(cur[2] or '0') end
  local previous = 0
  if weight > 0 then previous = tonumber(redis.call('HGET', KEYS[2 * i], 's') or '0') end
  local used = spent + previous * weight
  local breach
  if kind == 'r' then
    breach = used + amount > limit
  elseif used >= limit then
    breach = true
  else
    breach = (ARGV[b + 4] == '1' or ARGV[b + 5] ~= '1') and used + reserved + amount > limit
  end
  if breach and ARGV[b + 6] == '1' then blocked = true end
  table.insert(out, spent)
  table.insert(out, previous)
  table.insert(out, reserved)
  table.insert(out, breach and 1 or 0)
end
if blocked then
  out[1] = 1
else
  for i = 1, n do
    local b = (i - 1) * 8
    local amount = tonumber(ARGV[b + 3])
    if amount > 0 then
      local key = KEYS[2 * i - 1]
      if ARGV[b + 1] == 'r' then
        redis.call('HINCRBY', key, 's', amount)
      else
        redis.call('HINCRBY', key, 'r', amount)
      end
      redis.call('PEXPIREAT', key, ARGV[b + 8])
    end
  end
end
return out
"""

# KEYS: per entry, the hash to add spend to and the hash holding its reservation.
# ARGV: per entry, amount, reserved, expire-at (ms). Returns the spend after each addition.
_SETTLE_LUA = """
local out = {}
for i = 1, #KEYS / 2 do
  local b = (i - 1) * 3
  local key = KEYS[2 * i - 1]
  local after = redis.call('HINCRBY', key, 's', ARGV[b + 1])
  redis.call('PEXPIREAT', key, ARGV[b + 3])
  local reserved = tonumber(ARGV[b + 2])
  if reserved > 0 and redis.call('EXISTS', KEYS[2 * i]) == 1 then
    if redis.call('HINCRBY', KEYS[2 * i], 'r', -reserved) < 0 then
      redis.call('HSET', KEYS[2 * i], 'r', 0)
    end
  end
  table.insert(out, after)
end
return out
"""


class RedisState:
    """Guard state in Redis, shared by every process that uses the same server and prefix.

    Each limit, window and key is one hash (``s``: spent, ``r``: reserved), expiring after its
    window. Every admit and settle is one EVALSHA. After a failure the server is not retried
    for ``retry_after_s``: calls meanwhile fail fast with :class:`StateUnavailableError`, so a
    dead Redis costs no timeout per call.
    """

    def __init__(
        self,
        client: Any = None,
        *,
        url: str | None = None,
        prefix: str = "{otel_llmcost}:guard",
        timeout_s: float = 0.25,
        retry_after_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Connect lazily to Redis.

        Args:
            client: a ``redis.Redis`` to use (its own timeouts and retries apply).
            url: else the server's URL (``redis://host:6379/0``); a client is made with
                *timeout_s* and no retries (a retried reservation could be counted twice).
            prefix: start of every key; the braces keep all keys in one Redis Cluster slot, as the
                scripts touch several keys.
            timeout_s: connect and read timeout of the client made from *url*.
            retry_after_s: how long to fail fast after a failure before trying the server again.
            clock: monotonic clock (tests).

        Raises:
            ConfigError: the ``redis`` package is missing, or neither *client* nor *url* is given.
        """
        try:
            import redis
            from redis.backoff import NoBackoff
            from redis.retry import Retry
        except ImportError:  # pragma: no cover - depends on the environment
            raise ConfigError("redis", url, "the redis package is needed: pip install 'otel-llmcost[redis]'") from None
        if client is None:
            if not url:
                raise ConfigError("redis", url, "give a Redis URL (redis://host:port/db) or a client")
            client = redis.Redis.from_url(
                url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s, retry=Retry(NoBackoff(), 0)
            )
        self._redis = redis
        self.client = client
        self.prefix = prefix
        self._admit = client.register_script(_ADMIT_LUA)
        self._settle = client.register_script(_SETTLE_LUA)
        self._retry_after_s = retry_after_s
        self._clock = clock
        self._down_until = 0.0
        self._down: StateUnavailableError | None = None
        self._lock = threading.Lock()
        self._inflight: dict[tuple[str, str], int] = {}  # this process's calls in flight, per limit and key

    def _key(self, name: str, start: int, key: str) -> str:
        return f"{self.prefix}:{name}:{start}:{key}"

    def _run(self, script: Any, keys: list[str], args: list[Any]) -> list[Any]:
        if self._down is not None and self._clock() < self._down_until:
            raise self._down
        exceptions = self._redis.exceptions
        try:
            result = script(keys=keys, args=args)
        except exceptions.TimeoutError as exc:
            err = StateUnavailableError("timeout", f"{type(exc).__name__}: {exc}")
        except exceptions.ConnectionError as exc:
            err = StateUnavailableError("unreachable", f"{type(exc).__name__}: {exc}")
        except exceptions.RedisError as exc:
            err = StateUnavailableError("redis_error", f"{type(exc).__name__}: {exc}")
        else:
            self._down = None
            return list(result)
        self._down, self._down_until = err, self._clock() + self._retry_after_s
        raise err

    def _inflight_add(self, slots: Sequence[tuple[str, str]], delta: int) -> list[bool]:
        sole: list[bool] = []
        counts = self._inflight
        with self._lock:
            for slot in slots:
                n = counts.get(slot, 0)
                sole.append(n == 0)
                if n + delta > 0:
                    counts[slot] = n + delta
                else:
                    counts.pop(slot, None)
        return sole

    def admit(self, checks: Sequence[Check]) -> tuple[bool, list[Seen]]:
        """See :meth:`GuardState.admit`."""
        # claim the in-flight slots first, so two threads of this process cannot both be sole
        slots = [(c.name, c.key) for c in checks if c.kind != KIND_REQUESTS]
        sole = iter(self._inflight_add(slots, 1))
        keys: list[str] = []
        args: list[Any] = []
        for c in checks:
            keys.append(self._key(c.name, c.start, c.key))
            keys.append(self._key(c.name, 2 * c.start - c.end, c.key))
            args += (
                c.kind,
                c.limit,
                c.amount,
                int(c.explicit),
                int(next(sole)) if c.kind != KIND_REQUESTS else 1,
                int(c.raise_),
                repr(c.weight),
                expire_at(c.kind, c.start, c.end) * 1000,
            )
        try:
            out = self._run(self._admit, keys, args)
        except StateUnavailableError:
            self._inflight_add(slots, -1)
            raise
        blocked = bool(out[0])
        if blocked:
            self._inflight_add(slots, -1)
        seen = [Seen(int(out[i]), int(out[i + 1]), int(out[i + 2]), bool(out[i + 3])) for i in range(1, len(out), 4)]
        return blocked, seen if any(s.breach for s in seen) else []

    def settle(self, entries: Sequence[Settle]) -> list[int]:
        """See :meth:`GuardState.settle`."""
        self._inflight_add([(e.name, e.key) for e in entries if e.admitted], -1)
        keys: list[str] = []
        args: list[Any] = []
        for e in entries:
            keys.append(self._key(e.name, e.start, e.key))
            keys.append(self._key(e.name, e.reserved_start, e.key))
            args += (e.amount, e.reserved, expire_at(e.kind, e.start, e.end) * 1000)
        return [int(v) for v in self._run(self._settle, keys, args)]
