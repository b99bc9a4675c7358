"""Per-key token buckets: in Redis when the service has one (shared by every API process), in memory on
the embedded defaults (one API process)."""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

log = logging.getLogger("media_service.ratelimit")

# Atomic refill-and-take: tokens accrue at `rate` per second up to `capacity`; the answer is how many
# seconds to wait (0: allowed). Redis's own clock, so API processes on several hosts agree.
_LUA = """
local rate = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1]) or capacity
local ts = tonumber(state[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - ts) * rate)
local wait = 0
if tokens >= cost then tokens = tokens - cost else wait = (cost - tokens) / rate end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('EXPIRE', KEYS[1], math.ceil(capacity / rate) + 1)
return tostring(wait)
"""


class Limiter(Protocol):
    def take(self, bucket: str, per_minute: int, cost: float = 1.0) -> float:
        """Take ``cost`` tokens from ``bucket`` (capacity and refill: ``per_minute``); 0 when allowed,
        else the seconds until it would be."""
        ...


class MemoryLimiter:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, bucket: str, per_minute: int, cost: float = 1.0) -> float:
        rate, capacity = per_minute / 60.0, float(per_minute)
        with self._lock:
            now = self.clock()
            tokens, ts = self._buckets.get(bucket, (capacity, now))
            tokens = min(capacity, tokens + max(0.0, now - ts) * rate)
            wait = 0.0
            if tokens >= cost:
                tokens -= cost
            else:
                wait = (cost - tokens) / rate
            if len(self._buckets) > 100_000:  # idle buckets are full ones: forgetting them changes nothing
                self._buckets = {k: v for k, v in self._buckets.items() if v[0] < per_minute}
            self._buckets[bucket] = (tokens, now)
        return wait


class RedisLimiter:
    """Fails open: when Redis cannot be reached, requests are let through (and logged), because the queue
    and database have their own protections and an outage of the limiter must not become an outage."""

    def __init__(self, url: str, prefix: str = "nm:rl:") -> None:
        import redis

        self.client: Any = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
        self.script = self.client.register_script(_LUA)
        self.prefix = prefix

    def take(self, bucket: str, per_minute: int, cost: float = 1.0) -> float:
        import redis

        try:
            return float(self.script(keys=[self.prefix + bucket], args=[per_minute / 60.0, per_minute, cost]))
        except redis.RedisError as exc:
            log.warning("rate limiter unavailable, letting the request through: %s", exc)
            return 0.0


def retry_after(wait: float) -> int:
    return max(1, math.ceil(wait))


def make_limiter(broker_url: str) -> Limiter:
    if broker_url.startswith(("redis://", "rediss://")):
        return RedisLimiter(broker_url)
    return MemoryLimiter()
